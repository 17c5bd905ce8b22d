"""One diagnosis per root cause (issue 10): the healthy zoo stays clean, cascades fold under their
cause, per-layer floods are one finding, and nothing from TensorFlow reaches stderr."""
import json
import os

import keras
import numpy as np
import pytest
from keras import layers

import zoo
from helpers import TF_NOISE, json_report, kerascheck, probe_options
from kerascheck.engine import Report, all_rules, check_file, select_rules
from kerascheck.reports import render

LOUD = ("warning", "error")


@pytest.fixture(scope="module")
def zoo_dir(tmp_path_factory):
    directory = tmp_path_factory.mktemp("zoo")
    return {name: zoo.save(name, str(directory)) for name in zoo.BUILDERS}


def _loud(result):
    return [(f.rule, f.layer, f.severity, f.message) for f in result.findings if f.severity in LOUD]


def _healthy(path, options):
    result = check_file(path, list(all_rules()), options=options)
    assert result.errors == [], result.errors
    assert _loud(result) == [], (options.data, _loud(result))
    assert result.unavailable == [], result.skipped  # every tier ran


@pytest.mark.parametrize("name", list(zoo.BUILDERS))
def test_healthy_zoo_has_no_warning_with_its_data(zoo_dir, name):
    path, data = zoo_dir[name]
    _healthy(path, probe_options(data=data, custom_objects=(zoo.__file__,) if name == "subclassed" else ()))


# On synthetic data the suite keeps one model per kind of input kerascheck must draw (features, pixels
# after Rescaling, sequences, ids, two inputs, a subclass, dense outputs, a fine-tuning rate); the rest
# run in make test-slow.
SYNTHETIC_IN_SUITE = {"mlp_classifier", "cnn_rescaling", "lstm_clipped", "embeddings", "multi_input", "subclassed",
                      "segmenter", "token_tagger", "fine_tuned"}


@pytest.mark.parametrize("name", [n if n in SYNTHETIC_IN_SUITE else pytest.param(n, marks=pytest.mark.slow)
                                  for n in zoo.BUILDERS])
def test_healthy_zoo_has_no_warning_without_data(zoo_dir, name):
    path, _ = zoo_dir[name]
    _healthy(path, probe_options(custom_objects=(zoo.__file__,)))


def test_the_zoo_is_large_and_varied_enough():
    assert len(zoo.BUILDERS) >= 12


# ---------------------------------------------------------------- cascades


def _mlp(name="mlp", **dense):
    keras.utils.set_random_seed(0)
    m = keras.Sequential([keras.Input((8,)), layers.Dense(16, activation="relu", name="hidden", **dense),
                          layers.Dense(16, activation="relu", name="hidden_2"),
                          layers.Dense(3, activation="softmax", name="probs")], name=name)
    m.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy")
    return m


def _data(tmp_path, x=None, name="data.npz"):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 8)).astype("float32") if x is None else x
    path = str(tmp_path / name)
    np.savez(path, x=x, y=rng.integers(0, 3, len(x)))
    return path


def _check(path, **options):
    result = check_file(path, list(all_rules()), options=probe_options(**options))
    assert result.errors == [], result.errors
    return result


def _consequences(finding):
    return {c["rule"] for c in finding.evidence.get("consequences", [])}


def _only_cause(result, rule, folded=()):
    """The first finding is the cause; no other warning/error is one of its consequences."""
    loud = [f for f in result.findings if f.severity in LOUD]
    assert loud and loud[0].rule == rule, [(f.rule, f.message) for f in loud]
    cause = loud[0]
    assert set(folded) <= _consequences(cause), (cause.evidence.get("consequences"), [f.rule for f in loud])
    for f in loud[1:]:
        assert f.rule not in _consequences(cause), f"{f.rule} is reported beside its cause {cause.rule}"
    return cause


def test_nan_in_the_data_is_the_cause(tmp_path):
    path = str(tmp_path / "m.keras")
    _mlp().save(path)
    x = np.random.default_rng(1).normal(size=(64, 8)).astype("float32")
    x[3, 2] = np.nan
    result = _check(path, data=_data(tmp_path, x))
    cause = _only_cause(result, "nonfinite-data", folded=("nan-in-training",))
    assert "1 NaN" in cause.message and "'x'" in cause.message


def test_nan_weights_are_the_cause_and_one_finding(tmp_path):
    m = _mlp()
    for layer in m.layers:
        w = layer.get_weights()
        w[0][0, 0] = np.nan
        w[1][0] = np.inf
        layer.set_weights(w)
    path = str(tmp_path / "m.keras")
    m.save(path)
    result = _check(path)
    cause = _only_cause(result, "unhealthy-weights", folded=("nan-in-training",))
    assert cause.message.startswith("6 weight tensors hold NaN/Inf values")
    assert [f.rule for f in result.findings].count("unhealthy-weights") == 1
    assert "batch-dependence" not in {f.rule for f in result.findings}


