"""What every graph the graph tier reads shares: the ops it watches, the judgement of each op by
interval analysis (kerascheck.tiers.graph.bounds), and the confirmation of suspects by edge inputs.

The graph comes from a format's runnable: a Keras model traced with its layer calls recorded
(kerascheck.tiers.graph.trace), or a SavedModel's serving function imported as it was saved
(kerascheck.tiers.graph.serving). Both hand their ops, attributed to layer calls, to `judge`,
and the values of an edge-input run to `confirm_case`.
"""
from __future__ import annotations

import functools
import linecache
import os
from dataclasses import dataclass, field

import numpy as np

from kerascheck.tiers.graph.bounds import SAME_VALUES, Bounds, describe, exp_base, is_float, walk_back


# The ops that can turn finite inputs into Inf/NaN by dividing or taking a log,
# plus Exp (overflow), which the softmax checks follow.
DIVISIONS = {"RealDiv", "Div", "FloorDiv", "TruncateDiv", "FloorMod", "Mod", "Reciprocal", "Inv", "Rsqrt", "Pow"}


WATCHED = DIVISIONS | {"Log", "Exp"}


# Their inputs are fetched too: a log of a probability is confirmed from the logits.
FETCHED = WATCHED | {"Softmax", "Sigmoid"}


# What confirmation may fetch: at most this many tensors and this many values per
# example (x EDGE_EXAMPLES x 4 bytes: 128 MiB at most). Suspects whose tensors did not
# fit stay unconfirmed warnings rather than costing unbounded memory.
MAX_FETCHED = 4000


MAX_FETCHED_VALUES = 8 << 20


EDGE_EXAMPLES = 4


@dataclass
class Call:
    """One layer call during the trace (or the loss function, which has no layer)."""

    layer: object
    path: str  # "outer/inner" below the top-level model; "" for the model itself
    user: bool  # the code is the user's (custom class, Lambda, custom activation)
    parent: "Call | None"
    source_files: frozenset = frozenset()
    input: object = None  # the symbolic tensor the layer was called on (its first argument)
    label: str | None = None  # for the loss, which is not a layer: "loss 'my_loss'"
    outputs: list = field(default_factory=list)  # what the call returned (float tensors), or the loss value

    @property
    def class_name(self) -> str:
        return type(self.layer).__name__ if self.layer is not None else (self.label or "loss")

    def user_owner(self) -> "Call | None":
        call = self
        while call is not None and not call.user:
            call = call.parent
        return call


@dataclass
class Suspect:
    """An op in user code that can produce Inf/NaN, with what the analysis found."""

    rule: str  # "risky-division" or "unstable-softmax"
    form: str  # division, reciprocal, rsqrt, power, log, softmax, exp-division, log-probability
    layer: str | None
    layer_class: str
    op: str
    op_type: str
    operand: str  # what the denominator (or log argument, or exp input) is computed from
    source: dict | None = None  # {"file", "line", "code"} when the layer's code is on disk
    lambda_layer: bool = False
    in_keras_op: bool = False  # the op was written inside a Keras or TensorFlow function the user called
    library: str | None = None  # that function ("keras.ops.ctc_loss"), reported at the user's call of it
    home_outputs: list = field(default_factory=list, repr=False)  # the user call's outputs, fetched
    confirmed: list = field(default_factory=list)  # names of the edge inputs that gave Inf/NaN there
    nonfinite: str | None = None  # "NaN" or "Inf", from the first confirming input
    confirmed_at: str = "op"  # "op": the op's own output; "layer": the layer run alone on an edge input
    roots: list = field(default_factory=list, repr=False)  # tensors that must be finite for a confirmation
    inputs: list = field(default_factory=list, repr=False)  # the op's own inputs: the roots when those were not fetched
    result: object = field(default=None, repr=False)  # the tensor that turns non-finite

    def to_evidence(self) -> dict:
        return {"op": self.op, "op_type": self.op_type, "form": self.form, "operand": self.operand,
                "layer_class": self.layer_class, "source": self.source, "confirmed_by": list(self.confirmed),
                "nonfinite": self.nonfinite, "confirmed_at": self.confirmed_at if self.confirmed else None,
                "library_function": self.library}


@dataclass
class GraphFacts:
    ops: int
    user_ops: int
    calls: int
    suspects: list
    edge_inputs: list  # names of the inputs pushed through, in order
    seconds: dict  # trace, analysis, confirmation
    traced: bool = True  # False: the model is all Keras's own layers and loss, so nothing was traced
    loss_untraced: str | None = None  # why the user's loss could not be traced with the forward pass


def values_per_example(t) -> int:
    """Elements of one example of `t` (unknown dimensions count as 64)."""
    try:
        dims = t.shape.as_list()
    except ValueError:  # unknown rank
        return 1 << 16
    return int(np.prod([d if d is not None else 64 for d in dims[1:]] or [1]))


