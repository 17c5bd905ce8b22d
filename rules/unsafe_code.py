"""The file carries code, or names code, that would run when the model is loaded.

## What it does
Reads the whole config without loading anything — every layer and every object
nested below it (initialisers, regularisers, constraints, activations, wrapped
layers, Lambda arguments), the compile config (losses, metrics, optimizer,
learning-rate schedule) and, in legacy `.h5` files, `model_config` and
`training_config` — and reports:

* marshalled Python bytecode anywhere: the Keras 3 `__lambda__` form, the Keras 2
  `function_type: lambda` form, in a Lambda's `function`, `output_shape`, `mask`
  or `arguments` or in any other field (CVE-2024-3660) — error;
* objects whose `module` is a Python module (`builtins`, `os`, `subprocess`, ...)
  or a library installed beside Keras (`numpy`, `tensorflow`, ...), whether the
  name sits in `class_name`, `config` or `registered_name` (CVE-2025-1550: older
  Keras imported them even in safe mode) — error. Keras's own built-in functions,
  which Keras writes as `"module": "builtins"` (`relu`, `mean_squared_error`), are
  recognised as what they are;
* objects naming a Keras API that is not a part of a model (`keras.config`,
  `keras.utils`, `keras.saving`, `keras.backend`, `keras.src.utils`, ...), in class
  or function form — error; `get_file` (downloads or reads a path: CVE-2025-8747)
  and `enable_unsafe_deserialization` (switches safe mode off mid-load:
  CVE-2025-9906) carry their CVE;
* `TFSMLayer` (loads a SavedModel graph from a path: CVE-2026-1462) and
  `TorchModuleWrapper` (unpickles a torch module: CVE-2025-49655), also when
  wrapped inside another layer — error;
* lookup layers whose vocabulary is a file path or URL (reads local files:
  CVE-2025-12058) — warning;
* layer names with path separators or `..`, which Keras never writes and which
  can steer file writes outside their folder (CVE-2026-12479) — error;
* archive members Keras never writes — warning;
* custom classes the file needs, with the module they claim to come from — info
  (your own registered classes are not suspect; kerascheck still never imports a
  module a file names);
* Lambda layers that call one of Keras's built-in functions — info.

## Why is this bad?
Loading a model is running code when the file says so: `keras.models.load_model`
with `safe_mode=False` executes Lambda bytecode, and older Keras releases
imported whatever module a config named and called what it found, even in safe
mode. The file is audited for whatever loads it next, often an older Keras on the
serving side. A model downloaded from elsewhere can therefore run commands on
the machine that loads it, CI included.

## How to fix
Replace Lambda layers with registered custom layers whose code lives in your
repository, load only files you trust with `safe_mode=False`, and keep Keras
up to date (kerascheck loads models only with Keras 3.15 or later, whose loader
it checked for the fixes to the CVEs above).

## Example
```python
x = keras.layers.Lambda(lambda t: t * 2.0)(x)
```
Use instead:
```python
@keras.saving.register_keras_serializable(package="myproject")
class Double(keras.layers.Layer):
    def call(self, t):
        return t * 2.0

x = Double()(x)
```
"""
import base64
import binascii
import builtins
import re
import sys

from kerascheck.facts.keras_names import BUILTIN_LAYERS
from kerascheck.facts.libraries import LIBRARIES
from kerascheck.formats.savedmodel.audit import audit
from kerascheck.rule import Rule

RULE = Rule(name="unsafe-code", code="KC501", severity="error", tier="spec")

# Every module of Python itself: a config has no business naming any of them.
PYTHON_MODULES = frozenset(sys.stdlib_module_names) | {"builtins", "__builtin__"}
PYTHON_BUILTINS = frozenset(dir(builtins))
# Libraries installed beside Keras whose functions read, write, fetch or unpickle
# when called with the arguments a config supplies (numpy.load, tensorflow.io.write_file, ...).
LIBRARY_MODULES = frozenset({
    "numpy", "tensorflow", "torch", "jax", "jaxlib", "scipy", "pandas", "h5py", "requests", "urllib3",
    "httpx", "yaml", "dill", "joblib", "cloudpickle", "IPython", "setuptools", "pip", "pkg_resources", "absl",
    "fsspec", "huggingface_hub", "boto3", "botocore", "paramiko", "psutil", "pexpect", "sh", "docker",
})
# Built-ins that run code or touch files even with harmless-looking arguments.
DANGEROUS_BUILTINS = {"eval", "exec", "compile", "open", "__import__", "getattr", "setattr", "delattr",
                      "globals", "locals", "vars", "input", "breakpoint", "exit", "quit", "help", "print"}
