"""How kerascheck feeds a loaded model, reads its outputs, and names its layers.

The same for a Functional or Sequential model and for a `keras.Model` subclass,
which has no symbolic inputs or outputs: its input shapes come from the
`build_config` Keras saved, or from `--data`, or from a Functional model it holds;
its outputs from one call on a small batch.

Layers are named as the spec tier names them (kerascheck.formats): a Functional
model's layers by their names, nested models' as "outer/inner"; a subclass's
layers by the attribute path Keras saves them under ("classifier", "blocks/dense_1"),
found by replaying Keras's own walk over the model's attributes.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kerascheck.errors import TierUnavailable, error_line

PROBE_BATCH = 2  # examples in the call that finds a subclassed model's outputs
# Sizes tried, in order, for an input's open dimensions (a sequence length, an image side):
# the first the model accepts is used everywhere (strided convolutions need longer inputs).
FILLS = (8, 32, 64, 128, 256, 4, 2)  # shorter last: a test config's BERT takes at most 5 positions


@dataclass(frozen=True)
class Port:
    name: str
    shape: tuple  # without the batch dimension; None where any size goes
    dtype: str


class ModelIO:
    """The model's inputs and outputs as lists, and one way to call it with them."""

    def __init__(self, model, spec, data_shapes: dict | None = None):
        import keras

        self.model = model
        self.functional = is_functional(model)
        self.keras = keras
        self.source = "the model's inputs"
        self.fill = FILLS[0]  # the size of every open dimension of the inputs kerascheck makes up
        if self.functional:
            tensors = list(model.inputs)
            # The inputs' own names, in the model's order (a config may list its InputLayers in
            # another); the spec's names where Keras renamed the tensors.
            names = [t.name.split(":")[0] for t in tensors]
            spec_names = [i.name for i in spec.inputs] if spec is not None else []
            if len(spec_names) == len(names) and not set(names) <= set(spec_names):
                names = spec_names
            self.inputs = [Port(n, tuple(t.shape[1:]), str(t.dtype)) for n, t in zip(names, tensors)]
            self._template = _template_of(model)
        else:
            self.inputs, self._template, self.source = _subclass_inputs(model, spec, data_shapes)
        # A subclass that only trains through its own train_step (a VAE, a GAN) may have no call():
        # it has no outputs, and the inference probes run its Functional parts instead.
        self.callable = self.functional or has_own_call(model)
        self.parts: list = [] if self.callable else held_parts(model)
        self.outputs = self._find_outputs() if self.callable else []

    def shape(self, port: "Port", n: int) -> tuple:
        """The concrete shape of n examples for `port`, open dimensions filled with self.fill."""
        return (n,) + tuple(d if d is not None else self.fill for d in port.shape)

    def zeros(self, n: int) -> list:
        return [zeros(p, n, self.fill) for p in self.inputs]

    def open_dims(self) -> bool:
        return any(d is None for p in self.inputs for d in p.shape)

    def first_call(self):
        """Call the model once on zeros, with the first open-dimension size it accepts; its outputs."""
        error = None
        for fill in FILLS if self.open_dims() else FILLS[:1]:
            self.fill = fill
            try:
                return self(self.zeros(PROBE_BATCH), training=False)
            except Exception as exc:  # too short for its convolutions, say: try a longer one
                error = error or exc
        self.fill = FILLS[0]
        raise error

    # -- calling

    def fit_structure(self, arrays: dict) -> None:
        """Feed the model's own train_step the inputs as fit() received them, a dict of `arrays`' names
        (keras-io's speech Transformer reads batch["source"] and batch["target"]), while call() keeps
        the structure it was built with."""
        self.fit_inputs = [Port(n, tuple(a.shape[1:]), str(a.dtype)) for n, a in arrays.items()]
        self.fit_template = {n: None for n in arrays}

    def pack_fit(self, xs: list):
        """The inputs as the model's own train_step receives them from fit()."""
        import tensorflow as tf

        if getattr(self, "fit_template", None) is not None:
            return tf.nest.pack_sequence_as(self.fit_template, [xs[i] for i in range(len(self.fit_inputs))])
        return self.pack(xs)

    def pack(self, xs: list):
        """The inputs in the structure the model takes (one array, a list, a dict)."""
        import tensorflow as tf

        if self._template is not None:
            try:
                return tf.nest.pack_sequence_as(self._template, list(xs))
            except (ValueError, TypeError):
                pass
        return xs[0] if len(xs) == 1 else list(xs)

    def __call__(self, xs: list, training: bool = False) -> list:
        """The model's outputs (a flat list of tensors) for the inputs `xs`."""
        import tensorflow as tf

        if not self.callable:
            raise TierUnavailable(no_call_reason(self.model))
        return tf.nest.flatten(self.model(self.pack(xs), training=training))

    def units(self) -> list:
        """[(name, ModelIO)] to run forward: the model itself, or the Functional parts of one with no call()."""
        return [("", self)] if self.callable else list(self.parts)

    def _find_outputs(self) -> list:
        if self.functional:
            names = getattr(self.model, "output_names", None) or []
            tensors = [t for t in self.keras.tree.flatten(self.model.outputs)]
            if len(names) != len(tensors):
                names = [t.name.split(":")[0] for t in tensors]
            return [Port(n, tuple(t.shape[1:]), str(t.dtype)) for n, t in zip(names, tensors)]
        try:
            outs = self.first_call()
        except Exception as exc:
            raise TierUnavailable(f"calling the model on inputs shaped {_shapes(self.inputs)} "
                                  f"({self.source}) failed: {error_line(exc)}") from None
        ports = []
        for i, t in enumerate(outs):
            shape = tuple(t.shape[1:])
            ports.append(Port(f"output_{i}" if len(outs) > 1 else "output", shape, str(t.dtype)))
        return ports


