"""A hand-written softmax or log-probability overflows: exp without the max subtracted, log of a softmax.

## What it does
Traces the model's forward pass to TensorFlow ops and, in your own code (custom
layers, Lambdas under `--unsafe`, custom activations), finds:

* `exp(x) / sum(exp(x))` where nothing subtracts the maximum (or otherwise
  bounds `x` from above) before the `exp`;
* `exp` of an unbounded value feeding any division (`exp(x) / (1 + exp(x))`);
* `log` of a softmax or sigmoid output, built-in or hand-written.

Keras's own `Softmax` layer, `keras.ops.softmax` and `log_softmax` are stable and
are not reported. Each suspect is run on edge inputs (all zeros, a constant row,
the sample scaled by 1e3 and 1e4); a suspect that gives Inf/NaN there is
confirmed and an error, otherwise a warning, with or without `--data`. Ops inside
a library function your code calls count only when they reach your own output.

## Why is this bad?
`exp` overflows float32 above about 88: a logit of 100 makes `exp(x)` Inf, and
Inf/Inf is NaN. Logits that large are normal late in training or with unscaled
inputs. The other side fails too: a confident softmax underflows to exactly 0,
and `log(0)` is -Inf, so a hand-written cross-entropy turns NaN just as the model
gets good.

## How to fix
Use the stable forms: `keras.ops.softmax(x, axis=-1)` (or subtract
`keras.ops.max(x, axis=-1, keepdims=True)` before `exp`), `keras.ops.sigmoid`,
`keras.ops.log_softmax` / `keras.ops.log_sigmoid`, or return logits and use a
loss with `from_logits=True`.

## Example
```python
class Attention(keras.layers.Layer):
    def call(self, scores):
        e = keras.ops.exp(scores)
        return e / keras.ops.sum(e, axis=-1, keepdims=True)
```
Use instead:
```python
        return keras.ops.softmax(scores, axis=-1)
```
"""
from kerascheck.rule import Rule
from kerascheck.tiers.graph.findings import report

RULE = Rule(name="unstable-softmax", code="KC101", severity="warning", tier="graph")

WHAT = {
    "softmax": ("computes a softmax as exp(x) / `{operand}` without subtracting the maximum first: exp overflows "
                "float32 above about 88 and Inf/Inf is NaN",
                "Use `keras.ops.softmax(x, axis=-1)`, or subtract the maximum before exp: "
                "`e = keras.ops.exp(x - keras.ops.max(x, axis=-1, keepdims=True))`."),
    "exp-division": ("feeds exp of an unbounded value (`{operand}`) into a division: exp overflows float32 above "
                     "about 88 and Inf/Inf is NaN",
                     "Use the stable built-ins (`keras.ops.sigmoid`, `keras.ops.softmax`), or bound the exponent "
                     "first (subtract its maximum, or clip it)."),
    "log-probability": ("takes the log of a probability (`{operand}`): confident outputs underflow to 0 and "
                        "log(0) = -Inf",
                        "Use `keras.ops.log_softmax(x)` or `keras.ops.log_sigmoid(x)` on the logits, or return "
                        "logits and use a loss with `from_logits=True`."),
}


def check(facts):
    return report(RULE, facts, WHAT)
