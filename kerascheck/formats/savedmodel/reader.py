"""Read a SavedModel folder into a ModelSpec without running anything in it.

`saved_model.pb` is parsed with TensorFlow's protobuf definitions, the variables are
read with TensorFlow's checkpoint reader once `folder.inventory` has cleared the
files it will open, and `keras_metadata.pb` (tf.keras 2.x) with a private copy of its
two-message schema. Nothing here calls `tf.saved_model.load`, builds a graph or runs
an op: the functions stay protobuf messages until the audit has cleared them.

Layers are named by Keras where the folder says so: the tf.keras config in
`keras_metadata.pb`, else the variables' own names (`dense/kernel`), which Keras 3's
`model.export()` and tf.keras both write as `<layer path>/<weight>`.
"""
from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field

import numpy as np

from kerascheck.backend import import_tensorflow
from kerascheck.errors import InputError
from kerascheck.facts.build import build_spec, check_model_config, entry_name, is_model_entry, model_layers
from kerascheck.facts.spec import InputSpec, LayerSpec, ModelSpec, WeightRef
from kerascheck.formats.limits import MAX_TENSOR_BYTES, human_size, load_json, short_error
from kerascheck.formats.savedmodel import folder as fs

MAX_NODES = 2_000_000  # NodeDefs in the graph and all its functions together
MAX_FUNCTIONS = 100_000
MAX_OBJECTS = 1_000_000
MAX_SIGNATURES = 1000
OBJECT_GRAPH_KEY = "_CHECKPOINTABLE_OBJECT_GRAPH"
CALL_OPS = ("StatefulPartitionedCall", "PartitionedCall")
# Checkpoint dtypes the weight rules can read; bfloat16 is widened to float32 on read.
_NUMPY_DTYPES = {"float16", "float32", "float64", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32",
                 "uint64", "bool", "bfloat16"}


@dataclass
class Variable:
    node: int  # object-graph node id
    name: str  # "dense/kernel": the layer path and the weight
    key: str  # checkpoint key
    shape: tuple
    dtype: str
    trainable: bool


@dataclass
class Signature:
    key: str
    function: str  # the FunctionDef the signature calls
    inputs: list  # (signature input name, dtype name, shape with None, function arg index)
    outputs: list  # (signature output name, function output index)
    captures: list  # object-graph node ids bound to the function's trailing arguments


@dataclass
class SavedModel:
    """The parsed folder: protobuf messages, the checkpoint reader and what they say."""
    path: str
    inv: fs.Inventory
    meta: object  # MetaGraphDef
    library: dict  # name -> FunctionDef
    objects: object  # SavedObjectGraph
    variables: dict = field(default_factory=dict)  # node id -> Variable
    signatures: dict = field(default_factory=dict)  # key -> Signature (TF2 function signatures)
    other_signatures: dict = field(default_factory=dict)  # key -> why kerascheck cannot run it
    serving: Signature | None = None
    checkpoint: object = None
    keras_metadata: list | None = None  # [(node_path, identifier, metadata dict)]
    node_count: int = 0
    audit: object = None  # kerascheck.formats.savedmodel.audit.Audit, made once

    calls: dict = field(default_factory=dict)  # function name -> [(node name, function it calls)]

    def function_calls(self, fdef) -> list[tuple[str, str]]:
        """(node name, function name) of every function a function's nodes call or name in an attribute."""
        name = fdef.signature.name
        found = self.calls.get(name)
        if found is None:
            found = self.calls[name] = [(node.name, f) for node in fdef.node_def
                                        for f in node_functions(node, self.library)]
        return found


@dataclass(frozen=True)
class SavedModelSpec(ModelSpec):
    saved: SavedModel | None = field(default=None, repr=False, compare=False)


_FUNC_ATTRS: dict = {}  # op -> names of its function-typed attributes (None: unknown op, look at all)


