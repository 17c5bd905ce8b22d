"""The Keras-family libraries a model file names classes of (KerasHub, KerasCV, ...): library code,
never the user's, read from the config alone."""
from __future__ import annotations


# Libraries of the Keras family whose classes a file may name ("keras_hub>GPT2CausalLM"): when one is
# installed, kerascheck imports it itself, as Keras would resolve the names, and calls its classes
# library classes, not the user's code. Any other module a file names is never imported.
LIBRARIES = {"keras_hub": "KerasHub", "keras_nlp": "KerasNLP", "keras_cv": "KerasCV", "keras_rs": "Keras Recommenders"}


def library_classes(config) -> dict:
    """{library: sorted class names} of the Keras-family library classes a config names."""
    found: dict = {}
    stack = [config]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            cls, module, registered = node.get("class_name"), node.get("module"), node.get("registered_name")
            if isinstance(cls, str):
                package = registered.split(">")[0] if isinstance(registered, str) and ">" in registered else \
                    (module.split(".")[0] if isinstance(module, str) else None)
                if package in LIBRARIES:
                    found.setdefault(package, set()).add(cls.split(">")[-1])
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return {lib: sorted(names) for lib, names in found.items()}


def installed_library(name: str):
    """The installed version of a Keras-family library, or None."""
    try:
        from importlib.metadata import version

        return version(name.replace("_", "-"))
    except Exception:
        return None