# Keras writes its own built-in functions as {"module": "builtins", "class_name": "function",
# "config": NAME} and resolves NAME in these modules (serialization_lib.BUILTIN_MODULES). The
# lower-case callables of keras.activations, constraints, initializers, losses, metrics, optimizers
# and regularizers in Keras 3.15; a test keeps the list in step with the installed Keras.
KERAS_FUNCTIONS = frozenset({
    "binary_accuracy", "binary_crossentropy", "binary_focal_crossentropy", "categorical_accuracy",
    "categorical_crossentropy", "categorical_focal_crossentropy", "categorical_generalized_cross_entropy",
    "categorical_hinge", "celu", "circle", "concordance_correlation", "constant", "cosine_similarity", "ctc",
    "deserialize", "dice", "elu", "exponential", "gelu", "get", "glorot_normal", "glorot_uniform", "glu",
    "hard_shrink", "hard_sigmoid", "hard_silu", "hard_swish", "hard_tanh", "he_normal", "he_uniform", "hinge",
    "huber", "identity", "kl_divergence", "l1", "l1_l2", "l2", "leaky_relu", "lecun_normal", "lecun_uniform",
    "linear", "log_cosh", "log_sigmoid", "log_softmax", "max_norm", "mean_absolute_error",
    "mean_absolute_percentage_error", "mean_squared_error", "mean_squared_logarithmic_error", "min_max_norm",
    "mish", "non_neg", "ones", "orthogonal", "orthogonal_regularizer", "pearson_correlation", "poisson",
    "random_normal", "random_uniform", "relu", "relu6", "selu", "serialize", "sigmoid", "silu", "soft_shrink",
    "softmax", "softplus", "softsign", "sparse_categorical_accuracy", "sparse_categorical_crossentropy",
    "sparse_plus", "sparse_sigmoid", "sparse_top_k_categorical_accuracy", "sparsemax", "squared_hinge",
    "squareplus", "stft", "swish", "tanh", "tanh_shrink", "threshold", "top_k_categorical_accuracy",
    "truncated_normal", "tversky", "unit_norm", "variance_scaling", "zeros",
})
# Packages of the Keras family: the loader resolves their names itself.
KERAS_PACKAGES = {"keras", "tf_keras", "keras_hub", "keras_cv", "keras_nlp", "keras_rs"}
# keras.X (and keras.src.X) namespaces that hold parts of a model.
MODELING = {
    "activations", "applications", "constraints", "distillation", "dtype_policies", "engine", "initializers",
    "layers", "legacy", "losses", "metrics", "mixed_precision", "models", "ops", "optimizers", "quantizers",
    "random", "regularizers", "tree", "premade", "feature_column",
}
# Namespaces that load, save, fetch, configure or run things; never a part of a model,
# wherever they sit in a module path (keras.src.legacy.saving, keras_hub.src.utils).
NON_MODELING_PARTS = {"backend", "callbacks", "config", "datasets", "export", "saving", "utils", "distribution",
                      "visualization", "wrappers", "preprocessing", "testing", "api_export", "version"}
# Keras's own functions that do harm when a config names them.
KERAS_GADGETS = {
    "get_file": ("downloads a URL or reads a local path when the model loads", "CVE-2025-8747"),
    "enable_unsafe_deserialization": ("turns safe mode off in the middle of loading", "CVE-2025-9906"),
}
# Functions that load or save models, weights or files, wherever a Keras namespace exports them
# (Keras 3.15 refuses these by name: serialization_lib.NON_MODELING_APIS).
KERAS_FILE_FUNCTIONS = {
    "load_model", "save_model", "model_from_json", "load_weights", "save_weights", "load_img", "save_img",
    "deserialize_keras_object", "serialize_keras_object", "register_keras_serializable", "clear_session",
    "image_dataset_from_directory", "text_dataset_from_directory", "audio_dataset_from_directory",
}
LOOKUP_LAYERS = {"StringLookup", "IntegerLookup", "TextVectorization"}
_BASE64 = re.compile(r"[A-Za-z0-9+/=\s]+")
MIN_CODE_CHARS = 36  # base64 of the 27 bytes a code object's header needs

