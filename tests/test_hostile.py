"""A corpus of hostile model files, built here with zipfile, json and h5py, one test per CVE.

Payloads are inert: at worst they would create a marker file. Every file is checked
with all tiers (the default), in a fresh process, and must give the right finding
or a clean exit 2: no marker, no traceback, bounded time and memory.
"""
import base64
import os
import pickle
import sys

import keras
import numpy as np
import pytest
from keras import layers

from helpers import json_report, layer_config, rewrite_archive, rewrite_weights, run_measured

MEMORY_CEILING_MB = 3000  # TensorFlow alone takes about 600 MiB
TIME_CEILING_S = 120


def run_guarded(*args, cwd=None, env=None):
    """Run kerascheck (all tiers); return (process, peak RSS of it and its workers in MiB, seconds)."""
    return run_measured([sys.executable, "-m", "kerascheck", "--format", "json", *args], cwd=cwd, env=env,
                        timeout=TIME_CEILING_S)


def assert_contained(proc, peak, seconds, marker=None):
    assert "Traceback" not in proc.stderr + proc.stdout, proc.stderr
    assert proc.returncode in (1, 2), (proc.returncode, proc.stderr)
    assert peak < MEMORY_CEILING_MB and seconds < TIME_CEILING_S
    if marker is not None:
        assert not os.path.exists(marker), "the payload ran"
    json_report(proc.stdout)  # exit 1 or 2, the report still follows docs/report.schema.json


def findings_of(proc):
    (model,) = json_report(proc.stdout)["models"]
    return model


def cves(model):
    return {f["evidence"].get("cve") for f in model["findings"] if f["rule"] == "unsafe-code"}


def _base(tmp_path, name="base"):
    inp = keras.Input((4,), name="x")
    m = keras.Model(inp, layers.Dense(2, name="dense")(layers.Dense(4, name="hidden")(inp)))
    m.compile(optimizer="adam", loss="mse")
    path = str(tmp_path / f"{name}.keras")
    m.save(path)
    return path


def run_crafted(tmp_path, name, edit, env=None):
    """A copy of the base model with its config edited as an attacker would, checked with all tiers."""
    path = rewrite_archive(_base(tmp_path), str(tmp_path / f"{name}.keras"), config=edit)
    proc, peak, secs = run_guarded(path, env=env)
    assert_contained(proc, peak, secs)
    return proc


def _lambda_model(marker):
    inp = keras.Input((4,))
    # Keras calls the Lambda while rebuilding the graph on load, so loading alone would run it.
    out = layers.Lambda(lambda t: (open(marker, "w").close(), t)[1], name="payload")(inp)
    m = keras.Model(inp, layers.Dense(1)(out))
    m.compile(optimizer="adam", loss="mse")
    return m


@pytest.mark.parametrize("fmt", ["keras", "h5"])
def test_cve_2024_3660_lambda_bytecode_never_runs(tmp_path, fmt):
    marker = str(tmp_path / "marker")
    model = _lambda_model(marker)
    path = str(tmp_path / f"lambda.{fmt}")
    model.save(path)
    os.remove(marker)  # building the model in this process ran it once
    proc, peak, secs = run_guarded(path)
    assert_contained(proc, peak, secs, marker)
    model = findings_of(proc)
    assert "CVE-2024-3660" in cves(model)
    graph_rules = {"unstable-softmax", "risky-division"}
    assert {s["rule"] for s in model["skipped"]} >= graph_rules
    assert all("could not be inspected safely" in s["reason"] for s in model["skipped"] if s["rule"] in graph_rules)
    # Every rule that needs Keras says why it was not loaded (the data and live-run rules say what they need).
    blocked = [s for s in model["skipped"] if s["rule"] not in graph_rules
               and not s["reason"].startswith(("needs --data", "needs a live training run"))]
    assert blocked and all("kerascheck will not load it" in s["reason"] for s in blocked)


def test_cve_2025_9905_safe_mode_for_legacy_h5_is_kerascheck_s_own(tmp_path):
    """Keras once ignored safe mode for .h5; kerascheck refuses before Keras sees the file."""
    marker = str(tmp_path / "marker")
    model = _lambda_model(marker)
    model.save(tmp_path / "legacy.h5")
    os.remove(marker)
    proc, peak, secs = run_guarded(str(tmp_path / "legacy.h5"))
    assert_contained(proc, peak, secs, marker)
    assert proc.returncode == 1 and "CVE-2024-3660" in cves(findings_of(proc))


def test_cve_2025_1550_config_naming_a_module_is_never_imported(tmp_path):
    marker = str(tmp_path / "marker")
    (tmp_path / "kc_payload.py").write_text(f"open({marker!r}, 'w').close()\ndef f(x):\n    return x\n")

    def edit(cfg):
        layer_config(cfg, "dense")["config"]["activation"] = {
            "module": "kc_payload", "class_name": "function", "config": "f", "registered_name": "function"}
    proc = run_crafted(tmp_path, "module", edit, env={"PYTHONPATH": str(tmp_path)})
    assert not os.path.exists(marker), "the payload ran"
    assert proc.returncode == 2
    assert "needs the custom function 'f' to load (the file says it comes from module 'kc_payload')" in proc.stderr


