"""Interval bounds of graph tensors, for deciding whether a denominator can reach zero.

Each tensor gets a (lower, upper) interval over all its elements, from its op and
the intervals of its inputs: constants are exact, `x + 1e-7` with `x >= 0` is at
least 1e-7, `maximum(x, eps)` at least eps, `exp` and `softplus` at least 0 (they
underflow), anything read from a variable or an input unbounded. Every tensor is
visited once (memoised), so the analysis is linear in the number of ops it reaches.
It is deliberately conservative: "unknown" means "can be zero", so a guard it does
not recognise is reported rather than trusted.
"""
from __future__ import annotations

import math
from collections import deque

INF = math.inf
UNKNOWN = (-INF, INF)
# Ops that pass their first input's values through unchanged (or a subset of them).
PASSTHROUGH = {
    "Identity", "Cast", "Reshape", "ExpandDims", "Squeeze", "Transpose", "Tile", "BroadcastTo",
    "StopGradient", "PreventGradient", "EnsureShape", "StridedSlice", "Slice", "GatherV2", "GatherNd",
    "Max", "Min", "Mean", "CheckNumerics", "Snapshot", "ReverseV2", "MirrorPad",
}
# Arithmetic that the softmax checks follow from a division back to an exp.
ARITH = {"Sum", "AddV2", "Add", "AddN", "Mul", "BiasAdd", "Sub", "Maximum", "Minimum", "SelectV2", "Select",
         "Neg", "ConcatV2", "Pack"}
SHAPES = {"Shape", "Size", "Rank", "ShapeN"}
# Ops that change a tensor's shape or dtype but not its values.
SAME_VALUES = {"Identity", "Cast", "Reshape", "ExpandDims", "Squeeze", "StopGradient"}
FLOAT32_EXP_MAX = 88.0
MAX_DEPTH = 400  # beyond this many ops upstream a tensor is "unknown" (keeps recursion bounded)
MAX_CONST_ELEMENTS = 1 << 20


def is_float(t) -> bool:
    try:
        return t.dtype.is_floating
    except Exception:
        return False


def _mul(a: tuple, b: tuple) -> tuple:
    products = []
    for x in a:
        for y in b:
            products.append(0.0 if (x == 0 or y == 0) else x * y)
    return (min(products), max(products))


def _exp(x: float) -> float:
    if x > FLOAT32_EXP_MAX:
        return INF
    if x < -87.0:  # float32 exp underflows to 0 (or a denormal) below about -87
        return 0.0
    return math.exp(x)


