"""What each model input means, so synthetic data can look like real data and scale is judged fairly.

An input that indexes an embedding, a lookup or a category encoding is categorical:
its values are ids, not measurements, so `unscaled-inputs` does not judge their
scale and synthetic data draws valid ids over the whole vocabulary. Where the
layers the input feeds are Keras's own, the config says so; where they are custom
layers or the model is a subclass, one trace of the forward pass shows what happens
to the input: gathered from a table (an embedding, whatever class holds it), one-hot
encoded, or cast to integers (labels fed as an input, as a CTC model does).
"""
from __future__ import annotations

from dataclasses import dataclass

from kerascheck.facts.keras_names import BUILTIN_LAYERS
from kerascheck.facts.topology import graph_of

CATEGORICAL_LAYERS = {"Embedding": "input_dim", "CategoryEncoding": "num_tokens", "Hashing": None,
                      "IntegerLookup": None, "StringLookup": None, "ReversibleEmbedding": "input_dim"}
# Ops that carry an input's values along unchanged in meaning, followed when tracing.
_CARRY = {"Identity", "Cast", "Reshape", "ExpandDims", "Squeeze", "StridedSlice", "Slice", "Transpose",
          "Floor", "Round", "Rint", "Abs", "IdentityN"}
# And, once the values are integers, the ops that wrap negative ids or clip them (Keras's take()).
_INDEX_ARITHMETIC = {"AddV2", "Add", "SelectV2", "Select", "Maximum", "Minimum", "ClipByValue", "FloorMod"}
_GATHERS = {"ResourceGather", "GatherV2", "Gather", "GatherNd", "ResourceGatherNd"}
DEFAULT_IDS = 10


@dataclass
class InputRole:
    ids: int | None = None  # synthetic values are integers in [low, ids)
    low: int = 0
    pixels: bool = False  # synthetic values are 0..255 (the model rescales them itself)
    categorical: bool = False  # ids, not measurements: scale is not judged
    why: str = ""
    vocabulary: list | None = None  # strings (or ids) a lookup layer knows: synthetic values come from it
    mean: object = None  # an adapted Normalization's mean and standard deviation (broadcastable arrays):
    std: object = None  # synthetic values are drawn on the scale the layer expects
    span: tuple | None = None  # (low, high): synthetic values are uniform in it (inputs a model reconstructs)
    binary: bool = False  # synthetic values are 0 or 1 (inputs a model reconstructs through a sigmoid)

    def drawn(self, port) -> str:
        """How synthetic values for this input are drawn, in words."""
        why = f" ({self.why})" if self.why else ""
        if port.dtype == "string":
            return f"{port.name}: strings from a vocabulary of {len(self.vocabulary)}{why}" if self.vocabulary \
                else f"{port.name}: single-letter strings"
        if self.vocabulary is not None:
            return f"{port.name}: values from a vocabulary of {len(self.vocabulary)}{why}"
        if self.ids is not None:
            return f"{port.name}: integer ids in [{self.low}, {self.ids}){why}"
        if self.pixels:
            return f"{port.name}: pixel values in [0, 255]{why}"
        if self.binary:
            return f"{port.name}: values of 0 or 1{why}"
        if self.span is not None:
            return f"{port.name}: uniform values in [{self.span[0]:g}, {self.span[1]:g}]{why}"
        if self.mean is not None:
            import numpy as np

            mean, std = np.asarray(self.mean, dtype=float), np.asarray(self.std, dtype=float)
            return (f"{port.name}: normal values with the mean ({float(mean.min()):.3g} to {float(mean.max()):.3g}) "
                    f"and spread ({float(std.min()):.3g} to {float(std.max()):.3g}) of the data{why}")
        return f"{port.name}: standard normal values"