def judge(op, call: Call, owner: dict, bounds: Bounds) -> Suspect | None:
    kind = op.type

    def suspect(rule, form, operand_tensor, roots, result=None):
        frames = creation_frames(op)
        library = library_entry(frames)
        return Suspect(rule=rule, form=form, layer=call.path or None, layer_class=call.class_name, op=op.name,
                       op_type=kind, operand=describe(operand_tensor, owner, bounds, call),
                       source=_source(frames, call), lambda_layer=call.class_name == "Lambda",
                       in_keras_op=library is not None, library=library,
                       roots=[t.name for t in roots], result=(result or op.outputs[0]).name,
                       inputs=[t.name for t in op.inputs if is_float(t)])

    if kind == "Log":
        arg = op.inputs[0]
        prob = _probability_source(arg)
        if prob is not None:
            exps = _unbounded_exps(prob, bounds) if prob.op.type in ("RealDiv", "Div") else []
            roots = [_exponent(e) for e in exps] or list(prob.op.inputs)
            return suspect("unstable-softmax", "log-probability", prob, roots)
        if bounds.lower(arg) > 0:
            return None
        return suspect("risky-division", "log", arg, [arg])
    if kind == "Exp":
        return None  # judged where it feeds a division
    if kind in ("RealDiv", "Div", "FloorDiv", "TruncateDiv", "FloorMod", "Mod"):
        num, den = op.inputs[0], op.inputs[1]
        exps = _unbounded_exps(num, bounds) + _unbounded_exps(den, bounds)
        if exps:
            shaped = _has_sum_of_exp(den) and bool(_unbounded_exps(num, bounds))
            return suspect("unstable-softmax", "softmax" if shaped else "exp-division",
                           den if shaped else _exponent(exps[0]), [_exponent(e) for e in exps])
        if bounds.nonzero(den):
            return None
        return suspect("risky-division", "division", den, [num, den])
    if kind in ("Reciprocal", "Inv"):
        den = op.inputs[0]
        if bounds.nonzero(den) or (bounds.lower(den) >= 0 and _clamped_above(op.outputs[0], bounds)):
            return None
        return suspect("risky-division", "reciprocal", den, [den])
    if kind == "Rsqrt":
        den = op.inputs[0]
        if bounds.lower(den) > 0 or (bounds.lower(den) >= 0 and _clamped_above(op.outputs[0], bounds)):
            return None
        return suspect("risky-division", "rsqrt", den, [den])
    if kind == "Pow":
        base, exponent = op.inputs[0], op.inputs[1]
        if bounds.lower(exponent) >= 0:
            return None  # x ** 2 and the like; only an exponent that can be negative divides
        if bounds.lower(base) > 0 or (bounds.lower(base) >= 0 and _clamped_above(op.outputs[0], bounds)):
            return None
        return suspect("risky-division", "power", base, [base])
    return None


def _clamped_above(t, bounds: Bounds) -> bool:
    """Whether every use of a non-negative result that can be +Inf caps it at a finite value:
    minimum(rsqrt(s), 1 / eps), as keras.ops.normalize writes it."""
    uses = [c for c in t.consumers() if c.name not in bounds.fetch_ops]
    if not uses:
        return False  # it is (or reaches) the output as it is
    for use in uses:
        if use.type in SAME_VALUES:
            if not _clamped_above(use.outputs[0], bounds):
                return False
        elif use.type == "Minimum":
            other = use.inputs[1] if use.inputs[0] is t else use.inputs[0]
            if bounds.upper(other) == float("inf"):
                return False
        elif use.type == "ClipByValue" and use.inputs[0] is t:
            if bounds.upper(use.inputs[2]) == float("inf"):
                return False
        else:
            return False
    return True


def _probability_source(t):
    """The softmax/sigmoid (built-in op, or a hand-written exp/sum division) that `t` passes on, if any."""
    for node in walk_back(t, hops=4, through="passthrough"):
        if node.op.type in ("Softmax", "Sigmoid"):
            return node
        if node.op.type in ("RealDiv", "Div") and any(n.op.type == "Exp" or exp_base(n.op) is not None
                                                      for n in walk_back(node.op.inputs[0], 4, "arith")):
            return node
    return None


def _unbounded_exps(t, bounds: Bounds) -> list:
    """Exp ops feeding `t` (through arithmetic and reductions) whose input nothing bounds from above."""
    found = []
    for node in walk_back(t, hops=6, through="arith"):
        op = node.op
        if op.type == "Exp" and bounds.upper(op.inputs[0]) > 80.0:  # float32 exp overflows at ~88.7
            found.append(op)
        elif exp_base(op) is not None and bounds.upper(op.inputs[1]) * np.log(exp_base(op)) > 80.0:
            found.append(op)
    return found


def _exponent(op):
    return op.inputs[1] if op.type == "Pow" else op.inputs[0]


def _has_sum_of_exp(t) -> bool:
    nodes = list(walk_back(t, hops=6, through="arith"))
    return any(n.op.type in ("Sum", "Mean") for n in nodes) and \
        any(n.op.type == "Exp" or exp_base(n.op) is not None for n in nodes)


def creation_frames(op) -> list:
    """The Python stack that created the op, innermost frame first (TensorFlow records it)."""
    try:
        return list(reversed(list(op.traceback)))
    except Exception:
        return []