def node_functions(node, library: dict) -> list[str]:
    """Functions a node runs: its op when that names a library function, and func attributes."""
    names = [node.op] if node.op in library else []
    keys = _FUNC_ATTRS.get(node.op, ())
    if keys == ():
        from tensorflow.python.framework import op_def_registry

        op_def = op_def_registry.get(node.op)
        keys = None if op_def is None else [a.name for a in op_def.attr if a.type in ("func", "list(func)")]
        _FUNC_ATTRS[node.op] = keys
    # Registered ops declare which attributes hold functions; anything else is looked at whole
    # (an op TensorFlow does not know may still name functions).
    values = node.attr.values() if keys is None else [node.attr[k] for k in keys if k in node.attr]
    for value in values:
        kind = value.WhichOneof("value")
        if kind == "func" and value.func.name:
            names.append(value.func.name)
        elif kind == "list":
            names.extend(f.name for f in value.list.func if f.name)
    return names


def read_savedmodel(path: str, stack: contextlib.ExitStack) -> SavedModelSpec:
    inv = fs.inventory(path)
    import_tensorflow()
    saved = _parse(path, inv)
    _read_checkpoint(saved)
    saved.keras_metadata = _keras_metadata(inv)
    return _spec(saved)


# ---------------------------------------------------------------- saved_model.pb


def _parse(path: str, inv: fs.Inventory) -> SavedModel:
    from google.protobuf.message import DecodeError

    data = fs.read_bytes(inv, "saved_model.pb", fs.MAX_GRAPH_BYTES)
    from tensorflow.core.protobuf import saved_model_pb2

    proto = saved_model_pb2.SavedModel()
    try:
        proto.ParseFromString(data)
    except (DecodeError, RecursionError, ValueError) as exc:
        raise InputError(f"saved_model.pb is not a readable SavedModel (truncated or corrupt: {short_error(exc)})") from None
    if not proto.meta_graphs:
        raise InputError("saved_model.pb holds no MetaGraph (truncated or not a SavedModel)")
    serving = [m for m in proto.meta_graphs if "serve" in m.meta_info_def.tags]
    meta = (serving or list(proto.meta_graphs))[0]
    library: dict = {}
    nodes = len(meta.graph_def.node)
    for other in proto.meta_graphs:
        if len(other.graph_def.library.function) > MAX_FUNCTIONS:
            raise InputError(f"saved_model.pb defines {len(other.graph_def.library.function)} functions, above "
                             f"the limit of {MAX_FUNCTIONS}")
    for fdef in meta.graph_def.library.function:
        name = fdef.signature.name
        if not name or name in library:
            raise InputError(f"saved_model.pb defines function {name!r} twice (or without a name): corrupt")
        library[name] = fdef
        nodes += len(fdef.node_def)
    if nodes > MAX_NODES:
        raise InputError(f"saved_model.pb holds {nodes:,} graph nodes, above the limit of {MAX_NODES:,}")
    if len(meta.object_graph_def.nodes) > MAX_OBJECTS:
        raise InputError(f"saved_model.pb tracks {len(meta.object_graph_def.nodes):,} objects, above the limit")
    if len(meta.signature_def) > MAX_SIGNATURES:
        raise InputError(f"saved_model.pb has {len(meta.signature_def)} signatures, above the limit")
    saved = SavedModel(path=path, inv=inv, meta=meta, library=library, objects=meta.object_graph_def,
                       node_count=nodes)
    for name, fdef in library.items():
        for node_name, callee in saved.function_calls(fdef):
            if callee not in library:
                raise InputError(f"node '{node_name}' of function {name} calls function {callee}, which "
                                 "saved_model.pb does not define (truncated or corrupt)")
    for node in meta.graph_def.node:
        for callee in node_functions(node, library):
            if callee not in library:
                raise InputError(f"graph node '{node.name}' calls function {callee}, which saved_model.pb does "
                                 "not define (truncated or corrupt)")
    for key in sorted(meta.signature_def):
        if key.startswith("__saved_model"):
            continue  # the init op: audited, never served
        sig = _signature(saved, key, meta.signature_def[key])
        if isinstance(sig, Signature):
            saved.signatures[key] = sig
        else:
            saved.other_signatures[key] = sig
    if saved.signatures:
        saved.serving = saved.signatures.get("serving_default") or saved.signatures[sorted(saved.signatures)[0]]
    return saved