def input_roles(model, io, spec, paths: dict | None = None) -> list:
    live = {path: layer for path, layer in (paths or {}).values()}
    roles = [_from_config(spec, i, port, live) for i, port in enumerate(io.inputs)]
    if not io.callable:
        return [_reconstructed(io, port) or role for port, role in zip(io.inputs, roles)]
    if any(r.why == "" for r in roles):  # custom layers or a subclass: only a trace can tell
        try:
            traced = _from_trace(model, io)
        except Exception:  # a model that cannot be traced is judged without this
            traced = {}
        for i, role in traced.items():
            if roles[i].why == "":
                roles[i] = role
    for port, role in zip(io.inputs, roles):
        if role.ids is None and role.vocabulary is None and "int" in port.dtype:
            role.ids, role.categorical = DEFAULT_IDS, True
            role.why = role.why or f"integer input ({port.dtype})"
        if role.ids is not None and role.why.startswith(("cast to integers", "integer input")) and io.open_dims():
            # Integers no table bounds may index the sequence itself (a masked LM's mask_positions):
            # below the length kerascheck gives the open dimensions, they stay valid.
            role.ids = max(2, min(role.ids, io.fill))
    return roles


# Layers an input passes through unchanged in scale on its way to the layer that says what
# it means (a data-augmentation block before a Normalization, say).
_PASS_THROUGH = {"InputLayer", "Reshape", "Permute", "Flatten", "Resizing", "CenterCrop", "Cropping1D", "Cropping2D",
                 "Cropping3D", "ZeroPadding1D", "ZeroPadding2D", "ZeroPadding3D", "Identity", "Dropout",
                 "GaussianNoise", "SpatialDropout1D", "SpatialDropout2D", "SpatialDropout3D",
                 # keras.ops applied to an input in a Functional model are nodes of their own
                 "ExpandDims", "Squeeze", "Cast", "Transpose", "Ravel", "Copy", "Abs", "Floor", "Round"}
_SCALE_LAYERS = set(CATEGORICAL_LAYERS) | {"Rescaling", "Normalization", "Discretization", "TextVectorization"}


def _consumers(spec, index, name: str | None = None):
    """The first layers that say what input `index` means, looking through pass-through and augmentation
    layers and into nested models; None when the config cannot tell."""

    if spec is None or not spec.outputs or index >= len(spec.inputs):
        return None
    graph = graph_of(spec)
    # By name: the model takes its inputs in its own order (a dict's sorted keys), not the config's.
    named = [i for i in spec.inputs if i.name == name] if name is not None else []
    start = spec.layer((named[0] if named else spec.inputs[index]).name)
    if not start:
        return None
    out, seen, todo = [], set(), list(graph.consumers(start.qualname))
    while todo:
        q = todo.pop(0)
        if q in seen or q not in graph.by_qual:
            continue
        seen.add(q)
        layer = graph.by_qual[q]
        cls = layer.class_name.split(">")[-1]
        if cls not in _SCALE_LAYERS and (cls in _PASS_THROUGH or cls.startswith("Random")):
            todo.extend(graph.consumers(q))
        else:
            out.append(layer)
    return out


def _from_config(spec, index, port, live: dict | None = None) -> InputRole:
    live = live or {}
    consumers = _consumers(spec, index, port.name)
    for layer in consumers or ():
        cls = layer.class_name.split(">")[-1]
        obj = live.get(layer.qualname)
        if cls in ("StringLookup", "IntegerLookup", "TextVectorization") and obj is not None:
            vocabulary = _vocabulary(obj)
            if vocabulary:
                return InputRole(vocabulary=vocabulary, categorical=True, why=f"feeds {cls} '{layer.qualname}'")
        if cls in CATEGORICAL_LAYERS:
            key = CATEGORICAL_LAYERS[cls]
            size = layer.config.get(key) if key else None
            if cls == "Hashing":
                size = None  # any integer hashes; ids below its bin count are as good as any
            return InputRole(ids=size if isinstance(size, int) and size > 0 else DEFAULT_IDS, categorical=True,
                             why=f"feeds {cls} '{layer.qualname}'")
        scale = layer.config.get("scale")
        if cls == "Rescaling" and isinstance(scale, (int, float)) and abs(scale) < 0.1:
            return InputRole(pixels=True, why=f"rescaled by '{layer.qualname}'")
        if cls == "Normalization" and obj is not None:
            stats = _normalization_stats(obj)
            if stats is not None:
                return InputRole(mean=stats[0], std=stats[1], why=f"normalized by '{layer.qualname}'")
        if cls == "Discretization":
            bins = layer.config.get("bin_boundaries")
            if isinstance(bins, list) and len(bins) >= 2 and all(isinstance(b, (int, float)) for b in bins):
                lo, hi = float(min(bins)), float(max(bins))
                width = (hi - lo) / (len(bins) - 1)
                mean, std = (lo + hi) / 2, (hi - lo + 2 * width) / 4
                return InputRole(mean=mean, std=std, why=f"bucketed by '{layer.qualname}'")
    if consumers and all(l.class_name in BUILTIN_LAYERS for l in consumers):
        return InputRole(why="feeds Keras's own layers")
    return InputRole()


