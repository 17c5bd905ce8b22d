"""A Keras model config (and the weights the format found for its layers) into a ModelSpec.

Every format that holds a Keras config (`.keras`, HDF5, a tf.keras SavedModel's
metadata) builds its spec here, so a layer, an input or a loss means the same whatever
file it came from. Nothing here opens a file.
"""
from __future__ import annotations

import re
from typing import Any, Iterator, Mapping

from kerascheck.errors import InputError
from kerascheck.facts.spec import CompileSpec, InputSpec, LayerSpec, LossSpec, ModelSpec, OptimizerSpec


def is_subclassed(config: Mapping) -> bool:
    """A keras.Model subclass: its config is whatever get_config() returns, with no layer list."""
    inner = config.get("config")
    return isinstance(inner, dict) and not isinstance(inner.get("layers"), list) \
        and config.get("class_name") not in ("Functional", "Sequential")


def _built_inputs(config: Mapping) -> tuple[InputSpec, ...]:
    """The inputs a subclassed model was built with (build_config), batch dimension left open."""
    build = config.get("build_config")
    shape = build.get("input_shape") if isinstance(build, dict) else None

    def one(name: str, s) -> InputSpec | None:
        if not isinstance(s, list) or not s or not all(d is None or isinstance(d, int) for d in s):
            return None
        return InputSpec(name, (None,) + _shape(s)[1:], "float32")

    if isinstance(shape, dict):
        found = [one(str(k), v) for k, v in shape.items()]
    elif isinstance(shape, list) and shape and all(isinstance(s, list) for s in shape):
        found = [one(f"input_{i}", s) for i, s in enumerate(shape)]
    else:
        found = [one("input", shape)]
    return tuple(f for f in found if f is not None) if all(f is not None for f in found) else ()


def check_model_config(config: Any, what: str) -> None:
    if not isinstance(config, dict) or not isinstance(config.get("class_name"), str) or not isinstance(
        config.get("config"), dict
    ):
        raise InputError(f"{what} is not a Keras model config (no class_name/config at the top)")
    _validate_layers(config, what, depth=0)


def _validate_layers(entry: Mapping, what: str, depth: int) -> None:
    layers = entry["config"].get("layers")
    if layers is None:
        return
    if not isinstance(layers, list):
        raise InputError(f"{what}: 'layers' of {entry.get('class_name')} is not a list")
    for i, sub in enumerate(layers):
        if (
            not isinstance(sub, dict)
            or not isinstance(sub.get("class_name"), str)
            or not isinstance(sub.get("config"), dict)
            or not isinstance(entry_name(sub, strict=False), str)
        ):
            raise InputError(f"{what}: layer #{i} of {entry.get('class_name')} has no class_name, config or name")
        if is_model_entry(sub):
            _validate_layers(sub, what, depth + 1)


def entry_name(entry: Mapping, strict: bool = True):
    name = entry.get("name")
    if not isinstance(name, str):
        name = (entry.get("config") or {}).get("name")
    if strict and not isinstance(name, str):
        raise InputError("a layer in the config has no name")
    return name


def is_model_entry(entry: Mapping) -> bool:
    return isinstance((entry.get("config") or {}).get("layers"), list)


def model_layers(entry: Mapping) -> list:
    return (entry.get("config") or {}).get("layers") or []


def snake_case(name: str) -> str:
    # Keras's keras.src.utils.naming.to_snake_case, which names the weight groups.
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


def build_spec(path, fmt, keras_version, config, weights, compile_cfg, notes, walked=None) -> ModelSpec:
    layers: list[LayerSpec] = list(walked or ())
    if walked is None:
        _flatten(config, (), weights, layers)
    inputs = _inputs(config, layers)
    outputs = tuple(_resolve_outputs(config, ()))
    compile_spec = _compile_spec(compile_cfg, config, outputs)
    return ModelSpec(
        path=path,
        format=fmt,
        keras_version=keras_version,
        class_name=config["class_name"],
        name=str(config["config"].get("name") or ""),
        config=config,
        layers=tuple(layers),
        inputs=inputs,
        outputs=outputs,
        compile=compile_spec,
        notes=notes,
        raw_compile=compile_cfg if isinstance(compile_cfg, dict) else None,
    )