def _signature(saved: SavedModel, key: str, sig) -> Signature | str:
    """The function a TF2 signature calls and how its inputs and outputs map onto it, or why not."""
    nodes = {n.name: n for n in saved.meta.graph_def.node}
    calls = set()
    outputs = []
    for out_name in sorted(sig.outputs):
        node_name, _, index = sig.outputs[out_name].name.partition(":")
        node = nodes.get(node_name)
        if node is None or node.op not in CALL_OPS:
            return "its outputs do not come from one function call (a TF1-style graph)"
        calls.add(node_name)
        outputs.append((out_name, int(index or 0)))
    if len(calls) != 1:
        return "its outputs come from several function calls"
    call = nodes[calls.pop()]
    function = call.attr["f"].func.name
    if function not in saved.library:
        return f"it calls function {function!r}, which is not in the library"
    args = [i.split(":")[0] for i in call.input if not i.startswith("^")]
    inputs = []
    for in_name in sorted(sig.inputs):
        info = sig.inputs[in_name]
        node_name = info.name.split(":")[0]
        if node_name not in args:
            return f"its input {in_name!r} does not feed the function it calls"
        shape = None if info.tensor_shape.unknown_rank else tuple(
            d.size if d.size >= 0 else None for d in info.tensor_shape.dim)
        inputs.append((in_name, dtype_name(info.dtype), shape, args.index(node_name)))
    concrete = saved.objects.concrete_functions.get(function)
    captures = list(concrete.bound_inputs) if concrete is not None else []
    n_args = len(saved.library[function].signature.input_arg)
    if len(inputs) + len(captures) != n_args or sorted(i[3] for i in inputs) != list(range(len(inputs))):
        return "its inputs and captured variables do not account for the function's arguments"
    return Signature(key, function, inputs, outputs, captures)


def dtype_name(enum: int) -> str:
    from tensorflow.python.framework import dtypes

    try:
        return dtypes.as_dtype(enum).name
    except TypeError:
        return f"dtype {enum}"


# ------------------------------------------------------------------- variables


