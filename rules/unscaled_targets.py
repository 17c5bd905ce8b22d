"""Regression targets of large magnitude or spread are fitted by a linear output unscaled.

## What it does
With `--data` holding targets `y`, and a regression loss on a linear output,
measures the targets' mean and standard deviation and flags targets whose
magnitude or spread is above 10 (or whose features differ in scale by more than
100x). Without `--data` the rule is skipped: synthetic targets say nothing.
Severity: a warning, only ever on your data.

## Why is this bad?
The last layer starts out predicting values near zero with unit-scale spread.
Targets in the thousands make the initial loss enormous, the first gradients
huge, and the learning rate that suits the rest of the net far too small for
the output layer; the loss is also dominated by the largest-scale target.

## How to fix
Standardise the targets with the training set's mean and standard deviation and
invert the scaling at inference, as everyone else does.

## Example
```python
model.fit(x, house_prices)  # values around 300000
```
Use instead:
```python
mean, std = house_prices.mean(), house_prices.std()
model.fit(x, (house_prices - mean) / std)
prices = model.predict(x_new) * std + mean
```
"""
import numpy as np

from kerascheck.facts.topology import graph_of
from kerascheck.rule import Rule, Skip
from kerascheck.tiers.probe.evidence import context

RULE = Rule(name="unscaled-targets", code="KC302", severity="warning", tier="probe", needs=("data",))

LIMIT = 10.0


def check(facts):
    probe = facts.probe
    if probe.task != "regression":
        return  # class labels have no scale to get wrong
    if probe.synthetic or probe.target_stats is None:
        raise Skip("needs --data with targets (y); synthetic targets say nothing about yours")
    spec = facts.spec
    act, _, where = graph_of(spec).output_activation(spec.outputs[0]) if spec.outputs else ("linear", None, None)
    if act != "linear":
        return
    st = probe.target_stats
    mean, std = np.abs(np.asarray(st["mean"])), np.asarray(st["std"])
    positive = std[std > 0]
    ratio = float(positive.max() / positive.min()) if positive.size > 1 else 1.0
    if mean.max() <= LIMIT and std.max() <= LIMIT and ratio <= 100:
        return
    yield RULE.finding(
        layer=where,
        message=f"Regression targets reach a mean of {mean.max():.4g} and a standard deviation of {std.max():.4g} "
                f"(over {st['examples']} examples{'' if ratio <= 100 else f'; their scales differ {ratio:.0f}x'}), "
                f"fitted by the linear output '{where}' with {probe.loss_name}.",
        fix="Standardise the targets: y_scaled = (y - y.mean(axis=0)) / y.std(axis=0), and invert it after "
            "predict().",
        evidence={**context(probe), **st, "scale_ratio": ratio},
    )
