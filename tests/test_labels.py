"""label-mismatch from the command line (text, JSON, SARIF), with --static, and without labels."""
import json

import keras
import numpy as np
import pytest
from keras import layers

from helpers import json_report, kerascheck, probe_options
from kerascheck.engine import check_file, select_rules

N = 200


def _tags_model(path, activation="softmax", loss="binary_crossentropy"):
    inp = keras.Input((6,))
    x = layers.Dense(8, activation="relu")(inp)
    m = keras.Model(inp, layers.Dense(6, activation=activation, name="tags")(x))
    m.compile(optimizer="adam", loss=loss)
    m.save(path)
    return path


def _multi_hot(path):
    """120 rows with two labels, 80 with one: a multi-label task."""
    y = np.zeros((N, 6), "float32")
    y[np.arange(N), np.arange(N) % 6] = 1
    y[np.arange(120), (np.arange(120) + 1) % 6] = 1
    np.savez(path, x=np.random.default_rng(0).normal(size=(N, 6)).astype("float32"), y=y)
    return path


@pytest.fixture(scope="module")
def softmax_on_multi_hot(tmp_path_factory):
    d = tmp_path_factory.mktemp("labels")
    return _tags_model(str(d / "tags.keras")), _multi_hot(str(d / "tags.npz"))


SELECT = ("--select", "label-mismatch,softmax-loss-mismatch")


def test_text_names_the_layer_the_numbers_and_the_fix_and_folds_the_config_finding(softmax_on_multi_hot):
    model, data = softmax_on_multi_hot
    proc = kerascheck(model, "--data", data, *SELECT, "--no-html")
    assert proc.returncode == 1, proc.stderr
    out = " ".join(proc.stdout.split())  # the text report wraps lines
    assert "error KC204 label-mismatch layer tags" in out
    assert ("Output 'tags' applies softmax over 6 units, whose values sum to 1, but 120 of 200 label rows (60%) in "
            "'y' do not hold exactly one 1 (row sums 1 to 2)") in out
    assert ("fix: Score each label independently: keras.layers.Dense(6, activation='sigmoid', name='tags') and "
            "model.compile(optimizer=..., loss='binary_crossentropy').") in out
    # softmax-loss-mismatch saw the same pair from the config: one cause, reported once.
    assert "also seen, follows directly: KC202 softmax-loss-mismatch" in out
    assert "Found 1 problem (1 error" in out


def test_json_carries_the_evidence_and_the_folded_config_finding(softmax_on_multi_hot):
    model, data = softmax_on_multi_hot
    proc = kerascheck(model, "--data", data, *SELECT, "--format", "json")
    assert proc.returncode == 1, proc.stderr
    (result,) = json_report(proc.stdout)["models"]
    (finding,) = result["findings"]
    assert (finding["rule"], finding["code"], finding["severity"], finding["layer"]) == \
        ("label-mismatch", "KC204", "error", "tags")
    ev = finding["evidence"]
    assert ev["kind"] == "multihot-softmax" and ev["unreachable"] == 120 and ev["unreachable_share"] == 0.6
    assert ev["row_sums"] == [1, 2] and ev["label_shape"] == [200, 6] and ev["values"] == [0, 1]
    assert (ev["activation"], ev["units"], ev["loss"]) == ("softmax", 6, "binary_crossentropy")
    assert [(c["rule"], c["layer"]) for c in ev["consequences"]] == [("softmax-loss-mismatch", "tags")]
    assert result["skipped"] == [] and result["errors"] == []


def test_sarif_has_the_result_with_its_rule_and_numbers(softmax_on_multi_hot):
    model, data = softmax_on_multi_hot
    proc = kerascheck(model, "--data", data, *SELECT, "--format", "sarif")
    assert proc.returncode == 1, proc.stderr
    (run,) = json.loads(proc.stdout)["runs"]
    (result,) = run["results"]
    assert result["ruleId"] == "KC204" and result["level"] == "error"
    assert run["tool"]["driver"]["rules"][result["ruleIndex"]]["name"] == "label-mismatch"
    assert "120 of 200 label rows (60%)" in result["message"]["text"]
    assert "Also seen, as a consequence: KC202 softmax-loss-mismatch" in result["message"]["text"]
    assert result["properties"]["evidence"]["unreachable"] == 120
    assert result["locations"][0]["logicalLocations"][0]["fullyQualifiedName"] == "tags"


