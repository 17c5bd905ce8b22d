"""kerascheck.check(): same rules and findings as the CLI, on a model in memory or a path."""
import os

import keras
import numpy as np
from keras import layers

import kerascheck
from helpers import ROOT, json_report, kerascheck as run_cli


def _softmax_one_unit():
    inp = keras.Input((8,), name="features")
    x = layers.Dense(16, activation="relu", name="hidden")(inp)
    model = keras.Model(inp, layers.Dense(1, activation="softmax", name="yes")(x), name="one_unit")
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="binary_crossentropy")
    return model


def test_in_memory_model_gives_the_findings_the_cli_gives_for_its_file(tmp_path):
    model = _softmax_one_unit()
    before = [w.copy() for w in model.get_weights()]
    report = kerascheck.check(model, select=["softmax-loss-mismatch", "cannot-overfit"], budget=60)
    assert [w for w in model.get_weights()] and all(np.array_equal(a, b) for a, b in zip(before, model.get_weights()))
    got = {(f.rule, f.layer, f.severity) for f in report.findings}
    # The softmax over one unit is the cause; the failed overfit is its consequence.
    assert got == {("softmax-loss-mismatch", "yes", "error")}
    assert [c["rule"] for c in report.findings[0].evidence["consequences"]] == ["cannot-overfit"]
    assert report.models[0].path == "<in-memory model 'one_unit'>"

    path = tmp_path / "one_unit.keras"
    model.save(path)
    cli = json_report(run_cli("--format", "json", "--select", "softmax-loss-mismatch,cannot-overfit",
                             str(path)).stdout)
    api = json_report(report.to_json())
    strip = lambda fs: [{k: v for k, v in f.items() if k != "evidence"} for f in fs]
    assert strip(api["models"][0]["findings"]) == strip(cli["models"][0]["findings"])


def test_path_and_array_data_and_notebook_table(tmp_path):
    x = np.random.default_rng(0).standard_normal((64, 16)).astype("float32")
    y = np.random.default_rng(1).integers(0, 4, 64)
    report = kerascheck.check(os.path.join(ROOT, "examples", "double_softmax.keras"), data=(x, y),
                              select=["KC6"], budget=60)
    (model,) = report.models
    assert model.errors == [] and model.probe is not None and not model.probe.synthetic
    html = report._repr_html_()
    assert "<table" in html and "double_softmax.keras" in html


def test_notebook_table_escapes_names_from_the_file():
    inp = keras.Input((4,))
    out = layers.Dense(1, kernel_initializer="zeros", name="<img src=x onerror=alert(1)>")(inp)
    model = keras.Model(inp, out, name="escape_me")
    model.compile(optimizer="adam", loss="mse")
    html = kerascheck.check(model, select=["unhealthy-weights"], static=True)._repr_html_()
    assert "<img" not in html and "&lt;img src=x onerror=alert(1)&gt;" in html


@keras.saving.register_keras_serializable(package="kc_api_tests")
class SumNormalise(layers.Layer):
    """Defined in this (notebook-like) process and registered: check() needs nothing else."""

    def call(self, x):
        return x / keras.ops.sum(x, axis=-1, keepdims=True)


def test_in_memory_model_with_a_custom_layer_gets_the_graph_rules():
    inp = keras.Input((8,))
    model = keras.Model(inp, SumNormalise(name="share")(inp), name="custom")
    report = kerascheck.check(model, select=["risky-division", "unstable-softmax"])
    (finding,) = report.findings
    assert (finding.rule, finding.layer, finding.severity) == ("risky-division", "share", "error")
    assert finding.evidence["source"]["file"].endswith("test_api.py")
    assert finding.evidence["source"]["code"] == "return x / keras.ops.sum(x, axis=-1, keepdims=True)"
    assert report.models[0].tiers == ["spec", "model", "graph"]