def _flatten(entry: Mapping, scope: tuple[str, ...], weights: dict, out: list) -> None:
    sequential = entry.get("class_name") == "Sequential" or not any(
        "inbound_nodes" in sub for sub in model_layers(entry)
    )
    prev = None
    for sub in model_layers(entry):
        name = entry_name(sub)
        if sequential:
            inbound = (prev,) if prev else ()
            prev = name
        else:
            inbound = tuple(dict.fromkeys(_history_names(sub.get("inbound_nodes"))))
        qual = "/".join(scope + (name,))
        out.append(
            LayerSpec(
                name=name,
                class_name=sub["class_name"],
                module=sub.get("module") if isinstance(sub.get("module"), str) else None,
                registered_name=sub.get("registered_name") if isinstance(sub.get("registered_name"), str) else None,
                config=sub["config"],
                inbound=inbound,
                scope=scope,
                weights=weights.get(qual, ()),
            )
        )
        if is_model_entry(sub):
            _flatten(sub, scope + (name,), weights, out)


def _history_names(node: Any) -> Iterator[str]:
    """Producer layer names in inbound_nodes, in the Keras 3 and the Keras 2 format."""
    if isinstance(node, dict):
        if node.get("class_name") == "__keras_tensor__":
            history = (node.get("config") or {}).get("keras_history")
            if isinstance(history, list) and history and isinstance(history[0], str):
                yield history[0]
            return
        for value in node.values():
            yield from _history_names(value)
    elif isinstance(node, list):
        if len(node) >= 3 and isinstance(node[0], str) and isinstance(node[1], int):
            yield node[0]  # Keras 2: [layer_name, node_index, tensor_index, kwargs]
            return
        for value in node:
            yield from _history_names(value)


def layer_refs(node: Any) -> Iterator[str]:
    """Layer names in input_layers/output_layers ([name, node, tensor], nested in lists or dicts)."""
    if isinstance(node, list):
        if len(node) == 3 and isinstance(node[0], str) and isinstance(node[1], int):
            yield node[0]
            return
        for value in node:
            yield from layer_refs(value)
    elif isinstance(node, dict):
        for value in node.values():
            yield from layer_refs(value)


def _resolve_outputs(entry: Mapping, scope: tuple[str, ...]) -> Iterator[str]:
    subs = {entry_name(s): s for s in model_layers(entry)}
    if not subs:
        return
    names = list(layer_refs(entry["config"].get("output_layers")))
    if not names:
        names = [entry_name(model_layers(entry)[-1])]
    for name in names:
        sub = subs.get(name)
        if sub is None:
            continue
        if is_model_entry(sub):
            yield from _resolve_outputs(sub, scope + (name,))
        else:
            yield "/".join(scope + (name,))


def _inputs(config: Mapping, layers: list[LayerSpec]) -> tuple[InputSpec, ...]:
    if is_subclassed(config):
        return _built_inputs(config)
    found = []
    for layer in layers:
        if layer.scope == () and layer.class_name == "InputLayer":
            shape = layer.config.get("batch_shape") or layer.config.get("batch_input_shape")
            found.append(InputSpec(layer.name, _shape(shape), _dtype_name(layer.config.get("dtype"))))
    if found:
        # In the order the model takes them, which input_layers gives (the layer list may differ).
        order = list(layer_refs(config["config"].get("input_layers")))
        rank = {name: i for i, name in enumerate(order)}
        return tuple(sorted(found, key=lambda inp: rank.get(inp.name, len(rank))))
    # A Sequential model without an InputLayer entry records its shape elsewhere.
    cfg = config["config"]
    shape = cfg.get("build_input_shape")
    first = next((l for l in layers if l.scope == ()), None)
    if shape is None and first is not None:
        shape = first.config.get("batch_input_shape") or (first.config.get("build_config") or {}).get("input_shape")
    if shape is None:
        return ()
    dtype = _dtype_name(first.config.get("dtype")) if first is not None else "float32"
    return (InputSpec("input", _shape(shape), dtype),)