def _read_checkpoint(saved: SavedModel) -> None:
    objects = saved.objects.nodes
    declared = [i for i, n in enumerate(objects) if n.WhichOneof("kind") == "variable"]
    inv = saved.inv
    if not inv.has("variables/variables.index"):
        if declared:
            raise InputError(f"saved_model.pb declares {len(declared)} variables but variables/variables.index is "
                             "missing (an incomplete copy of the folder?)")
        return
    if not inv.shards:
        raise InputError("variables/variables.index has no variables.data-* shard beside it (an incomplete copy?)")
    from tensorflow.python.training import py_checkpoint_reader

    prefix = os.path.join(inv.path("variables"), "variables")
    try:
        reader = py_checkpoint_reader.NewCheckpointReader(prefix)
        shapes = reader.get_variable_to_shape_map()
        dtypes = reader.get_variable_to_dtype_map()
    except Exception as exc:  # TensorFlow raises DataLossError, ValueError, ... on a bad index
        raise InputError(f"variables/ is not a readable checkpoint ({type(exc).__name__}: "
                         f"{short_error(_first_line(exc))})") from None
    saved.checkpoint = reader
    numeric = 0
    for key, shape in shapes.items():
        dtype = dtypes[key]
        if dtype.is_numpy_compatible and dtype.name != "string":
            nbytes = int(np.prod(shape, dtype=np.float64)) * dtype.size if shape else dtype.size
            numeric += nbytes
            if nbytes > MAX_TENSOR_BYTES or nbytes > inv.data_bytes:
                raise InputError(f"checkpoint entry {key!r} declares shape {tuple(shape)} ({human_size(nbytes)}) but "
                                 f"variables/ stores {human_size(inv.data_bytes)} (shape bomb or truncated shard)")
    if numeric > inv.data_bytes:
        raise InputError(f"the checkpoint's tensors need {human_size(numeric)} but variables/ stores "
                         f"{human_size(inv.data_bytes)} (truncated shard?)")
    if not declared:
        return
    if OBJECT_GRAPH_KEY not in shapes:
        raise InputError("variables/ has no object graph, so its tensors cannot be matched to saved_model.pb's "
                         "variables (a TF1 checkpoint?)")
    from tensorflow.core.protobuf import trackable_object_graph_pb2

    graph = trackable_object_graph_pb2.TrackableObjectGraph()
    try:
        graph.ParseFromString(reader.get_tensor(OBJECT_GRAPH_KEY))
    except Exception as exc:
        raise InputError(f"the checkpoint's object graph is corrupt ({short_error(_first_line(exc))})") from None
    if len(graph.nodes) != len(objects):
        raise InputError(f"the checkpoint tracks {len(graph.nodes)} objects but saved_model.pb {len(objects)}; "
                         "the variables do not belong to this graph")
    for i in declared:
        saved_var = objects[i].variable
        attr = next((a for a in graph.nodes[i].attributes if a.name == "VARIABLE_VALUE"), None)
        if attr is None or attr.checkpoint_key not in shapes:
            raise InputError(f"variable {saved_var.name!r} of saved_model.pb has no value in variables/ "
                             "(an incomplete checkpoint)")
        key = attr.checkpoint_key
        shape = tuple(int(d) for d in shapes[key])
        if not saved_var.shape.unknown_rank and saved_var.shape.dim and \
                tuple(d.size for d in saved_var.shape.dim if d.size >= 0) != shape and \
                all(d.size >= 0 for d in saved_var.shape.dim):
            raise InputError(f"variable {saved_var.name!r} is {shape} in variables/ but "
                             f"{tuple(d.size for d in saved_var.shape.dim)} in saved_model.pb")
        name = (saved_var.name or attr.full_name or key).split(":")[0]
        saved.variables[i] = Variable(i, name, key, shape, dtypes[key].name, bool(saved_var.trainable))


def _first_line(exc: BaseException) -> str:
    return next((line for line in str(exc).splitlines() if line.strip()), type(exc).__name__)


def weight_ref(saved: SavedModel, var: Variable, name: str) -> WeightRef | None:
    if var.dtype not in _NUMPY_DTYPES:
        return None
    reader = saved.checkpoint
    widen = var.dtype == "bfloat16"

    def read(key=var.key, shape=var.shape) -> np.ndarray:
        try:
            value = reader.get_tensor(key)
        except Exception as exc:
            raise InputError(f"checkpoint entry {key!r} cannot be read (truncated or corrupt: "
                             f"{short_error(_first_line(exc))})") from None
        value = np.asarray(value, dtype=np.float32) if widen else np.asarray(value)
        if value.shape != shape:
            raise InputError(f"checkpoint entry {key!r} holds {value.shape}, not the declared {shape}")
        return value

    return WeightRef(name=name, path=var.name, shape=var.shape, dtype="float32" if widen else var.dtype,
                     reader=read)


# -------------------------------------------------------------- keras_metadata


