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

from kerascheck.keras_names import BUILTIN_LAYERS

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

    def drawn(self, port) -> str:
        """How synthetic values for this input are drawn, in words."""
        if self.ids is not None:
            return f"{port.name}: integer ids in [{self.low}, {self.ids})" + (f" ({self.why})" if self.why else "")
        if self.pixels:
            return f"{port.name}: pixel values in [0, 255]" + (f" ({self.why})" if self.why else "")
        return f"{port.name}: standard normal values"


def input_roles(model, io, spec) -> list:
    roles = [_from_config(spec, i, port) for i, port in enumerate(io.inputs)]
    if any(r.why == "" for r in roles):  # custom layers or a subclass: only a trace can tell
        try:
            traced = _from_trace(model, io)
        except Exception:  # a model that cannot be traced is judged without this
            traced = {}
        for i, role in traced.items():
            if roles[i].why == "":
                roles[i] = role
    for port, role in zip(io.inputs, roles):
        if role.ids is None and "int" in port.dtype:
            role.ids, role.categorical = DEFAULT_IDS, True
            role.why = role.why or f"integer input ({port.dtype})"
    return roles


def _consumers(spec, index):
    from kerascheck.topology import graph_of

    if spec is None or not spec.outputs or index >= len(spec.inputs):
        return None
    graph = graph_of(spec)
    start = spec.layer(spec.inputs[index].name)
    return [graph.by_qual[q] for q in graph.consumers(start.qualname)] if start else None


def _from_config(spec, index, port) -> InputRole:
    consumers = _consumers(spec, index)
    for layer in consumers or ():
        cls = layer.class_name.split(">")[-1]
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
    if consumers and all(l.class_name in BUILTIN_LAYERS for l in consumers):
        return InputRole(why="feeds Keras's own layers")
    return InputRole()


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
    while frontier and hops < 64:
        t = frontier.pop()
        hops += 1
        for op in t.consumers():
            if op.name in seen:
                continue
            seen.add(op.name)
            if op.type in _GATHERS and len(op.inputs) > 1 and op.inputs[1] is t:
                size = _table_rows(op, shapes)
                return InputRole(ids=size or DEFAULT_IDS, categorical=True,
                                 why=f"indexes a table of {size} rows (an embedding)" if size else
                                 "indexes a table (an embedding)")
            if op.type == "OneHot" and op.inputs[0] is t:
                depth = _constant(op.inputs[1])
                return InputRole(ids=depth or DEFAULT_IDS, categorical=True, why="one-hot encoded by the model")
            if op.type == "Cast" and op.get_attr("DstT").is_integer:
                cast_to_int = True
            if op.type in _CARRY or (op.type in _INDEX_ARITHMETIC and t.dtype.is_integer):
                frontier.extend(op.outputs)
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
        elif a.min() >= 0.0 and a.max() <= 1.0:
            rows = a.reshape(-1, a.shape[-1]) if a.ndim > 1 else a.reshape(-1, 1)
            sums_to_one = rows.shape[-1] > 1 and np.allclose(rows.sum(axis=-1), 1.0, atol=1e-3)
            meanings.append("probabilities" if sums_to_one else "independent probabilities")
        else:
            meanings.append("unbounded")
    return meanings