def test_the_fix_applied_is_clean(tmp_path):
    model = _tags_model(str(tmp_path / "fixed.keras"), activation="sigmoid")
    proc = kerascheck(model, "--data", _multi_hot(str(tmp_path / "d.npz")), *SELECT, "--format", "json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert json_report(proc.stdout)["models"][0]["findings"] == []


def test_explain_prints_the_documentation():
    proc = kerascheck("--explain", "label-mismatch")
    assert proc.returncode == 0
    assert "KC204" in proc.stdout and "## Why is this bad?" in proc.stdout and "binary_crossentropy" in proc.stdout


# ---------------------------------------------------------------- in process


def _save(model, tmp_path, name="m.keras"):
    path = str(tmp_path / name)
    model.save(path)
    return path


def _npz(tmp_path, **arrays):
    path = str(tmp_path / "d.npz")
    np.savez(path, **arrays)
    return path


def _run(path, data, static=False):
    return check_file(path, select_rules(["label-mismatch"]), static=static, options=probe_options(data=data))


def test_without_data_or_without_labels_it_says_what_it_needs(tmp_path):
    path = _tags_model(str(tmp_path / "m.keras"))
    (skip,) = _run(path, None).skipped
    assert skip["rule"] == "label-mismatch" and skip["reason"].startswith("needs --data")
    (skip,) = _run(path, _npz(tmp_path, x=np.zeros((20, 6), "float32"))).skipped
    assert skip["reason"].startswith("needs --data with labels")


def test_static_judges_keras_outputs_from_the_config(tmp_path):
    inp = keras.Input((4,))
    m = keras.Model(inp, layers.Dense(1, activation="tanh", name="out")(inp))
    m.compile(optimizer="adam", loss="mse")
    data = _npz(tmp_path, x=np.zeros((50, 4), "float32"), y=np.linspace(7, 12, 50).astype("float32"))
    result = _run(_save(m, tmp_path), data, static=True)
    (finding,) = result.findings
    assert finding.layer == "out" and finding.severity == "error"
    assert "50 of 50 targets (100%)" in finding.message and finding.evidence["unreachable"] == 50
    assert "model" not in result.tiers  # nothing was loaded


@keras.saving.register_keras_serializable("kc_test_labels")
class Squash(layers.Layer):
    """A custom output layer: its activation is its code, which the config does not show."""

    def call(self, x):
        return keras.ops.sigmoid(x)


def test_custom_output_is_judged_only_by_what_running_it_measured(tmp_path):
    inp = keras.Input((4,))
    m = keras.Model(inp, Squash(name="squash")(layers.Dense(1)(inp)))
    m.compile(optimizer="adam", loss="mse")
    path = _save(m, tmp_path)
    data = _npz(tmp_path, x=np.random.default_rng(0).normal(size=(51, 4)).astype("float32"),
                y=np.linspace(-60, 60, 51).astype("float32"))
    static = _run(path, data, static=True)
    assert static.findings == [] and static.skipped == []  # no guess about code it did not run
    (finding,) = _run(path, data).findings
    assert finding.layer == "squash" and finding.severity == "warning"
    assert "(custom; it gave independent probabilities when kerascheck ran the model) only reaches [0, 1]" \
        in finding.message
    assert finding.evidence["measured_output"] == "independent probabilities"
    assert finding.evidence["unreachable"] == 50  # of linspace(-60, 60, 51), only 0 lies in [0, 1]


def test_several_outputs_take_labels_by_output_name_whatever_the_order(tmp_path):
    inp = keras.Input((4,))
    x = layers.Dense(8, activation="relu")(inp)
    # Keras orders dict outputs by key, the file by layer: labels must still reach the right output.
    m = keras.Model(inp, {"z_angle": layers.Dense(1, activation="tanh", name="z_angle")(x),
                          "a_kind": layers.Dense(3, activation="softmax", name="a_kind")(x)})
    m.compile(optimizer="adam", loss={"z_angle": "mse", "a_kind": "sparse_categorical_crossentropy"})
    rng = np.random.default_rng(0)
    data = _npz(tmp_path, x=rng.normal(size=(60, 4)).astype("float32"), y_a_kind=rng.integers(0, 3, 60),
                y_z_angle=rng.uniform(-0.9, 0.9, (60, 1)).astype("float32"))
    assert _run(_save(m, tmp_path), data).findings == []
    data = _npz(tmp_path, x=rng.normal(size=(60, 4)).astype("float32"), y_a_kind=rng.integers(0, 3, 60),
                y_z_angle=rng.uniform(2, 3, (60, 1)).astype("float32"))
    (finding,) = _run(_save(m, tmp_path, "m2.keras"), data).findings
    assert finding.layer == "z_angle" and finding.evidence["labels"] == "y_z_angle"
    assert "60 of 60 targets (100%)" in finding.message
