"""Structure-aware mutations of real model files, shared by tests/test_fuzz.py and bench/fuzz.py.

Four families: raw bytes of a .keras archive (flips, cuts, junk), its config.json
(keys removed, values replaced by arbitrary JSON, layers duplicated), its weights
HDF5 (datasets reshaped, retyped, removed, turned into links), and hostile configs:
a payload (bytecode, a Python module, a Keras gadget, in function or class form)
put at a random place of a .keras config.json or a legacy .h5 file's model_config or
training_config, which unsafe-code must flag wherever it lands.
"""
from __future__ import annotations

import io
import json
import os
import tempfile
import zipfile
from collections import Counter

import h5py
import numpy as np
from hypothesis import strategies as st

from kerascheck.engine import select_rules
from kerascheck.runners.isolated import Checker, Limits

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SEEDS = [os.path.join(ROOT, "examples", name) for name in
         ("double_softmax.keras", "rnn_without_clipping.keras", "bad_init.keras", "lambda_layer.keras")]
H5_SEEDS = [os.path.join(ROOT, "examples", "legacy_logits.h5")]
RULES = None

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**40, 2**40) | st.floats(allow_nan=True) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=12,
)


class Outcomes(Counter):
    """clean / flagged / rejected (one-line exit 2) / stopped (timeout: a hang) / crashed / missed / ran.

    crashed (a traceback or an internal error), stopped, missed (a hostile file passed
    unflagged) and ran (a payload's marker file exists) are bugs.
    """


LIMITS = Limits(timeout=10.0, memory_mb=2048)
_checker: Checker | None = None


def check_bytes(data: bytes, suffix: str, outcomes: Outcomes | None = None, hostile: bool = False) -> str:
    """Write `data` to a file, check it with every static rule in a worker process, classify the outcome.

    The worker has the CLI's guards (HDF5's C library can loop forever on some corrupt
    files; that must cost one file, never the run): a stopped check is "stopped".
    """
    global RULES, _checker
    if RULES is None:
        RULES = [r.name for r in select_rules() if r.tier == "spec"]
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "fuzzed" + suffix)
        with open(path, "wb") as fh:
            fh.write(data)
        if _checker is None:
            _checker = Checker(RULES, True, None, LIMITS, "spawn")
        result = _checker.check(path)
    if not result.cacheable and not any("internal error" in e["message"] for e in result.errors):
        outcome = "stopped"  # the runner gave the check up: a timeout, the memory limit, a dead worker
    else:
        for err in result.errors:
            message = err["message"]
            if "internal error" in message or "\n" in message or not message:
                raise AssertionError(f"not a clean rejection: {message!r}")
        outcome = "rejected" if result.errors else "clean"
        if hostile and outcome == "clean":
            # A file with a payload must be an unsafe-code error, which is also what keeps it from Keras.
            flagged = any(f.rule == "unsafe-code" and f.severity == "error" for f in result.findings)
            outcome = "flagged" if flagged else "missed"
    if hostile and os.path.exists(MARKER):
        os.remove(MARKER)
        outcome = "ran"
    if outcomes is not None:
        outcomes[outcome] += 1
    return outcome


def _members(path):
    with zipfile.ZipFile(path) as zf:
        return [(i.filename, zf.read(i)) for i in zf.infolist()]


def _zip(members) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in members:
            zf.writestr(name, data)
    return buf.getvalue()


@st.composite
def byte_mutations(draw):
    data = bytearray(open(draw(st.sampled_from(SEEDS + H5_SEEDS)), "rb").read())
    for _ in range(draw(st.integers(1, 6))):
        kind = draw(st.sampled_from(["flip", "cut", "junk", "zero"]))
        at = draw(st.integers(0, max(len(data) - 1, 0)))
        if kind == "flip":
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif kind == "cut":
            del data[at:]
        elif kind == "junk":
            data[at:at] = draw(st.binary(min_size=1, max_size=64))
        else:
            data[at:at + 64] = bytes(len(data[at:at + 64]))
        if not data:
            break
    return bytes(data)


