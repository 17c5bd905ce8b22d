"""Gradients far larger than the weights from the first steps, growing towards the input, or spiking.

## What it does
First, from initialisation: over the first 5 steps of the probe training at the
configured rate (the weights still those the file holds), each weighted layer's
kernel gradient norm is compared with the norm of the kernel itself, or with the
norm a LeCun-scaled kernel of its shape has (variance 1/fan_in) when the kernel is
smaller, so a last layer drawn tiny on purpose is not judged by its tiny weights.
A model whose gradients are over 100x its kernels there amplifies its signal
layer by layer: it is flagged even when an adaptive optimizer keeps the loss
finite afterwards. The median over 5 steps keeps one batch holding an outlier from
deciding it.

Then, over training, it records each weighted layer's gradient norm at every step of the 100-step probe
training (at the configured rate, or at the stable rate the sweep found) and
flags the model when the root-mean-square kernel gradient of the first weighted layer
is over 1000x that of the last, or when more than 5% of steps spike: a global
gradient norm that jumps over 10x the median of the 10 steps before it, and over
10x the norms training started with. A norm that falls smoothly from a large
start, as it does in the first steps of most trainings, is not a spike; nor is a
trained model's jump from near-zero gradients back to where training started
when a batch it does not fit yet comes round. When training diverges at every
learning rate the sweep tries, the steps before the divergence are measured
instead.

Severity: gradients over 100x the kernels from the start, and growth through depth,
are warnings. Spikes are a warning when measured
on `--data`, and info on synthetic data: random labels on random inputs make a
healthy net's gradients jumpier than real data does. Calibration (`python
bench/calibrate.py`): on the 13 healthy models of the test zoo (MLPs, CNNs,
LSTM/GRU with clipping, attention, embeddings, BatchNormalization, Dropout, nested
and subclassed; trained briefly, probed with their data and with synthetic data)
the first/last ratio stayed below 3x, the first-steps gradient stayed below 1.7x
its kernels (16 models, 32 runs; a ten-layer ReLU MLP drawn at 2.8x He's scale
starts at 340x to 13,500x), and no step spiked; converged models jumped
up to 15x their recent median from near-zero gradients, which is why a spike must
also pass the norms training started with.

## Why is this bad?
Gradients that grow layer by layer towards the input make the early layers take
huge, erratic steps while the later ones barely move; spikes throw the weights
far away in one step and are how RNNs without clipping end in NaN. No single
learning rate suits all layers.

## How to fix
Clip the global gradient norm, and use scaled initialisation and normalisation
layers so gradients keep their size through depth.

## Example
```python
optimizer = keras.optimizers.Adam(1e-3)
```
Use instead:
```python
optimizer = keras.optimizers.Adam(1e-3, global_clipnorm=1.0)
```
"""
from kerascheck.rule import Rule, Skip
from kerascheck.tiers.probe.evidence import context, data_note
from kerascheck.tiers.probe.gradients import (START_STEPS, first_last_ratio, measured_run, spikes, start_ratios, steps_phrase)

RULE = Rule(name="exploding-gradients", code="KC603", severity="warning", tier="probe", needs=("train",))

RATIO = 1e3
SPIKE_SHARE = 0.05
INIT_RATIO = 100.0  # first-steps kernel gradient over the kernel's own norm (or a LeCun-scaled one's)


def check(facts):
    probe = facts.probe
    at_start = list(_at_start(probe))
    yield from at_start
    try:
        run = measured_run(probe, allow_prefix=True)
    except Skip:
        if at_start:
            return  # the first step was measured; what came after was too short to judge
        raise
    live = getattr(probe, "live", None) is not None
    steps = f"{run.steps_done} measured steps of training" if live else steps_phrase(probe, run)
    measured = first_last_ratio(probe, run)
    share, peak = spikes(run)
    evidence = {**context(probe), "learning_rate": run.learning_rate, "global_norms": run.global_norms,
                "layer_norms": run.layer_norms, "spike_share": share, "max_over_median": peak}
    if measured is not None and measured[2] > RATIO:
        first, last, ratio, rms = measured
        yield RULE.finding(
            layer=first,
            message=f"The RMS gradient of the first weighted layer '{first}' is {ratio:.3g}x that of the last, "
                    f"'{last}' ({rms[first]:.3g} vs {rms[last]:.3g}), over {steps} at learning "
                    f"rate {run.learning_rate:.3g}{data_note(probe)}.",
            fix="Clip gradients and keep their scale through depth: "
                "keras.optimizers.Adam(learning_rate=1e-3, global_clipnorm=1.0), kernel_initializer='he_normal'.",
            evidence={**evidence, "ratio_first_last": ratio, "layer_rms": rms, "kind": "growth"},
        )
    if share > SPIKE_SHARE:
        yield RULE.finding(
            layer=None,
            severity="info" if probe.synthetic else "warning",
            message=f"{share:.0%} of {'measured steps of training' if live else 'probe steps'} had a global "
                    "gradient norm that jumped over 10x the median of "
                    f"the steps before it (largest jump {peak:.3g}x) at learning rate "
                    f"{run.learning_rate:.3g}{data_note(probe)}.",
            fix="Clip the global gradient norm: keras.optimizers.Adam(learning_rate=1e-3, global_clipnorm=1.0).",
            evidence={**evidence, "kind": "spikes"},
        )


def _at_start(probe):
    """Gradients already far larger than the weights at the first step: exploding from initialisation,
    whatever the loss does afterwards (Adam's normalised steps keep it finite while units die)."""
    if getattr(probe, "live", None) is not None:
        return  # the monitor sees training from wherever it was attached, not from initialisation
    ratios = start_ratios(probe)
    loud = [name for name, r in ratios.items() if r >= INIT_RATIO]
    if not loud:
        return
    worst = max(loud, key=lambda n: ratios[n])
    run = probe.train
    grad = ratios[worst] * max(run.start_weights[worst])
    now, ref = run.start_weights[worst]
    quiet = [r for n, r in ratios.items() if n not in loud]
    yield RULE.finding(
        layer=worst,
        message=f"Over the first {min(START_STEPS, run.steps_done)} probe steps, from the weights the file holds, the kernel "
                f"gradient of '{worst}' is {ratios[worst]:.3g}x "
                f"the size of its kernel (gradient norm {grad:.3g} against a kernel norm of {now:.3g}"
                + (f", judged against {ref:.3g}, what a LeCun-scaled kernel of its shape has" if ref > now else "")
                + f"); {len(loud)} of {len(ratios)} weighted layers are above {INIT_RATIO:g}x"
                + (f" (the others at most {max(quiet):.3g}x)" if quiet else "")
                + f", at learning rate {run.learning_rate:.3g}{data_note(probe)}. Gradients this large at the "
                "start mean the forward pass already amplifies its signal layer by layer: one plain SGD step "
                "would replace the weights, and adaptive optimizers only hide it until units die or saturate.",
        fix="Use a scaled initialiser (kernel_initializer='he_normal' before ReLU, 'glorot_uniform' before tanh or "
            "sigmoid), put keras.layers.BatchNormalization() or LayerNormalization() between deep layers, and clip: "
            "keras.optimizers.Adam(learning_rate=1e-3, global_clipnorm=1.0).",
        evidence={**context(probe), "kind": "init", "learning_rate": run.learning_rate, "start_ratios": ratios,
                  "layers_above": loud, "gradient_norm": grad, "kernel_norm": now, "lecun_norm": ref},
    )
