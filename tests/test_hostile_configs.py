"""Every place a config can name or carry code: one test per shape of tests/hostile_corpus.py.

The corpus is checked by one kerascheck process per mode, to keep the suite fast: all
files with --static (the spec tier judges these shapes), and the CVE gadget files, the
h5 ones and the issue's two originals with all tiers, to show Keras never loads them.
Each shape must be an unsafe-code error naming its CVE, and its marker must not exist.
"""
import os

import keras
import pytest
from keras import layers

from helpers import ROOT, json_report, kerascheck
from hostile_corpus import NAMES, build_corpus

TIME_CEILING_S = 240


def _run(paths, *flags, env=None):
    # subprocess.run reads the (large) JSON while the process runs; run_measured polls and would fill the pipe.
    proc = kerascheck("--format", "json", "--no-html", *flags, *paths, env=env, timeout=TIME_CEILING_S)
    assert "Traceback" not in proc.stdout + proc.stderr, proc.stderr
    return proc, {os.path.basename(m["path"]): m for m in json_report(proc.stdout)["models"]}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    folder = tmp_path_factory.mktemp("hostile")
    cases = {h.name: h for h in build_corpus(str(folder))}
    static_proc, static = _run([h.path for h in cases.values()], "--static")
    loaded = [h for h in cases.values() if h.all_tiers or h.refusal]
    full_proc, full = _run([h.path for h in loaded], env={"PYTHONPATH": str(folder / "planted")})
    return {"cases": cases, "static": static, "full": full, "full_exit": full_proc.returncode,
            "full_stderr": full_proc.stderr, "static_exit": static_proc.returncode}


def _errors(model):
    return [f for f in model["findings"] if f["rule"] == "unsafe-code" and f["severity"] == "error"]