def _paths(node, prefix=()):
    yield prefix
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _paths(v, prefix + (i,))


@st.composite
def config_mutations(draw):
    seed = draw(st.sampled_from(SEEDS))
    members = _members(seed)
    config = json.loads(dict(members)["config.json"])
    for _ in range(draw(st.integers(1, 4))):
        paths = [p for p in _paths(config) if p]
        path = draw(st.sampled_from(paths))
        parent = config
        for key in path[:-1]:
            parent = parent[key]
        kind = draw(st.sampled_from(["delete", "replace", "duplicate"]))
        if kind == "delete":
            del parent[path[-1]]
        elif kind == "replace":
            parent[path[-1]] = draw(json_values)
        elif isinstance(parent, list):
            parent.insert(path[-1], parent[path[-1]])
        else:
            parent[path[-1]] = [parent[path[-1]], parent[path[-1]]]
    data = json.dumps(config).encode()
    return _zip([(n, data if n == "config.json" else d) for n, d in members])


@st.composite
def weight_mutations(draw):
    seed = draw(st.sampled_from(SEEDS[:3]))
    members = _members(seed)
    with tempfile.TemporaryDirectory() as tmp:
        h5path = os.path.join(tmp, "w.h5")
        with open(h5path, "wb") as fh:
            fh.write(dict(members)["model.weights.h5"])
        with h5py.File(h5path, "a") as f:
            datasets = []
            f.visititems(lambda name, obj: datasets.append(name) if isinstance(obj, h5py.Dataset) else None)
            for _ in range(draw(st.integers(1, 3))):
                if not datasets:
                    break
                name = draw(st.sampled_from(datasets))
                kind = draw(st.sampled_from(["reshape", "retype", "delete", "softlink", "attr", "huge"]))
                del f[name]
                datasets.remove(name)
                if kind == "reshape":
                    shape = tuple(draw(st.lists(st.integers(0, 7), min_size=0, max_size=4)))
                    f.create_dataset(name, data=np.ones(shape, "float32"))
                elif kind == "retype":
                    f.create_dataset(name, data=np.array([b"abc", b"de"]))
                elif kind == "softlink":
                    f[name] = h5py.SoftLink("/" + (datasets[0] if datasets else "nowhere"))
                elif kind == "attr":
                    f.create_dataset(name, data=np.zeros(3, "float32"))
                    f[name].attrs["name"] = draw(st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=10))
                elif kind == "huge":
                    f.create_dataset(name, shape=(draw(st.integers(10**5, 10**7)), 1000), dtype="float32")
        with open(h5path, "rb") as fh:
            weights = fh.read()
    return _zip([(n, weights if n == "model.weights.h5" else d) for n, d in members])


# ---------------------------------------------------------------- hostile configs

MARKER = os.path.join(tempfile.gettempdir(), f"kc-fuzz-marker-{os.getpid()}")
_MODULES = ["os", "subprocess", "builtins", "shutil", "socket", "pickle", "importlib", "runpy", "ctypes",
            "posix", "pty", "webbrowser", "urllib.request", "http.client", "marshal", "numpy", "tensorflow.io"]
_NAMES = ["system", "exec", "eval", "getoutput", "rmtree", "open", "loads", "import_module", "run_path", "load",
          "write_file", "makedirs", "Popen", "urlopen"]
_BUILTINS = ["exec", "eval", "open", "compile", "__import__", "getattr", "breakpoint", "abs"]
_KERAS = [("keras.config", "enable_unsafe_deserialization"), ("keras.utils", "get_file"),
          ("keras.src.utils.file_utils", "get_file"), ("keras.saving", "load_model"),
          ("keras.models", "model_from_json"), ("keras.backend", "clear_session"),
          ("keras.src.saving.serialization_lib", "enable_unsafe_deserialization"), ("keras", "utils.get_file")]


