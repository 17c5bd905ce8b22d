"""The training loss is far below the validation loss because the model computes differently in inference.

## What it does
Judges a live training run (`kerascheck.Monitor` in `model.fit`) of a model with
BatchNormalization, Dropout or other layers that behave differently in training
and in inference. At the end of every epoch the monitor scores its fixed batch of
training examples twice, in training mode and in inference mode; this rule flags
the epoch when the validation loss is at least 2x the training loss and those same
training examples also score at least 2x worse in inference mode. Then the gap is
not overfitting (the examples were trained on): it is the switch of mode, most
often BatchNormalization's moving statistics, which differ from the batch
statistics training used. Without validation data the gap on the fixed batch alone
is judged.

BatchNormalization's statistics need about 3/(1 - momentum) steps to forget their
starting values (300 at Keras's default 0.99): before that, an epoch is judged only
when it is the last one, and the message says how much of the starting value the
statistics still hold.

A saved file has no training run, so on the command line and in
`kerascheck.check()` this rule has nothing to judge and reports nothing.

## Why is this bad?
Inference uses the moving statistics and no dropout; when they do not match what
training saw, the deployed model is worse than every training log says. Small or
unshuffled batches (each batch one class), a momentum too high for a short
training, and inputs whose scale drifts all make the moving statistics a poor
estimate of the batches'.

## How to fix
Shuffle the training data and use batches of at least 16-32 examples; for short
trainings lower BatchNormalization's momentum (0.9) so the moving statistics keep
up; or recompute them over the training data in training mode before evaluating.

## Example
```python
keras.layers.BatchNormalization(momentum=0.999)  # trained for 200 steps
```
Use instead:
```python
keras.layers.BatchNormalization(momentum=0.9)
```
"""
import math

from kerascheck.rule import LIVE_ONLY, Rule, Skip
from kerascheck.tiers.probe.evidence import context

RULE = Rule(name="train-inference-gap", needs=("live",), code="KC607", severity="warning", tier="probe")

GAP = 2.0  # validation over training loss, and inference over training mode on the same examples
MIN_DIFFERENCE = 0.05  # and apart by at least this much (losses near zero make any ratio large)
WARM = 3.0  # BatchNormalization is judged after WARM / (1 - momentum) steps


def _finite(*values) -> bool:
    return all(v is not None and math.isfinite(v) for v in values)


def _apart(high, low) -> bool:
    return high >= GAP * low and high - low >= MIN_DIFFERENCE



def check(facts):
    run = getattr(facts.probe, "live", None) if facts.probe is not None else None
    if run is None:
        raise Skip(LIVE_ONLY)
    if not run.mode_layers or not run.mode_gaps or not run.epoch_losses:
        return  # a model without such layers has no mode to switch
    gap = run.mode_gaps[-1]
    epoch = next((e for e in run.epoch_losses if e["epoch"] == gap["epoch"]), None)
    if epoch is None or not _finite(gap["training"], gap["inference"], epoch["loss"]):
        return
    if not _apart(gap["inference"], gap["training"]):
        return
    val = epoch["val_loss"]
    if val is not None and not (math.isfinite(val) and _apart(val, epoch["loss"])):
        return
    norms = [m for m in run.mode_layers if m["class_name"] == "BatchNormalization"]
    cold = [m for m in norms if gap["step"] < WARM / max(1.0 - m["momentum"], 1e-9)]
    last = run.finished and epoch is run.epoch_losses[-1]
    if cold and not last:
        return  # the moving statistics are still forgetting their start; judged later or at the end
    layer = (norms or run.mode_layers)[0]
    names = ", ".join(f"{m['class_name']} '{m['layer']}'" for m in run.mode_layers[:6]) + \
        (f" and {len(run.mode_layers) - 6} more" if len(run.mode_layers) > 6 else "")
    head = (f"At the end of epoch {epoch['epoch']} the validation loss {val:.4g} is {val / epoch['loss']:.3g}x the "
            f"training loss {epoch['loss']:.4g}, and" if val is not None else
            f"At the end of epoch {epoch['epoch']}")
    message = (f"{head} the fixed batch of training examples scores {gap['inference']:.4g} in inference mode against "
               f"{gap['training']:.4g} in training mode ({gap['inference'] / gap['training']:.3g}x): the gap comes "
               f"from the layers that compute differently in inference ({names}), not from overfitting.")
    if cold:
        m = cold[0]
        held = m["momentum"] ** gap["step"]
        message += (f" After {gap['step']} steps the moving statistics of '{m['layer']}' (momentum {m['momentum']:g}) "
                    f"still hold {held:.0%} of their starting values.")
    if norms:
        fix = ("Shuffle the data and use batches of 16-32 or more; for short trainings lower the momentum: "
               "keras.layers.BatchNormalization(momentum=0.9); or recompute the moving statistics over the "
               "training data before evaluating.")
    else:
        fix = ("Check what the layers that act only in training do to the scale of their outputs (a custom "
               "dropout must rescale by 1/(1 - rate)), and lower their rate.")
    yield RULE.finding(
        layer=layer["layer"],
        message=message,
        fix=fix,
        evidence={**context(facts.probe), "kind": "mode-gap", "epoch": epoch["epoch"], "loss": epoch["loss"],
                  "val_loss": val, "training_mode_loss": gap["training"], "inference_mode_loss": gap["inference"],
                  "mode_layers": list(run.mode_layers), "step": gap["step"]},
    )