def _shape(shape: Any) -> tuple[int | None, ...]:
    if not isinstance(shape, list):
        return ()
    return tuple(d if isinstance(d, int) and not isinstance(d, bool) else None for d in shape)


def _dtype_name(dtype: Any) -> str:
    if isinstance(dtype, str):
        return dtype
    if isinstance(dtype, dict):
        inner = dtype.get("config") or {}
        if isinstance(inner.get("name"), str):
            return inner["name"]
    return "float32"


_LOSS_ALIASES = {
    "mse": "mean_squared_error",
    "mae": "mean_absolute_error",
    "mape": "mean_absolute_percentage_error",
    "msle": "mean_squared_logarithmic_error",
    "kld": "kl_divergence",
    "kullback_leibler_divergence": "kl_divergence",
    "k_l_divergence": "kl_divergence",
    "logcosh": "log_cosh",
}


def _canonical_loss(name: str) -> str:
    if ">" in name:
        name = name.split(">", 1)[1]
    snake = snake_case(name) if any(c.isupper() for c in name) else name
    return _LOSS_ALIASES.get(snake, snake)


def loss_spec(value: Any) -> LossSpec | None:
    if isinstance(value, str):
        return LossSpec(_canonical_loss(value), False, {}, custom=">" in value)
    if isinstance(value, dict) and isinstance(value.get("class_name"), str):
        cfg = value.get("config")
        module = value.get("module") if isinstance(value.get("module"), str) else ""
        registered = value.get("registered_name") if isinstance(value.get("registered_name"), str) else ""
        if value["class_name"] == "function" and isinstance(cfg, str):
            custom = ">" in cfg or ">" in registered or not module.startswith(("keras", "tf_keras"))
            return LossSpec(_canonical_loss(cfg), False, {}, custom=custom)
        cfg = cfg if isinstance(cfg, dict) else {}
        custom = ">" in value["class_name"] or ">" in registered or bool(module) and not module.startswith(
            ("keras", "tf_keras"))
        return LossSpec(_canonical_loss(value["class_name"]), bool(cfg.get("from_logits", False)), cfg,
                        custom=custom)
    return None


def _compile_spec(compile_cfg: Any, config: Mapping, outputs: tuple[str, ...]) -> CompileSpec | None:
    if not isinstance(compile_cfg, dict):
        return None
    optimizer = _optimizer_spec(compile_cfg.get("optimizer"))
    loss = compile_cfg.get("loss")
    n = max(len(outputs), 1)
    if isinstance(loss, list):
        losses = tuple(loss_spec(v) for v in loss[:n]) + (None,) * max(0, n - len(loss))
    elif isinstance(loss, dict) and not isinstance(loss.get("class_name"), str):
        plain = [q.split("/")[0] for q in outputs]  # loss dicts are keyed by top-level output name
        losses = tuple(loss_spec(loss.get(name)) for name in plain) or (None,)
    else:
        losses = (loss_spec(loss),) * n
    if optimizer is None and all(l is None for l in losses):
        return None
    return CompileSpec(optimizer=optimizer, losses=losses)


def _optimizer_spec(value: Any) -> OptimizerSpec | None:
    if isinstance(value, str):
        return OptimizerSpec(value, {}, None, None, None, None, None)
    if not isinstance(value, dict) or not isinstance(value.get("class_name"), str):
        return None
    cls = value["class_name"].split(">")[-1]
    cfg = value.get("config") if isinstance(value.get("config"), dict) else {}
    lr = cfg.get("learning_rate", cfg.get("lr"))
    schedule = None
    if isinstance(lr, dict):
        schedule = {"class_name": str(lr.get("class_name", "?")), "config": lr.get("config") or {}}
        lr = None
    elif not isinstance(lr, (int, float)) or isinstance(lr, bool):
        lr = None

    def num(key):
        v = cfg.get(key)
        return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None

    return OptimizerSpec(
        class_name=cls,
        config=cfg,
        learning_rate=float(lr) if lr is not None else None,
        schedule=schedule,
        clipnorm=num("clipnorm"),
        global_clipnorm=num("global_clipnorm"),
        clipvalue=num("clipvalue"),
    )

