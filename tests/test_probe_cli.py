"""The probe tier from the command line: loading safely, user code, data, devices, determinism."""
import hashlib
import os
import re
import textwrap

import keras
import numpy as np
import pytest

from helpers import ROOT, import_file, json_report, kerascheck

EXAMPLES = os.path.join(ROOT, "examples")

USER_CODE = textwrap.dedent('''
    import keras


    @keras.saving.register_keras_serializable(package="kcuser")
    class Twice(keras.layers.Layer):
        def call(self, x):
            return x * 2.0
''')


@pytest.fixture()
def custom_model(tmp_path):
    """A model using a custom layer whose code lives in a file of the user's, not in the archive."""
    code = tmp_path / "kc_user_layers.py"
    code.write_text(USER_CODE)
    module = import_file(code, "kc_user_layers")
    inp = keras.Input((4,))
    x = module.Twice(name="twice")(keras.layers.Dense(8, activation="relu")(inp))
    model = keras.Model(inp, keras.layers.Dense(1)(x))
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="mse")
    path = tmp_path / "custom.keras"
    model.save(path)
    return str(path), str(code)


def test_missing_custom_class_is_exit_2_with_the_flag_to_use_and_static_findings_still_come(custom_model):
    path, _ = custom_model
    proc = kerascheck("--format", "json", path)
    assert proc.returncode == 2
    (line,) = proc.stderr.strip().splitlines()
    assert "needs the custom class 'Twice' to load (the file says it comes from module 'kc_user_layers')" in line
    assert "pass its code with --custom-objects" in line and "Traceback" not in proc.stderr
    (model,) = json_report(proc.stdout)["models"]
    assert {f["rule"] for f in model["findings"]} >= {"no-lr-schedule", "unsafe-code"}
    skipped = {s["rule"]: s["reason"] for s in model["skipped"]}
    needs_keras = {"nan-in-training", "cannot-overfit", "batch-dependence", "exploding-gradients",
                   "vanishing-gradients", "dead-units", "unscaled-targets", "unstable-softmax", "risky-division"}
    assert {r for r, why in skipped.items() if "could not be loaded" in why} == needs_keras
    assert {r for r in skipped if r not in needs_keras} == {"label-mismatch", "nonfinite-data"}


def test_custom_objects_file_lets_the_probes_run(custom_model):
    path, code = custom_model
    proc = kerascheck("--format", "json", "--custom-objects", code, "--select", "KC6,KC1", path)
    assert proc.returncode in (0, 1), proc.stderr
    (model,) = json_report(proc.stdout)["models"]
    assert model["errors"] == [] and model["skipped"] == []


def test_unsafe_warns_and_loads_lambda_models():
    lam = os.path.join(EXAMPLES, "lambda_layer.keras")
    proc = kerascheck("--unsafe", "--format", "json", "--select", "KC6", lam)
    assert proc.stderr.startswith("kerascheck: warning: --unsafe lets code inside the model files run")
    (model,) = json_report(proc.stdout)["models"]
    assert model["skipped"] == [] and model["errors"] == []


def test_gpu_without_a_gpu_is_a_usage_error():
    proc = kerascheck("--device", "gpu", os.path.join(EXAMPLES, "healthy.keras"))
    assert proc.returncode == 2
    assert proc.stderr.strip() == ("kerascheck: error: --device gpu was given but TensorFlow sees no GPU "
                                   "(use --device auto or cpu)")


def test_data_with_the_wrong_shape_is_one_line(tmp_path):
    np.savez(tmp_path / "d.npz", x=np.zeros((20, 5), "float32"), y=np.zeros((20,), "int64"))
    proc = kerascheck("--data", str(tmp_path / "d.npz"), "--select", "KC6",
                      os.path.join(EXAMPLES, "double_softmax.keras"))
    assert proc.returncode == 2
    (line,) = proc.stderr.strip().splitlines()
    assert "expects shape (N, 16) but the file has (20, 5)" in line


def test_probes_are_deterministic_and_never_touch_the_file(tmp_path):
    src = os.path.join(EXAMPLES, "bad_init.keras")
    path = tmp_path / "copy.keras"
    path.write_bytes(open(src, "rb").read())
    before = hashlib.sha256(path.read_bytes()).hexdigest()
    listing = sorted(os.listdir(tmp_path))

    def findings():
        proc = kerascheck("--format", "json", "--select", "KC1,KC6", "--seed", "3", str(path))
        out = json_report(proc.stdout)["models"][0]["findings"]
        for f in out:
            f["evidence"].pop("probe_seconds", None)
        return out

    first, second = findings(), findings()
    assert first == second and first
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before
    assert sorted(os.listdir(tmp_path)) == listing