def _source(frames: list, call: Call) -> dict | None:
    """File and line of the user's expression that created the op."""
    for frame in frames if call.source_files else ():
        filename = os.path.abspath(frame.filename)
        if filename in call.source_files:
            code = linecache.getline(filename, frame.lineno).strip()
            return {"file": _display_path(filename), "line": int(frame.lineno), "code": code}
    return None


@functools.lru_cache(maxsize=1)
def _package_dirs() -> tuple[str, str]:
    import keras
    import tensorflow as tf

    return tuple(os.path.dirname(os.path.abspath(m.__file__)) + os.sep for m in (keras, tf))


# Library functions that are the op itself: an op made by calling one of them is the
# user's own expression (`x / y`, `ops.log(x)`, `tf.math.reciprocal(y)`).
PRIMITIVES = {"log", "divide", "true_divide", "truediv", "_truediv_factory", "_div_factory", "div", "realdiv",
              "real_div", "floor_divide", "floordiv", "_floordiv_factory", "floor_div", "truncatediv", "mod",
              "floor_mod", "floormod", "_mod_factory", "reciprocal", "inv", "rsqrt", "power", "pow", "_pow_factory",
              "exp", "exp2", "divide_no_nan", "div_no_nan", "sqrt", "square", "__truediv__", "__rtruediv__",
              "__pow__", "__rpow__", "__floordiv__", "__mod__"}


# Decorators and dispatchers between the user's call and the function it names.
_WRAPPERS = {"error_handler", "wrapper", "op_dispatch_handler", "binary_op_wrapper", "r_binary_op_wrapper",
             "sparse_wrapper", "_apply_op_helper", "dispatch", "api_dispatcher", "dispatch_target",
             "tf_decorator", "decorated", "inner", "_wrapper"}


def library_entry(frames: list) -> str | None:
    """The Keras or TensorFlow function the user's code called to make the op, when the op is
    written inside it ("keras.ops.ctc_loss"); None when the op is the user's own expression."""
    keras_dir, tf_dir = _package_dirs()
    inside = []  # library frames between the op and the user's frame, innermost first
    for frame in frames:
        path = os.path.abspath(frame.filename)
        if frame.filename.startswith("<") or "__autograph_generated" in path:
            continue
        if path.startswith(keras_dir) or path.startswith(tf_dir):
            inside.append((frame, path))
            continue
        break  # the user's (or a third party's) frame
    for frame, path in reversed(inside):  # from the user's call inwards
        if frame.name in _WRAPPERS:
            continue
        if frame.name.lower() in PRIMITIVES:
            return None
        if path.startswith(keras_dir):
            public = os.sep + "ops" + os.sep in path or os.sep + "backend" + os.sep in path
            return f"keras.ops.{frame.name}" if public else f"Keras's {frame.name}"
        return f"TensorFlow's {frame.name}"
    return None


def _display_path(path: str) -> str:
    try:
        rel = os.path.relpath(path)
    except ValueError:
        return path
    return path if rel.startswith("..") else rel


def dedupe(suspects: list) -> list:
    """One suspect per layer, rule, form and operand (a layer dividing twice by the same thing is one problem)."""
    seen, out = set(), []
    for s in suspects:
        key = (s.rule, s.layer, s.form, s.operand)
        if key not in seen:
            seen.add(key)
            out.append(s)
    return out


def edge_cases(base: list, floats: list, what: str) -> list[tuple[str, list]]:
    """(label, inputs) for the sample and its edge cases; only the inputs marked in `floats` vary."""
    cases = [(what, base), ("an all-zero input", [np.zeros_like(x) if f else x for x, f in zip(base, floats)])]
    if any(floats):
        scale = [float(np.mean(np.abs(x))) or 1.0 if f else 0.0 for x, f in zip(base, floats)]
        cases.append(("a constant row", [np.full_like(x, s) if f else x for x, s, f in zip(base, scale, floats)]))
        for factor in (1e3, 1e4):
            cases.append((f"the sample x{factor:.0e}".replace("+0", ""),
                          [(x * factor).astype(x.dtype) if f else x for x, f in zip(base, floats)]))
    return cases


def confirm_case(suspects: list, label: str, values: list, index: dict) -> None:
    """Confirm the suspects one edge input proves: roots finite, result not (the op itself made it)."""
    for s in suspects:
        roots = s.roots if all(r in index for r in s.roots) else s.inputs
        if s.result not in index or any(r not in index for r in roots):
            continue
        result = values[index[s.result]]
        if np.all(np.isfinite(result)):
            continue
        if s.library is not None:
            # Inside a library function an Inf is often intended (log(0) for an impossible
            # path, masked later); it is the user's problem only if it reaches their output.
            outs = [values[index[name]] for name in s.home_outputs if name in index]
            if not outs or all(np.all(np.isfinite(o)) for o in outs):
                continue
        if all(np.all(np.isfinite(values[index[r]])) for r in roots):
            if not s.confirmed:
                s.nonfinite = "NaN" if np.any(np.isnan(result)) else "Inf"
            s.confirmed.append(label)
