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
training and the share of steps that spiked.

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
from kerascheck.rule import Rule
from kerascheck.topology import RECURRENT_CLASSES, inner_classes

RULE = Rule(name="missing-rnn-clipping", code="KC201", severity="warning", tier="spec", needs=("train",))


def recurrent_layers(spec):
    """(layer, recurrent class, inner layer name) for each top-most layer holding a recurrence."""
    for layer in spec.layers:
        if layer.is_model:
            continue
        cls = layer.class_name.split(">")[-1]
        if cls in RECURRENT_CLASSES:
            yield layer, cls, None
            continue
        for inner_cls, inner_name in inner_classes(layer.config):
            if inner_cls in RECURRENT_CLASSES:
                yield layer, inner_cls, inner_name
                break


def _optimizer_snippet(opt) -> str:
    cls = opt.class_name if opt is not None else "Adam"
    if opt is not None and opt.learning_rate is not None:
        lr = f"learning_rate={opt.learning_rate:.3g}, "
    elif opt is not None and opt.schedule is not None:
        lr = "learning_rate=schedule, "
    else:
        lr = ""
    return f"model.compile(optimizer=keras.optimizers.{cls}({lr}global_clipnorm=1.0), loss=...)"


def _probe_evidence(facts) -> tuple[str, dict]:
    """When the probes ran: how spiky the gradients were, as evidence for the missing clipping."""
    from kerascheck.gradients import gradient_run, spikes
    from kerascheck.probe_evidence import context

    probe = facts.probe
    run = gradient_run(probe) if probe is not None else None
    if run is None or run.steps_done < 10:
        return "", {}
    share, peak = spikes(run)
    note = (f" In {run.steps_done} probe steps {share:.0%} had a global gradient norm over 10x the median "
            f"(peak {peak:.3g}x){' on synthetic data' if probe.synthetic else ''}.")
    return note, {**context(probe), "spike_share": share, "max_over_median": peak,
                  "global_norms": run.global_norms, "probe_learning_rate": run.learning_rate}


def check(facts):
    spec = facts.spec
    found = list(recurrent_layers(spec))
    if not found:
        return
    opt = spec.compile.optimizer if spec.compile is not None else None
    if opt is not None and opt.clipped:
        return
    note, gradients = _probe_evidence(facts)
    for layer, cls, inner in found:
        what = f"{cls} layer '{layer.qualname}'" if inner is None else (
            f"{layer.class_name} layer '{layer.qualname}' (wrapping {cls} '{inner}')")
        if opt is None:
            yield RULE.finding(
                layer=layer.qualname,
                severity="info",
                message=f"{what} is recurrent, but the file has no saved optimizer, so kerascheck "
                        "cannot tell whether gradients are clipped.",
                fix="Check that your compile() call clips gradients, or save the compiled model: "
                    + _optimizer_snippet(None),
                evidence={"recurrent_class": cls, "optimizer": None},
            )
            continue
        yield RULE.finding(
            layer=layer.qualname,
            message=f"{what} is trained by {opt.class_name} without gradient clipping: clipnorm, "
                    "global_clipnorm and clipvalue are all unset." + note,
            fix="Clip the global gradient norm: " + _optimizer_snippet(opt),
            evidence={"recurrent_class": cls, "optimizer": opt.class_name,
                      "clipnorm": None, "global_clipnorm": None, "clipvalue": None, **gradients},
        )