def test_corpus_names_are_the_shapes_built(corpus):
    assert sorted(corpus["cases"]) == sorted(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_shape_is_an_unsafe_code_error_and_never_runs(corpus, name):
    case = corpus["cases"][name]
    model = corpus["static"][name]
    assert model["errors"] == []
    if case.refusal:  # the user's own package, as far as a file can tell: refused below, with all tiers
        assert _errors(model) == []
    else:
        errors = _errors(model)
        assert errors, model["findings"]
        if case.cve:
            assert case.cve in {f["evidence"].get("cve") for f in errors}
            assert any(case.cve in f["message"] for f in errors)
    if case.all_tiers or case.refusal:
        full = corpus["full"][name]
        if case.refusal:
            assert any(case.refusal in e["message"] for e in full["errors"]), full["errors"]
            assert case.refusal in corpus["full_stderr"]
        else:
            assert full["errors"] == [] and case.cve in {f["evidence"].get("cve") for f in _errors(full)}
            assert any("kerascheck will not load it" in s["reason"] for s in full["skipped"]), full["skipped"]
    if case.marker:
        assert not os.path.exists(case.marker), "the payload ran"


def test_lambda_of_a_keras_function_with_bytecode_elsewhere_is_not_a_missing_custom_function(corpus):
    """The issue's second file: no exit 2 "needs the custom function 'relu'", the bytecode is the finding."""
    model = corpus["full"]["lambda_output_shape.keras"]
    assert model["errors"] == []
    (error,) = _errors(model)
    assert error["layer"] == "payload" and "in its output_shape" in error["message"]
    assert error["evidence"]["field"] == "output_shape"


def test_keras_gadget_in_class_form_names_the_cve_where_the_layer_was(corpus):
    """The issue's first file: the class form of CVE-2025-9906 was an info 'needs the custom class'."""
    model = corpus["static"]["enable_unsafe_class.keras"]
    switch = [f for f in model["findings"] if f["layer"] == "switch"]
    assert [f["severity"] for f in switch] == ["error"]
    assert "keras.config.enable_unsafe_deserialization as its class" in switch[0]["message"]
    assert not any("custom class" in f["message"] for f in model["findings"])


def test_builtin_lambda_is_reported_for_what_it_is(tmp_path):
    """A real Lambda(keras.activations.relu): Keras writes it as builtins.relu; it loads, it is no error."""
    inp = keras.Input((4,))
    m = keras.Model(inp, layers.Dense(1)(layers.Lambda(keras.activations.relu, name="act")(layers.Dense(4)(inp))))
    m.compile(optimizer="adam", loss="mse")
    path = str(tmp_path / "builtin_lambda.keras")
    m.save(path)
    proc, models = _run([path], "--select", "unsafe-code,no-lr-schedule")
    assert proc.returncode in (0, 1) and "custom function" not in proc.stderr, proc.stderr
    model = models["builtin_lambda.keras"]
    assert model["errors"] == [] and _errors(model) == []
    (info,) = [f for f in model["findings"] if f["rule"] == "unsafe-code"]
    assert info["severity"] == "info" and info["layer"] == "act"
    assert "calls 'relu', one of Keras's built-in functions" in info["message"]


@keras.saving.register_keras_serializable(package="kcowncode")
class OwnScale(layers.Layer):
    def call(self, x):
        return x * 2.0


@keras.saving.register_keras_serializable(package="kcowncode")
def own_activation(x):
    return keras.ops.tanh(x)


def test_keras_own_objects_and_the_users_registered_code_are_not_errors(tmp_path):
    """False positives: every kind of Keras object a config holds, and the user's registered classes."""
    inp = keras.Input((8, 8, 3))
    x = layers.Conv2D(4, 3, kernel_initializer=keras.initializers.HeNormal(),
                      kernel_regularizer=keras.regularizers.L2(1e-3), kernel_constraint=keras.constraints.MaxNorm(2),
                      activation=keras.activations.relu)(inp)
    x = layers.BatchNormalization()(layers.Dropout(0.1, seed=1)(x))
    x = layers.Dense(4, activation=own_activation)(layers.Flatten()(x))
    x = layers.Lambda(keras.activations.gelu)(OwnScale(name="own")(x))
    x = layers.Bidirectional(layers.LSTM(3, return_sequences=True))(layers.Reshape((4, 1))(x))
    x = layers.GRU(2)(layers.TimeDistributed(layers.Dense(2))(x))
    m = keras.Model(inp, layers.Activation("softmax")(x))
    m.compile(optimizer=keras.optimizers.AdamW(keras.optimizers.schedules.CosineDecay(1e-3, 100), global_clipnorm=1.0),
              loss=keras.losses.CategoricalCrossentropy(),
              metrics=["accuracy", keras.metrics.AUC(), keras.metrics.mean_absolute_error])
    paths = [str(tmp_path / "zoo.keras"), str(tmp_path / "zoo.h5")]
    for path in paths:
        m.save(path)
    examples = os.path.join(ROOT, "examples")
    legacy = os.path.join(ROOT, "tests", "fixtures", "legacy")
    _, models = _run(paths + [examples, legacy], "--static", "--select", "unsafe-code")
    assert len(models) >= 10
    lam = models.pop("lambda_layer.keras")  # the example that does carry bytecode
    assert [(f["layer"], f["evidence"]["cve"]) for f in _errors(lam)] == [("double", "CVE-2024-3660")]
    for name, model in models.items():
        assert model["errors"] == [] and _errors(model) == [], (name, model["findings"])
        assert not [f for f in model["findings"] if f["severity"] == "warning"], (name, model["findings"])
    own = [f for f in models["zoo.keras"]["findings"] if f["layer"] == "own"]
    assert [f["severity"] for f in own] == ["info"] and "kcowncode>OwnScale" in own[0]["message"]


def test_keras_function_list_is_in_step_with_keras():
    from kerascheck.rules.unsafe_code import KERAS_FUNCTIONS

    modules = ("activations", "constraints", "initializers", "losses", "metrics", "optimizers", "regularizers")
    installed = {n for m in modules for n in dir(getattr(keras, m))
                 if not n.startswith("_") and n[0].islower() and callable(getattr(getattr(keras, m), n))}
    assert KERAS_FUNCTIONS == installed