def _metadata_class():
    """SavedMetadata from tf.keras's keras_metadata.pb schema, built in a private pool (no tf_keras import)."""
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

    fdp = descriptor_pb2.FileDescriptorProto(name="kerascheck/keras_metadata.proto", package="kerascheck_meta",
                                             syntax="proto3")
    obj = fdp.message_type.add(name="SavedObject")
    F = descriptor_pb2.FieldDescriptorProto
    for name, number, kind in (("node_id", 2, F.TYPE_INT32), ("node_path", 3, F.TYPE_STRING),
                               ("identifier", 4, F.TYPE_STRING), ("metadata", 5, F.TYPE_STRING)):
        obj.field.add(name=name, number=number, type=kind, label=F.LABEL_OPTIONAL)
    top = fdp.message_type.add(name="SavedMetadata")
    top.field.add(name="nodes", number=1, type=F.TYPE_MESSAGE, label=F.LABEL_REPEATED,
                  type_name=".kerascheck_meta.SavedObject")
    pool = descriptor_pool.DescriptorPool()
    pool.Add(fdp)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("kerascheck_meta.SavedMetadata"))


def _keras_metadata(inv: fs.Inventory) -> list | None:
    if not inv.has("keras_metadata.pb"):
        return None
    from google.protobuf.message import DecodeError

    data = fs.read_bytes(inv, "keras_metadata.pb", fs.MAX_METADATA_BYTES)
    message = _metadata_class()()
    try:
        message.ParseFromString(data)
    except (DecodeError, RecursionError, ValueError) as exc:
        raise InputError(f"keras_metadata.pb is corrupt ({short_error(exc)})") from None
    nodes = []
    for node in message.nodes:
        meta = load_json(node.metadata.encode("utf-8"), f"keras_metadata.pb entry {node.node_path!r}") \
            if node.metadata.strip() else {}
        nodes.append((node.node_path, node.identifier, meta if isinstance(meta, dict) else {}))
    return nodes


# ------------------------------------------------------------------ the spec


def _spec(saved: SavedModel) -> SavedModelSpec:
    variables = _served_variables(saved)
    root = next((m for p, ident, m in saved.keras_metadata or () if p == "root"), None)
    config = None
    if root and isinstance(root.get("config"), dict) and isinstance(root["config"].get("layers"), list):
        config = _untuple({"class_name": root.get("class_name"), "config": root["config"]})
        check_model_config(config, "keras_metadata.pb")
    if config is not None:
        training = root.get("training_config")
        compile_cfg = {"optimizer": training.get("optimizer_config"), "loss": training.get("loss")} \
            if isinstance(training, dict) else None
        version = root.get("keras_version") if isinstance(root.get("keras_version"), str) else None
        qualnames = _config_qualnames(config)
        weights, rest = _group(saved, variables, qualnames)
        base = build_spec(saved.path, "savedmodel", version, config, weights, compile_cfg, ())
        extra = tuple(_layer(name, refs) for name, refs in rest.items())
        fields = {f: getattr(base, f) for f in ModelSpec.__dataclass_fields__}
        fields["layers"] = base.layers + extra
        fields["training_config"] = training if isinstance(training, dict) else None
        return SavedModelSpec(**fields, saved=saved)
    _, weights = _group(saved, variables, {})
    layers = tuple(_layer(name, refs) for name, refs in weights.items())
    inputs = tuple(InputSpec(name, (shape if shape is not None else ()), dtype)
                   for name, dtype, shape, _ in (saved.serving.inputs if saved.serving else ()))
    name = (root or {}).get("name") if isinstance((root or {}).get("name"), str) else \
        os.path.basename(os.path.normpath(saved.path))
    return SavedModelSpec(path=saved.path, format="savedmodel", keras_version=None,
                          class_name=str((root or {}).get("class_name") or "SavedModel"), name=name, config={},
                          layers=layers, inputs=inputs, outputs=(), compile=None, notes=(), saved=saved)