class Bounds:
    def __init__(self, variable_names: dict | None = None, variable_ranges: dict | None = None):
        self.memo: dict = {}
        self.variable_names = variable_names or {}
        self.variable_ranges = variable_ranges or {}
        self.fetch_ops: set = set()  # op names of the Identity outputs kerascheck added to the trace

    def lower(self, t) -> float:
        return self.interval(t)[0]

    def upper(self, t) -> float:
        return self.interval(t)[1]

    def nonzero(self, t) -> bool:
        """Whether every element is kept away from zero (an interval excluding 0, or a where() guard)."""
        lo, hi = self.interval(t)
        if lo > 0 or hi < 0:
            return True
        op = t.op
        if op.type in SAME_VALUES:
            return self.nonzero(op.inputs[0])
        if op.type == "Mul":
            return self.nonzero(op.inputs[0]) and self.nonzero(op.inputs[1])
        if op.type == "Neg":
            return self.nonzero(op.inputs[0])
        if op.type == "Const":
            value = _const(op)
            return value is not None and value.size > 0 and bool((value != 0).all())
        if op.type in ("SelectV2", "Select"):
            cond, when_true, when_false = op.inputs
            return (self._guards(cond, when_false, negate=False) or self.nonzero(when_false)) and \
                (self._guards(cond, when_true, negate=True) or self.nonzero(when_true))
        return False

    def _guards(self, cond, branch, negate: bool) -> bool:
        """Whether `cond` being False (True when negate) rules out `branch` being zero:
        where(d == 0, 1, d), where(abs(d) < eps, eps, d) and their mirrors."""
        op = cond.op
        kind = op.type
        if negate:
            kind = {"NotEqual": "Equal", "Equal": "NotEqual", "GreaterEqual": "Less", "Greater": "LessEqual"}.get(kind)
        if kind is None or len(op.inputs) != 2:
            return False
        a, b = op.inputs
        if kind == "Equal":
            for value, other in ((_strip(a), b), (_strip(b), a)):
                const = _const(value.op) if value.op.type == "Const" else None
                if const is not None and const.size == 1 and float(const) == 0 and _same(other, branch):
                    return True
        if kind in ("Less", "LessEqual") and a.op.type == "Abs" and _same(a.op.inputs[0], branch):
            return self.lower(b) > 0
        return False

    def interval(self, t) -> tuple:
        key = t.name
        hit = self.memo.get(key)
        if hit is not None:
            return hit
        # Iterative post-order over the unvisited upstream tensors, so deep graphs
        # cannot exhaust Python's recursion limit.
        stack = [(t, False, 0)]
        while stack:
            node, expanded, depth = stack.pop()
            if node.name in self.memo:
                continue
            inputs = self._inputs_needed(node)
            if expanded or not inputs or depth > MAX_DEPTH:
                self.memo[node.name] = self._compute(node) if depth <= MAX_DEPTH else UNKNOWN
                continue
            stack.append((node, True, depth))
            for inp in inputs:
                if inp.name not in self.memo:
                    stack.append((inp, False, depth + 1))
        return self.memo[key]

    def _inputs_needed(self, t) -> list:
        op = t.op
        if op.type in ("Const", "Placeholder", "ReadVariableOp", "VarHandleOp", "OnesLike", "ZerosLike") \
                or op.type in SHAPES:
            return []
        return [i for i in op.inputs]

    def _get(self, t) -> tuple:
        return self.memo.get(t.name, UNKNOWN)

    def _compute(self, t) -> tuple:
        op = t.op
        kind = op.type
        ins = list(op.inputs)
        if kind == "Const":
            value = _const(op)
            if value is None or value.size == 0 or value.dtype.kind not in "fiub":
                return UNKNOWN
            lo, hi = float(value.min()), float(value.max())
            return (lo, hi) if not (math.isnan(lo) or math.isnan(hi)) else UNKNOWN
        if kind in SHAPES:
            return (1.0, INF)  # dimensions of real inputs are at least 1
        if kind == "OnesLike":
            return (1.0, 1.0)
        if kind == "ZerosLike":
            return (0.0, 0.0)
        if kind == "ReadVariableOp" and ins:
            return self.variable_ranges.get(ins[0].op.name, UNKNOWN)
        if kind in ("Placeholder", "VarHandleOp") or not ins:
            return UNKNOWN
        g = [self._get(i) for i in ins]
        if kind in PASSTHROUGH:
            return g[0]
        if kind == "Fill":
            return g[1]
        if kind == "Range":  # start, limit, delta
            (s_lo, s_hi), (l_lo, l_hi), (d_lo, d_hi) = g
            if d_lo > 0:
                return (s_lo, max(s_hi, l_hi))
            if d_hi < 0:
                return (min(s_lo, l_lo), s_hi)
            return UNKNOWN
        if kind == "ConcatV2":
            parts = g[:-1]
            return (min(p[0] for p in parts), max(p[1] for p in parts)) if parts else UNKNOWN
        if kind == "Pack":
            return (min(p[0] for p in g), max(p[1] for p in g))
        if kind in ("AddV2", "Add", "BiasAdd"):
            return (g[0][0] + g[1][0], g[0][1] + g[1][1])
        if kind == "AddN":
            return (sum(p[0] for p in g), sum(p[1] for p in g))
        if kind == "Sub":
            if _is_minus_max(ins[0], ins[1]):
                return (-INF, 0.0)
            return (g[0][0] - g[1][1], g[0][1] - g[1][0])
        if kind == "Neg":
            return (-g[0][1], -g[0][0])
        if kind == "Mul":
            if _same(ins[0], ins[1]):
                return _square(g[0])
            return _mul(g[0], g[1])
        if kind in ("Square", "SquaredDifference"):
            if kind == "SquaredDifference":
                diff = (g[0][0] - g[1][1], g[0][1] - g[1][0])
                return _square(diff) if not _same(ins[0], ins[1]) else (0.0, 0.0)
            return _square(g[0])
        if kind == "Abs":
            lo, hi = g[0]
            return (lo if lo > 0 else (-hi if hi < 0 else 0.0), max(abs(lo), abs(hi)))
        if kind == "Sqrt":
            return (math.sqrt(max(g[0][0], 0.0)), math.sqrt(g[0][1]) if g[0][1] >= 0 else 0.0)
        if kind == "Rsqrt":
            lo, hi = g[0]
            return (1 / math.sqrt(hi) if 0 < hi < INF else 0.0, 1 / math.sqrt(lo) if lo > 0 else INF)
        if kind == "Exp":
            return (_exp(g[0][0]), _exp(g[0][1]))
        if kind == "Softplus":
            lo, hi = g[0]
            return (math.log1p(_exp(lo)) if lo > -87.0 else 0.0, INF if hi > FLOAT32_EXP_MAX else math.log1p(_exp(hi)))
        if kind == "Sigmoid":
            lo, hi = g[0]
            return (1 / (1 + _exp(-lo)) if lo > -87.0 else 0.0, 1 / (1 + _exp(-hi)) if hi < INF else 1.0)
        if kind in ("Tanh", "Sin", "Cos", "Erf", "Softsign"):
            return (-1.0, 1.0)
        if kind == "Softmax":
            return (0.0, 1.0)
        if kind == "LogSoftmax":
            return (-INF, 0.0)
        if kind == "Relu":
            return (max(g[0][0], 0.0), max(g[0][1], 0.0))
        if kind == "Relu6":
            return (min(max(g[0][0], 0.0), 6.0), min(max(g[0][1], 0.0), 6.0))
        if kind in ("Elu", "Selu"):
            return (max(g[0][0], -1.76), g[0][1])
        if kind == "Maximum":
            return (max(g[0][0], g[1][0]), max(g[0][1], g[1][1]))
        if kind == "Minimum":
            return (min(g[0][0], g[1][0]), min(g[0][1], g[1][1]))
        if kind == "ClipByValue":
            return (max(g[0][0], g[1][0]), min(g[0][1], g[2][1]))
        if kind in ("SelectV2", "Select"):
            return (min(g[1][0], g[2][0]), max(g[1][1], g[2][1]))
        if kind == "Sum":
            lo, hi = g[0]
            return (lo if lo >= 0 else -INF, hi if hi <= 0 else INF) if not _sum_of_stable_exp(ins[0]) else (1.0, INF)
        if kind == "Prod":
            return (1.0, INF) if g[0][0] >= 1 else ((0.0, INF) if g[0][0] >= 0 else UNKNOWN)
        if kind in ("RealDiv", "Div", "DivNoNan"):
            (a, b), (c, d) = g
            if c > 0 or d < 0:
                inv = (1 / d if d not in (INF, -INF) else 0.0, 1 / c if c not in (INF, -INF) else 0.0)
                return _mul((a, b), (min(inv), max(inv)))
            return UNKNOWN
        if kind == "Log":
            lo, hi = g[0]
            return (math.log(lo) if lo > 0 else -INF, math.log(hi) if 0 < hi < INF else (INF if hi == INF else -INF))
        if kind == "Pow":
            base = exp_base(op)
            if base is not None:  # c ** x is exp(x * ln c)
                scale = math.log(base)
                ends = sorted((g[1][0] * scale if g[1][0] not in (INF, -INF) else g[1][0],
                               g[1][1] * scale if g[1][1] not in (INF, -INF) else g[1][1]))
                return (_exp(ends[0]), _exp(ends[1]))
            (lo, hi), (e_lo, e_hi) = g
            if e_lo == e_hi == 2.0:
                return _square((lo, hi))
            if lo >= 0 and e_lo > 0:
                return (lo ** e_hi if lo < 1 else lo ** e_lo, INF if hi == INF else max(hi ** e_lo, hi ** e_hi))
            return UNKNOWN
        return UNKNOWN


