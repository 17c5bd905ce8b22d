"""Real Keras code (issue 16): models in the style of the official Keras examples are probed, with
no tier skipped, no false alarm, and the right reasons when something cannot run."""
import os

import numpy as np
import pytest

import realcode
from helpers import kerascheck, probe_options
from kerascheck.engine import all_rules, check_file, select_rules
from kerascheck.formats import open_spec
from kerascheck.tiers.model import load_model
from kerascheck.tiers.probe.run import prepare

CODE = os.path.abspath(realcode.__file__)
LOUD = ("warning", "error")


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    directory = tmp_path_factory.mktemp("real")

    def get(name):
        path = str(directory / f"{name}.keras")
        if not os.path.exists(path):
            realcode.build_and_fit(name).save(path)
            if realcode.data_for(name)[0] is not None:
                realcode.save_npz(name, str(directory / f"{name}.npz"))
        data = str(directory / f"{name}.npz")
        return path, (data if os.path.exists(data) else None)
    return get


def _check(path, rules=None, **options):
    result = check_file(path, rules or list(all_rules()), options=probe_options(custom_objects=(CODE,), **options))
    assert result.errors == [], result.errors
    return result


def _loud(result):
    return [(f.rule, f.layer, f.message) for f in result.findings if f.severity in LOUD]


def _roles(path, data=None):
    options = probe_options(custom_objects=(CODE,), data=data)
    with open_spec(path) as spec:
        return prepare(load_model(spec, options), spec, options).roles


# 1. A layer that returns a list no longer throws every probe away.
def test_an_encoder_decoder_with_return_state_is_probed_output_by_output(saved):
    path, data = saved("seq2seq")
    for options in ({}, {"data": data}):
        result = _check(path, **options)
        assert result.unavailable == [] and result.probe.failures == {}, result.skipped
        assert result.probe.activations is not None and result.probe.overfit["ok"]
        assert _loud(result) == []


# 2. Token ids are categorical: valid ids when synthetic, not judged for scale with --data.
@pytest.mark.parametrize("name", ["transformer_classifier", "embedding_classifier"])
def test_token_inputs_are_ids_not_unscaled_features(saved, name):
    path, data = saved(name)
    (role,) = _roles(path)
    assert role.categorical and role.ids == realcode.VOCAB, role
    result = _check(path, data=data)
    assert "unscaled-inputs" not in {f.rule for f in result.findings}
    assert _loud(result) == []
    (stats,) = result.probe.input_stats
    assert stats["categorical"] is True


# 3 and 4. BatchNormalization and augmentation: memorised, and a decaying norm is no spike.
def test_a_cnn_with_batchnorm_and_augmentation_memorises_and_has_no_spikes(saved):
    path, data = saved("image_classifier")
    result = _check(path, data=data)
    assert result.probe.overfit["ok"], result.probe.overfit
    assert result.probe.overfit["augmentation_off"] == ["random_flip", "random_rotation", "dropout"]
    assert _loud(result) == []


def test_a_spike_is_a_jump_against_the_trend():
    from kerascheck.tiers.probe.gradients import spikes
    from kerascheck.tiers.probe.train import TrainRun

    decaying = TrainRun(1e-3, 100, losses=[1.0] * 100, global_norms=list(2.85 * np.exp(-np.arange(100) / 25)))
    assert spikes(decaying)[0] == 0.0
    jumpy = list(np.full(100, 0.5))
    for i in range(20, 100, 10):
        jumpy[i] = 60.0
    share, peak = spikes(TrainRun(1e-3, 100, losses=[1.0] * 100, global_norms=jumpy))
    assert share == pytest.approx(8 / 97) and peak == pytest.approx(120.0)


