"""The file carries code, or names code, that would run when the model is loaded.

## What it does
Reads the config without loading anything and reports:

* `Lambda` layers carrying marshalled Python bytecode (the Keras 3 `__lambda__`
  form and the Keras 2 `function_type: lambda` form) — error;
* config entries naming functions or classes from Python modules that can run
  commands or touch files (`os`, `subprocess`, `builtins.eval`, ...) — error
  (CVE-2025-1550: safe mode used to import them anyway);
* `TFSMLayer` (loads a SavedModel graph from a path: CVE-2026-1462) and
  `TorchModuleWrapper` (unpickles a torch module: CVE-2025-49655) — error;
* lookup layers whose vocabulary is a file path or URL (reads local files:
  CVE-2025-12058) — warning;
* Keras functions that are gadgets when a config names them: `get_file`
  (downloads or reads a path: CVE-2025-8747) and `enable_unsafe_deserialization`
  (switches safe mode off mid-load: CVE-2025-9906) — error;
* layer names with path separators or `..`, which Keras never writes and which
  can steer file writes outside their folder (CVE-2026-12479) — error;
* archive members Keras never writes — warning;
* custom classes the file needs, with the module they claim to come from — info.

## Why is this bad?
Loading a model is running code when the file says so: `keras.models.load_model`
with `safe_mode=False` executes Lambda bytecode, and older Keras releases
imported whatever module a config named. A model downloaded from elsewhere can
therefore run commands on the machine that loads it, CI included.

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

from kerascheck.keras_names import BUILTIN_LAYERS
from kerascheck.rule import Rule

RULE = Rule(name="unsafe-code", code="KC501", severity="error", tier="spec")

DANGEROUS_MODULES = {
    "os", "posix", "nt", "subprocess", "sys", "shutil", "socket", "pickle", "marshal", "importlib",
    "runpy", "ctypes", "pty", "code", "codeop", "webbrowser", "pathlib", "io", "urllib", "http",
    "requests", "multiprocessing", "threading", "signal", "tempfile", "glob", "platform", "commands",
}
DANGEROUS_BUILTINS = {"eval", "exec", "compile", "open", "__import__", "getattr", "setattr", "delattr",
                      "globals", "locals", "vars", "input", "breakpoint", "exit", "quit"}
LOOKUP_LAYERS = {"StringLookup", "IntegerLookup", "TextVectorization"}
# Keras's own functions that do harm when a config names them.
KERAS_GADGETS = {
    "get_file": ("downloads a URL or reads a local path when the model loads", "CVE-2025-8747"),
    "enable_unsafe_deserialization": ("turns safe mode off in the middle of loading", "CVE-2025-9906"),
}


def _bad_name(name) -> bool:
    return isinstance(name, str) and ("/" in name or "\\" in name or ".." in name or "\x00" in name)


def check(facts):
    spec = facts.spec
    custom: dict[str, dict] = {}
    for layer in spec.layers:
        cls = layer.class_name
        plain = cls.split(">")[-1]
        if _bad_name(layer.name) or _bad_name(layer.config.get("name")):
            yield RULE.finding(
                layer=layer.qualname,
                message=f"Layer name {layer.name!r} holds path separators or '..', which Keras never writes; "
                        "a loader that builds file paths from layer names can be steered outside its folder "
                        "(CVE-2026-12479).",
                fix="Do not load this file; re-save the model from code you trust.",
                evidence={"name": layer.name, "cve": "CVE-2026-12479"},
            )
        if plain == "Lambda":
            yield from _lambda(layer)
        elif plain == "TFSMLayer":
            yield RULE.finding(
                layer=layer.qualname,
                message=f"Layer '{layer.qualname}' is a TFSMLayer: loading it runs the TensorFlow graph of "
                        f"the SavedModel at {str(layer.config.get('filepath'))!r} (CVE-2026-1462).",
                fix="Rebuild the model from Keras layers and save it as .keras; never load a TFSMLayer "
                    "from a file you did not make.",
                evidence={"filepath": layer.config.get("filepath"), "cve": "CVE-2026-1462"},
            )
        elif plain == "TorchModuleWrapper":
            yield RULE.finding(
                layer=layer.qualname,
                message=f"Layer '{layer.qualname}' is a TorchModuleWrapper whose module is unpickled on "
                        "load, which can run arbitrary code (CVE-2025-49655).",
                fix="Re-implement the torch module as Keras layers, or load the file only if you made it.",
                evidence={"cve": "CVE-2025-49655"},
            )
        elif plain in LOOKUP_LAYERS and isinstance(layer.config.get("vocabulary"), str):
            yield RULE.finding(
                layer=layer.qualname,
                severity="warning",
                message=f"{plain} '{layer.qualname}' reads its vocabulary from "
                        f"{layer.config['vocabulary']!r}, a path or URL outside the archive, when loaded "
                        "(CVE-2025-12058).",
                fix="Pass the vocabulary as a list before saving so it travels inside the archive: "
                    f"keras.layers.{plain}(vocabulary=[...]).",
                evidence={"vocabulary": layer.config["vocabulary"], "cve": "CVE-2025-12058"},
            )
        if _is_custom(layer):
            entry = custom.setdefault(cls, {"module": layer.module, "registered_name": layer.registered_name,
                                            "layers": []})
            entry["layers"].append(layer.qualname)
        yield from _named_callables(layer)
    for note in spec.notes:
        if note.startswith("unexpected archive member"):
            yield RULE.finding(
                layer=None, severity="warning",
                message=f"The archive has an {note}; Keras writes only config.json, metadata.json, "
                        "model.weights.h5 and assets/.",
                fix="Re-save the model with model.save('model.keras') from code you trust.",
            )
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


def _is_custom(layer) -> bool:
    if layer.registered_name and ">" in layer.registered_name:
        return True
    if layer.module and not (layer.module.startswith("keras") or layer.module.startswith("tf_keras")):
        return True
    return ">" in layer.class_name or layer.class_name not in BUILTIN_LAYERS


def _lambda(layer):
    cfg = layer.config
    fn = cfg.get("function")
    code = None
    if isinstance(fn, dict) and fn.get("class_name") == "__lambda__":
        inner = fn.get("config")
        code = inner.get("code") if isinstance(inner, dict) else inner
    elif cfg.get("function_type") == "lambda":
        code = fn[0] if isinstance(fn, (list, tuple)) and fn else fn
    else:
        return
    if not isinstance(code, str):
        code = ""  # malformed, but still a Lambda that claims to carry code
    try:
        size = len(base64.b64decode(code.encode("ascii"), validate=False))
    except (binascii.Error, ValueError, UnicodeEncodeError):
        size = len(code)
    yield RULE.finding(
        layer=layer.qualname,
        message=f"Lambda layer '{layer.qualname}' carries {size} bytes of marshalled Python bytecode, which "
                "runs on load with safe_mode=False and can do anything (CVE-2024-3660); kerascheck did "
                "not unmarshal it.",
        fix="Replace the Lambda with a registered custom layer whose code lives in your repository "
            "(@keras.saving.register_keras_serializable()), and re-save the model.",
        evidence={"bytecode_bytes": size, "cve": "CVE-2024-3660"},
    )


def _named_callables(layer):
    """Config entries that name a callable in a module that can run commands or touch files."""
    stack = [layer.config]
    if layer.config.get("function_type") == "function" and isinstance(layer.config.get("module"), str):
        stack.append({"module": layer.config["module"], "class_name": "function",
                      "config": layer.config.get("function")})
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            module = node.get("module")
            if isinstance(module, str) and isinstance(node.get("class_name"), str):
                root = module.split(".")[0]
                target = node.get("config") if isinstance(node.get("config"), str) else node["class_name"]
                if root in DANGEROUS_MODULES or (root == "builtins" and target in DANGEROUS_BUILTINS):
                    yield RULE.finding(
                        layer=layer.qualname,
                        message=f"Layer '{layer.qualname}' names {module}.{target} in its config; a loader "
                                "that imports it runs that function (CVE-2025-1550).",
                        fix="Do not load this file; if it is yours, re-save it from code that uses Keras "
                            "or registered functions only.",
                        evidence={"module": module, "name": target, "cve": "CVE-2025-1550"},
                    )
                elif target in KERAS_GADGETS:
                    what, cve = KERAS_GADGETS[target]
                    yield RULE.finding(
                        layer=layer.qualname,
                        message=f"Layer '{layer.qualname}' names {module}.{target} in its config, which "
                                f"{what} ({cve}).",
                        fix="Do not load this file; re-save the model from code you trust.",
                        evidence={"module": module, "name": target, "cve": cve},
                    )
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