DATA_MODULE = textwrap.dedent('''
    import numpy as np
    import tensorflow as tf


    def arrays():
        rng = np.random.default_rng(0)
        return rng.standard_normal((40, 16)).astype("float32"), rng.integers(0, 4, 40)


    def dataset():
        x, y = arrays()
        return tf.data.Dataset.from_tensor_slices((x, y)).batch(8)


    def wrong_dtype():
        return np.array([["a"] * 16] * 20), np.zeros(20)
''')


@pytest.mark.parametrize("function", ["arrays", "dataset"])
def test_data_from_a_function_returning_arrays_or_a_dataset(tmp_path, function):
    (tmp_path / "kc_user_data.py").write_text(DATA_MODULE)
    proc = kerascheck("--select", "KC6", "--data", f"kc_user_data:{function}",
                      os.path.join(EXAMPLES, "double_softmax.keras"), env={"PYTHONPATH": str(tmp_path)})
    assert proc.returncode in (0, 1), proc.stderr
    assert f"over 40 examples from kc_user_data:{function}" in " ".join(proc.stdout.split())


def test_data_of_the_wrong_type_is_one_line(tmp_path):
    (tmp_path / "kc_user_data.py").write_text(DATA_MODULE)
    proc = kerascheck("--select", "KC6", "--data", "kc_user_data:wrong_dtype",
                      os.path.join(EXAMPLES, "double_softmax.keras"), env={"PYTHONPATH": str(tmp_path)})
    assert proc.returncode == 2
    (line,) = proc.stderr.strip().splitlines()
    assert "input 'input_layer' expects float32 values but the data holds <U1" in line


def test_a_tight_budget_is_reported_not_hidden(tmp_path):
    model = keras.Sequential([keras.Input((1024,))] + [keras.layers.Dense(1024, activation="relu")
                                                       for _ in range(4)] + [keras.layers.Dense(1)])
    model.compile(optimizer="adam", loss="mse")
    model.save(tmp_path / "big.keras")
    proc = kerascheck("--budget", "1", "--select", "KC6,KC1", str(tmp_path / "big.keras"), "--format", "json")
    model = json_report(proc.stdout)["models"][0]
    # A probe the budget stopped is never judged: its rules are skipped with the budget that lets it finish.
    skipped = {s["rule"]: s["reason"] for s in model["skipped"]}
    for rule in ("nan-in-training", "exploding-gradients", "vanishing-gradients", "cannot-overfit"):
        assert re.match(r"the time budget \(--budget 1\) ran out (after \d+ of \d+ steps of|before) .*"
                        r"--budget \d+ lets it finish", skipped[rule]), skipped
    assert not [f for f in model["findings"] if f["rule"] in skipped]
    assert "train" in model["probes"]["cut_by_budget"]
    run = model["probes"]["runs"][0]
    assert run["probe"] == "train" and run["cut_by_budget"] and run["steps_done"] < run["steps_planned"] == 100
    proc = kerascheck("--budget", "1", "--select", "KC6,KC1", str(tmp_path / "big.keras"), "--no-html")
    assert "the time budget cut: the time budget (--budget 1) ran out" in " ".join(proc.stdout.split())


def test_uncompiled_model_says_which_defaults_the_probes_used(tmp_path):
    model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(16, activation="relu"),
                              keras.layers.Dense(3, activation="softmax")])
    model.save(tmp_path / "bare.keras")
    proc = kerascheck("--select", "KC6", str(tmp_path / "bare.keras"))
    text = " ".join(proc.stdout.split())
    assert ("assumed loss sparse_categorical_crossentropy (the file has no saved loss), optimizer "
            "Adam(learning_rate=0.001) (the file has no saved optimizer)") in text


def test_several_inputs_take_x_by_input_name(tmp_path):
    a, b = keras.Input((4,), name="a"), keras.Input((3,), name="b")
    x = keras.layers.Concatenate()([keras.layers.Dense(32, activation="relu")(a),
                                    keras.layers.Dense(32, activation="relu")(b)])
    model = keras.Model([a, b], keras.layers.Dense(1)(x))
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="mse")
    model.save(tmp_path / "two.keras")
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "two.npz", x_a=rng.standard_normal((30, 4)), x_b=rng.standard_normal((30, 3)),
             y=rng.standard_normal((30, 1)))
    proc = kerascheck("--select", "KC6", "--data", str(tmp_path / "two.npz"), str(tmp_path / "two.keras"))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"over 30 examples from {tmp_path / 'two.npz'}" in " ".join(proc.stdout.split())
    np.savez(tmp_path / "wrong.npz", x=rng.standard_normal((30, 4)))
    proc = kerascheck("--select", "KC6", "--data", str(tmp_path / "wrong.npz"), str(tmp_path / "two.keras"))
    assert proc.returncode == 2
    assert "the model has 2 inputs, so the file needs arrays x_a, x_b; missing x_a" in proc.stderr