def test_an_exploding_init_is_an_init_problem_not_a_rate_problem(tmp_path):
    keras.utils.set_random_seed(0)
    init = keras.initializers.RandomNormal(stddev=8.0)
    m = keras.Sequential([keras.Input((8,))] + [layers.Dense(32, activation="relu", kernel_initializer=init,
                                                             name=f"d{i}") for i in range(6)]
                         + [layers.Dense(4, activation="softmax", name="probs")])
    m.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy")
    path = str(tmp_path / "m.keras")
    m.save(path)
    result = _check(path)
    cause = _only_cause(result, "unhealthy-weights")
    assert cause.evidence["kind"] == "scale-high" and len(cause.evidence["layers"]) >= 5
    nan = [c for c in cause.evidence.get("consequences", []) if c["rule"] == "nan-in-training"]
    for c in nan:  # when it diverges, it is never advice to lower the rate
        assert "learning rate is not the cause" in c["message"] and "Lower the learning rate" not in c["message"]


def test_a_dead_layer_explains_the_gradients_before_it(tmp_path):
    m = _mlp(bias_initializer=keras.initializers.Constant(-50.0))
    path = str(tmp_path / "m.keras")
    m.save(path)
    result = _check(path, data=_data(tmp_path))
    rules = [f.rule for f in result.findings if f.severity in LOUD]
    assert rules[0] in ("unhealthy-weights", "dead-units"), rules
    assert "vanishing-gradients" not in rules[1:] or "vanishing-gradients" not in _consequences(result.findings[0])


def test_a_frozen_model_is_one_finding(tmp_path):
    m = _mlp()
    m.trainable = False
    path = str(tmp_path / "m.keras")
    m.save(path)
    result = _check(path, data=_data(tmp_path))
    loud = [f for f in result.findings if f.severity in LOUD]
    assert [f.rule for f in loud] == ["cannot-overfit"], [(f.rule, f.message) for f in loud]
    assert "no trainable weights" in loud[0].message


# ---------------------------------------------------------------- groups


def test_a_deep_sigmoid_net_gets_one_finding_for_its_layers_that_barely_learn(tmp_path):
    keras.utils.set_random_seed(0)
    m = keras.Sequential([keras.Input((16,))] + [layers.Dense(32, activation="sigmoid", name=f"dense_{i}")
                                                 for i in range(8)] + [layers.Dense(1, name="out")])
    m.compile(optimizer=keras.optimizers.SGD(1e-3), loss="mse")
    path = str(tmp_path / "m.keras")
    m.save(path)
    result = _check(path)
    # The low updates are the vanishing gradients measured a second time (update = rate x gradient):
    # one finding, the other folded under it as a direct consequence.
    vanishing = [f for f in result.findings if f.rule == "vanishing-gradients"]
    assert len(vanishing) == 1 and vanishing[0].layer == "dense_0", [(f.rule, f.message) for f in result.findings]
    barely = [c for c in vanishing[0].evidence["consequences"] if c["rule"] == "unhealthy-weights"]
    assert len(barely) == 1 and "barely learn" in barely[0]["message"] and "'dense_0'" in barely[0]["message"]
    assert barely[0]["proof"]["how"] == "direct" and "update is the rate times the gradient" in barely[0]["proof"]["why"]
    assert not [f for f in result.findings if f.rule == "unhealthy-weights"]


def test_nan_in_five_tensors_is_one_finding(tmp_path):
    m = _mlp()
    weights = m.get_weights()
    for i in range(5):
        weights[i].flat[0] = np.nan
    m.set_weights(weights)
    path = str(tmp_path / "m.keras")
    m.save(path)
    result = check_file(path, [r for r in all_rules() if r.name == "unhealthy-weights"], static=True)
    nan = [f for f in result.findings if f.evidence.get("kind") == "nonfinite"]
    assert len(nan) == 1 and nan[0].message.startswith("5 weight tensors hold NaN/Inf values")
    assert len(nan[0].evidence["per_layer"]) == 5


# ---------------------------------------------------------------- reports


def test_cli_shows_the_cause_with_its_consequences_in_text_json_and_sarif(tmp_path):
    m = _mlp(kernel_initializer="zeros")
    path = str(tmp_path / "m.keras")
    m.save(path)
    fold = ("--select", "unhealthy-weights,vanishing-gradients,dead-units,cannot-overfit")
    text = kerascheck(path, "--no-html", *fold)
    assert "also seen, follows directly: KC" in text.stdout or "also seen, fixed with it: KC" in text.stdout
    assert text.stderr == "" or not any(noise in text.stderr for noise in TF_NOISE)
    # The machine formats render the report the text came from: one in-process check renders both.
    rules = select_rules(fold[1].split(","))
    report = Report(models=[check_file(path, rules, options=probe_options())], rules=rules)
    js = json_report(render(report, "json"))
    (finding,) = [f for f in js["models"][0]["findings"] if f["evidence"].get("consequences")]
    assert all(set(c) >= {"rule", "layer", "message", "proof"} for c in finding["evidence"]["consequences"])
    folded = {c["rule"] for c in finding["evidence"]["consequences"]}
    assert not folded & {f["rule"] for f in js["models"][0]["findings"]}
    sarif = json.loads(render(report, "sarif"))
    results = sarif["runs"][0]["results"]
    assert any("Also seen, as a consequence" in r["message"]["text"] for r in results)
    assert len(results) == len(js["models"][0]["findings"])
    assert os.path.exists(path)
