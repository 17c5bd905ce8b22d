"""In inference mode, a sample's output depends on the other samples in its batch.

## What it does
Runs 8 examples through kerascheck's copy of the model in inference mode three
ways: as one batch, one at a time (batch size 1), and as a shuffled batch. Each
example's output must be the same every time. When it is not, the rule finds the
first layer whose outputs part.

It is not judged when the model's inference output is NaN/Inf (another finding
explains that), nor when the same batch gives different outputs on two calls (a
layer that draws noise at inference, like a VAE's sampling layer): the skip says
which layer. Severity: an error, on synthetic data and on `--data` alike (a batch
dependence does not depend on what the examples are).

## Why is this bad?
A model that mixes information across the batch at inference (a custom layer
normalising over axis 0, a mean over the wrong axis, a batch-statistics layer
stuck in training mode) gives different answers for the same input depending on
what else was in the batch, and breaks at batch size 1 in production.

## How to fix
Reduce over the feature axes, never axis 0, in custom layers; use
BatchNormalization's moving statistics at inference (`training=False`).

## Example
```python
def call(self, x):
    return x - keras.ops.mean(x, axis=0)  # mixes the batch
```
Use instead:
```python
def call(self, x):
    return x - keras.ops.mean(x, axis=-1, keepdims=True)
```
"""
from kerascheck.rule import Rule, Skip
from kerascheck.tiers.probe.evidence import context

RULE = Rule(name="batch-dependence", code="KC602", severity="error", tier="probe", needs=("batch",))


def check(facts):
    probe = facts.probe
    result = probe.batch
    if result is None:
        raise Skip("the batch probe did not run (no budget left)")
    if result.get("nonfinite_output"):
        raise Skip("the model's inference output is NaN/Inf, so whether it depends on the batch cannot be judged")
    if result.get("stochastic"):
        where = f" (layer '{result['first_layer']}' draws new values each call)" if result.get("first_layer") else ""
        raise Skip(f"the model's inference output is random: the same batch gives outputs up to "
                   f"{result['max_diff_repeat']:.3g} apart on two calls{where}, so batch dependence cannot be "
                   "judged")
    diff = max(result["max_diff_single"], result["max_diff_shuffled"])
    if diff <= result["tolerance"]:
        return
    layer = result["first_layer"]
    where = f"; they first part in layer '{layer}'" if layer else ""
    yield RULE.finding(
        layer=layer,
        message=f"In inference mode the same example gives outputs up to {diff:.3g} apart alone (batch size 1) "
                f"and inside a batch of {result['examples']} (shuffled: {result['max_diff_shuffled']:.3g}; "
                f"tolerance {result['tolerance']:.1g}){where}.",
        fix="Reduce over feature axes, not the batch axis, e.g. keras.ops.mean(x, axis=-1, keepdims=True), "
            "and call normalisation layers with training=False at inference.",
        evidence={**context(probe), **result},
    )
