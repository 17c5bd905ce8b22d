"""A signature's function as one GraphDef: the functions it calls inlined, nothing run.

The interval analysis follows a tensor back through the ops that made it, so a
softmax split across a call boundary (tf.keras saves each layer's call as its own
function; Keras 3 wraps the model's call in a signature function) must be one graph.
Each call of a library function (`StatefulPartitionedCall`, `PartitionedCall`, or a
node whose op is the function's name) is replaced by the callee's nodes, renamed
under the call's name; the callee's arguments become the caller's tensors. Control
flow (`If`, `While`, ...) keeps its branch functions as functions.

TensorFlow's own converter (function_def_to_graph) trusts its input: a node that
declares a billion outputs makes it loop a billion times. This one checks what it
reads and stops at the limits below.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from kerascheck.formats.savedmodel.reader import CALL_OPS, dtype_name, node_functions

MAX_INLINE_DEPTH = 32
MAX_FLAT_NODES = 2_000_000
MAX_OUTPUTS_PER_NODE = 100_000
DROPPED_ATTRS = ("_class",)  # colocation with nodes of the saved graph, which are not here


class FlattenError(Exception):
    """The function cannot be made one graph; the message says why."""


@dataclass
class FlatGraph:
    graph_def: object
    inputs: list  # (placeholder name, signature input name, dtype name, shape)
    captures: list  # (placeholder name, object-graph node id)
    outputs: list  # (signature output name, tensor name)
    # flat node name -> (function, node name in it, flat name of the inlined call it came from or None)
    origin: dict = field(default_factory=dict)
    kept_calls: int = 0  # calls left as calls (recursion or depth limit)


def flatten(saved, signature) -> FlatGraph:
    from tensorflow.core.framework import graph_pb2, types_pb2
    from tensorflow.python.framework import op_def_registry

    flat = _Flattener(saved.library, op_def_registry)
    fdef = saved.library[signature.function]
    args = list(fdef.signature.input_arg)
    n_inputs = len(signature.inputs)
    arg_tensors = []
    inputs, captures = [], []
    by_index = {i[3]: i for i in signature.inputs}
    for i, arg in enumerate(args):
        node = flat.gd.node.add(name=arg.name, op="Placeholder")
        node.attr["dtype"].type = arg.type
        if i < n_inputs:
            name, dtype, shape, _ = by_index[i]
            if shape is not None:
                for d in shape:
                    node.attr["shape"].shape.dim.add(size=-1 if d is None else d)
            inputs.append((arg.name, name, dtype, shape))
        else:
            if arg.type != types_pb2.DT_RESOURCE:
                raise FlattenError(f"the signature captures a {_type_name(arg.type)} tensor ({arg.name}), which "
                                   "kerascheck does not rebuild")
            captures.append((arg.name, signature.captures[i - n_inputs]))
        arg_tensors.append(f"{arg.name}:0")
        flat.names.add(arg.name)
    rets = flat.inline(signature.function, "", arg_tensors, ())
    flat.resolve()
    outputs = [(name, flat.final(rets[index])) for name, index in signature.outputs]
    flat.add_library()
    gd = graph_pb2.GraphDef()
    gd.CopyFrom(flat.gd)
    return FlatGraph(gd, inputs, captures, outputs, flat.origin, flat.kept)


def _type_name(enum: int) -> str:

    return dtype_name(enum)


class _Flattener:
    def __init__(self, library: dict, registry):
        from tensorflow.core.framework import graph_pb2

        self.library = library
        self.registry = registry
        self.gd = graph_pb2.GraphDef()
        self.names: set = set()
        self.call_outputs: dict = {}  # flat IdentityN name -> [tensor names]: the inlined call's results
        self.origin: dict = {}
        self.kept = 0
        self.functions_needed: set = set()

    def inline(self, fname: str, prefix: str, arg_tensors: list, stack: tuple) -> list:
        """Add function `fname`'s nodes under `prefix`; returns its results as flat tensor names."""
        fdef = self.library[fname]
        sig = fdef.signature
        if len(arg_tensors) != len(sig.input_arg):
            raise FlattenError(f"function {fname} takes {len(sig.input_arg)} arguments but is called with "
                               f"{len(arg_tensors)}")
        parent = prefix[:-1] or None
        names: dict = {}
        for arg, tensor in zip(sig.input_arg, arg_tensors):
            names[arg.name] = tensor
            names["^" + arg.name] = "^" + tensor.rsplit(":", 1)[0]
        for node in fdef.node_def:
            flat_name = prefix + node.name
            for out_name, index in self._outputs(node, fname):
                names[f"{node.name}:{out_name}"] = f"{flat_name}:{index}"
            names["^" + node.name] = "^" + flat_name
        for node in fdef.node_def:
            flat_name = prefix + node.name
            if flat_name in self.names:
                raise FlattenError(f"function {fname} defines node '{node.name}' twice")
            self.names.add(flat_name)
            if len(self.gd.node) >= MAX_FLAT_NODES:
                raise FlattenError(f"the function has more than {MAX_FLAT_NODES:,} nodes once its calls are inlined")
            inputs = []
            for inp in node.input:
                mapped = names.get(inp)
                if mapped is None:
                    raise FlattenError(f"node '{node.name}' of function {fname} reads {inp!r}, which does not exist")
                inputs.append(mapped)
            callee = self._callee(node)
            if callee is not None and callee not in stack and len(stack) < MAX_INLINE_DEPTH:
                data = [i for i in inputs if not i.startswith("^")]
                results = self.inline(callee, flat_name + "/", data, stack + (fname,))
                out = self.gd.node.add(name=flat_name, op="IdentityN")
                out.input.extend(results + [i for i in inputs if i.startswith("^")])
                out.attr["T"].list.type.extend(a.type for a in self.library[callee].signature.output_arg)
                self.call_outputs[flat_name] = results
                self.origin[flat_name] = (fname, node.name, parent)
                continue
            if callee is not None:
                self.kept += 1
            copy = self.gd.node.add()
            copy.CopyFrom(node)
            copy.name = flat_name
            copy.device = ""
            del copy.input[:]
            copy.input.extend(inputs)
            for key in DROPPED_ATTRS:
                if key in copy.attr:
                    del copy.attr[key]
            copy.ClearField("experimental_debug_info")
            self.origin[flat_name] = (fname, node.name, parent)

            self.functions_needed.update(node_functions(node, self.library))
        rets = []
        for out in sig.output_arg:
            nested = fdef.ret.get(out.name)
            if nested is None or nested not in names:
                raise FlattenError(f"function {fname} does not say where its output {out.name!r} comes from")
            rets.append(names[nested])
        return rets

    def _callee(self, node) -> str | None:
        if node.op in self.library:
            return node.op
        if node.op in CALL_OPS and node.attr["f"].func.name in self.library:
            return node.attr["f"].func.name
        return None

    def _outputs(self, node, fname: str):
        """(output arg name:index, flat index) for each output of a node, as GraphDefs number them."""
        if node.op in self.library:
            args = self.library[node.op].signature.output_arg
        else:
            op_def = self.registry.get(node.op)
            if op_def is None:
                raise FlattenError(f"node '{node.name}' of function {fname} is op {node.op}, which this "
                                   "TensorFlow does not know")
            args = op_def.output_arg
        index = 0
        for arg in args:
            if arg.number_attr:
                count = node.attr[arg.number_attr].i if arg.number_attr in node.attr else -1
            elif arg.type_list_attr:
                count = len(node.attr[arg.type_list_attr].list.type) if arg.type_list_attr in node.attr else -1
            else:
                count = 1
            if not 0 <= count <= MAX_OUTPUTS_PER_NODE:
                raise FlattenError(f"node '{node.name}' of function {fname} declares {count} outputs")
            for i in range(count):
                yield f"{arg.name}:{i}", index
                index += 1

    def final(self, tensor: str) -> str:
        """A tensor name with the IdentityN of inlined calls looked through (bounded: chains are short)."""
        for _ in range(MAX_INLINE_DEPTH + 2):
            node, _, index = tensor.rpartition(":")
            results = self.call_outputs.get(node)
            if results is None:
                return tensor
            if not index.isdigit() or int(index) >= len(results):
                raise FlattenError(f"a node reads output {index} of call '{node}', which has {len(results)}")
            tensor = results[int(index)]
        raise FlattenError("calls return each other's results in a loop")

    def resolve(self) -> None:
        """Point every reader of an inlined call's result at the tensor itself, so the analysis
        follows values across function boundaries (IdentityN would hide them)."""
        for node in self.gd.node:
            if node.op == "IdentityN" and node.name in self.call_outputs:
                continue
            for i, inp in enumerate(node.input):
                if not inp.startswith("^"):
                    resolved = self.final(inp)
                    if resolved != inp:
                        node.input[i] = resolved

    def add_library(self) -> None:
        """The functions that control-flow nodes (and calls kept as calls) still name."""
        seen, stack = set(), list(self.functions_needed)
        while stack:
            name = stack.pop()
            if name in seen or name not in self.library:
                continue
            seen.add(name)
            fdef = self.library[name]
            self.gd.library.function.add().CopyFrom(fdef)
            for node in fdef.node_def:
                stack.extend(node_functions(node, self.library))