_FIX_FOREIGN = "Do not load this file; if it is yours, re-save it from code that uses Keras or registered functions only."
_FIX_BYTECODE = ("Replace the Lambda with a registered custom layer whose code lives in your repository "
                 "(@keras.saving.register_keras_serializable()), and re-save the model.")


def audit_savedmodel(spec):
    """The audit of a SavedModel folder: its graphs' ops, its files, and tf.keras's metadata config
    through this rule's own check; `.blocking` keeps the folder from being run."""
    return audit(spec, RULE, check)


def _bad_name(name) -> bool:
    return isinstance(name, str) and ("/" in name or "\\" in name or ".." in name or "\x00" in name)


def check(facts):
    spec = facts.spec
    if spec.format == "savedmodel":  # SavedModel folders: the graph audit in kerascheck.formats.savedmodel (issue 14)
        yield from audit_savedmodel(spec).findings
        return
    owners = {id(layer.config): layer for layer in spec.layers}
    seen: set = set()
    flagged: set = set()  # layers whose own entry names something foreign: no "custom class" note then

    def emit(finding):
        key = (finding.layer, finding.message)
        if key not in seen:
            seen.add(key)
            yield finding

    roots = [(spec.config, ())]
    training = _training_config(spec)
    if training is not None:
        roots.append((training, ("training_config",)))
    for root, prefix in roots:
        for finding, entry_of in _walk(root, prefix, owners, spec.format):
            if entry_of is not None and finding.severity == "error":
                flagged.add(entry_of)
            yield from emit(finding)

    custom: dict[str, dict] = {}
    for layer in spec.layers:
        if _bad_name(layer.name) or _bad_name(layer.config.get("name")):
            yield from emit(RULE.finding(
                layer=layer.qualname,
                message=f"Layer name {layer.name!r} holds path separators or '..', which Keras never writes; "
                        "a loader that builds file paths from layer names can be steered outside its folder "
                        "(CVE-2026-12479).",
                fix="Do not load this file; re-save the model from code you trust.",
                evidence={"name": layer.name, "cve": "CVE-2026-12479"},
            ))
        if _is_custom(layer) and layer.qualname not in flagged:
            entry = custom.setdefault(layer.class_name, {"module": layer.module,
                                                         "registered_name": layer.registered_name, "layers": []})
            entry["layers"].append(layer.qualname)
    for note in spec.notes:
        if note.startswith("unexpected archive member"):
            yield from emit(RULE.finding(
                layer=None, severity="warning",
                message=f"The archive has an {note}; Keras writes only config.json, metadata.json, "
                        "model.weights.h5 and assets/.",
                fix="Re-save the model with model.save('model.keras') from code you trust.",
            ))
    for cls, entry in custom.items():
        origin = f"module {entry['module']!r}" if entry["module"] else "no module"
        reg = f", registered as {entry['registered_name']!r}" if entry["registered_name"] else ""
        yield RULE.finding(
            layer=entry["layers"][0],
            severity="info",
            message=f"The model needs the custom class {cls.split('>')[-1]!r} ({origin}{reg}) for "
                    f"{len(entry['layers'])} layer(s): {', '.join(entry['layers'][:5])}"
                    f"{' ...' if len(entry['layers']) > 5 else ''}. Loading it imports your code.",
            fix="Make sure the class comes from your own code: keras.models.load_model(path, "
                f"custom_objects={{{cls.split('>')[-1]!r}: {cls.split('>')[-1]}}}).",
            evidence={"class_name": cls, **entry},
        )
    for (kind, name), entry in _inventory(spec, set(custom)).items():
        if ">" in name:  # Keras writes a registered function as module "builtins", "package>name"
            origin, reg = f"registered as {name!r}", ""
        else:
            origin = f"module {entry['module']!r}" if entry["module"] else "no module"
            reg = f", registered as {entry['registered_name']!r}" if entry["registered_name"] else ""
        where = ", ".join(entry["where"][:5]) + (" ..." if len(entry["where"]) > 5 else "")
        short = name.split(">")[-1]
        yield RULE.finding(
            layer=None,
            severity="info",
            message=f"The model needs the custom {kind} {short!r} ({origin}{reg}) {where}. Loading it imports "
                    "your code.",
            fix=f"Make sure the {kind} comes from your own code: keras.models.load_model(path, "
                f"custom_objects={{{short!r}: {short}}}).",
            evidence={"class_name" if kind == "class" else "function": name, "module": entry["module"],
                      "registered_name": entry["registered_name"], "used": entry["where"]},
        )