def _square(interval: tuple) -> tuple:
    lo, hi = interval
    if lo >= 0:
        return (lo * lo, hi * hi)
    if hi <= 0:
        return (hi * hi, lo * lo)
    return (0.0, max(lo * lo, hi * hi))


def _const(op):
    try:
        import tensorflow as tf

        shape = op.get_attr("value").tensor_shape
        if sum(1 for _ in shape.dim) and math.prod(d.size for d in shape.dim) > MAX_CONST_ELEMENTS:
            return None
        return tf.make_ndarray(op.get_attr("value"))
    except Exception:
        return None


def exp_base(op) -> float | None:
    """c for `c ** x` with a constant c > 1 (an exp in disguise, as a Lambda without imports writes it)."""
    if op.type != "Pow":
        return None
    base = _strip(op.inputs[0])
    value = _const(base.op) if base.op.type == "Const" else None
    if value is None or value.size != 1:
        return None
    c = float(value.reshape(-1)[0])
    return c if c > 1 else None


def _strip(t):
    while t.op.type in ("Identity", "StopGradient", "Cast", "Snapshot"):
        t = t.op.inputs[0]
    return t


def _same(a, b) -> bool:
    return _strip(a).name == _strip(b).name


def _is_minus_max(x, m) -> bool:
    """x - max(x, ...): at most 0. Also x - where(isinf(m), 0, m), as keras.ops.logsumexp writes it."""
    m = _strip(m)
    if m.op.type in ("SelectV2", "Select"):
        branches = [_strip(b) for b in m.op.inputs[1:]]
        maxes = [b for b in branches if b.op.type == "Max"]
        if len(maxes) == 1 and all(b.op.type == "Const" for b in branches if b is not maxes[0]):
            m = maxes[0]
    return m.op.type == "Max" and _same(m.op.inputs[0], x)


