"""The training loss does not decrease over an epoch at the learning rate in force.

## What it does
Judges a live training run (`kerascheck.Monitor` in `model.fit`): at the end of
every epoch it compares the epoch's mean training loss, as Keras logs it, with the
epoch before, and reads the learning rate the optimizer used:

* a model with no trainable weights at all (every layer frozen) cannot change its
  loss (error, after the first epoch);
* a loss that rose over an epoch by more than 10% means the rate in force is too
  high for this stage of training (warning);
* a loss that changed by less than 1% over an epoch has stalled: a warning while it
  is still within 5% of where training started (nothing has been learnt), info once
  it has fallen further (a plateau, which a lower rate usually breaks).

A saved file has no training run, so on the command line and in
`kerascheck.check()` this rule has nothing to judge and reports nothing.

## Why is this bad?
A rate large enough for fast early progress is too large to settle into a minimum
later: the loss stops falling, or climbs. A loss that never moves at all means
nothing is learning (a frozen model, a rate far too small). Either way, more
epochs at the same rate waste the time they take.

## How to fix
Lower the learning rate when the loss stalls or rises: a `ReduceLROnPlateau`
callback does it as training goes; unfreeze the layers of a model meant to learn.

## Example
```python
model.fit(x, y, epochs=50)
```
Use instead:
```python
model.fit(x, y, epochs=50, callbacks=[keras.callbacks.ReduceLROnPlateau(monitor="loss", factor=1/3, patience=2)])
```
"""
import math

from kerascheck.rule import LIVE_ONLY, Rule, Skip
from kerascheck.tiers.probe.evidence import context

RULE = Rule(name="stalled-loss", needs=("live",), code="KC606", severity="warning", tier="probe")

RISE = 0.10  # an epoch whose loss rose by more than this share of the epoch before
FLAT = 0.01  # ... or changed by less than this share
LEARNT = 0.05  # the share of the first epoch's loss training must have shed to count as having learnt



def check(facts):
    run = getattr(facts.probe, "live", None) if facts.probe is not None else None
    if run is None:
        raise Skip(LIVE_ONLY)
    epochs = [e for e in run.epoch_losses if e["loss"] is not None and math.isfinite(e["loss"])]
    if not epochs:
        return
    evidence = {**context(facts.probe), "epoch_losses": list(run.epoch_losses)}
    if run.trainable_parameters == 0:
        last = epochs[-1]
        yield RULE.finding(
            layer=None, severity="error",
            message=f"The model has no trainable weights (every layer is frozen), so training cannot change it: the "
                    f"loss was {last['loss']:.4g} after {len(epochs)} epoch{'s' if len(epochs) != 1 else ''}.",
            fix="Unfreeze what should learn, then compile again: model.trainable = True (or layer.trainable = True "
                "for the layers to fine-tune); model.compile(...).",
            evidence={**evidence, "kind": "frozen", "trainable_parameters": 0},
        )
        return
    if len(epochs) < 2:
        return
    before, now = epochs[-2], epochs[-1]
    change = (now["loss"] - before["loss"]) / max(abs(before["loss"]), 1e-12)
    rate = now["learning_rate"]
    start = epochs[0]["loss"]
    span = f"epoch {now['epoch']}, from {before['loss']:.4g} to {now['loss']:.4g}"
    if change > RISE:
        yield RULE.finding(
            layer=None,
            message=f"The training loss rose by {change:.0%} over {span}, at learning rate {rate:.3g}: the rate "
                    "in force is too high for this stage of training.",
            fix=f"Lower the rate when the loss stops falling: callbacks=[keras.callbacks.ReduceLROnPlateau("
                f"monitor='loss', factor=1/3, patience=1)], or start lower (learning_rate={rate / 3:.2g}).",
            evidence={**evidence, "kind": "rise", "change": change, "learning_rate": rate, "epoch": now["epoch"]},
        )
    elif abs(change) < FLAT:
        learnt = start - now["loss"] >= LEARNT * abs(start)
        yield RULE.finding(
            layer=None, severity="info" if learnt else "warning",
            message=f"The training loss changed by {change:+.2%} over {span}, at learning rate {rate:.3g}: "
                    + ("it has stalled on a plateau that a lower rate usually breaks." if learnt else
                       f"it is still within {LEARNT:.0%} of where training started ({start:.4g}), so nothing is "
                       "being learnt at this rate."),
            fix=("Decay the rate on plateaus: callbacks=[keras.callbacks.ReduceLROnPlateau(monitor='loss', "
                 "factor=0.5, patience=2)]." if learnt else
                 "Check that the model can overfit a few examples (kerascheck.check(model, data=...)), then "
                 f"search the rate: try {rate * 10:.2g} and {rate / 10:.2g}."),
            evidence={**evidence, "kind": "plateau" if learnt else "not-learning", "change": change,
                      "learning_rate": rate, "epoch": now["epoch"]},
        )