_BOUNDED = {"sigmoid": (0.0, 1.0), "hard_sigmoid": (0.0, 1.0), "tanh": (-1.0, 1.0)}


def _reconstructed(io, port) -> InputRole | None:
    """An input a part of the model reproduces through a bounded activation (a VAE's decoder ends in a
    sigmoid to rebuild pixels in [0, 1]): its values are drawn in that range, as the loss comparing the
    two needs them (binary crossentropy on values outside [0, 1] has no floor)."""
    for name, part in io.parts:
        for out, layer in zip(part.outputs, _output_layers(part.model)):
            act = getattr(getattr(layer, "activation", None), "__name__", None)
            if tuple(out.shape) == tuple(port.shape) and act in _BOUNDED:
                # 0/1 for a sigmoid: targets a crossentropy can reach exactly, as MNIST's nearly are.
                return InputRole(span=_BOUNDED[act], binary=act != "tanh", why=f"'{name}' rebuilds it through {act}")
    return None


def _output_layers(model) -> list:
    try:
        return [t._keras_history[0] for t in model.outputs]
    except Exception:
        return []


def _vocabulary(layer) -> list | None:
    """The values a lookup layer knows, without its mask and out-of-vocabulary entries."""
    try:
        vocabulary = list(layer.get_vocabulary(include_special_tokens=False))
    except TypeError:
        vocabulary = list(layer.get_vocabulary())
    except Exception:
        return None
    vocabulary = [v.decode() if isinstance(v, bytes) else v for v in vocabulary]
    vocabulary = [v for v in vocabulary if v not in ("", "[UNK]", -1)]
    return vocabulary[:100_000] or None


def _normalization_stats(layer):
    """(mean, std) of an adapted or configured Normalization, broadcastable to its input; None if unknown."""
    import numpy as np

    try:
        if getattr(layer, "invert", False):
            return None
        mean = np.asarray(layer.mean, dtype=np.float64)
        std = np.sqrt(np.maximum(np.asarray(layer.variance, dtype=np.float64), 0.0))
    except Exception:
        return None
    if not (np.all(np.isfinite(mean)) and np.all(np.isfinite(std))) or mean.size == 0:
        return None
    if mean.ndim and mean.shape[0] == 1:  # Keras keeps the batch axis in the broadcast shape
        mean, std = mean[0], std[0]
    return mean, np.where(std > 0, std, 1.0)


def _from_trace(model, io) -> dict:
    """{input index: InputRole} for inputs the traced forward pass gathers with, one-hots or casts to int."""
    import tensorflow as tf

    specs = [tf.TensorSpec((None,) + tuple(p.shape), p.dtype) for p in io.inputs]

    def forward(*xs):
        return io.model(io.pack(list(xs)), training=False)

    concrete = tf.function(forward).get_concrete_function(*specs)
    graph = concrete.graph
    shapes = _variable_shapes(model, graph)
    placeholders = [t for t in graph.inputs[:len(specs)]]
    out_units = [p.shape[-1] for p in io.outputs if p.shape and isinstance(p.shape[-1], int)]
    found = {}
    for index, ph in enumerate(placeholders):
        role = _follow(ph, shapes, out_units)
        if role is not None:
            found[index] = role
    return found


