"""Bad input: one clear line on stderr, exit 2, no traceback, bounded memory; other files still checked."""
import json
import os
import resource
import struct
import sys
import zipfile

import h5py
import numpy as np
import pytest

from helpers import ROOT, json_report, rewrite_weights, run_measured

HEALTHY = os.path.join(ROOT, "examples", "healthy.keras")
LEGACY = os.path.join(ROOT, "examples", "legacy_logits.h5")
MEMORY_LIMIT = 3 << 30  # address space for the whole process, interpreter and libraries included


def _limit():
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))


def run_static(*paths):
    proc, _, _ = run_measured([sys.executable, "-m", "kerascheck", "--static", "--format", "json", *paths],
                              timeout=60, preexec_fn=_limit)
    return proc


def _zip(path, members, compression=zipfile.ZIP_STORED):
    with zipfile.ZipFile(path, "w", compression=compression) as zf:
        for name, data in members:
            zf.writestr(name, data)
    return str(path)


def _members(src=HEALTHY):
    with zipfile.ZipFile(src) as zf:
        return [(i.filename, zf.read(i)) for i in zf.infolist()]


def _replace(src, tmp_path, name, data, out="edited.keras"):
    members = [(n, data if n == name else d) for n, d in _members(src)]
    return _zip(tmp_path / out, members)


def _weights_with(tmp_path, edit):
    """healthy.keras with its weights file rebuilt by `edit(h5file)`."""
    return rewrite_weights(HEALTHY, str(tmp_path / "edited.keras"), edit)


CONV_KERNEL = "layers/conv2d/vars/0"


def case_missing(tmp_path):
    return str(tmp_path / "missing.keras"), "no such file"


def case_empty(tmp_path):
    (tmp_path / "empty.keras").write_bytes(b"")
    return str(tmp_path / "empty.keras"), "is empty"


def case_random_bytes(tmp_path):
    (tmp_path / "noise.keras").write_bytes(np.random.default_rng(0).bytes(4096))
    return str(tmp_path / "noise.keras"), "neither a Keras archive nor an HDF5 file"


def case_not_json(tmp_path):
    return _replace(HEALTHY, tmp_path, "config.json", b"{not json"), "config.json is not valid JSON"


def case_not_a_model_config(tmp_path):
    return _replace(HEALTHY, tmp_path, "config.json", b'{"hello": [1, 2, 3]}'), "not a Keras model config"


def case_layers_not_dicts(tmp_path):
    data = json.dumps({"class_name": "Functional", "config": {"layers": [1, "x"]}}).encode()
    return _replace(HEALTHY, tmp_path, "config.json", data), "layer #0 of Functional has no class_name"


def case_deep_json(tmp_path):
    data = b'{"class_name": "Functional", "config": ' + b"[" * 5000 + b"]" * 5000 + b"}"
    return _replace(HEALTHY, tmp_path, "config.json", data), "nests deeper than"


def case_duplicate_keys(tmp_path):
    data = b'{"class_name": "A", "class_name": "B", "config": {}}'
    return _replace(HEALTHY, tmp_path, "config.json", data), "duplicate key 'class_name'"


def case_dotdot_member(tmp_path):
    return _zip(tmp_path / "dotdot.keras", _members() + [("../../evil.txt", b"x")]), "path traversal"


def case_absolute_member(tmp_path):
    return _zip(tmp_path / "abs.keras", _members() + [("/etc/evil.txt", b"x")]), "path traversal"


def case_duplicate_member(tmp_path):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns about the duplicate we want
        path = _zip(tmp_path / "dup.keras", _members() + [("config.json", b"{}")])
    return path, "two members named 'config.json'"


def case_zip_bomb_actual(tmp_path):
    # 80 MiB of JSON whitespace deflates to about 80 KiB; the declared size is honest here.
    members = _members()
    members = [(n, d + b" " * (80 << 20) if n == "config.json" else d) for n, d in members]
    return _zip(tmp_path / "bomb.keras", members, zipfile.ZIP_DEFLATED), "zip bomb"


def case_zip_bomb_declared(tmp_path):
    # A 4 GiB declared size for a small deflated member, patched into the central directory.
    path = _zip(tmp_path / "declared.keras", _members(), zipfile.ZIP_DEFLATED)
    data = bytearray(open(path, "rb").read())
    at = data.find(b"PK\x01\x02")
    while at != -1:
        name_len = struct.unpack("<H", data[at + 28:at + 30])[0]
        if data[at + 46:at + 46 + name_len] == b"model.weights.h5":
            data[at + 24:at + 28] = struct.pack("<I", 0xFFFF0000)
        at = data.find(b"PK\x01\x02", at + 4)
    open(path, "wb").write(bytes(data))
    return path, "zip bomb"


