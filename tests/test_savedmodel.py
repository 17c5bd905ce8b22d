"""TensorFlow SavedModel folders (issue 14): read safely, audited as graphs, checked like models.

Every folder is a real SavedModel written in the test session by `model.export()` or
`tf.saved_model.save` (or, for tf.keras 2.x, the committed fixture that
tests/fixtures/make_savedmodel.py writes); hostile ones are real folders edited the
way an attacker would. The folders are exported once per module and checked by as
few kerascheck processes as possible: each one pays for importing TensorFlow.
"""
from __future__ import annotations

import hashlib
import os
import shutil

import numpy as np
import pytest

from helpers import ROOT, json_report, kerascheck

FIXTURE = os.path.join(ROOT, "tests", "fixtures", "savedmodel", "tfkeras_lambda")


def _digest(folder: str) -> dict:
    """Path -> sha256 of every file below a folder (links not followed), to prove nothing was written."""
    out = {}
    for root, dirs, files in os.walk(folder):
        dirs.sort()
        for name in sorted(files):
            path = os.path.join(root, name)
            with open(path, "rb") as fh:
                out[os.path.relpath(path, folder)] = hashlib.sha256(fh.read()).hexdigest()
    return out


def _edit_graph(folder: str, edit) -> None:
    """Rewrite saved_model.pb in place through TensorFlow's own protobuf classes (an attacker's edit)."""
    from tensorflow.core.protobuf import saved_model_pb2

    path = os.path.join(folder, "saved_model.pb")
    proto = saved_model_pb2.SavedModel()
    with open(path, "rb") as fh:
        proto.ParseFromString(fh.read())
    edit(proto.meta_graphs[0])
    with open(path, "wb") as fh:
        fh.write(proto.SerializeToString())


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """Every SavedModel the tests check, made once: {name: path}, plus the marker paths."""
    import keras
    import tensorflow as tf

    base = tmp_path_factory.mktemp("savedmodels")
    models = base / "models"
    models.mkdir()
    keras.utils.set_random_seed(0)

    class MySoftmax(keras.layers.Layer):
        def call(self, x):
            e = keras.ops.exp(x)
            return e / keras.ops.sum(e, axis=-1, keepdims=True)

    def export(name, *layers):
        inp = keras.Input((4,), name="features")
        x = inp
        for layer in layers:
            x = layer(x)
        keras.Model(inp, x, name=name).export(str(models / name), verbose=False)

    export("healthy", keras.layers.Dense(16, activation="relu", name="hidden"),
           keras.layers.Dense(3, activation="softmax", name="probs"))
    export("zero_kernel", keras.layers.Dense(8, activation="relu", kernel_initializer="zeros", name="zeros"),
           keras.layers.Dense(3, name="out"))
    export("naive_softmax", keras.layers.Dense(3, name="logits"), MySoftmax(name="my_softmax"))

    marker = base / "MARKER"
    secret = base / "secret.txt"
    secret.write_text("not for the model")

    class Writer(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None, 3], tf.float32)])
        def serve(self, x):
            tf.io.write_file(str(marker), tf.strings.as_string(tf.reduce_sum(x)))
            return {"y": x * 2.0}

    class Reader(tf.Module):
        def __init__(self):
            super().__init__()
            self.scale = tf.Variable(1.0)

        @tf.function(input_signature=[tf.TensorSpec([None, 3], tf.float32)])
        def serve(self, x):
            return {"y": x * self.scale, "leak": tf.strings.length(tf.io.read_file(str(secret)))}

    class Sneaky(tf.Module):
        """A clean signature, and a Python call in a function that is no signature."""

        @tf.function(input_signature=[tf.TensorSpec([None, 3], tf.float32)])
        def serve(self, x):
            return {"y": x + 1.0}

        @tf.function(input_signature=[tf.TensorSpec([None, 3], tf.float32)])
        def helper(self, x):
            return tf.py_function(lambda t: t * 2, [x], tf.float32)

    for name, module in (("writer", Writer()), ("reader", Reader()), ("sneaky", Sneaky())):
        tf.saved_model.save(module, str(models / name), signatures={"serving_default": module.serve})

    hostile = base / "hostile"
    hostile.mkdir()
    native = hostile / "native_op"
    shutil.copytree(models / "healthy", native)

    def rename_op(meta):
        # A node of the model's function turned into an op a custom library would provide.
        body = next(f for f in meta.graph_def.library.function if any(n.op == "Relu" for n in f.node_def))
        next(n for n in body.node_def if n.op == "Relu").op = "LoadLibrary"

    _edit_graph(str(native), rename_op)
    traversal = hostile / "asset_traversal"
    shutil.copytree(models / "healthy", traversal)
    _edit_graph(str(traversal), lambda meta: meta.asset_file_def.add(filename="../../../etc/passwd"))

    bad = base / "bad"
    bad.mkdir()
    truncated = bad / "truncated"
    shutil.copytree(models / "healthy", truncated)
    pb = truncated / "saved_model.pb"
    pb.write_bytes(pb.read_bytes()[: pb.stat().st_size // 2])
    missing = bad / "missing_variables"
    shutil.copytree(models / "healthy", missing)
    os.remove(missing / "variables" / "variables.data-00000-of-00001")
    outside = bad / "index_outside"
    shutil.copytree(models / "healthy", outside)
    elsewhere = base / "elsewhere"
    elsewhere.mkdir()
    shutil.move(str(outside / "variables" / "variables.index"), str(elsewhere / "variables.index"))
    os.symlink(str(elsewhere / "variables.index"), str(outside / "variables" / "variables.index"))

    paths = {p.name: str(p) for group in (models, hostile, bad) for p in group.iterdir()}
    paths["tfkeras_lambda"] = FIXTURE
    return {"paths": paths, "models": str(models), "hostile": str(hostile), "bad": str(bad),
            "marker": str(marker), "base": str(base)}


@pytest.fixture(scope="module")
def checked(folders):
    """One kerascheck run (all rules, JSON) over the models folder, the hostile copies and the fixture."""
    paths = folders["paths"]
    targets = [folders["models"], folders["hostile"], FIXTURE]
    before = {name: _digest(path) for name, path in paths.items() if name not in ("truncated",)}
    html = os.path.join(folders["base"], "report.html")
    proc = kerascheck(*targets, "--format", "json", "--html", html, timeout=300)
    after = {name: _digest(path) for name in before for path in [paths[name]]}
    report = json_report(proc.stdout)
    by_name = {os.path.basename(os.path.normpath(m["path"])): m for m in report["models"]}
    return {"proc": proc, "models": by_name, "before": before, "after": after, "html": html}


def _findings(model: dict, rule: str) -> list:
    return [f for f in model["findings"] if f["rule"] == rule]


def test_folders_below_a_path_are_found_and_read_as_savedmodels(checked):
    models = checked["models"]
    assert {"healthy", "zero_kernel", "naive_softmax", "writer", "reader", "sneaky", "native_op",
            "asset_traversal", "tfkeras_lambda"} <= set(models)
    assert all(m["format"] == "savedmodel" for m in models.values())
    assert checked["proc"].returncode == 1, checked["proc"].stderr
    assert "Traceback" not in checked["proc"].stderr


def test_a_healthy_export_has_no_finding_and_runs_its_signature(checked):
    healthy = checked["models"]["healthy"]
    assert healthy["findings"] == [] and healthy["errors"] == []
    skipped = {s["rule"]: s["reason"] for s in healthy["skipped"]}
    # The serving graph was analysed and run: neither graph rule nor batch-dependence was skipped.
    assert not {"unstable-softmax", "risky-division", "batch-dependence"} & set(skipped)
    assert "no optimizer or loss" in skipped["nan-in-training"]
    assert "no optimizer or loss" in skipped["cannot-overfit"]


def test_zero_kernel_is_an_unhealthy_weight_of_its_keras_layer(checked):
    found = _findings(checked["models"]["zero_kernel"], "unhealthy-weights")
    assert [(f["layer"], f["severity"]) for f in found] == [("zeros", "error")]
    assert "Weight 'kernel' of layer 'zeros' (4x8) is zero everywhere" in found[0]["message"]


def test_naive_softmax_in_a_custom_layer_survives_export_and_is_confirmed(checked):
    found = _findings(checked["models"]["naive_softmax"], "unstable-softmax")
    assert len(found) == 1
    f = found[0]
    assert (f["layer"], f["severity"]) == ("my_softmax", "error")
    assert f["evidence"]["op_type"] == "RealDiv" and f["evidence"]["form"] == "softmax"
    assert f["evidence"]["confirmed_by"] and f["evidence"]["nonfinite"] == "NaN"
    assert "exp(x) / `sum(exp(input))`" in f["message"] and "Confirmed:" in f["message"]


def test_file_ops_in_a_signature_are_unsafe_code_and_never_run(checked, folders):
    writer = _findings(checked["models"]["writer"], "unsafe-code")
    reader = _findings(checked["models"]["reader"], "unsafe-code")
    assert [(f["evidence"]["op"], f["severity"]) for f in writer] == [("WriteFile", "error")]
    assert [(f["evidence"]["op"], f["severity"]) for f in reader] == [("ReadFile", "error")]
    assert writer[0]["evidence"]["function"].startswith("__inference_serve_")
    assert f"of function {writer[0]['evidence']['function']} is op WriteFile, which writes files" \
        in writer[0]["message"]
    assert not os.path.exists(folders["marker"])
    # Nothing of an uncleared folder runs: the graph and probe rules say why they did not.
    skipped = {s["rule"]: s["reason"] for s in checked["models"]["writer"]["skipped"]}
    assert "WriteFile" in skipped["batch-dependence"] and "--unsafe" in skipped["unstable-softmax"]


def test_every_function_is_audited_not_only_the_signatures(checked):
    found = _findings(checked["models"]["sneaky"], "unsafe-code")
    assert [f["evidence"]["op"] for f in found] == ["EagerPyFunc"]
    assert "helper" in found[0]["evidence"]["function"]
    assert "runs a Python function" in found[0]["message"]


def test_an_op_from_a_custom_library_and_an_asset_outside_the_folder(checked):
    native = _findings(checked["models"]["native_op"], "unsafe-code")
    assert [(f["evidence"]["op"], f["severity"]) for f in native] == [("LoadLibrary", "error")]
    assert "loads a native library" in native[0]["message"]
    assert "does not know the op" in native[0]["message"]
    traversal = _findings(checked["models"]["asset_traversal"], "unsafe-code")
    assert [(f["evidence"].get("asset"), f["severity"]) for f in traversal] == [("../../../etc/passwd", "error")]


def test_tf_keras_lambda_in_keras_metadata_gets_the_keras_checks(checked):
    model = checked["models"]["tfkeras_lambda"]
    found = _findings(model, "unsafe-code")
    assert [(f["layer"], f["severity"]) for f in found] == [("double", "error")]
    assert found[0]["message"].startswith("keras_metadata.pb: Lambda layer 'double' carries")
    assert found[0]["evidence"]["cve"] == "CVE-2024-3660"
    # The bytecode is never needed: the Lambda's ops are in the graph, which is analysed and run.
    skipped = {s["rule"] for s in model["skipped"]}
    assert not {"unstable-softmax", "risky-division", "batch-dependence"} & skipped
    # tf.keras kept its training config: the optimizer rules read it as from an .h5 file.
    assert [f["rule"] for f in model["findings"] if f["rule"] != "unsafe-code"] == ["no-lr-schedule"]


def test_no_folder_is_written(checked):
    assert checked["after"] == checked["before"]


def test_html_report_of_savedmodels(checked):
    with open(checked["html"], encoding="utf-8") as fh:
        html = fh.read()
    assert "my_softmax" in html and "WriteFile" in html and "savedmodel" in html


def test_bad_folders_are_one_line_each_and_the_run_goes_on(folders):
    paths = folders["paths"]
    proc = kerascheck(folders["bad"], paths["healthy"], "--format", "json", "--no-html", timeout=180)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 3, proc.stderr
    by_name = {os.path.basename(line.split(": ")[2]): line for line in lines}
    assert "saved_model.pb is not a readable SavedModel (truncated or corrupt" in by_name["truncated"]
    assert "variables/variables.index has no variables.data-* shard beside it" in by_name["missing_variables"]
    assert "variables/variables.index is a symbolic link to" in by_name["index_outside"]
    assert "outside the SavedModel folder" in by_name["index_outside"]
    report = json_report(proc.stdout)
    healthy = next(m for m in report["models"] if m["path"] == paths["healthy"])
    assert healthy["errors"] == [] and healthy["findings"] == []


def test_the_runnable_signature_computes_what_tensorflow_serves(folders):
    """kerascheck runs the flattened function with the checkpoint's values; TensorFlow's own loader
    (fine on a folder the test made) must give the same outputs."""
    import tensorflow as tf

    from kerascheck.options import Options
    from kerascheck.formats import open_spec
    from kerascheck.formats.savedmodel.serving import ServingModel

    path = folders["paths"]["healthy"]
    x = np.random.default_rng(0).standard_normal((5, 4)).astype("float32")
    with open_spec(path) as spec:
        ours = ServingModel(spec, Options(device="cpu")).run([x])[0][0]
    served = tf.saved_model.load(path).signatures["serving_default"](tf.constant(x))
    np.testing.assert_allclose(ours, next(iter(served.values())).numpy(), rtol=1e-5, atol=1e-6)


def test_sarif_and_github_annotations_point_at_saved_model_pb(folders):
    from kerascheck.engine import select_rules
    from kerascheck.runners import check_paths
    from kerascheck.reports.github import render_github
    from kerascheck.reports.sarif import to_sarif

    paths = folders["paths"]
    report = check_paths([paths["writer"], paths["zero_kernel"]], select_rules(["unsafe-code", "unhealthy-weights"]),
                         static=True)
    sarif = to_sarif(report)
    results = sarif["runs"][0]["results"]
    write = next(r for r in results if r["ruleId"] == "KC501")
    assert write["locations"][0]["physicalLocation"]["artifactLocation"]["uri"].endswith("writer/saved_model.pb")
    zero = next(r for r in results if r["ruleId"] == "KC401")
    assert zero["locations"][0]["logicalLocations"][0]["name"] == "zeros"
    github = render_github(report)
    assert "::error file=" in github and "saved_model.pb,line=1,title=KC501 unsafe-code::" in github