def _template_of(model):
    """The structure a Functional model takes its inputs in; a Sequential never called as a whole has
    no `input`, only its one input tensor."""
    try:
        return model.input
    except (AttributeError, ValueError):
        tensors = list(model.inputs)
        return tensors if len(tensors) > 1 else tensors[0]


def has_own_call(model) -> bool:
    """Whether the model's class defines call() (keras.Model's own only raises NotImplementedError)."""
    import keras

    return getattr(type(model), "call", None) is not keras.Model.call


def no_call_reason(model) -> str:
    return (f"{type(model).__name__} has no call() of its own: it trains only through its train_step, so it has "
            "no outputs to run forward")


def held_parts(model) -> list:
    """[(name, ModelIO)] of the Functional and Sequential models a subclass holds as attributes."""
    parts = []
    for layer in _tracked_layers(model):
        if is_functional(layer):
            try:
                parts.append((layer.name, ModelIO(layer, None)))
            except Exception:  # a part kerascheck cannot feed is left out
                continue
    return parts


def is_functional(model) -> bool:
    """A model with symbolic inputs and outputs (Functional, or a built Sequential)."""
    try:
        return bool(model.inputs) and bool(model.outputs)
    except (AttributeError, ValueError):
        return False


def zeros(port: Port, n: int, fill: int = FILLS[0]) -> np.ndarray:
    shape = (n,) + tuple(d if d is not None else fill for d in port.shape)
    if port.dtype == "string":
        return np.full(shape, "", dtype=object)
    return np.zeros(shape, dtype=port.dtype if "int" in port.dtype or "float" in port.dtype else "float32")


def _shapes(ports) -> str:
    return ", ".join("(" + ", ".join("None" if d is None else str(d) for d in (None,) + tuple(p.shape)) + ")"
                     for p in ports)


def _subclass_inputs(model, spec, data_shapes):
    """(ports, structure template, where they came from) for a model without symbolic inputs."""
    if spec is not None and spec.inputs:
        ports = [Port(i.name, tuple(i.shape[1:]), i.dtype) for i in spec.inputs]
        cfg = spec.config.get("build_config") if isinstance(spec.config, dict) else None
        shape = cfg.get("input_shape") if isinstance(cfg, dict) else None
        template = {p.name: None for p in ports} if isinstance(shape, dict) else (
            [None] * len(ports) if len(ports) > 1 else None)
        return ports, template, "the input shape Keras saved (build_config)"
    if data_shapes:
        ports = [Port(name, tuple(shape[1:]), dtype) for name, (shape, dtype) in data_shapes.items()]
        return ports, ([None] * len(ports) if len(ports) > 1 else None), "the arrays in --data"
    # Saved unbuilt (a model trained through its own train_step never calls itself):
    # the first Functional model it holds says what it takes, if calling it works.
    own_call = has_own_call(model)
    for layer in _tracked_layers(model):
        if is_functional(layer):
            ports = [Port(t.name.split(":")[0], tuple(t.shape[1:]), str(t.dtype)) for t in layer.inputs]
            if own_call:
                try:
                    import tensorflow as tf

                    model(tf.nest.pack_sequence_as(_template_of(layer), [zeros(p, PROBE_BATCH) for p in ports]),
                          training=False)
                except Exception:
                    continue
            return ports, _template_of(layer), (f"the inputs of '{layer.name}', the first model it holds "
                                                "(it was saved unbuilt)")
    if not own_call:
        raise TierUnavailable(f"{no_call_reason(model)}, and it holds no Functional model whose inputs would say "
                              "what it trains on")
    raise TierUnavailable("the model was saved before it was ever called (no build_config), so its input shape "
                          "is unknown: pass --data with an example of its inputs")


