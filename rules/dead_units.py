"""Most units of a layer never activate (ReLU) or sit saturated (sigmoid/tanh).

## What it does
Runs the sample through kerascheck's copy of the model in inference mode and,
for each layer with a ReLU-family activation, counts units that are never
positive on any example; for sigmoid/tanh layers, units that are saturated
(within 1% of their limits) on at least 99% of examples. Flags layers where at
least half the units are dead or saturated.

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
from kerascheck.probe_evidence import context, data_note
from kerascheck.rule import Rule, Skip

RULE = Rule(name="dead-units", code="KC605", severity="warning", tier="probe", needs=("activations",))

SHARE = 0.5


def check(facts):
    probe = facts.probe
    if probe.activations is None:
        raise Skip("Keras could not expose the outputs of this model's layers (shared or subclassed layers)")
    for layer, st in probe.activations.items():
        if "dead_share" in st and st["dead_share"] >= SHARE:
            yield RULE.finding(
                layer=layer,
                message=f"{st['dead']} of {st['units']} units ({st['dead_share']:.0%}) in {st['kind']} layer "
                        f"'{layer}' are never active on {st['examples']} examples{data_note(probe)}.",
                fix="Re-initialise with kernel_initializer='he_normal' and bias_initializer='zeros', lower the "
                    "learning rate, or use activation='gelu'.",
                evidence={**context(probe), **st},
            )
        elif "saturated_share" in st and st["saturated_share"] >= SHARE:
            yield RULE.finding(
                layer=layer,
                message=f"{st['saturated']} of {st['units']} units ({st['saturated_share']:.0%}) in {st['kind']} "
                        f"layer '{layer}' are saturated on at least 99% of {st['examples']} examples"
                        f"{data_note(probe)}, so they pass almost no gradient.",
                fix="Scale the inputs and use Glorot initialisation (kernel_initializer='glorot_uniform'), or "
                    "switch to activation='relu'.",
                evidence={**context(probe), **st},
            )
