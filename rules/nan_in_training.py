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

On a live training run (`kerascheck.Monitor`), it reports the step and epoch at
which the loss Keras logs (or the weights) turned non-finite, the learning rate in
force then, and the first layer whose activations, gradients or weights went
non-finite when the step was replayed from the last finite weights on the batch
that broke them.

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
from kerascheck.rule import Rule, Skip
from kerascheck.tiers.probe.evidence import context, data_note
from kerascheck.tiers.probe.gradients import diverged_everywhere

RULE = Rule(name="nan-in-training", code="KC103", severity="error", tier="probe", needs=("train", "sweep"))


def check(facts):
    probe = facts.probe
    if getattr(probe, "live", None) is not None:
        yield from _live(facts, probe, probe.live)
        return
    run = probe.train
    if run is None:
        raise Skip("the model has no trainable weights")
    if run.diverged_at is None:
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
    evidence = {**context(probe), "train": run.to_evidence(), "why": run.why,
                "sweep": [{"learning_rate": r, "diverged_at": d} for r, d in probe.sweep],
                "nan_edge": edge, "stable_rate": stable, "first_nonfinite": probe.nan_layer}
    optimizer = (facts.spec.compile.optimizer.class_name if facts.spec.compile and facts.spec.compile.optimizer
                 else "Adam")
    if stable is None and diverged_everywhere(probe):
        yield from _not_the_rate(probe, run, edge, what, where, layer, evidence)
        return
    if stable is not None:
        rec_lo, rec_hi = edge / 10, edge / 3
        advice = (f"the rate {stable:.3g} stayed finite for 100 steps; the NaN edge is {edge:.3g}, so use "
                  f"{rec_lo:.2g} to {rec_hi:.2g} (3-10x below it)")
        target = _round(rec_lo)
    else:
        advice = f"the sweep stopped at {edge:.3g} (the time budget ran out before a rate stayed finite)"
        target = _round(edge / 10)
    yield RULE.finding(
        layer=layer,
        message=f"Training at learning rate {lr:.3g} gave {what} at step {run.diverged_at + 1} of 100{where}; "
                f"{advice}{data_note(probe)}.",
        fix=f"Lower the learning rate: keras.optimizers.{optimizer}(learning_rate={target:g}).",
        evidence={**evidence, "kind": "rate",
                  "recommended": [edge / 10, edge / 3] if stable is not None else None},
    )


def _live(facts, probe, run):
    """The user's own training run went non-finite at a known step."""
    if run.diverged_step is None:
        return
    lr, step, epoch = run.learning_rate, run.diverged_step, run.diverged_epoch
    what = "turned the weights NaN/Inf (the loss Keras logged stayed finite)" if run.why == "weights" else \
        "gave NaN/Inf"
    first = probe.nan_layer
    layer = first["layer"] if first else None
    if first:
        where = (f"; replayed from the last finite weights on the batch that broke them, the first non-finite "
                 f"{first['where']} appeared in layer '{layer}'")
    else:
        where = f"; {run.replay}" if run.replay else ""
    optimizer = (facts.spec.compile.optimizer.class_name if facts.spec.compile and facts.spec.compile.optimizer
                 else run.optimizer or "Adam")
    yield RULE.finding(
        layer=layer,
        message=f"Training at learning rate {lr:.3g} {what} at step {step} (epoch {epoch}){where}.",
        fix=f"Lower the learning rate 3-10x: keras.optimizers.{optimizer}(learning_rate={_round(lr / 10):g}), or "
            "clip the gradients (global_clipnorm=1.0); monitor.last_finite holds the last finite weights and the "
            "batch, to replay the step.",
        evidence={**context(probe), "train": run.to_evidence(), "why": run.why, "step": step, "epoch": epoch,
                  "learning_rate": lr, "first_nonfinite": first, "replay": run.replay, "kind": "rate"},
    )


def _not_the_rate(probe, run, edge, what, where, layer, evidence):
    """Every rate down to `edge` diverged: the cause is the initialisation, the scale, or a NaN source."""
    growth = [g for g in probe.growth if g["rms"] == g["rms"] and g["rms"] > 0]
    first_loss = next((v for v in run.losses if v == v), float("nan"))
    expected, expected_what = expected_start(probe)
    measured = []
    grew = None
    if len(growth) >= 2:
        top = max(growth, key=lambda g: g["rms"])
        grew = top["rms"] / max(growth[0]["rms"], 1e-30)
        if top is not growth[0]:
            measured.append(f"activations grow from {growth[0]['rms']:.3g} at '{growth[0]['layer']}' to "
                            f"{top['rms']:.3g} at '{top['layer']}' (RMS)")
    broken = next((g for g in probe.growth if g["nonfinite"]), None)
    if broken is not None:
        measured.append(f"layer '{broken['layer']}' already outputs {broken['nonfinite']} NaN/Inf values")
    if expected is not None and first_loss == first_loss:
        measured.append(f"the first loss is {first_loss:.3g} where {expected_what} starts near {expected:.3g}")
    if run.global_norms and run.global_norms[0] == run.global_norms[0]:
        measured.append(f"the global gradient norm at step 0 is {run.global_norms[0]:.3g}")
    scale_problem = (grew is not None and grew > 100) or (expected is not None and first_loss > 100 * expected)
    tried = f"{len(probe.sweep) + 1} rates down to {edge:.3g}"
    if scale_problem:
        message = (f"Training gave {what} at step {run.diverged_at + 1} at every learning rate tried ({tried}), so "
                   f"the learning rate is not the cause: the initialisation or the scale of the activations is"
                   f"{where}. At step 0 " + "; ".join(measured) + f"{data_note(probe)}.")
        fix = ("Re-initialise with scaled initialisers (kernel_initializer='he_normal' before ReLU, 'glorot_uniform' "
               "otherwise), standardise the inputs, and check that the first loss is near its expected start "
               "(ln(C) for C balanced classes) before tuning the rate.")
        kind = "init"
    else:
        message = (f"Training gave {what} at step {run.diverged_at + 1} at every learning rate tried ({tried}), so "
                   f"the learning rate is not the cause{where}"
                   + (". At step 0 " + "; ".join(measured) if measured else "") + f"{data_note(probe)}.")
        fix = ("Find what first produces the NaN/Inf: NaN in the data or the weights, or a custom layer or loss "
               "that divides by zero or takes the log of zero; lowering the rate will not help.")
        kind = "nan-source"
    yield RULE.finding(layer=layer, message=message, fix=fix,
                       evidence={**evidence, "kind": kind, "growth": probe.growth, "first_loss": first_loss,
                                 "expected_first_loss": expected, "recommended": None})


def expected_start(probe):
    """(loss a fresh model of this kind starts near, what kind of model) or (None, "")."""
    import math

    kinds = probe.label_kinds
    if len(kinds) != 1 or probe.loss_name not in ("sparse_categorical_crossentropy", "categorical_crossentropy",
                                                  "binary_crossentropy"):
        return None, ""
    units = probe.output_units[0] if getattr(probe, "output_units", None) else None
    if kinds[0] == "binary":
        return math.log(2), "a fresh binary classifier"
    if units and units > 1:
        return math.log(units), f"a fresh {units}-class classifier (ln({units}))"
    return None, ""


def _round(x: float) -> float:
    from math import floor, log10

    return float(f"{x:.1g}") if x > 0 and floor(log10(x)) > -12 else x