def _sum_of_stable_exp(t) -> bool:
    """sum(exp(x - max(x))) >= 1: the largest element contributes exp(0)."""
    t = _strip(t)
    if t.op.type != "Exp":
        return False
    arg = _strip(t.op.inputs[0])
    return arg.op.type == "Sub" and _is_minus_max(arg.op.inputs[0], arg.op.inputs[1])


def walk_back(t, hops: int, through: str):
    """Tensors upstream of `t` (itself first) within `hops` ops, following only pass-through
    ops (through="passthrough") or arithmetic too (through="arith"); exp ends a path."""
    allowed = PASSTHROUGH if through == "passthrough" else PASSTHROUGH | ARITH
    seen = {t.name}
    queue = deque([(t, 0)])
    while queue:
        node, depth = queue.popleft()
        yield node
        if depth >= hops or node.op.type not in allowed or exp_base(node.op) is not None:
            continue
        for inp in node.op.inputs:
            if inp.name not in seen and is_float(inp):
                seen.add(inp.name)
                queue.append((inp, depth + 1))


SYMBOLS = {"AddV2": "+", "Add": "+", "BiasAdd": "+", "Sub": "-", "Mul": "*", "RealDiv": "/", "Div": "/"}
NAMES = {"Square": "square", "Sqrt": "sqrt", "Rsqrt": "rsqrt", "Mean": "mean", "Sum": "sum", "Max": "max",
         "Min": "min", "Exp": "exp", "Log": "log", "Abs": "abs", "Neg": "-", "Softplus": "softplus",
         "Sigmoid": "sigmoid", "Softmax": "softmax", "Relu": "relu", "Tanh": "tanh", "MatMul": "matmul",
         "Maximum": "maximum", "Minimum": "minimum", "SquaredDifference": "squared_difference",
         "Reciprocal": "reciprocal", "Pow": "pow", "ClipByValue": "clip"}
QUIET = SAME_VALUES | {"EnsureShape", "Snapshot"}


def describe(t, owner: dict, bounds: Bounds, call, depth: int = 5) -> str:
    """A short expression for what `t` is computed from, in the layer's own terms:
    `sqrt(mean(square(input - mean(input))))`."""
    while t.op.type in QUIET and t.op.inputs:
        t = t.op.inputs[0]
    op = t.op
    producer = owner.get(op._id)
    if op.type == "Const":
        value = _const(op)
        if value is not None and value.size == 1:
            return f"{float(value.reshape(-1)[0]):g}"
        return "a constant"
    if op.type == "ReadVariableOp" or (op.type == "Placeholder" and op.name in bounds.variable_names):
        name = bounds.variable_names.get(op.inputs[0].op.name if op.inputs else op.name)
        return f"weight '{name}'" if name else "a weight"
    if op.type in SHAPES or op.type == "Prod":
        return "a dimension size"
    if producer is None or producer.user_owner() is not call:
        if call.layer is None:  # the loss: its inputs are the labels and the model's output
            return "y_true" if op.type == "Placeholder" else "y_pred"
        return "input"
    if producer is not call and producer.layer is not None and producer.user_owner() is call \
            and not producer.user:
        return f"{producer.layer.name}(…)"
    if depth <= 0:
        return "…"
    args = [describe(i, owner, bounds, call, depth - 1) for i in op.inputs if is_float(i)]
    if op.type in SYMBOLS and len(args) == 2:
        return f"{_paren(args[0])} {SYMBOLS[op.type]} {_paren(args[1])}"
    name = NAMES.get(op.type, op.type[0].lower() + op.type[1:])
    if name == "-" and len(args) == 1:
        return f"-{_paren(args[0])}"
    return f"{name}({', '.join(args)})"


def _paren(text: str) -> str:
    """Parenthesise an operand that has a binary operator outside any brackets or quotes."""
    depth, quoted = 0, False
    for i, ch in enumerate(text):
        if ch == "'":
            quoted = not quoted
        elif not quoted and ch in "([":
            depth += 1
        elif not quoted and ch in ")]":
            depth -= 1
        elif not quoted and depth == 0 and ch in "+-*/" and text[i - 1:i] == " " and text[i + 1:i + 2] == " ":
            return f"({text})"
    return text