def case_truncated_keras(tmp_path, fraction):
    data = open(HEALTHY, "rb").read()
    path = tmp_path / f"cut{int(fraction * 100)}.keras"
    path.write_bytes(data[: int(len(data) * fraction)])
    return str(path), "not a readable .keras archive"


def case_truncated_h5(tmp_path):
    data = open(LEGACY, "rb").read()
    (tmp_path / "cut.h5").write_bytes(data[: len(data) // 2])
    return str(tmp_path / "cut.h5"), "not a readable HDF5 file"


def case_shape_bomb_keras(tmp_path):
    def edit(f):
        del f[CONV_KERNEL]
        f.create_dataset(CONV_KERNEL, shape=(100_000, 100_000, 3, 8), dtype="float32")
    return _weights_with(tmp_path, edit), "shape bomb"


def case_shape_bomb_h5(tmp_path):
    path = tmp_path / "bomb.h5"
    path.write_bytes(open(LEGACY, "rb").read())
    with h5py.File(path, "a") as f:
        name = "model_weights/logits/legacy_logits/logits/kernel"
        del f[name]
        f.create_dataset(name, shape=(10**6, 10**6), dtype="float64")
    return str(path), "shape bomb"


def case_external_link(tmp_path):
    (tmp_path / "secret.h5").write_bytes(b"")
    with h5py.File(tmp_path / "secret.h5", "w") as s:
        s["data"] = np.zeros((3, 3, 1, 8), "float32")

    def edit(f):
        del f[CONV_KERNEL]
        f[CONV_KERNEL] = h5py.ExternalLink(str(tmp_path / "secret.h5"), "/data")
    return _weights_with(tmp_path, edit), "external link, which kerascheck does not follow"


def case_h5_without_model_config(tmp_path):
    with h5py.File(tmp_path / "plain.h5", "w") as f:
        f.create_group("something")
    return str(tmp_path / "plain.h5"), "without a model_config attribute"


def case_weights_only_h5(tmp_path):
    with h5py.File(tmp_path / "model.weights.h5", "w") as f:
        f.create_group("layers").create_group("dense")
    return str(tmp_path / "model.weights.h5"), "holds weights only"


def case_saved_model_folder(tmp_path):
    folder = tmp_path / "exported"
    (folder / "variables").mkdir(parents=True)
    (folder / "saved_model.pb").write_bytes(b"\x08\x01")
    return str(folder), "TensorFlow SavedModel folder"


CASES = {
    "missing": case_missing, "empty": case_empty, "random_bytes": case_random_bytes,
    "not_json": case_not_json, "not_a_model_config": case_not_a_model_config,
    "layers_not_dicts": case_layers_not_dicts, "deep_json": case_deep_json,
    "duplicate_keys": case_duplicate_keys, "dotdot_member": case_dotdot_member,
    "absolute_member": case_absolute_member, "duplicate_member": case_duplicate_member,
    "zip_bomb_actual": case_zip_bomb_actual, "zip_bomb_declared": case_zip_bomb_declared,
    "truncated_h5": case_truncated_h5, "shape_bomb_keras": case_shape_bomb_keras,
    "shape_bomb_h5": case_shape_bomb_h5, "external_link": case_external_link,
    "h5_without_model_config": case_h5_without_model_config, "weights_only_h5": case_weights_only_h5,
    "saved_model_folder": case_saved_model_folder,
}
for _fraction in (0.05, 0.5, 0.9, 0.999):
    CASES[f"truncated_keras_{_fraction}"] = (lambda f: lambda tmp: case_truncated_keras(tmp, f))(_fraction)


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_input_is_one_line_exit_2_and_the_run_goes_on(name, tmp_path):
    bad, phrase = CASES[name](tmp_path)
    proc = run_static(bad, HEALTHY)
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    assert "Traceback" not in proc.stderr + proc.stdout
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"kerascheck: error: {bad}: "), lines[0]
    assert phrase in lines[0], lines[0]
    report = json_report(proc.stdout)
    bad_result, healthy = report["models"]
    assert bad_result["path"] == bad and bad_result["errors"] and bad_result["findings"] == []
    assert healthy["path"] == HEALTHY and healthy["errors"] == [] and healthy["findings"] == []


def test_folder_with_a_saved_model_reports_it_and_checks_the_rest(tmp_path):
    (tmp_path / "export" / "variables").mkdir(parents=True)
    (tmp_path / "export" / "saved_model.pb").write_bytes(b"\x08\x01")
    (tmp_path / "good.keras").write_bytes(open(HEALTHY, "rb").read())
    (tmp_path / "notes.txt").write_text("not a model")
    proc = run_static(str(tmp_path))
    assert proc.returncode == 2
    paths = [m["path"] for m in json_report(proc.stdout)["models"]]
    assert paths == [str(tmp_path / "export"), str(tmp_path / "good.keras")]
