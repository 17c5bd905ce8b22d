"""Every Keras model people save (issue 11): subclassed models, custom losses and custom heads
through every tier."""
import os

import keras
import numpy as np
import pytest

import subclass_zoo as sz
from helpers import json_report, kerascheck, probe_options
from kerascheck.engine import all_rules, check_file, select_rules
from kerascheck.formats import open_spec
from kerascheck.tiers.modelio import layer_paths

CODE = os.path.abspath(sz.__file__)


def _options(**kw):
    return probe_options(custom_objects=(CODE,), **kw)


@pytest.fixture(scope="module")
def saved_zoo(tmp_path_factory):
    directory = tmp_path_factory.mktemp("szoo")
    out = {}
    for name in sz.ZOO:
        model = sz.trained(name)
        path = str(directory / f"{name}.keras")
        model.save(path)
        out[name] = (model, path)
    return out


@pytest.mark.parametrize("name", list(sz.ZOO))
def test_the_reader_counts_and_reads_every_weight_of_a_subclassed_model(saved_zoo, name):
    model, path = saved_zoo[name]
    with open_spec(path) as spec:
        assert spec.param_count == model.count_params()
        by_path = {layer.qualname: layer for layer in spec.layers}
        for layer_path, layer in layer_paths(model).values():
            expected = layer.get_weights()
            if not expected:
                continue
            read = [ref.read() for ref in by_path[layer_path].weights]
            key = lambda a: (a.shape, a.tobytes())
            assert sorted(map(key, read)) == sorted(map(key, expected)), layer_path


@pytest.mark.parametrize("name", list(sz.ZOO))
def test_every_tier_runs_on_a_subclassed_model(saved_zoo, name):
    _, path = saved_zoo[name]
    result = check_file(path, list(all_rules()), options=_options())
    assert result.errors == [] and result.unavailable == [], (result.errors, result.skipped)
    assert {"model", "graph", "probe"} <= set(result.tiers)
    assert result.probe.layer_order, "per-layer gradients were measured on the sub-layers"
    if name == "own_train_step":
        assert any("OwnTrainStep.train_step, as fit() does" in note for note in result.probe.notes)


def test_the_subclass_layers_are_named_by_attribute_path(saved_zoo):
    model, path = saved_zoo["attributes"]
    with open_spec(path) as spec:
        names = {layer.qualname: layer for layer in spec.layers}
    assert set(names) == {"hidden", "classifier"}
    # The layer's own name as Keras stored it; its class from the name Keras gave it, or
    # (a name of the user's choosing) left generic, with its weights' roles read from their shapes.
    assert names["hidden"].class_name == "Dense"
    assert names["classifier"].config["name"] == "clf" and names["classifier"].class_name == "Layer"
    assert [w.name for w in names["classifier"].weights] == ["kernel", "bias"]
    nested_model, nested = saved_zoo["holds_functional"]
    with open_spec(nested) as spec:
        # `out` sorts after the model's own `layers` list, so Keras saved it there: it is named by
        # its layer name, as the loaded model names it.
        assert {layer.qualname for layer in spec.layers} == {"encoder/enc_dense", nested_model.out.name}


RULES = ["unstable-softmax", "risky-division", "nan-in-training", "cannot-overfit", "dead-units",
         "unhealthy-weights", "missing-rnn-clipping"]


def _rules_found(result):
    found = set()
    for f in result.findings:
        found.add(f.rule)
        found.update(c["rule"] for c in f.evidence.get("consequences", []))
    return found


@pytest.mark.parametrize("rule", RULES)
def test_the_same_findings_either_way_of_writing_the_model(rule, tmp_path):
    keras.utils.set_random_seed(0)
    functional, subclass, compile_kw, shape = sz.twins(rule)
    found = []
    for label, model in (("functional", functional), ("subclass", subclass)):
        keras.utils.set_random_seed(0)
        model.compile(**{"optimizer": "adam", **compile_kw})
        x = np.random.default_rng(0).normal(size=(16,) + shape).astype("float32")
        model(x)  # built (a subclass records its input shape)
        if rule == "unhealthy-weights" and label == "subclass":
            model.hidden[0].set_weights([np.zeros_like(w) if w.ndim == 2 else w for w in model.hidden[0].get_weights()])
        path = str(tmp_path / f"{label}.keras")
        model.save(path)
        result = check_file(path, select_rules([rule]), options=_options())
        assert result.errors == [], result.errors
        found.append(_rules_found(result))
    assert rule in found[0], f"{rule} did not fire on the Functional model"
    assert found[0] == found[1], f"functional {found[0]} vs subclass {found[1]}"


# ------------------------------------------------------------ custom losses


def _loss_model(loss, out_activation=None):
    keras.utils.set_random_seed(0)
    model = sz.functional_plain(units=16, out_units=2, out_activation=out_activation)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=loss)
    return model


