"""Causes proven by intervention, fixes verified on a copy, the repaired model written out (issue 22).

Each model has the bug a user reported in its plainest form; the assertions are what a user relies
on: which finding is the cause, the proof attached to each consequence, the numbers before and after
the fix, and a written copy that re-checks clean of what was repaired.
"""
import hashlib
import os

import keras
import numpy as np
import pytest
from keras import layers

from helpers import json_report, kerascheck, probe_options
from kerascheck.engine import Report, all_rules, check_file
from kerascheck.reports import render


def _save(model, data, tmp_path, name):
    path, npz = str(tmp_path / f"{name}.keras"), str(tmp_path / f"{name}.npz")
    model.save(path)
    np.savez(npz, **data)
    return path, npz


def _check(path, data):
    return check_file(path, list(all_rules()), options=probe_options(data=data))


def _heart_like(n=300, seed=0):
    """Raw clinical columns (age, resting blood pressure, cholesterol, heart rate) beside 0/1 columns."""
    rng = np.random.default_rng(seed)
    x = np.stack([rng.integers(29, 78, n), rng.integers(0, 2, n), rng.integers(94, 201, n),
                  rng.integers(126, 565, n), rng.integers(0, 2, n), rng.integers(71, 203, n),
                  rng.integers(0, 2, n)], axis=1).astype("float32")
    return x, rng.integers(0, 2, (n, 1)).astype("float32")


def test_raw_inputs_are_proven_to_cause_the_exploding_start_by_standardising_them(tmp_path):
    keras.utils.set_random_seed(0)
    x, y = _heart_like()
    inp = keras.Input((7,))
    out = layers.Dense(1, activation="sigmoid", name="out")(layers.Dense(32, activation="relu", name="hidden")(inp))
    model = keras.Model(inp, out)
    model.compile("adam", "binary_crossentropy")
    path, data = _save(model, {"x": x, "y": y}, tmp_path, "tabular")
    result = _check(path, data)
    (cause,) = [f for f in result.findings if f.rule == "unscaled-inputs"]
    assert cause.severity == "warning" and cause.layer == "hidden"
    folded = {c["rule"]: c for c in cause.evidence.get("consequences", ())}
    assert "exploding-gradients" in folded, [(f.rule, f.message) for f in result.findings]
    proof = folded["exploding-gradients"]["proof"]
    assert proof["how"] == "intervention" and "standardised" in proof["change"]
    (record,) = [r for r in cause.evidence["fix_verified"] if r["for"] == "exploding-gradients"]
    assert record["verdict"] == "verified"
    assert record["before"]["start_ratio"] >= 100 > record["after"]["start_ratio"]
    assert record["written_by_fix_out"] is False and "pipeline" in record["not_in_file"]
    assert not [f for f in result.findings if f.rule == "exploding-gradients"]


def test_a_fix_that_does_not_remove_the_symptom_leaves_the_two_findings_apart(tmp_path):
    """A softmax compiled with from_logits=True, before a one-unit ReLU bottleneck that no rate gets past:
    the mismatch's fix is tried, the overfit still fails, so the failure is not the mismatch's."""
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    inp = keras.Input((10,))
    hidden = layers.Dense(1, activation="relu", name="bottleneck")(inp)
    model = keras.Model(inp, layers.Dense(5, activation="softmax", name="out")(hidden))
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    path, data = _save(model, {"x": rng.normal(size=(200, 10)).astype("float32"), "y": rng.integers(0, 5, 200)},
                       tmp_path, "bottleneck")
    result = _check(path, data)
    (mismatch,) = [f for f in result.findings if f.rule == "softmax-loss-mismatch"]
    (overfit,) = [f for f in result.findings if f.rule == "cannot-overfit"]
    assert not mismatch.evidence.get("consequences")
    (record,) = mismatch.evidence["fix_verified"]
    assert record["verdict"] == "symptom stays" and record["change"] == "the loss built with from_logits=False"
    assert record["before"]["memorised"] is False and record["after"]["memorised"] is False
    assert overfit.evidence["accuracy"] < 1.0


def _linear_stack():
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((1,)), layers.Dense(32, name="d1"), layers.Dense(32, name="d2"),
                              layers.Dense(1, name="out")])
    model.compile("adam", "mse")
    x = np.random.default_rng(0).uniform(-2, 2, (200, 1)).astype("float32")
    return model, {"x": x, "y": (x ** 3 - x).astype("float32")}