# 5. Models that train through their own train_step or add_loss are probed the way fit() trains them.
def test_a_ctc_model_with_an_add_loss_endpoint_and_two_inputs_is_probed(saved):
    path, data = saved("ctc_ocr")
    image, label = _roles(path)
    # Ids below the output's class count (the labels are cast to integers and one-hot encoded).
    assert not image.categorical and label.categorical and 2 <= label.ids <= realcode.CHARS + 2
    # Two inputs, no y. The training probe's rules only: the overfit experiment (three 300-step runs
    # on a model that does not memorise) adds nothing to what is tested here.
    result = _check(path, rules=select_rules(["nan-in-training", "exploding-gradients", "vanishing-gradients",
                                              "dead-units"]), data=data)
    assert result.probe.failures == {} and result.unavailable == []
    assert any("add_loss" in note for note in result.probe.notes)
    assert result.probe.train.steps_done == 100 and not result.probe.synthetic
    assert _loud(result) == []


# 6. The Log ops inside keras.ops.ctc_loss are the library's, not the user's.
def test_library_internals_are_not_the_users_code(saved):
    path, data = saved("ctc_loss_layer")
    result = _check(path, rules=select_rules(["risky-division", "unstable-softmax"]), data=data)
    assert result.findings == [], [f.message for f in result.findings]
    graph = result.graph
    assert graph.traced and graph.user_ops < 40 < graph.ops, (graph.user_ops, graph.ops)


# 7. A file Keras cannot load with the user's code is exit 2, with the real cause and the fix.
def test_a_custom_layer_without_kwargs_is_exit_2_with_the_cause(saved):
    path, _ = saved("no_kwargs_layer")
    proc = kerascheck(path, "--custom-objects", CODE, "--no-html")
    assert proc.returncode == 2
    (line,) = proc.stderr.strip().splitlines()
    assert "NoKwargs.__init__() got an unexpected keyword argument 'name'" in line
    assert "accept **kwargs" in line and "super().__init__(**kwargs)" in line
    assert "unsafe-code" in proc.stdout  # what the spec tier found is still reported


# 8. A failing probe drops only its rules, with the op's own message; --verbose shows the traceback.
def test_one_failing_probe_keeps_the_others_and_says_why(saved):
    path, _ = saved("fails_when_training")
    result = check_file(path, list(all_rules()), options=probe_options(custom_objects=(CODE,)))
    skipped = {s["rule"]: s["reason"] for s in result.skipped}
    for rule in ("nan-in-training", "cannot-overfit", "exploding-gradients"):
        assert "this layer refuses to train" in skipped[rule], skipped[rule]
        assert "Graph execution error" not in skipped[rule]
    assert "batch-dependence" not in skipped and "dead-units" not in skipped  # inference probes still ran
    assert result.probe.batch is not None and result.probe.activations is not None
    quiet = kerascheck(path, "--select", "nan-in-training", "--no-html", "--custom-objects", CODE)
    assert "Traceback" not in quiet.stderr
    loud = kerascheck(path, "--select", "nan-in-training", "--no-html", "--verbose", "--custom-objects", CODE)
    assert "Traceback" in loud.stderr and "refuses to train" in loud.stderr


# 9. The inventory of custom code names subclassed models and registered functions.
def test_the_inventory_lists_every_custom_class_and_function(saved):
    vae, _ = saved("vae")
    siamese, _ = saved("siamese")
    found = {}
    for path in (vae, siamese):
        result = check_file(path, select_rules(["unsafe-code"]), static=True)
        found[path] = [f.message for f in result.findings if f.severity == "info"]
    assert any("custom class 'VAE'" in m and "the model itself" in m for m in found[vae])
    assert any("custom class 'Sampling'" in m for m in found[vae])
    assert any("custom function 'contrastive_loss' (registered as 'realcode>contrastive_loss') at "
               "compile_config.loss" in m for m in found[siamese])
    assert any("custom class 'EuclideanDistance'" in m for m in found[siamese])


# 10. Units that cannot vary because their input does not: the cause is upstream.
def test_dead_units_behind_pooling_over_padding_name_the_cause(saved):
    path, data = saved("padded_pooling")
    result = _check(path, rules=select_rules(["dead-units"]), data=data)
    (finding,) = result.findings
    assert finding.layer == "features" and "hardly varies from one example to the next" in finding.message
    assert "mask the padding" in finding.fix and finding.evidence["input_variation"] < 0.05