def test_cve_2025_1550_dangerous_module_names_are_findings(tmp_path):
    def edit(cfg):
        layer_config(cfg, "dense")["config"]["activation"] = {
            "module": "subprocess", "class_name": "function", "config": "getoutput", "registered_name": "function"}
    proc = run_crafted(tmp_path, "subprocess", edit)
    assert "CVE-2025-1550" in cves(findings_of(proc))


def test_cve_2025_8747_get_file_gadget(tmp_path):
    def edit(cfg):
        layer_config(cfg, "dense")["config"]["kernel_initializer"] = {
            "module": "keras.utils", "class_name": "function", "config": "get_file", "registered_name": "function"}
    proc = run_crafted(tmp_path, "get_file", edit)
    model = findings_of(proc)
    assert "CVE-2025-8747" in cves(model) and model["skipped"]


def test_cve_2025_9906_config_that_turns_safe_mode_off(tmp_path):
    marker = str(tmp_path / "marker")
    model = _lambda_model(marker)
    src = str(tmp_path / "src.keras")
    model.save(src)
    os.remove(marker)

    def edit(cfg):
        cfg["config"]["layers"].insert(1, {
            "module": "keras.layers", "class_name": "Activation", "name": "switch", "inbound_nodes": [],
            "config": {"name": "switch", "activation": {"module": "keras.config", "class_name": "function",
                                                        "config": "enable_unsafe_deserialization",
                                                        "registered_name": "function"}}})
    path = rewrite_archive(src, str(tmp_path / "switch.keras"), config=edit)
    proc, peak, secs = run_guarded(path)
    assert_contained(proc, peak, secs, marker)
    assert {"CVE-2025-9906", "CVE-2024-3660"} <= cves(findings_of(proc))


class _Marker:
    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


def test_cve_2025_49655_torch_module_wrapper_is_never_unpickled(tmp_path):
    marker = str(tmp_path / "marker")
    payload = base64.b64encode(pickle.dumps(_Marker(marker))).decode()

    def edit(cfg):
        entry = layer_config(cfg, "dense")
        entry["class_name"] = "TorchModuleWrapper"
        entry["module"] = "keras.layers"
        entry["config"] = {"name": "dense", "module": payload}
    proc = run_crafted(tmp_path, "torch", edit)
    assert not os.path.exists(marker), "the payload ran"
    assert "CVE-2025-49655" in cves(findings_of(proc))


def test_cve_2025_12058_lookup_vocabulary_never_reads_the_path(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("kc-secret-token-1234\n")

    def edit(cfg):
        entry = layer_config(cfg, "hidden")
        entry["class_name"] = "StringLookup"
        entry["config"] = {"name": "hidden", "vocabulary": str(secret)}
    proc = run_crafted(tmp_path, "lookup", edit)
    assert "CVE-2025-12058" in cves(findings_of(proc))
    assert "kc-secret-token" not in proc.stdout + proc.stderr


def test_cve_2026_0897_hdf5_shape_bomb(tmp_path):
    def edit(f):
        del f["layers/dense/vars/0"]
        f.create_dataset("layers/dense/vars/0", shape=(10**6, 10**6), dtype="float32")
    path = rewrite_weights(_base(tmp_path), str(tmp_path / "bomb.keras"), edit)
    proc, peak, secs = run_guarded(path)
    assert_contained(proc, peak, secs)
    assert proc.returncode == 2 and "shape bomb" in proc.stderr


def test_cve_2026_1669_hdf5_external_storage_never_reads_local_files(tmp_path):
    secret = tmp_path / "secret.bin"
    secret.write_bytes(np.arange(8, dtype="float32").tobytes())
    def edit(f):
        del f["layers/dense/vars/0"]
        f.create_dataset("layers/dense/vars/0", shape=(4, 2), dtype="float32", external=[(str(secret), 0, 32)])
    path = rewrite_weights(_base(tmp_path), str(tmp_path / "external.keras"), edit)
    proc, peak, secs = run_guarded(path)
    assert_contained(proc, peak, secs)
    assert proc.returncode == 2 and "keeps its data in an external file" in proc.stderr


def test_cve_2026_1462_tfsm_layer_never_loads_the_saved_model(tmp_path):
    def edit(cfg):
        entry = layer_config(cfg, "dense")
        entry["class_name"] = "TFSMLayer"
        entry["config"] = {"name": "dense", "filepath": str(tmp_path / "attacker_saved_model")}
    proc = run_crafted(tmp_path, "tfsm", edit)
    assert "CVE-2026-1462" in cves(findings_of(proc))


def test_cve_2026_12479_layer_names_with_path_traversal(tmp_path):
    def edit(cfg):
        layer_config(cfg, "hidden")["config"]["name"] = "../../kc_escape"
        layer_config(cfg, "../../kc_escape")["name"] = "../../kc_escape"
    work = tmp_path / "work"
    work.mkdir()
    path = rewrite_archive(_base(tmp_path), str(work / "traversal.keras"), config=edit)
    before = sorted(os.listdir(tmp_path))
    proc, peak, secs = run_guarded(path, cwd=str(work))
    assert_contained(proc, peak, secs)
    assert "CVE-2026-12479" in cves(findings_of(proc))
    assert sorted(os.listdir(tmp_path)) == before and not os.path.exists(tmp_path.parent / "kc_escape")