def test_a_linear_stack_fitting_a_polynomial_gets_its_cause_found_by_intervention(tmp_path):
    path, data = _save(*_linear_stack(), tmp_path, "linear")
    result = _check(path, data)
    (overfit,) = [f for f in result.findings if f.rule == "cannot-overfit"]
    assert overfit.severity == "error"
    assert "none that kerascheck can see" not in overfit.message
    assert "Cause, verified by intervention: the hidden Dense layers 'd1', 'd2' have no activation" in overfit.message
    (record,) = overfit.evidence["fix_verified"]
    assert record["verdict"] == "verified" and record["before"]["memorised"] is False
    assert record["after"]["memorised"] is True


def test_fix_out_writes_a_copy_that_rechecks_clean_and_leaves_the_original_alone(tmp_path):
    path, data = _save(*_linear_stack(), tmp_path, "linear")
    before = hashlib.sha256(open(path, "rb").read()).hexdigest()
    out = tmp_path / "fixed"
    run = kerascheck(path, "--data", data, "--fix-out", str(out), "--format", "json")
    report = json_report(run.stdout)["models"][0]
    fixed = report["fixed"]
    assert fixed["path"] == str(out / "linear.fixed.keras") and os.path.exists(fixed["path"])
    assert any("relu in the hidden layers 'd1', 'd2'" in w for w in fixed["written"])
    notes = open(fixed["changes"]).read()
    assert "(cannot-overfit): did not memorise the 10 examples in 300 steps" in notes
    assert ") -> memorised the 10 examples at rate" in notes
    assert hashlib.sha256(open(path, "rb").read()).hexdigest() == before
    again = _check(fixed["path"], data)
    assert again.errors == []
    assert not [f for f in again.findings if f.rule == "cannot-overfit" and f.severity != "info"]
    # The copy was compiled as the file was, with the verified rate: nothing had to be assumed.
    assert again.probe.record()["training"]["assumed"] == []


def test_fix_out_says_what_it_cannot_write(tmp_path):
    """An output whose range cannot reach the targets: the linear output is written; standardising the
    targets is verified too, but the targets are the user's data."""
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    model = keras.Sequential([keras.Input((5,)), layers.Dense(32, activation="relu"),
                              layers.Dense(1, activation="sigmoid", name="out")])
    model.compile("adam", "mse")
    path, data = _save(model, {"x": rng.normal(size=(200, 5)).astype("float32"),
                               "y": rng.uniform(0, 100, (200, 1)).astype("float32")}, tmp_path, "range")
    out = tmp_path / "fixed"
    rules = list(all_rules())
    result = check_file(path, rules, options=probe_options(data=data, fix_out=str(out)))
    text = " ".join(render(Report(models=[result], rules=rules), "text").split())
    assert "repaired copy: " in text and "not written into the copy: " in text, text
    assert "the targets are data" in text
    assert result.fixed["written"] == ["a linear output in 'out' and the targets standardised"]
    again = _check(str(out / "range.fixed.keras"), data)
    assert not [f for f in again.findings if f.rule == "label-mismatch"]


@pytest.mark.parametrize("flag", ["--static"])
def test_fix_out_refuses_static(tmp_path, flag):
    path, _ = _save(*_linear_stack(), tmp_path, "linear")
    run = kerascheck(path, flag, "--fix-out", str(tmp_path / "x"))
    assert run.returncode == 2 and "--fix-out needs the probes" in run.stderr
    assert len(run.stderr.strip().splitlines()) == 1


def test_a_softmax_over_one_unit_explains_the_constant_predictions_directly_and_its_fix_is_still_tried(tmp_path):
    """No test is needed to fold the failed overfit (a one-unit softmax outputs 1.0 whatever it is fed),
    but the fix is still tried, so the finding shows it working and --fix-out can write it."""
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    model = keras.Sequential([keras.Input((10,)), layers.Dense(16, activation="relu"),
                              layers.Dense(1, activation="softmax", name="out")])
    model.compile("adam", "binary_crossentropy")
    path, data = _save(model, {"x": rng.normal(size=(200, 10)).astype("float32"),
                               "y": rng.integers(0, 2, (200, 1)).astype("float32")}, tmp_path, "one_unit")
    result = _check(path, data)
    (cause,) = [f for f in result.findings if f.evidence.get("consequences")]
    assert cause.layer == "out" and cause.severity == "error"
    folded = {c["rule"]: c["proof"] for c in cause.evidence["consequences"]}
    assert folded["cannot-overfit"]["how"] == "direct"
    assert "outputs exactly 1.0 whatever its input" in folded["cannot-overfit"]["why"]
    (record,) = cause.evidence["fix_verified"]
    assert record["verdict"] == "verified" and "sigmoid in 'out'" in record["change"]
    assert record["before"]["memorised"] is False and record["after"]["accuracy"] == 1.0
    assert not [f for f in result.findings if f.rule == "cannot-overfit"]
