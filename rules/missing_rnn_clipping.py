"""Recurrent layers trained by an optimizer that does not clip gradients.

## What it does
Finds recurrent layers (LSTM, GRU, SimpleRNN, ConvLSTM, `RNN` with any cell),
also inside `Bidirectional`, `TimeDistributed` and nested models, in a model
whose saved optimizer sets none of `clipnorm`, `global_clipnorm` or `clipvalue`.

## Why is this bad?
Backpropagation through time multiplies the same recurrent matrix once per time
step, so a few batches produce gradients orders of magnitude larger than the rest
(in practice around 10% of early batches spike). One such step throws the weights
far away and the loss turns to NaN "for no reason" hours into training. Clipping
the global L2 norm of the gradient keeps its direction and bounds its size.

When the probes run, the finding also carries the gradient norms of the probe
training and the share of steps that spiked (a step whose global norm jumps over
10x the median of the 10 steps before it and over 10x the norms training started
with).

Severity: a warning when the probes measured a spike, when the learning rate is
high for the optimizer (Adam, Nadam or RMSprop above 3e-3, SGD above 0.1, ...),
or when no probes ran (`--static`); when the probes ran and saw no spike it is
info, and says so. Calibration (`python bench/calibrate.py`): on the healthy
models of the test zoo (13 models, LSTM, GRU and Bidirectional among them, trained
briefly and probed with their data and with synthetic data) no step spiked; the
recurrent ones never jumped over 6.6x their recent median. All recurrent layers of
a model are one finding, listing each.

## How to fix
Compile with `global_clipnorm` (clips all gradients together, keeping their
relative sizes); 1.0 is a common start, then look at the gradient norms.

## Example
```python
model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="mse")
```
Use instead:
```python
model.compile(optimizer=keras.optimizers.Adam(1e-3, global_clipnorm=1.0), loss="mse")
```

When the model was saved without its optimizer, kerascheck cannot see the
clipping and says so at info severity.
"""
from kerascheck.facts.topology import RECURRENT_CLASSES, inner_classes
from kerascheck.rule import Rule, Skip
from kerascheck.tiers.probe.evidence import context
from kerascheck.tiers.probe.gradients import gradient_run, spikes

RULE = Rule(name="missing-rnn-clipping", code="KC201", severity="warning", tier="spec", needs=("train",))


def recurrent_layers(spec, info=None):
    """(layer, recurrent class, inner layer name) for each top-most layer holding a recurrence.

    From the config; and, when the model was loaded, from the live layers too: a custom layer
    that makes its LSTM in __init__ (keras-io's traffic forecaster) names none in its config."""
    found = set()
    for layer in spec.layers:
        if layer.is_model:
            continue
        cls = layer.class_name.split(">")[-1]
        if cls in RECURRENT_CLASSES:
            found.add(layer.qualname)
            yield layer, cls, None
            continue
        for inner_cls, inner_name in inner_classes(layer.config):
            if inner_cls in RECURRENT_CLASSES:
                found.add(layer.qualname)
                yield layer, inner_cls, inner_name
                break
    if info is None:
        return
    for path, live in info.paths.values():
        if path in found or type(live).__name__ in RECURRENT_CLASSES:
            continue
        try:
            inner = [l for l in live._flatten_layers(include_self=False, recursive=True)
                     if type(l).__name__ in RECURRENT_CLASSES]
        except Exception:
            continue
        if inner:
            layer = spec.layer(path)
            yield (layer if layer is not None else _Live(path, type(live).__name__)), type(inner[0]).__name__, \
                inner[0].name


class _Live:
    """A layer known only from the loaded model (a subclass's attribute, a custom layer's inside)."""
    def __init__(self, qualname: str, class_name: str):
        self.qualname, self.class_name, self.is_model = qualname, class_name, False


def _optimizer_snippet(opt) -> str:
    cls = opt.class_name if opt is not None else "Adam"
    if opt is not None and opt.learning_rate is not None:
        lr = f"learning_rate={opt.learning_rate:.3g}, "
    elif opt is not None and opt.schedule is not None:
        lr = "learning_rate=schedule, "
    else:
        lr = ""
    return f"model.compile(optimizer=keras.optimizers.{cls}({lr}global_clipnorm=1.0), loss=...)"