def _untuple(value):
    """tf.keras's SavedModel metadata writes tuples as {"class_name": "__tuple__", "items": [...]};
    its .h5 configs, which the rest of kerascheck reads, write lists."""
    if isinstance(value, dict):
        if value.get("class_name") == "__tuple__" and isinstance(value.get("items"), list) and len(value) == 2:
            return [_untuple(v) for v in value["items"]]
        return {k: _untuple(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_untuple(v) for v in value]
    return value


def _served_variables(saved: SavedModel) -> list[Variable]:
    """The variables the served function reads, then any others not already seen by name.

    Keras 3's export tracks each weight twice (`variables/` and `_all_variables/`) and
    tf.keras keeps optimizer and metric variables beside the weights; the served ones
    are the model, in the order the model lists them.
    """
    out, names = [], set()
    bound = saved.serving.captures if saved.serving else []
    for node in list(bound) + sorted(saved.variables):
        var = saved.variables.get(node)
        if var is None or var.name in names:
            continue
        if bound and node not in bound and _bookkeeping(var.name):
            continue
        names.add(var.name)
        out.append(var)
    return out


def _bookkeeping(name: str) -> bool:
    """Optimizer and metric state that tf.keras saves beside the weights."""
    return "/" not in name and name in {"iteration", "iterations", "learning_rate", "total", "count", "decay",
                                        "beta_1", "beta_2", "momentum", "rho"}


def _config_qualnames(config: dict) -> dict:
    """Plain and qualified layer names of a Keras config -> qualname."""
    out: dict = {}

    def walk(entry, scope):
        for sub in model_layers(entry):
            name = entry_name(sub)
            qual = "/".join(scope + (name,))
            out.setdefault(qual, qual)
            out.setdefault(name, qual)
            if is_model_entry(sub):
                walk(sub, scope + (name,))

    walk(config, ())
    return out


def _group(saved: SavedModel, variables: list, qualnames: dict) -> tuple[dict, dict]:
    """qualname -> WeightRefs for variables matched to a config layer; the rest grouped by their own path."""
    matched: dict = {}
    rest: dict = {}
    for var in variables:
        layer_path, _, role = var.name.rpartition("/")
        owner = None
        if qualnames:
            parts = layer_path.split("/") if layer_path else []
            # tf.keras names variables by the innermost layer ("inner_dense/kernel") and cells
            # below it ("lstm/lstm_cell/kernel"): the longest known prefix, else any known part.
            for k in range(len(parts), 0, -1):
                if "/".join(parts[:k]) in qualnames:
                    owner = qualnames["/".join(parts[:k])]
                    break
            if owner is None:
                owner = next((qualnames[p] for p in parts if p in qualnames), None)
        ref = weight_ref(saved, var, role or var.name)
        if ref is None:
            continue
        if owner is not None:
            matched.setdefault(owner, []).append(ref)
        else:
            rest.setdefault(layer_path or var.name, []).append(ref)
    return {k: tuple(v) for k, v in matched.items()}, {k: tuple(v) for k, v in rest.items()}


def _layer(qualname: str, refs) -> LayerSpec:
    parts = qualname.split("/")
    return LayerSpec(name=parts[-1], class_name=infer_class(refs), module=None, registered_name=None,
                     config={"name": parts[-1]}, inbound=(), scope=tuple(parts[:-1]), weights=tuple(refs))


def infer_class(refs) -> str:
    """The Keras class a layer's weights say it is ("" when they do not say)."""
    names = {r.name for r in refs}
    kernel = next((r for r in refs if r.name == "kernel"), None)
    if {"moving_mean", "moving_variance"} <= names:
        return "BatchNormalization"
    if "recurrent_kernel" in names:
        return "RNN"
    if "depthwise_kernel" in names:
        return "SeparableConv2D" if "pointwise_kernel" in names else "DepthwiseConv2D"
    if "embeddings" in names:
        return "Embedding"
    if kernel is not None:
        return {2: "Dense", 3: "Conv1D", 4: "Conv2D", 5: "Conv3D"}.get(len(kernel.shape), "")
    if names and names <= {"gamma", "beta"}:
        return "LayerNormalization"
    return ""
