"""The `model` tier: the saved model loaded by Keras, in safe mode unless the user says otherwise.

Nothing here runs before the engine knows a selected rule needs it, so `--static`
and spec-only runs never import TensorFlow.
"""
from __future__ import annotations

import importlib
import importlib.util
import inspect
import os
import re
import sys
from dataclasses import replace

from kerascheck.backend import quiet_stderr, setup_backend
from kerascheck.errors import InputError, TierUnavailable, UsageError
from kerascheck.facts.build import is_subclassed
from kerascheck.facts.keras_names import BUILTIN_LAYERS
from kerascheck.facts.libraries import LIBRARIES, installed_library, library_classes
from kerascheck.options import Options
from kerascheck.rule import Facts
from kerascheck.rules import unsafe_code


def import_custom_objects(specs: tuple[str, ...]) -> dict:
    """Import the user's code (FILE.py or a module name); registration happens on import.

    Returns the classes and functions the code defines, for load_model's custom_objects.
    """
    objects: dict = {}
    for spec in specs:
        if spec.endswith(".py") or os.sep in spec:
            path = os.path.abspath(spec)
            if not os.path.isfile(path):
                raise UsageError(f"--custom-objects {spec}: no such file")
            name = f"kerascheck_user_{abs(hash(path))}"
            module = sys.modules.get(name)
            if module is None:
                loader_spec = importlib.util.spec_from_file_location(name, path)
                module = importlib.util.module_from_spec(loader_spec)
                sys.modules[name] = module
                try:
                    loader_spec.loader.exec_module(module)
                except Exception as exc:
                    del sys.modules[name]
                    raise UsageError(f"--custom-objects {spec}: importing it failed ({type(exc).__name__}: {exc})") from None
        else:
            try:
                module = importlib.import_module(spec)
            except Exception as exc:
                raise UsageError(f"--custom-objects {spec}: cannot import it ({type(exc).__name__}: {exc})") from None
        for attr, value in vars(module).items():
            if not attr.startswith("_") and (inspect.isclass(value) or inspect.isfunction(value)) \
                    and getattr(value, "__module__", None) == module.__name__:
                objects[attr] = value
    return objects


# The first Keras release whose loader kerascheck checked for the guards against the
# CVEs that unsafe-code names (external HDF5 storage, zip bombs, get_file and
# enable_unsafe_deserialization gadgets, TorchModuleWrapper in safe mode).
MIN_KERAS = (3, 15)


def load_model(spec, options: Options):
    """Load the model at spec.path with Keras; raise TierUnavailable or InputError with the reason."""
    refusal = _refuse_before_loading(spec, options)
    if refusal:
        raise TierUnavailable(refusal)
    setup_backend(options)
    import keras

    version = tuple(int(p) for p in re.findall(r"\d+", keras.__version__)[:2])
    if version < MIN_KERAS and not options.unsafe:
        raise TierUnavailable(f"Keras {keras.__version__} is older than {'.'.join(map(str, MIN_KERAS))}, the first "
                              "release kerascheck trusts to load files from elsewhere; upgrade Keras (or pass "
                              "--unsafe for files you trust)")

    custom = import_custom_objects(options.custom_objects)
    import_libraries(spec)
    foreign = _unsupplied_references(spec, custom) if not options.unsafe else []
    if foreign:
        module, name, kind = foreign[0]
        raise InputError(f"needs the custom {kind} {name!r} to load (the file says it comes from module {module!r}); "
                         "kerascheck never imports a module a file names: pass its code with --custom-objects "
                         "FILE.py (or a module name)")
    # Layers draw their seeds (Dropout's, a sampling layer's) when they are built: seeded
    # here, the same file gives the same probe runs in every process.
    keras.utils.set_random_seed(options.seed)
    try:
        return keras.models.load_model(spec.path, custom_objects=custom, compile=False,
                                       safe_mode=not options.unsafe)
    except Exception as exc:  # Keras raises TypeError, ValueError, KeyError... with long texts
        text = " ".join(str(exc).split())
        missing = re.search(r"Could not locate (?:class|function) '([^']+)'", text) or \
            re.search(r"Unknown (?:layer|object|class)(?: name)?: '?([A-Za-z_][\w.>]*)", text)
        if missing:
            cls = missing.group(1)
            claim = next((l.module for l in spec.layers if l.class_name.split(">")[-1] == cls.split(">")[-1]
                          and l.module), None)
            where = f"the file says it comes from module {claim!r}" if claim else "the file does not say which module"
            raise InputError(f"needs the custom class {cls!r} to load ({where}); pass its code with "
                             f"--custom-objects FILE.py (or a module name)") from None
        cause = _innermost(exc)
        if custom or _names_custom_code(spec):
            # The user's code is there and Keras still fails: the code is what is wrong, and
            # the file cannot be checked past the spec tier until it is fixed.
            raise InputError(f"Keras could not load it with your code: {cause}{_load_fix(cause)}") from None
        raise TierUnavailable(f"Keras could not load the model: {cause}") from None


