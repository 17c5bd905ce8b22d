"""Gradients shrink by orders of magnitude towards the input.

## What it does
From the per-layer gradient norms of the 100-step probe training, flags the
model when the root-mean-square kernel gradient of the first weighted layer is less
than 1/1000 of the last weighted layer's.

## Why is this bad?
When gradients vanish on their way back, the early layers hardly learn: the
network behaves like a shallow one on top of random features. Saturating
activations (sigmoid, tanh) stacked deep and tiny initial weights are the usual
causes.

Severity: a warning; info when the optimizer rescales the small gradients away (the
first layer's kernel still changes per step, relative to its size, at least a tenth
as much as the last layer's: Adam or RMSprop on a transformer), and info when the probes ran on synthetic data with an
objective kerascheck cannot interpret (a model's own `train_step`, the losses its
layers add): random inputs under such an objective prove little (a VAE's encoder
collapses on noise, as it should).

## How to fix
Use ReLU-family activations with He initialisation, add normalisation layers or
residual connections, and avoid stacks of sigmoids.

## Example
```python
keras.layers.Dense(64, activation="sigmoid")  # repeated 10 times
```
Use instead:
```python
keras.layers.Dense(64, activation="relu", kernel_initializer="he_normal")
```
"""
from kerascheck.rule import Rule
from kerascheck.tiers.probe.evidence import context, data_note
from kerascheck.tiers.probe.gradients import finite_median, first_last_ratio, measured_run

RULE = Rule(name="vanishing-gradients", code="KC604", severity="warning", tier="probe", needs=("train",))

RATIO = 1e-3
UPDATE_GAP = 10.0  # the first layer's relative update may be this much smaller than the last's


def check(facts):
    probe = facts.probe
    run = measured_run(probe)
    unused = list(getattr(run, "unused", ()) or ())
    if unused and getattr(probe, "live", None) is None:
        shown = ", ".join(f"'{n}'" for n in unused[:5]) + (f" and {len(unused) - 5} more" if len(unused) > 5 else "")
        yield RULE.finding(
            layer=unused[0],
            severity="info",
            message=f"{len(unused)} trainable layer{'s' if len(unused) > 1 else ''} ({shown}) got no gradient at "
                    f"all: the training step's loss ({probe.loss_name}) does not use them. They are unused, not "
                    "vanishing, and left out of the gradient comparison.",
            fix="Freeze what the loss should not train (layer.trainable = False), or remove it from the model.",
            evidence={**context(probe), "unused": unused, "kind": "unused"},
        )
    measured = first_last_ratio(probe, run)
    if measured is None or measured[2] >= RATIO:
        return
    first, last, ratio, rms = measured
    whole_last = finite_median(run.layer_norms.get(last, []))
    if rms[last] <= 1e-12 and whole_last <= 1e-12:
        return  # the last layer gets no gradient either: the loss has nothing left to teach, nothing vanished
    # Random inputs under an objective kerascheck cannot interpret (a VAE's own train_step, the
    # losses layers add) prove little: on noise a VAE's encoder collapses, as it should.
    hint = probe.synthetic and probe.task == "unknown"
    # The harm is that early layers barely learn. An adaptive optimizer (Adam, RMSprop) divides each
    # gradient by its own running scale: when the first layer's kernel still moves as much per step,
    # relative to its size, as the last one's, the small gradient is not starving it.
    moves_first = finite_median(run.update_ratios.get(first, []))
    moves_last = finite_median(run.update_ratios.get(last, []))
    rescaled = moves_first > 0 and moves_last > 0 and moves_first >= moves_last / UPDATE_GAP
    yield RULE.finding(
        layer=first,
        severity="info" if hint or rescaled else None,
        message=f"The RMS gradient of the first weighted layer '{first}' is "
                + (f"exactly zero, while the last layer '{last}' still gets a gradient (norm {whole_last:.3g} over "
                   "all its weights; its kernel's is zero too, its inputs being all zero)," if rms[last] <= 1e-12 else
                   f"exactly zero, against {rms[last]:.3g} for the last layer '{last}'," if ratio == 0 else
                   f"1/{1 / ratio:.3g} of the last layer's, '{last}' ({rms[first]:.3g} vs {rms[last]:.3g}),")
                + (f" over {run.steps_done} measured steps of training" if getattr(probe, "live", None) is not None
                   else " over probe training") + " at learning rate "
                f"{run.learning_rate:.3g}{data_note(probe)}"
                + (f". The optimizer rescales them, though: each step still changes the kernel of '{first}' by "
                   f"{moves_first:.2g} of its size against {moves_last:.2g} for '{last}', so the early layers do "
                   "learn; a plain SGD would starve them." if rescaled else ": the early layers barely learn.")
                + (f" On random inputs and an objective kerascheck cannot interpret ({probe.loss_name}) this is a "
                   "hint: an encoder whose inputs hold nothing to learn stops passing gradient." if hint else ""),
        fix="Use keras.layers.Dense(..., activation='relu', kernel_initializer='he_normal') and add "
            "keras.layers.BatchNormalization() or residual connections between deep blocks.",
        evidence={**context(probe), "learning_rate": run.learning_rate, "ratio_first_last": ratio,
                  "layer_rms": rms, "layer_norms": run.layer_norms},
    )
