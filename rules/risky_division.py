"""A custom layer divides by, or takes the log of, something that nothing keeps away from zero.

## What it does
Traces the model's forward pass to TensorFlow ops and, for every op in your own
code (custom layers, Lambdas under `--unsafe`, custom activations), looks at
what each division, reciprocal, `rsqrt`, negative power and `log` is computed
from. A denominator counts as guarded when the dataflow shows it cannot reach
zero: plus a positive constant (`v + 1e-5`), `maximum` or `clip` with a positive
minimum, a non-zero constant, `divide_no_nan`, a `where(d == 0, 1, d)` guard, or
`softplus`/`exp` plus an epsilon. Keras's own layers are known to be guarded and
are not looked at. Each suspect op is then run on edge inputs (all zeros, a
constant row, the sample scaled by 1e3 and 1e4): if one of them gives Inf/NaN at
the op while its inputs are finite, the finding is confirmed and an error;
otherwise it is a warning. When the layer's code is on disk (`--custom-objects`),
the finding points at the file and line. An op written inside a Keras or
TensorFlow function your code calls (`keras.ops.ctc_loss`, `tf.nn.ctc_loss`) is
the library's, not yours: it is reported only when an edge input turns your
layer's own output (or your loss's value) non-finite through it, and then at your
call of that function. Severity does not depend on `--data`: the edge inputs are
derived from it when given, from synthetic inputs otherwise.

## Why is this bad?
`x / s` with `s = 0` is Inf, `0 / 0` is NaN, and `log(0)` is -Inf. One such value
in a forward pass makes the loss NaN, and the gradients carry it into every
weight: training is lost for good, often hours in, on the first batch that
happens to contain a constant feature or a zero row. A standard deviation
(`sqrt(var)`) is zero for any constant input, so normalisation layers written
by hand are the usual culprit.

## How to fix
Keep the denominator away from zero: add an epsilon to a non-negative value,
take `keras.ops.maximum(d, eps)`, or use `keras.ops.divide_no_nan` where 0 is the
right answer for 0/0. For logs, `keras.ops.log(keras.ops.maximum(x, 1e-7))`.

## Example
```python
class Standardize(keras.layers.Layer):
    def call(self, x):
        mean = keras.ops.mean(x, axis=-1, keepdims=True)
        var = keras.ops.var(x, axis=-1, keepdims=True)
        return (x - mean) / keras.ops.sqrt(var)
```
Use instead:
```python
        return (x - mean) / keras.ops.sqrt(var + 1e-5)
```
"""
from kerascheck.rule import Rule
from kerascheck.tiers.graph.findings import report

RULE = Rule(name="risky-division", code="KC102", severity="warning", tier="graph")

WHAT = {
    "division": ("divides by `{operand}`, which nothing keeps away from zero",
                 "Guard the denominator: `x / (d + 1e-7)` for a non-negative d, `x / keras.ops.maximum(d, 1e-7)`, "
                 "or `keras.ops.divide_no_nan(x, d)`; for a standard deviation, `keras.ops.sqrt(var + 1e-5)`."),
    "reciprocal": ("takes the reciprocal of `{operand}`, which nothing keeps away from zero",
                   "Guard it: `1.0 / keras.ops.maximum(d, 1e-7)` or `keras.ops.divide_no_nan(1.0, d)`."),
    "rsqrt": ("takes rsqrt of `{operand}`, which nothing keeps above zero (rsqrt(0) = Inf)",
              "Add an epsilon first: `keras.ops.rsqrt(var + 1e-5)`."),
    "power": ("raises `{operand}` to a negative power, and nothing keeps it away from zero",
              "Guard the base: `keras.ops.power(keras.ops.maximum(x, 1e-7), -p)`."),
    "log": ("takes the log of `{operand}`, which nothing keeps above zero (log(0) = -Inf, log(x < 0) = NaN)",
            "Guard the argument: `keras.ops.log(keras.ops.maximum(x, 1e-7))` or `keras.ops.log(x + 1e-7)` "
            "for a non-negative x."),
}


def check(facts):
    return report(RULE, facts, WHAT)
