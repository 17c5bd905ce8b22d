"""The optimizer trains at one constant learning rate.

## What it does
Reports a saved optimizer whose learning rate is a plain number rather than a
`keras.optimizers.schedules` schedule.

## Why is this bad?
A rate large enough to make fast progress early is too large to settle into a
minimum late: the loss plateaus and bumps around. Decaying the rate towards the
end of training usually buys a last, cheap improvement. A
`ReduceLROnPlateau` or `LearningRateScheduler` callback also decays the rate but
is not saved with the model; if you use one, ignore this rule for the model.

On a live training run (`kerascheck.Monitor`) it judges the rate the optimizer
actually used, read at the end of every epoch, so schedules and callbacks such as
`ReduceLROnPlateau` count: when training ends after at least two epochs at a rate
that never fell below its peak, it reports that; a rate that decayed is fine,
whatever the saved optimizer says.

## How to fix
Pass a schedule as the learning rate. A step decay in the spirit of "after k
epochs, divide by 1.5 every n epochs (k > n)":

## Example
```python
optimizer = keras.optimizers.Adam(learning_rate=1e-3)
```
Use instead:
```python
steps = steps_per_epoch
schedule = keras.optimizers.schedules.PiecewiseConstantDecay(
    boundaries=[10 * steps, 13 * steps, 16 * steps],
    values=[1e-3, 1e-3 / 1.5, 1e-3 / 1.5**2, 1e-3 / 1.5**3])
optimizer = keras.optimizers.Adam(learning_rate=schedule)
```
"""
from kerascheck.rule import Rule, Skip

RULE = Rule(name="no-lr-schedule", code="KC203", severity="info", tier="spec")


def check(facts):
    spec = facts.spec
    live = getattr(facts.probe, "live", None) if facts.probe is not None else None
    if live is not None:
        yield from _live(spec, live)
        return
    opt = spec.compile.optimizer if spec.compile is not None else None
    own = spec.held_optimizers()
    if own:
        yield from _held(own)
        return
    if opt is None:
        raise Skip("the file has no saved optimizer")
    if opt.schedule is not None or opt.learning_rate is None:
        return
    lr = opt.learning_rate
    yield RULE.finding(
        layer=None,
        message=f"{opt.class_name} trains at a constant learning rate of {lr:.3g}; nothing decays it "
                "towards the end of training (callbacks such as ReduceLROnPlateau are not saved, "
                "so kerascheck cannot see them).",
        fix="Decay the rate with a schedule, e.g. divide it by 1.5 every n epochs after k epochs (k > n): "
            "keras.optimizers.schedules.PiecewiseConstantDecay(boundaries=[10*steps, 13*steps, 16*steps], "
            f"values=[{lr:.3g}, {lr / 1.5:.3g}, {lr / 1.5 ** 2:.3g}, {lr / 1.5 ** 3:.3g}])",
        evidence={"learning_rate": lr, "optimizer": opt.class_name},
    )


def _held(optimizers):
    constant = [o for o in optimizers if o.learning_rate is not None]
    if not constant:
        return  # their rates are schedules: no variable holds one rate
    names = ", ".join(f"{o.attribute} ({o.class_name or 'an optimizer'} at {o.learning_rate:.3g}, "
                      f"{o.iterations} steps)" for o in constant)
    lr = constant[0].learning_rate
    yield RULE.finding(
        layer=None,
        message=f"The optimizers that trained this model hold constant learning rates: {names}; nothing "
                "decays them towards the end of training (a schedule is stored in no variable, and these "
                "optimizers have none).",
        fix="Give each optimizer a schedule, e.g. keras.optimizers.Adam(learning_rate="
            f"keras.optimizers.schedules.CosineDecay({lr:.3g}, decay_steps=total_steps)), "
            "where you create them for the model's compile().",
        evidence={"optimizers": [{"attribute": o.attribute, "optimizer": o.class_name,
                                  "learning_rate": o.learning_rate, "iterations": o.iterations}
                                 for o in constant]},
    )


def _live(spec, run):
    """The rate the optimizer used, epoch by epoch, judged when training has ended."""
    rates = [e["learning_rate"] for e in run.epoch_losses if e["learning_rate"] == e["learning_rate"]]
    if not run.finished or len(rates) < 2:
        return
    peak = max(rates)
    if rates[-1] < peak * (1 - 1e-6):
        return  # it decayed, by a schedule or a callback
    opt = spec.compile.optimizer if spec.compile is not None else None
    name = opt.class_name if opt is not None else (run.optimizer or "The optimizer")
    lr = rates[-1]
    constant = min(rates) >= peak * (1 - 1e-6)
    how = f"a constant learning rate of {lr:.3g}" if constant else f"a learning rate that never fell below its " \
                                                                 f"peak ({lr:.3g} at the end)"
    scheduled = " although its rate is a schedule, which did not lower it during this run" \
        if opt is not None and opt.schedule is not None else ""
    yield RULE.finding(
        layer=None,
        message=f"{name} trained at {how} through all {len(rates)} epochs (read from the optimizer at the end of "
                f"each epoch){scheduled}; nothing decayed it towards the end of training.",
        fix="Decay the rate towards the end: keras.callbacks.ReduceLROnPlateau(monitor='loss', factor=1/1.5, "
            "patience=2) in the callbacks, or a schedule, e.g. divide it by 1.5 every n epochs after k epochs (k > n): "
            "keras.optimizers.schedules.PiecewiseConstantDecay(boundaries=[10*steps, 13*steps, 16*steps], "
            f"values=[{lr:.3g}, {lr / 1.5:.3g}, {lr / 1.5 ** 2:.3g}, {lr / 1.5 ** 3:.3g}])",
        evidence={"learning_rate": lr, "optimizer": name, "epoch_rates": rates, "kind": "live"},
    )
