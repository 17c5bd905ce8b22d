"""The model cannot overfit 10 examples within a few hundred steps.

## What it does
Trains kerascheck's copy of the model on 10 examples, full batch, for up to 300
steps with its own optimizer and learning rate, and judges the predictions, not
only the loss: classification must reach 100% accuracy on the 10 (a segmenter
or a language model, which predicts a class per pixel or per token, 98% of its
labels); regression must bring the loss below 1% of where it started. A loss
kerascheck cannot interpret (your own loss function, the losses layers add with
`add_loss`, a model's own `train_step`) must fall below half its start.

It is an experiment, not one run. Dropout and random augmentation are off (their
noise alone keeps a training loss above any fixed share of its start). When the
model does not memorise in 300 steps at its own rate, the same 300 steps are
tried at 10x and 100x that rate, then at a tenth of it; if one of them
memorises, the rate is what failed, and the finding names the rate and the steps
it took. If none does but the model was still learning at its own rate (its loss
fell by a tenth or more over the last 100 steps), it trains again at its own
rate for up to 1000 steps; one still learning then is reported as slow (info),
never as unable. On synthetic labels, where a failure is a hint at most, only
10x is tried and there is no second run. Otherwise it lists the causes it can see: no trainable weights,
layers whose gradient is exactly zero, predictions that do not vary between
examples (output/label mismatch), or a learning rate far too small.
BatchNormalization's moving statistics are refreshed from the 10 examples
before the predictions are judged (they lag far behind a few hundred steps), a
loss that fell below 1% of its start counts as memorised unless every
prediction is the same, and random augmentation layers are switched off for
the probe (memorising is a test of capacity and wiring, not of invariance).

Severity: an error when no rate memorises and kerascheck measured a cause. A
rate that works where the model's own does not is info, or a warning when a
fine-tuning rate (1e-4 or less for Adam and its kind) meets weights that look
untrained (the optimizer saved with them took fewer than 100 steps), such as
KerasHub's 5e-5 on freshly initialised weights. No rate and
no visible cause is info: kerascheck could not show what is wrong, and healthy
models stop short too (a forecaster whose weights every node of a graph shares,
soft targets whose crossentropy has a floor). Memorising does not need inputs
and labels to be paired correctly (a net memorises shuffled labels too), so a
failure points at capacity, wiring, the rate or the loss, not at the pairing. Calibration
(`python bench/calibrate.py`): every one of the 13 healthy models of the test
zoo memorised its 10 examples within 300 steps on its own data; on synthetic
data one (a small CNN) did not, without anything being wrong.

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
from kerascheck.rule import Rule, Skip
from kerascheck.tiers.probe.evidence import context, data_note

RULE = Rule(name="cannot-overfit", code="KC601", severity="error", tier="probe", needs=("overfit",))


# Weights whose optimizer took fewer steps than this were never really trained: a rate meant to
# fine-tune pretrained weights (KerasHub's 2e-5, 5e-5) moves fresh ones too slowly.
UNTRAINED_STEPS = 100


def check(facts):
    probe = facts.probe
    result = probe.overfit
    if result is None:
        raise Skip("the overfit probe did not run")
    if result["ok"]:
        return
    run = result["run"]
    loss = "loss" if probe.task != "unknown" else f"loss ({probe.loss_name})"
    if result["accuracy"] is not None:
        needs = "100%" if result.get("accuracy_needed", 1.0) >= 1.0 else \
            f"{result['accuracy_needed']:.0%} of the {'positions it predicts' if result.get('dense') else 'labels'}"
        share = f"{result['accuracy']:.1%}" if result.get("dense") else f"{result['accuracy']:.0%}"
        outcome = (f"reached {share} accuracy (needs {needs}; {loss} {result['first_loss']:.4g} -> "
                   f"{result['last_loss']:.4g})")
    else:
        needs = f"needs < {result.get('target_share', 0.01):.0%} of its start"
        outcome = f"brought the {loss} only from {result['first_loss']:.4g} to {result['last_loss']:.4g} ({needs})"
    off = result.get("augmentation_off") or []
    note = (f" (dropout and random augmentation switched off, as a memorisation test needs: "
            f"{', '.join(off[:3])}{' ...' if len(off) > 3 else ''})" if off else "")
    retries = result.get("retries") or []
    tried = [{"learning_rate": r["learning_rate"], "memorised": r["ok"], "steps": r["steps"],
              "accuracy": r["accuracy"], "last_loss": r["last_loss"], "diverged_at": r["diverged_at"]}
             for r in retries]
    evidence = {**context(probe), "overfit": run.to_evidence(), "accuracy": result["accuracy"],
                "first_loss": result["first_loss"], "last_loss": result["last_loss"],
                "prediction_spread": result["prediction_spread"],
                "zero_gradient_layers": result["zero_gradient_layers"], "other_rates": tried}
    lr = result["learning_rate"]
    worked = next((r for r in retries if r["ok"]), None)
    if worked is not None:
        yield _rate_finding(facts, probe, run, lr, worked, outcome, note, evidence)
        return
    causes = []
    if result["trainable_parameters"] == 0:
        causes.append("the model has no trainable weights")
    if result["zero_gradient_layers"]:
        causes.append("these layers get exactly zero gradient: " + ", ".join(result["zero_gradient_layers"][:5]))
    if result["prediction_spread"] is not None and result["prediction_spread"] < 1e-6:
        causes.append("its predictions are identical for all 10 examples: the output does not tell the examples "
                      "apart (check the output activation against the loss, and whether the layers before it get "
                      "a gradient)")
    if lr < 1e-6:
        causes.append(f"the learning rate {lr:.2g} is far too small")
    severity = None
    known = result.get("objective_known", True)
    if not causes and result.get("still_falling"):
        losses = run.losses
        yield RULE.finding(
            layer=None,
            severity="info",
            message=f"After {run.steps_done} steps on 10 examples the model {outcome}{data_note(probe)}{note}, and its "
                    f"loss was still falling ({_fall(losses):.0%} lower than 100 steps before): it memorises slowly, "
                    f"not never. kerascheck stops at {run.steps_planned} steps.",
            fix="If the full training is slow too, raise the learning rate or check the model's capacity; "
                "model.fit(x[:10], y[:10], epochs=2000, batch_size=10) shows whether it gets there.",
            evidence={**evidence, "causes": [], "still_falling": True, "visible_cause": False},
        )
        return
    if not causes:
        causes.append("none that kerascheck can see (a model that shares its weights across many positions, "
                      "targets with a floor such as soft labels or noise, or heavy regularisation can stop short "
                      "of memorising)" if known else
                      "none that kerascheck can see, and it cannot tell what value this loss should reach on "
                      "memorised examples")
        # Without a measured cause it is a hint, never a verdict: kerascheck could not show what is
        # wrong, and healthy models (a forecaster shared by every node of a graph) stop short too.
        severity = "info"
    others = ", ".join(f"{r['learning_rate']:.3g}" for r in retries)
    rates = f" It did not at the other rates tried either ({others})." if retries else ""
    yield RULE.finding(
        layer=None,
        severity=severity,
        message=f"After {run.steps_done} steps on 10 examples the model {outcome}{data_note(probe)}{note}.{rates} "
                f"Likely causes: " + "; ".join(causes) + ".",
        fix="Make the model overfit 10 examples before training on everything: "
            "model.fit(x[:10], y[:10], epochs=300, batch_size=10) must reach 100% accuracy.",
        evidence={**evidence, "causes": causes, "visible_cause": severity is None},
    )


def _fall(losses: list) -> float:
    import math

    finite = [v for v in losses if math.isfinite(v)]
    if len(finite) < 110:
        return 0.0
    now, before = sum(finite[-10:]) / 10, sum(finite[-110:-100]) / 10
    return 1 - now / before if before > 0 else 0.0


# Rates at or below these are what one fine-tunes pretrained weights with (KerasHub's 2e-5, 5e-5),
# not what trains fresh ones.
FINE_TUNING_RATES = {"Adam": 1e-4, "AdamW": 1e-4, "Nadam": 1e-4, "Adamax": 1e-4, "RMSprop": 1e-4, "Lion": 3e-5,
                     "SGD": 1e-3}


def _rate_finding(facts, probe, run, lr, worked, outcome, note, evidence):
    """The model memorises at another rate: the rate, not the model or the data, is what failed."""
    rate = worked["learning_rate"]
    higher = rate > lr
    stepped = facts.spec.stepped_optimizers()
    steps_trained = max((o.iterations for o in facts.spec.optimizers), default=None)
    untrained = steps_trained is not None and steps_trained < UNTRAINED_STEPS
    optimizer = probe.training.get("optimizer") if getattr(probe, "training", None) else None
    fine_tuning = lr <= FINE_TUNING_RATES.get(optimizer or "", 0.0)
    severity = "warning" if higher and untrained and fine_tuning else "info"
    why = (f" The weights look untrained (the optimizer saved with them took {steps_trained} steps), and "
           f"{lr:.2g} is a rate for fine-tuning pretrained weights: it moves fresh ones too slowly."
           if severity == "warning" else "")
    return RULE.finding(
        layer=None,
        severity=severity,
        message=f"At its own learning rate {lr:.3g} the model did not memorise 10 examples in {run.steps_done} steps "
                f"({outcome}){data_note(probe)}{note}; at {rate:.3g} it did, in {worked['steps']} steps: the rate is "
                f"too {'low' if higher else 'high'} to train these weights in that many steps.{why}",
        fix=(f"Train these weights at a rate near {rate:.2g}: keras.optimizers.{optimizer or 'Adam'}"
             f"(learning_rate={rate:g})" + (f"; keep {lr:.2g} for fine-tuning pretrained weights." if fine_tuning
                                             else ", or train for longer.")
             if higher else f"Lower the rate to about {rate:.2g}: keras.optimizers.{optimizer or 'Adam'}"
                            f"(learning_rate={rate:g})."),
        evidence={**evidence, "kind": "rate", "memorised_at": rate, "memorised_in_steps": worked["steps"],
                  "steps_trained": steps_trained, "untrained": untrained, "fine_tuning_rate": fine_tuning,
                  "stepped_optimizers": len(stepped),
                  "visible_cause": True},
    )
