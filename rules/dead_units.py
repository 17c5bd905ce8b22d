"""Most units of a layer never activate (ReLU) or sit saturated (sigmoid/tanh).

## What it does
Runs the sample through kerascheck's copy of the model in inference mode, with
BatchNormalization's moving statistics first set from the sample (a briefly trained
model's lag far behind, and would make live units look dead), and, for each of
Keras's own layers with a ReLU-family activation, counts units that are never
positive on any example; for sigmoid/tanh layers, units that are saturated
(within 1% of their limits) on at least 99% of examples. Flags layers where at
least half the units are dead or saturated, all such layers in one finding. A
layer that returns several tensors is measured output by output.

It also measures each flagged layer's input: when that input hardly varies from
one example to the next (its spread across examples below 5% of its size, as
after mean-pooling over unmasked padding), the units cannot vary either, and the
finding says the cause is upstream instead of suggesting a re-initialisation
(behind such an input a quarter of the units dead or saturated is flagged: each
unit is then on for every example or for none).

Severity: a warning on `--data`; info on synthetic data, whose random inputs can
leave units dead that real inputs reach. Calibration (`python bench/calibrate.py`):
on the 13 healthy models of the test zoo probed with their own data, no layer had
more than 19% of its units dead or saturated.

## Why is this bad?
A dead ReLU unit has zero gradient and never recovers; a saturated sigmoid or
tanh unit passes almost no gradient. A layer whose units are mostly dead or
saturated wastes its capacity and blocks learning for everything before it.

## How to fix
Lower the learning rate, initialise biases to zero and weights with He/Glorot
scaling, scale the inputs, or use LeakyReLU/GELU.

## Example
```python
keras.layers.Dense(64, activation="relu", bias_initializer=keras.initializers.Constant(-5.0))
```
Use instead:
```python
keras.layers.Dense(64, activation="relu", kernel_initializer="he_normal")
```
"""
from kerascheck.rule import Rule, Skip
from kerascheck.tiers.probe.evidence import context, data_note

RULE = Rule(name="dead-units", code="KC605", severity="warning", tier="probe", needs=("activations",))

SHARE = 0.5
STILL_INPUT = 0.05  # a layer input whose spread across examples is below this share of its size
# Behind a still input each unit is on for every example or for none, so about half of them are
# dead by chance: a quarter is enough to show it.
STILL_SHARE = 0.25


def check(facts):
    probe = facts.probe
    if probe.activations is None:
        raise Skip("Keras could not expose the outputs of this model's layers")
    severity = "info" if probe.synthetic else "warning"
    def flagged(st, key):
        still = st.get("input_variation", 1.0) < STILL_INPUT
        return st.get(key, 0) >= (STILL_SHARE if still else SHARE)

    dead = [(layer, st) for layer, st in probe.activations.items() if flagged(st, "dead_share")]
    saturated = [(layer, st) for layer, st in probe.activations.items() if flagged(st, "saturated_share")]
    for group, kind in ((dead, "dead"), (saturated, "saturated")):
        still = [(l, st) for l, st in group if st.get("input_variation", 1.0) < STILL_INPUT]
        moving = [(l, st) for l, st in group if st.get("input_variation", 1.0) >= STILL_INPUT]
        if still:
            yield _still_input(probe, still, kind, severity)
        if moving:
            yield _finding(probe, moving, kind, severity)


def _listing(group, key) -> str:
    return ", ".join(f"'{layer}' {st[key]} of {st['units']} ({st[key + '_share']:.0%})" for layer, st in group[:8]) + \
        (f" and {len(group) - 8} more" if len(group) > 8 else "")


def _finding(probe, group, kind, severity):
    layer, st = group[0]
    key = "dead" if kind == "dead" else "saturated"
    if len(group) == 1:
        subject = f"{st[key]} of {st['units']} units ({st[key + '_share']:.0%}) in {st['kind']} layer '{layer}'"
    else:
        subject = f"Most units of {len(group)} layers ({_listing(group, key)})"
    if kind == "dead":
        message = f"{subject} are never active on {st['examples']} examples{data_note(probe)}."
        fix = ("Re-initialise with kernel_initializer='he_normal' and bias_initializer='zeros', lower the "
               "learning rate, or use activation='gelu'.")
    else:
        message = (f"{subject} are saturated on at least 99% of {st['examples']} examples{data_note(probe)}, so "
                   "they pass almost no gradient.")
        fix = ("Scale the inputs and use Glorot initialisation (kernel_initializer='glorot_uniform'), or "
               "switch to activation='relu'.")
    return RULE.finding(layer=layer, severity=severity, message=message, fix=fix,
                        evidence={**context(probe), **st, "kind_of_problem": kind,
                                  "layers": {l: s for l, s in group}})


def _still_input(probe, group, kind, severity):
    """Units that cannot vary because what they are fed does not: the cause is upstream."""
    layer, st = group[0]
    key = "dead" if kind == "dead" else "saturated"
    names = ", ".join(f"'{l}'" for l, _ in group)
    if len(group) == 1:
        subject = f"{st[key]} of {st['units']} units ({st[key + '_share']:.0%}) in layer '{layer}'"
    else:
        subject = f"Most units of {len(group)} layers ({_listing(group, key)})"
    return RULE.finding(
        layer=layer, severity=severity,
        message=f"{subject} are {'never active' if kind == 'dead' else 'saturated'} on {st['examples']} examples, and "
                f"the input of {names} hardly varies from one example to the next (its spread is "
                f"{st['input_variation']:.2g} of its size){data_note(probe)}: every example reaches "
                "the layer almost the same, so its units cannot tell them apart; the cause is upstream, not "
                "in the layer's weights.",
        fix="Find why the layer's input is nearly constant: for mean-pooling over padded sequences, mask the "
            "padding (keras.layers.Embedding(..., mask_zero=True) or pass a mask to the pooling layer); check "
            "for a constant or collapsed feature before it.",
        evidence={**context(probe), **st, "kind_of_problem": f"{kind} (still input)",
                  "layers": {l: s for l, s in group}},
    )