def _inventory(spec, layer_classes: set) -> dict:
    """{(kind, name): {module, registered_name, where}} of the user's code the config names outside
    layer entries: the subclassed model itself, custom losses, metrics, activations, initialisers,
    Lambda functions. Names that point outside the user's code are findings of their own."""
    found: dict = {}
    layer_configs = {id(layer.config) for layer in spec.layers}

    def note(kind, name, module, registered, where):
        entry = found.setdefault((kind, name), {"module": module, "registered_name": registered, "where": []})
        if where not in entry["where"]:
            entry["where"].append(where)

    if spec.config.get("class_name") not in ("Functional", "Sequential", "Model") and \
            _users(spec.config.get("module"), spec.config["class_name"], spec.config.get("registered_name")):
        note("class", spec.config["class_name"], spec.config.get("module"), spec.config.get("registered_name"),
             "as the model itself (a keras.Model subclass)")
    stack = [(spec.config, ())]
    while stack:
        node, path = stack.pop()
        if isinstance(node, dict):
            cls, cfg = node.get("class_name"), node.get("config")
            if path and isinstance(cls, str) and not (isinstance(cfg, dict) and id(cfg) in layer_configs):
                module, registered = node.get("module"), node.get("registered_name")
                if cls == "function" and isinstance(cfg, str):
                    if _users(module, cfg, registered, function=True):
                        note("function", cfg, module, registered if registered != "function" else None,
                             f"at {_path_text(path)}")
                elif cls not in layer_classes and cls not in BUILTIN_LAYERS and _users(module, cls, registered):
                    note("class", cls, module, registered, f"at {_path_text(path)}")
            stack.extend((v, path + (k,)) for k, v in node.items() if isinstance(v, (dict, list)))
        elif isinstance(node, list):
            stack.extend((v, path + (i,)) for i, v in enumerate(node) if isinstance(v, (dict, list)))
    return found


def _library(module, registered) -> bool:
    """A class of a Keras-family library (KerasHub's "keras_hub>GPT2CausalLM"): not the user's code."""
    package = str(registered).split(">")[0] if ">" in str(registered or "") else str(module or "").split(".")[0]
    return package in LIBRARIES


def _users(module, name, registered, function: bool = False) -> bool:
    """Whether a config object names the user's own code (neither Keras's, nor Python's, nor hostile)."""
    if _library(module, registered) or str(name).split(">")[0] in ("keras_hub", "keras_nlp", "keras_cv", "keras_rs"):
        return False
    if ">" in str(name) or ">" in str(registered or ""):
        return True
    if not isinstance(module, str):
        return False
    root = module.split(".")[0]
    if root in KERAS_PACKAGES or root in PYTHON_MODULES or root in LIBRARY_MODULES:
        return False
    return _classify(module, str(name), function) is None


def _training_config(spec):
    """The training_config as saved (an .h5's attribute, a tf.keras SavedModel's metadata), whole.

    The spec's compile settings keep only the parts the other rules use; a config can name
    code in any part (metrics, loss_weights, optimizer_config), and Keras deserializes all
    of them when it compiles a loaded .h5 model.
    """
    return spec.training_config


# ------------------------------------------------------------------------- the walk


def _walk(root, prefix, owners, fmt):
    """Yield (finding, qualname of the layer whose own entry it is about, or None) for every suspect node.

    Every dict and list below `root` is visited once; each finding names the innermost
    layer the node belongs to and the path to it inside that layer's config.
    """
    stack = [(root, None, prefix, False)]
    while stack:
        node, owner, path, is_entry = stack.pop()
        if isinstance(node, dict):
            cfg = node.get("config")
            if isinstance(cfg, dict) and id(cfg) in owners and owners[id(cfg)] is not owner:
                owner, path, is_entry = owners[id(cfg)], (), True
            skip = set()
            for finding, skipped in _judge(node, owner, path, is_entry, fmt):
                skip |= skipped
                if finding is not None:
                    yield finding, (owner.qualname if is_entry and owner is not None else None)
            if node.get("class_name") == "__lambda__":
                continue  # reported whole; its strings are the bytecode itself
            children = []
            for key, value in node.items():
                if key in skip or not isinstance(value, (dict, list, str)):
                    continue
                # A layer entry's config is where its fields live: paths start there.
                child_path = path if (is_entry and key == "config") else path + (key,)
                children.append((value, owner, child_path, False))
            stack.extend(reversed(children))
        elif isinstance(node, list):
            stack.extend(reversed([(v, owner, path + (i,), False) for i, v in enumerate(node)
                                   if isinstance(v, (dict, list, str))]))
        elif isinstance(node, str):
            size = _marshalled(node)
            if size:
                yield _bytecode(owner, path, size, fmt, "a string that is"), None


