"""Gradients grow by orders of magnitude towards the input, or spike between steps.

## What it does
Records each weighted layer's gradient norm at every step of the 100-step probe
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

Severity: growth through depth is a warning. Spikes are a warning when measured
on `--data`, and info on synthetic data: random labels on random inputs make a
healthy net's gradients jumpier than real data does. Calibration (`python
bench/calibrate.py`): on the 13 healthy models of the test zoo (MLPs, CNNs,
LSTM/GRU with clipping, attention, embeddings, BatchNormalization, Dropout, nested
and subclassed; trained briefly, probed with their data and with synthetic data)
the first/last ratio stayed below 3x and no step spiked; converged models jumped
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
from kerascheck.gradients import first_last_ratio, measured_run, spikes, steps_phrase
from kerascheck.probe_evidence import context, data_note
from kerascheck.rule import Rule

RULE = Rule(name="exploding-gradients", code="KC603", severity="warning", tier="probe", needs=("train",))

RATIO = 1e3
SPIKE_SHARE = 0.05


def check(facts):
    probe = facts.probe
    run = measured_run(probe, allow_prefix=True)
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