def _follow(start, shapes: dict, out_units: list) -> InputRole | None:
    frontier, seen, cast_to_int = [start], set(), False
    hops = 0
    tables: list = []  # rows of every table the input indexes: one input may index several
    while frontier and hops < 64:
        t = frontier.pop()
        hops += 1
        for op in t.consumers():
            if op.name in seen:
                continue
            seen.add(op.name)
            if op.type in _GATHERS and len(op.inputs) > 1 and op.inputs[1] is t:
                tables.append(_table_rows(op, shapes))
                continue
            if op.type == "OneHot" and op.inputs[0] is t:
                depth = _constant(op.inputs[1])
                return InputRole(ids=depth or DEFAULT_IDS, categorical=True, why="one-hot encoded by the model")
            if op.type == "Cast" and op.get_attr("DstT").is_integer:
                cast_to_int = True
            if op.type in _CARRY or (op.type in _INDEX_ARITHMETIC and t.dtype.is_integer):
                frontier.extend(op.outputs)
    if tables:
        # Ids below the smallest table fit every one (RecommenderNet's (user, movie) column pairs
        # index a 610-row and a 9,724-row table).
        known = [n for n in tables if n]
        size = min(known) if known else None
        return InputRole(ids=size or DEFAULT_IDS, categorical=True,
                         why=f"indexes a table of {size} rows (an embedding)" if size else
                         "indexes a table (an embedding)")
    if cast_to_int:
        # Integers with no table to bound them (labels fed as an input): small ids that stay
        # below every output's class count, the last class being a CTC blank.
        ids = max(2, min([DEFAULT_IDS] + [u - 1 for u in out_units if u > 2]))
        return InputRole(ids=ids, categorical=True, why="cast to integers by the model")
    return None


def _table_rows(op, shapes: dict) -> int | None:
    params = op.inputs[0]
    if params.op.type == "ReadVariableOp":
        params = params.op.inputs[0]
    if params.name in shapes:
        return shapes[params.name]
    dims = params.shape.as_list() if params.shape.rank else None
    return dims[0] if dims and isinstance(dims[0], int) else None


def _variable_shapes(model, graph) -> dict:
    """Captured variable placeholder name -> the variable's first dimension."""
    by_handle = {}
    for v in model.variables:
        handle = getattr(getattr(v, "value", v), "handle", None)
        if handle is not None and len(v.shape):
            by_handle[id(handle)] = int(v.shape[0])
    return {internal.name: by_handle[id(external)] for external, internal in graph.captures
            if id(external) in by_handle}


def _constant(t) -> int | None:
    try:
        from tensorflow.python.framework import tensor_util

        if t.op.type == "Const":
            return int(tensor_util.MakeNdarray(t.op.get_attr("value")))
    except Exception:
        pass
    return None


def output_meanings(outputs: list) -> list:
    """For each output (arrays over a sample): "probabilities" (rows in [0, 1] summing to 1),
    "independent probabilities" (each value in [0, 1]) or "unbounded"."""
    import numpy as np

    meanings = []
    for out in outputs:
        a = np.asarray(out, dtype=np.float64)
        if a.size == 0 or not np.all(np.isfinite(a)):
            meanings.append("unknown")
        elif a.ndim > 1 and a.shape[-1] == 1 and a.shape[0] > 1 and np.all(a == 1.0):
            meanings.append("constant one")  # a softmax over one unit, whatever the input
        elif a.min() >= 0.0 and a.max() <= 1.0:
            rows = a.reshape(-1, a.shape[-1]) if a.ndim > 1 else a.reshape(-1, 1)
            sums_to_one = rows.shape[-1] > 1 and np.allclose(rows.sum(axis=-1), 1.0, atol=1e-3)
            if sums_to_one:
                meanings.append("probabilities")
            elif a.shape[0] > 1 and float(np.max(np.std(a, axis=0))) < 0.01 * float(np.max(np.abs(a))):
                # The same values for every example (an untrained encoder's [CLS] vector barely varies):
                # small logits can lie in [0, 1] by chance; nothing says they were squashed.
                meanings.append("unknown")
            else:
                meanings.append("independent probabilities")
        else:
            meanings.append("unbounded")
    return meanings