def _judge(node: dict, owner, path, is_entry, fmt):
    """(finding or None, keys not to descend into) for one config object."""
    cls = node.get("class_name")
    cfg = node.get("config")
    if cls == "__lambda__":
        code = cfg.get("code", cfg.get("value")) if isinstance(cfg, dict) else cfg
        yield _bytecode(owner, path, _code_size(code), fmt), set()
        return
    # Keras 2 writes a Lambda's callables as FIELD plus FIELD_type ("lambda", "function", "raw")
    # and, for functions, the module in "module" (function) or FIELD_module (output_shape, mask).
    for key, kind in list(node.items()):
        if not (isinstance(key, str) and key.endswith("_type") and key != "_type"):
            continue
        field = key[: -len("_type")]
        if kind == "lambda" and field in node:
            yield _bytecode(owner, path + (field,), _code_size(node[field]), fmt), {field}
        elif kind == "function" and isinstance(node.get(field), str):
            module = node.get("module" if field == "function" else f"{field}_module")
            if isinstance(module, str):
                yield _foreign(owner, path + (field,), False, module, [node[field]], legacy=True), set()
    module = node.get("module")
    if isinstance(module, str) and isinstance(cls, str):
        names = [cfg] if cls == "function" and isinstance(cfg, str) else [cls]
        if isinstance(cfg, str) and cfg not in names:
            names.append(cfg)
        reg = node.get("registered_name")
        if isinstance(reg, str) and reg not in names and reg != "function":
            names.append(reg)
        yield _foreign(owner, path, is_entry, module, names, cls == "function"), set()
    if isinstance(cls, str) and isinstance(cfg, dict):
        yield _layer_class(owner, path, is_entry, cls.split(">")[-1], cfg), set()


def _where(owner, path, is_entry) -> tuple[str, str]:
    """('Layer 'x'', ' in its kernel_initializer') for messages."""
    if owner is not None:
        who = f"{'Lambda layer' if owner.class_name.split('>')[-1] == 'Lambda' else 'Layer'} '{owner.qualname}'"
        if is_entry:
            return who, " as its class"
        return who, f" in its {_path_text(path)}" if path else " in its config"
    if not path:
        return "The model's config", " as the model's class"
    return "The model's config", f" at {_path_text(path)}"


def _path_text(path) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


# ------------------------------------------------------------------------- bytecode


def _code_size(code) -> int:
    if isinstance(code, (list, tuple)) and code:
        code = code[0]
    if not isinstance(code, str):
        return 0  # malformed, but still an object that claims to carry code
    try:
        return len(base64.b64decode(code.encode("ascii"), validate=False))
    except (binascii.Error, ValueError, UnicodeEncodeError):
        return len(code)