def _tracked_layers(model) -> list:
    try:
        return list(model._flatten_layers(include_self=False, recursive=False))
    except Exception:
        return list(getattr(model, "layers", []))


# ------------------------------------------------------------------ layer names


def layer_paths(model) -> dict:
    """id(layer) -> (path, layer) for the layers kerascheck reports on, in the order Keras saves them.

    Those are the layers of the model and of every Functional or Sequential model
    inside it; any other layer (Keras's, a custom one, a nested subclassed model) is
    one unit with everything inside it.
    """
    import keras

    out: dict = {}
    visited: set = set()
    try:
        from keras.src.saving.keras_saveable import KerasSaveable
        from keras.src.saving.saving_lib import _walk_saveable
        from keras.src.utils.naming import to_snake_case
    except ImportError:  # a Keras without the saving walk: name the top-level layers
        for layer in getattr(model, "layers", []):
            out[id(layer)] = (layer.name, layer)
        return out

    def unique(name: str, used: dict) -> str:
        if name in used:
            used[name] += 1
            return f"{name}_{used[name]}"
        used[name] = 0
        return name

    def state(obj, path: tuple, inside: bool) -> None:
        if id(obj) in visited:
            return
        visited.add(id(obj))
        functional = isinstance(obj, keras.Model) and is_functional(obj)
        if isinstance(obj, keras.layers.Layer) and obj is not model and not inside:
            if isinstance(obj, keras.layers.InputLayer):
                inside = True
            elif not functional:
                out[id(obj)] = ("/".join(path), obj)
                inside = True  # its sub-layers are part of it
        for attr, child in _walk_saveable(obj):
            if isinstance(child, KerasSaveable):
                state(child, path + (attr,), inside)
            elif isinstance(child, (list, dict, tuple)):
                # A model's `layers` list names what it holds by layer name: for a subclass,
                # the layers its sorted attributes reach only after "layers" ("out", "proj").
                container(child, path if attr == "layers" else path + (attr,), inside, by_name=attr == "layers")

    def container(items, path: tuple, inside: bool, by_name: bool = False, seen=None) -> None:
        seen = seen if seen is not None else set()
        if id(items) in seen:
            return
        seen.add(id(items))
        used: dict = {}
        for item in (list(items.values()) if isinstance(items, dict) else items):
            if isinstance(item, KerasSaveable):
                name = unique(to_snake_case(item.__class__.__name__), used)
                if by_name and isinstance(item, keras.layers.Layer):
                    name = item.name
                state(item, path + (name,), inside)
            elif isinstance(item, (list, dict, tuple)):
                container(item, path + (unique("container", used),), inside, seen=seen)

    state(model, (), False)
    return out


def variable_owners(model, paths: dict | None = None) -> dict:
    """id(variable) -> the path of the layer that owns it; the model's own variables go to its name."""
    paths = layer_paths(model) if paths is None else paths
    owners: dict = {}
    for path, layer in paths.values():
        for v in layer.weights:
            owners.setdefault(id(v), path)
    for v in model.weights:
        owners.setdefault(id(v), model.name)
    return owners


class Tap:
    """Records what chosen layers return while the model is called (eagerly), output by output.

    `record[path]` is a list with one entry per call of the layer: its outputs as a
    flat list of arrays (a layer returning a list, a tuple or a dict gives several).
    The first argument of each call is kept too when `inputs` is set.
    """

    def __init__(self, layers: dict, inputs: bool = False):
        import keras

        self.keras = keras
        self.layers = layers  # id(layer) -> path
        self.keep_inputs = inputs
        self.record: dict = {}
        self.inputs: dict = {}
        self.order: list = []  # paths in call order

    def __enter__(self):
        import tensorflow as tf

        tap = self
        original = self._original = self.keras.layers.Layer.__call__

        def __call__(layer, *args, **kwargs):
            out = original(layer, *args, **kwargs)
            path = tap.layers.get(id(layer))
            if path is not None:
                tap.order.append(path)
                tap.record.setdefault(path, []).append([np.asarray(t) for t in tf.nest.flatten(out)
                                                        if hasattr(t, "shape") and hasattr(t, "dtype")])
                if tap.keep_inputs and args:
                    tap.inputs.setdefault(path, []).append(
                        [np.asarray(t) for t in tf.nest.flatten(args[0]) if hasattr(t, "shape")])
            return out

        self.keras.layers.Layer.__call__ = __call__
        return self

    def __exit__(self, *exc):
        self.keras.layers.Layer.__call__ = self._original