def _code(kind: str) -> str:
    import codecs
    import marshal
    import types

    source = {"call": f"lambda t, *a, **k: (open({MARKER!r}, 'w').close(), t)[1]",
              "plain": f"lambda: open({MARKER!r}, 'w').close()"}[kind]
    code = next(c for c in compile(source, "<fuzz>", "eval").co_consts if isinstance(c, types.CodeType))
    return codecs.encode(marshal.dumps(code), "base64").decode("ascii")


@st.composite
def payloads(draw):
    """One hostile object, in any of the forms a config can carry code or name it."""
    kind = draw(st.sampled_from(["lambda", "keras2", "bytes", "python_fn", "python_cls", "keras_fn", "keras_cls"]))
    if kind == "lambda":
        return {"class_name": "__lambda__", "config": {"code": _code(draw(st.sampled_from(["call", "plain"]))),
                                                       "defaults": None, "closure": None}}
    if kind == "keras2":
        field = draw(st.sampled_from(["function", "output_shape", "mask"]))
        return {field: [_code("call"), None, None], f"{field}_type": "lambda"}
    if kind == "bytes":
        return _code("plain")
    if kind in ("python_fn", "python_cls"):
        module = draw(st.sampled_from(_MODULES))
        # A name Python's builtins lacks is, to Keras, a user's function saved by name: only real ones count.
        name = draw(st.sampled_from(_BUILTINS if module == "builtins" else _NAMES))
    else:
        module, name = draw(st.sampled_from(_KERAS))
    key = draw(st.sampled_from(["class_name", "config", "registered_name"]))
    if kind.endswith("_fn") or key == "config":
        obj = {"module": module, "class_name": "function", "config": name, "registered_name": "function"}
    else:
        obj = {"module": module, "class_name": name, "config": {}, "registered_name": None}
    if key == "registered_name":  # the name in registered_name only, a Keras class in class_name
        obj = {"module": module, "class_name": "Dense", "config": {}, "registered_name": name}
    return obj


def _place(draw, config, payload):
    """Put `payload` under a random dict key or into a random list of `config` (a dict payload may merge)."""
    spots = [p for p in _paths(config)]
    path = draw(st.sampled_from(spots))
    node = config
    for key in path:
        node = node[key]
    if isinstance(node, list):
        node.insert(draw(st.integers(0, len(node))), payload)
    elif isinstance(node, dict):
        if isinstance(payload, dict) and draw(st.booleans()) and "class_name" not in payload:
            node.update(payload)  # Keras 2 Lambda fields sit beside the others
        else:
            node[draw(st.sampled_from(["activation", "kernel_initializer", "function", "output_shape", "mask",
                                       "arguments", "loss", "metrics", "learning_rate", "kc_extra"]))] = payload
    else:  # a scalar: replace it in its parent
        parent = config
        for key in path[:-1]:
            parent = parent[key]
        parent[path[-1]] = payload


@st.composite
def hostile_mutations(draw):
    """(bytes, suffix): a real model file with a payload somewhere in its config."""
    payload = draw(payloads())
    if draw(st.integers(0, 3)) == 0:  # a legacy .h5: model_config or training_config
        with open(H5_SEEDS[0], "rb") as fh:
            data = fh.read()
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "seed.h5")
            with open(path, "wb") as fh:
                fh.write(data)
            with h5py.File(path, "a") as f:
                attr = draw(st.sampled_from(["model_config", "training_config"]))
                config = json.loads(f.attrs[attr])
                _place(draw, config, payload)
                f.attrs[attr] = json.dumps(config)
            with open(path, "rb") as fh:
                return fh.read(), ".h5"
    seed = draw(st.sampled_from(SEEDS))
    members = _members(seed)
    config = json.loads(dict(members)["config.json"])
    _place(draw, config, payload)
    data = json.dumps(config).encode()
    return _zip([(n, data if n == "config.json" else d) for n, d in members]), ".keras"
