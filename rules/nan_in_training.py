"""Training at the configured learning rate produces NaN/Inf or an exploding loss within 100 steps.

## What it does
Trains kerascheck's copy of the model for up to 100 steps at its own compiled
learning rate and optimizer. If the loss or any weight becomes NaN/Inf, or the
loss grows more than 1000-fold (Adam at a rate of 10 can reach 1e11 and stay
finite), it divides the rate by 3 until 100 steps stay finite, and reports the
edge, a recommended rate 3-10x below it, and the first layer whose activations or
gradients went non-finite.

## Why is this bad?
NaNs in the first hundred iterations almost always mean the learning rate is
too high. Good rates sit 1-10x below the rate at which training diverges;
everything the net learns before the blow-up is lost.

## How to fix
Lower the learning rate to the recommended value (or clip gradients, for RNNs),
then check the loss falls smoothly.

## Example
```python
model.compile(optimizer=keras.optimizers.SGD(learning_rate=5.0), loss="mse")
```
Use instead:
```python
model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.05), loss="mse")
```
"""
from kerascheck.probe_evidence import context, data_note
from kerascheck.rule import Rule, Skip

RULE = Rule(name="nan-in-training", code="KC103", severity="error", tier="probe", needs=("train",))


def check(facts):
    probe = facts.probe
    run = probe.train
    if run is None:
        raise Skip("the model has no trainable weights")
    if run.diverged_at is None:
        if run.cut and run.steps_done < 10:
            raise Skip(f"the time budget allowed only {run.steps_done} training steps; raise --budget")
        return
    lr = run.learning_rate
    stable = probe.stable_run.learning_rate if probe.stable_run else None
    failing = [lr] + [r for r, d in probe.sweep if d is not None]
    edge = min(failing)
    what = "NaN/Inf" if run.why == "nan" else f"a loss {run.losses[-1]:.3g}, over 1000x its start"
    where = ""
    layer = None
    if probe.nan_layer:
        layer = probe.nan_layer["layer"]
        where = f"; the first non-finite {probe.nan_layer['where']} appeared in layer '{layer}'"
    if stable is not None:
        rec_lo, rec_hi = edge / 10, edge / 3
        advice = (f"the rate {stable:.3g} stayed finite for 100 steps; the NaN edge is {edge:.3g}, so use "
                  f"{rec_lo:.2g} to {rec_hi:.2g} (3-10x below it)")
        target = _round(rec_lo)
    else:
        advice = f"even {edge:.3g} diverged (the sweep stopped there)"
        target = _round(edge / 10)
    yield RULE.finding(
        layer=layer,
        message=f"Training at learning rate {lr:.3g} gave {what} at step {run.diverged_at + 1} of 100{where}; "
                f"{advice}{data_note(probe)}.",
        fix=f"Lower the learning rate: keras.optimizers.{facts.spec.compile.optimizer.class_name if facts.spec.compile and facts.spec.compile.optimizer else 'Adam'}"
            f"(learning_rate={target:g}).",
        evidence={**context(probe), "train": run.to_evidence(), "why": run.why,
                  "sweep": [{"learning_rate": r, "diverged_at": d} for r, d in probe.sweep],
                  "nan_edge": edge, "stable_rate": stable,
                  "recommended": [edge / 10, edge / 3] if stable is not None else None,
                  "first_nonfinite": probe.nan_layer},
    )


def _round(x: float) -> float:
    from math import floor, log10

    return float(f"{x:.1g}") if x > 0 and floor(log10(x)) > -12 else x