def test_a_custom_loss_taking_the_log_of_a_linear_output_nans_in_the_probes(tmp_path):
    path = str(tmp_path / "logloss.keras")
    _loss_model(sz.LogLoss()).save(path)
    result = check_file(path, list(all_rules()), options=_options())
    assert result.errors == [] and "the probes" not in " ".join(s["reason"] for s in result.skipped)
    rules = _rules_found(result)
    assert "nan-in-training" in rules
    (division,) = [f for f in result.findings if f.rule == "risky-division"]
    assert division.evidence["source"]["file"].endswith("subclass_zoo.py")
    assert "ops.log(y_pred)" in division.evidence["source"]["code"]
    assert result.probe.loss_name == "log_loss"


@pytest.mark.parametrize("loss", [sz.ClippedFocal(gamma=2.0), sz.smooth_l1], ids=["focal", "smooth_l1"])
def test_healthy_custom_losses_train_in_the_probes_without_warnings(loss, tmp_path):
    model = _loss_model(loss, out_activation="sigmoid" if isinstance(loss, sz.ClippedFocal) else None)
    path = str(tmp_path / "m.keras")
    model.save(path)
    result = check_file(path, list(all_rules()), options=_options())
    assert result.errors == [] and result.unavailable == [], result.skipped
    assert result.probe.train is not None and result.probe.train.steps_done == 100
    loud = [(f.rule, f.message) for f in result.findings if f.severity in ("warning", "error")]
    assert loud == []


# ------------------------------------------------------------ custom heads


def test_a_stable_custom_softmax_head_with_crossentropy_is_clean(tmp_path):
    path = str(tmp_path / "head.keras")
    sz.custom_head(from_logits=False).save(path)
    result = check_file(path, select_rules(["softmax-loss-mismatch", "unstable-softmax"]), options=_options())
    assert result.errors == [] and result.findings == [], [f.message for f in result.findings]


def test_the_same_head_with_from_logits_is_a_mismatch_that_says_it_was_measured(tmp_path):
    path = str(tmp_path / "head.keras")
    sz.custom_head(from_logits=True).save(path)
    result = check_file(path, select_rules(["softmax-loss-mismatch"]), options=_options())
    (finding,) = result.findings
    assert finding.severity == "error" and finding.layer == "head"
    assert "custom layer StableSoftmax gives rows in [0, 1] that sum to 1 (measured on" in finding.message
    assert "from_logits=True" in finding.message
    # Without its code the output is unknown: nothing is guessed.
    static = check_file(path, select_rules(["softmax-loss-mismatch"]), static=True)
    assert static.findings == []


# ------------------------------------------------------------ API and CLI agree


def test_check_on_an_in_memory_subclass_gives_what_the_cli_gives_for_its_file(tmp_path):
    import kerascheck

    model = sz.trained("attributes")
    model.hidden.set_weights([np.zeros_like(w) for w in model.hidden.get_weights()])
    report = kerascheck.check(model, select=["unhealthy-weights", "cannot-overfit", "dead-units"], budget=60)
    path = str(tmp_path / "attributes.keras")
    model.save(path)
    cli = json_report(kerascheck_run(path))
    strip = lambda fs: sorted((f["rule"], f["layer"], f["severity"]) for f in fs)
    api = json_report(report.to_json())
    assert strip(api["models"][0]["findings"]) == strip(cli["models"][0]["findings"])
    assert ("unhealthy-weights", "hidden", "error") in strip(api["models"][0]["findings"])


def kerascheck_run(path):
    proc = kerascheck("--format", "json", "--select", "unhealthy-weights,cannot-overfit,dead-units",
                      "--custom-objects", CODE, path)
    assert proc.returncode == 1, proc.stderr
    return proc.stdout


def test_optimizers_a_subclass_holds_are_state_not_parameters(tmp_path):
    """A GAN's d_optimizer and g_optimizer: found with the steps they took, never counted as parameters."""
    from held_optimizers import held_gan

    from kerascheck.formats import open_spec

    gan = held_gan(d_rate=2e-4, g_rate=1e-4, steps=3)
    gan.save(tmp_path / "gan.keras")
    with open_spec(str(tmp_path / "gan.keras")) as spec:
        assert spec.param_count == gan.discriminator.count_params() + gan.generator.count_params()
        stored = {o.attribute: o for o in spec.optimizers}
        assert set(stored) == {"optimizer", "d_optimizer", "g_optimizer"}
        assert stored["optimizer"].iterations == 0 and stored["optimizer"].class_name == "RMSprop"
        assert stored["d_optimizer"].iterations == stored["g_optimizer"].iterations == 3
        assert stored["d_optimizer"].class_name == "Adam" and abs(stored["d_optimizer"].learning_rate - 2e-4) < 1e-9
        assert [o.attribute for o in spec.held_optimizers()] == ["d_optimizer", "g_optimizer"]
        assert not any(layer.qualname.startswith(("d_optimizer", "g_optimizer")) for layer in spec.layers)