def _marshalled(text: str) -> int:
    """Byte size of the code object `text` holds (base64, as Keras writes it, or raw), else 0.

    Reads only the header (type byte, small argument count, the bytecode's string type
    where Python 3.7-3.13 put it); nothing is unmarshalled.
    """
    if len(text) < MIN_CODE_CHARS or text[0] not in "4Ycã":
        return 0
    if text[0] in "cã":
        try:
            raw = text.encode("latin-1")
        except UnicodeEncodeError:
            return 0
        return len(raw) if _code_header(raw) else 0
    if not _BASE64.fullmatch(text):
        return 0
    head = "".join(text[:64].split())[:36]
    try:
        raw = base64.b64decode(head[: len(head) // 4 * 4], validate=True)
    except (binascii.Error, ValueError):
        return 0
    if not _code_header(raw):
        return 0
    return _code_size(text)


def _code_header(raw: bytes) -> bool:
    return (len(raw) >= 26 and raw[0] in (0x63, 0xE3) and raw[2:5] == b"\0\0\0"
            and any(raw[at] in (0x73, 0xF3) for at in (21, 25)))


def _bytecode(owner, path, size, fmt, what=""):
    who, where = _where(owner, path, False)
    if owner is not None and owner.class_name.split(">")[-1] == "Lambda" and path == ("function",):
        where = ""
    carries = f"{what} " if what else ""
    legacy = (" Keras 3.10 and earlier run it from legacy .h5 files even with safe_mode=True (CVE-2025-9905)."
              if fmt == "h5" else "")
    return RULE.finding(
        layer=owner.qualname if owner is not None else None,
        message=f"{who} carries {carries}{size} bytes of marshalled Python bytecode{where}, which runs on load "
                f"with safe_mode=False and can do anything (CVE-2024-3660); kerascheck did not unmarshal it."
                f"{legacy}",
        fix=_FIX_BYTECODE,
        evidence={"bytecode_bytes": size, "cve": "CVE-2024-3660", "field": _path_text(path) or None},
    )


# ----------------------------------------------------------------- names of code


def _foreign(owner, path, is_entry, module, names, function=False, legacy=False):
    """A finding when `module` plus one of `names` is code outside Keras's modeling namespaces.

    `legacy`: a Keras 2 Lambda's function reference, where keras.backend held the ops.
    """
    verdicts = [v for v in (_classify(module, name, function, legacy) for name in names if isinstance(name, str))
                if v]
    if not verdicts:
        return _builtin_lambda(owner, path, module, names, function)
    kind, full, detail, cve = max(verdicts, key=lambda v: _RANK[v[0]])
    who, where = _where(owner, path, is_entry)
    if kind == "gadget":
        why = f", which {detail}"
    elif kind == "python":
        why = (f": a {'built-in' if module.split('.')[0] in ('builtins', '__builtin__') else 'function or class'} "
               f"of Python's {module.split('.')[0]!r} module{detail}; Keras 3.8 and earlier import what a config "
               "names and call it while loading, even in safe mode")
    elif kind == "library":
        why = (f": code of the library {module.split('.')[0]!r}, not Keras; Keras 3.8 and earlier import what a "
               "config names and call it while loading, even in safe mode")
    else:
        why = (f": a Keras API that {detail}, not a part of a model; a config has no reason to name it, and a "
               "loader that resolves it calls it")
    return RULE.finding(
        layer=owner.qualname if owner is not None else None,
        message=f"{who} names {full}{where}{why}" + (f" ({cve})." if cve else "."),
        fix=_FIX_FOREIGN,
        evidence={"module": module, "name": full[len(module) + 1:] if full.startswith(module + ".") else full,
                  "field": _path_text(path) or None, **({"cve": cve} if cve else {})},
    )


_RANK = {"gadget": 3, "python": 2, "library": 2, "keras": 1}


def _classify(module: str, name: str, function: bool, legacy: bool = False):
    """(kind, full dotted name, detail, cve) for code outside Keras's modeling namespaces, else None."""
    leaf_name = name.split(">")[-1]
    full = f"{module}.{leaf_name}"
    parts = full.split(".")
    namespace, leaf = parts[:-1], parts[-1]
    if namespace[:2] == ["tensorflow", "keras"] or namespace[:3] == ["tensorflow", "python", "keras"]:
        namespace = ["keras"] + namespace[namespace.index("keras") + 1:]
    root = namespace[0] if namespace else ""
    if root in PYTHON_MODULES:
        if root in ("builtins", "__builtin__") and len(namespace) == 1:
            if function and leaf in KERAS_FUNCTIONS:
                return None  # Keras's own way of writing its built-in functions
            if ">" in name or leaf not in PYTHON_BUILTINS:
                # Keras writes the user's registered functions as builtins "package>name" (3.6 and
                # earlier: the bare name); only a name Python's builtins has can resolve to Python.
                return None
            detail = " that runs code or opens files" if leaf in DANGEROUS_BUILTINS else ""
            return "python", full, detail, "CVE-2025-1550"
        return "python", full, "", "CVE-2025-1550"
    if root in LIBRARY_MODULES:
        return "library", full, "", "CVE-2025-1550"
    if root not in KERAS_PACKAGES:
        return None  # the user's own code: reported as a custom class, never imported by kerascheck
    if leaf in KERAS_GADGETS:
        what, cve = KERAS_GADGETS[leaf]
        return "gadget", full, what, cve
    inner = namespace[1:]
    if inner[:1] == ["src"]:
        inner = inner[1:]
    # keras.layers.preprocessing (Keras's and KerasHub's) holds layers, not the data utilities of
    # keras.preprocessing: FeatureSpace's TFDConcat and every lookup layer live there.
    bad = [p for i, p in enumerate(inner) if p in NON_MODELING_PARTS and not (legacy and p == "backend")
           and not (p == "preprocessing" and i > 0 and inner[i - 1] == "layers")]
    if root == "keras" and inner and inner[0] not in MODELING and not (legacy and inner[0] == "backend"):
        bad = bad or [inner[0]]
    if bad:
        return "keras", full, f"belongs to keras.{bad[0]}", None
    if leaf in KERAS_FILE_FUNCTIONS:
        return "keras", full, "loads or saves files", None
    return None


def _builtin_lambda(owner, path, module, names, function):
    """Keras's own function named the way Keras writes it, as a Lambda's function: said for what it is."""
    if not (function and module == "builtins" and owner is not None and path == ("function",)
            and owner.class_name.split(">")[-1] == "Lambda"):
        return None
    name = names[0]
    return RULE.finding(
        layer=owner.qualname, severity="info",
        message=f"Lambda layer '{owner.qualname}' calls {name!r}, one of Keras's built-in functions (the file "
                f"writes it as builtins.{name}, as Keras does, and Keras resolves it in keras.activations, "
                "losses, metrics and the like); it carries no bytecode.",
        fix=f"Nothing runs from the file here; to be explicit, use keras.layers.Activation({name!r}) "
            "or a registered custom layer instead of the Lambda.",
        evidence={"module": module, "name": name, "field": "function"},
    )


# ------------------------------------------------------------------ layer classes


def _layer_class(owner, path, is_entry, plain, cfg):
    if plain not in ("TFSMLayer", "TorchModuleWrapper") and plain not in LOOKUP_LAYERS:
        return None
    layer = owner.qualname if owner is not None else None
    if is_entry:
        what = f"Layer '{layer}' is a {plain}"
    else:
        who, where = _where(owner, path, False)
        what = f"{who} holds a {plain}{where}"
    if plain == "TFSMLayer":
        return RULE.finding(
            layer=layer,
            message=f"{what}: loading it runs the TensorFlow graph of the SavedModel at "
                    f"{str(cfg.get('filepath'))!r} (CVE-2026-1462).",
            fix="Rebuild the model from Keras layers and save it as .keras; never load a TFSMLayer "
                "from a file you did not make.",
            evidence={"filepath": cfg.get("filepath"), "cve": "CVE-2026-1462"},
        )
    if plain == "TorchModuleWrapper":
        return RULE.finding(
            layer=layer,
            message=f"{what} whose module is unpickled on load, which can run arbitrary code (CVE-2025-49655).",
            fix="Re-implement the torch module as Keras layers, or load the file only if you made it.",
            evidence={"cve": "CVE-2025-49655"},
        )
    if isinstance(cfg.get("vocabulary"), str):
        return RULE.finding(
            layer=layer,
            severity="warning",
            message=f"{plain} '{layer}' reads its vocabulary from {cfg['vocabulary']!r}, a path or URL outside "
                    "the archive, when loaded (CVE-2025-12058)." if is_entry else
                    f"{what}, which reads its vocabulary from {cfg['vocabulary']!r}, a path or URL outside the "
                    "archive, when loaded (CVE-2025-12058).",
            fix="Pass the vocabulary as a list before saving so it travels inside the archive: "
                f"keras.layers.{plain}(vocabulary=[...]).",
            evidence={"vocabulary": cfg["vocabulary"], "cve": "CVE-2025-12058"},
        )
    return None


def _is_custom(layer) -> bool:
    if _library(layer.module, layer.registered_name):
        return False  # listed once, as a library the model uses, in the report's header
    if layer.registered_name and ">" in layer.registered_name:
        return True
    if layer.module and not (layer.module.startswith("keras") or layer.module.startswith("tf_keras")):
        return True
    if ">" in layer.class_name:
        return True
    # Keras's own classes that keras.layers does not export (FeatureSpace's TFDConcat) are
    # written with their full module path: Keras's code, not the user's.
    return layer.class_name not in BUILTIN_LAYERS and not (layer.module or "").split(".")[0] in ("keras", "tf_keras")
