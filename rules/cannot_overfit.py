"""The model cannot overfit 10 examples within a few hundred steps.

## What it does
Trains kerascheck's copy of the model on 10 examples, full batch, for up to 300
steps with its own optimizer and learning rate, and judges the predictions, not
only the loss: classification must reach 100% accuracy on the 10; regression
must bring the loss below 1% of where it started. A loss kerascheck cannot
interpret (your own loss function, the losses layers add with `add_loss`, a
model's own `train_step`) must fall below half its start, and a miss with no
visible cause is info. When it fails, it lists the
causes it can see: no trainable weights, layers whose gradient is exactly zero,
predictions that do not vary between examples (output/label mismatch), or a
learning rate far too small. BatchNormalization's moving statistics are refreshed
from the 10 examples before the predictions are judged (they lag far behind a few
hundred steps), a loss that fell below 1% of its start counts as memorised
unless every prediction is the same, and random augmentation layers are switched
off for the probe (memorising is a test of capacity and wiring, not of
invariance).

Severity: an error with a visible cause, or with `--data` and its labels. With no
visible cause on synthetic data or synthetic labels it is info: random labels on
random inputs are harder to memorise than real data. Calibration (`python
bench/calibrate.py`): every one of the 13 healthy models of the test zoo memorised
its 10 examples within 300 steps on its own data; on synthetic data one (a small
CNN) did not, without anything being wrong.

## Why is this bad?
Any net with enough parameters can memorise 10 examples. One that cannot has a
bug: data and labels not hooked up, a frozen or disconnected layer, an output
that cannot express the labels (a softmax over one unit predicts 1.0 for
everything while the loss still falls), or a learning rate that moves nothing.
Training on the full data set will not fix any of these.

## How to fix
Fix the cause listed in the message first; then check the model overfits 10
examples before training on everything.

## Example
```python
outputs = keras.layers.Dense(1, activation="softmax")(x)  # always 1.0
```
Use instead:
```python
outputs = keras.layers.Dense(1, activation="sigmoid")(x)
```
"""
from kerascheck.probe_evidence import context, data_note
from kerascheck.rule import Rule, Skip

RULE = Rule(name="cannot-overfit", code="KC601", severity="error", tier="probe", needs=("overfit",))


def check(facts):
    probe = facts.probe
    result = probe.overfit
    if result is None:
        raise Skip("the overfit probe did not run")
    if result["ok"]:
        return
    run = result["run"]
    causes = []
    if result["trainable_parameters"] == 0:
        causes.append("the model has no trainable weights")
    if result["zero_gradient_layers"]:
        causes.append("these layers get exactly zero gradient: " + ", ".join(result["zero_gradient_layers"][:5]))
    if result["prediction_spread"] < 1e-6:
        causes.append("its predictions are identical for all 10 examples, so the output cannot express the labels "
                      "(check the output activation against the loss)")
    if result["learning_rate"] < 1e-6:
        causes.append(f"the learning rate {result['learning_rate']:.2g} is far too small")
    severity = None
    random_labels = probe.synthetic or probe.synthetic_labels
    known = result.get("objective_known", True)
    if not causes:
        causes.append("none that kerascheck can see: check that inputs and labels are paired correctly"
                      if known else "none that kerascheck can see, and it cannot tell what value this loss "
                                    "should reach on memorised examples")
        if random_labels or not known:
            # Random labels on random inputs are harder to memorise than real data, so
            # without a visible cause this is only a hint until --data confirms it.
            severity = "info"
    loss = "loss" if probe.task != "unknown" else f"loss ({probe.loss_name})"
    if result["accuracy"] is not None:
        outcome = (f"reached {result['accuracy']:.0%} accuracy (needs 100%; {loss} {result['first_loss']:.4g} -> "
                   f"{result['last_loss']:.4g})")
    else:
        needs = f"needs < {result.get('target_share', 0.01):.0%} of its start"
        outcome = f"brought the {loss} only from {result['first_loss']:.4g} to {result['last_loss']:.4g} ({needs})"
    off = result.get("augmentation_off") or []
    note = (f" (random augmentation {', '.join(off[:3])} switched off, as a memorisation test needs)"
            if off else "")
    yield RULE.finding(
        layer=None,
        severity=severity,
        message=f"After {run.steps_done} steps on 10 examples the model {outcome}{data_note(probe)}{note}. "
                f"Likely causes: " + "; ".join(causes) + ".",
        fix="Make the model overfit 10 examples before training on everything: "
            "model.fit(x[:10], y[:10], epochs=300, batch_size=10) must reach 100% accuracy.",
        evidence={**context(probe), "overfit": run.to_evidence(), "accuracy": result["accuracy"],
                  "first_loss": result["first_loss"], "last_loss": result["last_loss"],
                  "prediction_spread": result["prediction_spread"],
                  "zero_gradient_layers": result["zero_gradient_layers"], "causes": causes,
                  "visible_cause": severity is None},
    )