# Rates above these are high for the optimizer: with them, one unclipped spike does real damage.
HIGH_RATES = {"Adam": 3e-3, "AdamW": 3e-3, "Nadam": 3e-3, "Adamax": 1e-2, "RMSprop": 3e-3, "Lion": 3e-4,
              "SGD": 0.1, "Adagrad": 0.1, "Ftrl": 0.1}


def _probe_evidence(facts) -> tuple[str, dict, bool | None]:
    """When the probes ran: (sentence, evidence, whether they saw gradient spikes); None: no probes."""
    probe = facts.probe
    run = gradient_run(probe) if probe is not None else None
    if run is None or run.steps_done < 10:
        return "", {}, None
    share, peak = spikes(run)
    where = " on synthetic data" if probe.synthetic else ""
    live = getattr(probe, "live", None) is not None
    measured = f"{run.steps_done} measured steps of training" if live else None
    if share > 0:
        note = (f" In {measured or f'{run.steps_done} probe steps'}{where}, {share:.0%} had a global gradient norm "
                f"that jumped over 10x the median of the steps before (largest jump {peak:.3g}x).")
    else:
        note = (f" The {'monitor' if live else 'probes'} saw no gradient spike in "
                f"{measured or f'{run.steps_done} steps'}{where} (no step's global norm jumped "
                "over 10x both the steps before it and the norms training started with), so this is a precaution "
                "rather than a measured problem.")
    return note, {**context(probe), "spike_share": share, "max_over_median": peak,
                  "global_norms": run.global_norms, "probe_learning_rate": run.learning_rate}, share > 0


def check(facts):
    spec = facts.spec
    found = list(recurrent_layers(spec, facts.info))
    if not found:
        return
    opt = spec.compile.optimizer if spec.compile is not None else None
    held = spec.held_optimizers()
    if held:
        # The compiled optimizer never stepped; the ones that did are attributes of the model,
        # and Keras saves their state but not their settings (clipping included).
        raise Skip(f"the optimizers that trained this model ({', '.join(o.attribute for o in held)}) are held by "
                   "the model itself, and Keras saves their state but not their settings, so whether they clip "
                   "cannot be read from the file")
    if opt is not None and opt.clipped:
        return
    names = [layer.qualname for layer, _, _ in found]
    whats = [f"{cls} layer '{layer.qualname}'" if inner is None else
             f"{layer.class_name} layer '{layer.qualname}' (wrapping {cls} '{inner}')" for layer, cls, inner in found]
    what = whats[0] if len(whats) == 1 else f"{len(whats)} recurrent layers ({', '.join(whats)})"
    evidence = {"recurrent_class": found[0][1], "layers": names,
                "recurrent_classes": [cls for _, cls, _ in found]}
    if opt is None:
        yield RULE.finding(
            layer=names[0],
            severity="info",
            message=f"{what} {'is' if len(whats) == 1 else 'are'} recurrent, but the file has no saved optimizer, "
                    "so kerascheck cannot tell whether gradients are clipped.",
            fix="Check that your compile() call clips gradients, or save the compiled model: "
                + _optimizer_snippet(None),
            evidence={**evidence, "optimizer": None},
        )
        return
    note, gradients, spiked = _probe_evidence(facts)
    high = HIGH_RATES.get(opt.class_name)
    rate_high = high is not None and opt.learning_rate is not None and opt.learning_rate > high
    if rate_high:
        note += f" The rate {opt.learning_rate:.3g} is high for {opt.class_name} (above {high:g})."
    severity = "warning" if spiked is None or spiked or rate_high else "info"
    yield RULE.finding(
        layer=names[0],
        severity=severity,
        message=f"{what} {'is' if len(whats) == 1 else 'are'} trained by {opt.class_name} without gradient "
                "clipping: clipnorm, global_clipnorm and clipvalue are all unset." + note,
        fix="Clip the global gradient norm: " + _optimizer_snippet(opt),
        evidence={**evidence, "optimizer": opt.class_name, "clipnorm": None, "global_clipnorm": None,
                  "clipvalue": None, "rate_high": rate_high, **gradients},
    )