def with_live_classes(spec, info):
    """For a subclassed model, the spec's layers with the classes and configs of the loaded layers.

    The file names no classes for a subclass's layers; the reader guessed them. The
    loaded model knows them, and Keras's own layers' configs are safe to read.
    """
    if info is None or not is_subclassed(spec.config):
        return spec
    by_path = {path: layer for path, layer in info.paths.values()}
    layers = []
    for layer in spec.layers:
        live = by_path.get(layer.qualname)
        if live is not None:
            cls = type(live)
            module = getattr(cls, "__module__", "") or ""
            try:
                config = live.get_config() if module.startswith("keras") else dict(layer.config)
            except Exception:
                config = dict(layer.config)
            layer = replace(layer, class_name=cls.__name__, module=module, config=config)
        layers.append(layer)
    return replace(spec, layers=tuple(layers))  # a new spec: the layer caches start empty


def _innermost(exc: BaseException) -> str:
    """The message of the exception at the bottom of Keras's chain of re-raises, on one line."""
    seen = set()
    while (exc.__cause__ or exc.__context__) is not None and id(exc) not in seen:
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    text = " ".join(str(exc).split())
    if "Exception encountered:" in text:
        text = text.split("Exception encountered:", 1)[1].strip()
    return f"{type(exc).__name__}: {text[:300]}"


def _load_fix(cause: str) -> str:
    kwarg = re.search(r"(\w+)\.__init__\(\) got an unexpected keyword argument '(\w+)'", cause)
    if kwarg:
        return (f"; fix: let {kwarg.group(1)}.__init__ accept **kwargs and pass them on "
                f"(def __init__(self, ..., **kwargs): super().__init__(**kwargs)), and give it a get_config() "
                "that returns every argument __init__ takes")
    missing = re.search(r"(\w+)\.__init__\(\) missing \d+ required positional arguments?: (.+)$", cause)
    if missing:
        return (f"; fix: add {missing.group(2)} to what {missing.group(1)}.get_config() returns "
                "({**super().get_config(), ...}), then re-save the model")
    return ""


def _names_custom_code(spec) -> bool:

    return is_subclassed(spec.config) or any(
        layer.class_name not in BUILTIN_LAYERS or ">" in (layer.registered_name or "") for layer in spec.layers)


def import_libraries(spec) -> list:
    """Import the installed Keras-family libraries the file names, so Keras finds their classes."""
    imported = []
    for lib in library_classes(spec.config):
        if installed_library(lib) is not None:
            try:
                with quiet_stderr():
                    importlib.import_module(lib)
                imported.append(lib)
            except Exception:  # a broken install: its names stay unsupplied and say so
                continue
    return imported


def _unsupplied_references(spec, custom: dict) -> list[tuple[str, str, str]]:
    """(module, name, "class" or "function") of config entries naming code outside Keras that the user did not supply.

    Keras would import those modules while deserializing, before any check of its own.
    """
    import keras

    allowed = set(custom)
    for obj in custom.values():
        try:
            allowed.add(keras.saving.get_registered_name(obj))
        except Exception:
            pass
    found = []
    # Keras itself imports what keras, keras_hub, keras_cv and keras_nlp name (their classes need not
    # be registered: KerasHub's RetinaNetLabelEncoder is not); an installed library is trusted.
    trusted = ("keras", "tf_keras") + tuple(lib for lib in LIBRARIES if installed_library(lib))
    stack = [spec.config]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            module, cls = node.get("module"), node.get("class_name")
            if isinstance(module, str) and isinstance(cls, str) and module.split(".")[0] not in trusted:
                name = node.get("config") if cls == "function" and isinstance(node.get("config"), str) else cls
                if module == "builtins" and cls == "function" and _keras_builtin(keras, name):
                    stack.extend(node.values())
                    continue  # Keras writes its own functions this way (keras.activations.relu)
                registered = node.get("registered_name")
                # A registered function is named "package>name" in the config.
                short = name.split(">")[-1] if isinstance(name, str) else name
                if name not in allowed and short not in allowed and registered not in allowed \
                        and not _registered(registered) and not _registered(name):
                    found.append((module, name, "function" if cls == "function" else "class"))
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return found


def _keras_builtin(keras, name) -> bool:
    """Whether Keras resolves {"module": "builtins", "config": name} to one of its own functions.

    Mirrors serialization_lib: such names are looked up in these Keras modules.
    """
    return isinstance(name, str) and any(
        callable(getattr(getattr(keras, module, None), name, None))
        for module in ("activations", "constraints", "initializers", "losses", "metrics", "optimizers",
                       "regularizers"))


def _registered(name) -> bool:
    """Whether code already imported (the user's --custom-objects, or the calling program) registered it."""
    if not isinstance(name, str):
        return False
    import keras

    try:
        return keras.saving.get_registered_object(name) is not None
    except Exception:
        return False


def _refuse_before_loading(spec, options: Options) -> str | None:
    """Reasons not to hand the file to Keras at all, decided from the config alone.

    The same checks as the unsafe-code rule: anything it reports as an error, or
    under a CVE, keeps the file away from Keras's loader unless --unsafe.
    """
    if options.unsafe:
        return None

    for finding in unsafe_code.check(Facts(spec=spec)):
        if finding.severity == "error" or finding.evidence.get("cve"):
            where = f"layer '{finding.layer}': " if finding.layer else ""
            return (f"{where}{finding.message.rstrip('.')}; kerascheck will not load it "
                    "(rerun with --unsafe only if you trust the file)")
    return None
