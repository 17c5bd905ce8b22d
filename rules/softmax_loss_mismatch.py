"""The output activation and the loss disagree about what the output means.

## What it does
Follows each model output back to the activation that produces it (through
`Activation`/`Softmax` layers, shape-only layers such as `Dropout` or `Reshape`,
and nested models) and compares it with the compiled loss:

* a softmax or sigmoid output with a loss built with `from_logits=True`;
* an unbounded output (linear, ReLU, tanh, ...) with a crossentropy that expects
  probabilities (`from_logits=False`);
* a sigmoid output over several units with categorical crossentropy, or a
  softmax output over several units with binary crossentropy;
* a softmax over a single unit, or a categorical loss over a single unit.

Where the output layer or its activation is your own code, or the model is a
`keras.Model` subclass (whose config names no layers), the config cannot say what
the output means: kerascheck loads the model and measures it on a sample (rows in
[0, 1] that sum to 1 are probabilities; values each in [0, 1] are independent
probabilities; anything else is unbounded), judges that, and says it measured it.
Without the code (`--static`, or a class not supplied) such an output is unknown
and the rule says nothing about it rather than guess. Your own loss functions are
not judged.

## Why is this bad?
Each of these trains something other than what you meant. A softmax over one
unit outputs 1.0 for every input, yet crossentropy still shows a falling loss
because Keras computes it from the logits behind the activation. A linear output
fed to a probability loss is clipped to [1e-7, 1 - 1e-7], which kills most
gradients. Softmax plus `from_logits=True` happens to train on the TensorFlow
backend (Keras reuses the cached logits and only warns), but applies softmax
twice on other backends and in custom training loops.

## How to fix
Let the last layer output logits and tell the loss so, or keep the activation
and drop `from_logits`; use sigmoid with binary crossentropy for independent
labels and softmax with categorical crossentropy for one-of-N classes.

## Example
```python
outputs = keras.layers.Dense(10, activation="softmax")(x)
model.compile(loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
```
Use instead:
```python
outputs = keras.layers.Dense(10)(x)  # logits
model.compile(loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
```
"""
from kerascheck.facts.keras_names import BUILTIN_LAYERS
from kerascheck.facts.topology import graph_of
from kerascheck.rule import Rule, Skip

RULE = Rule(name="softmax-loss-mismatch", code="KC202", severity="error", tier="spec", needs=("outputs",))

CATEGORICAL = {"categorical_crossentropy", "sparse_categorical_crossentropy", "categorical_focal_crossentropy"}
BINARY = {"binary_crossentropy", "binary_focal_crossentropy"}
PROBABILISTIC = CATEGORICAL | BINARY | {"kl_divergence"}
SQUASHING = {"softmax", "sigmoid"}
UNBOUNDED = {"linear", "relu", "tanh", "elu", "selu", "gelu", "swish", "silu", "leaky_relu", "relu6",
             "softplus", "softsign", "mish", "exponential", "hard_tanh", "prelu"}


def check(facts):
    findings = list(_check(facts))
    if not findings and _outputs(facts) and (
            facts.spec.compile is None or all(loss is None for loss in facts.spec.compile.losses)):
        raw = facts.spec.raw_compile or {}
        if raw.get("loss") is not None:
            raise Skip("the saved loss is keyed by outputs the file does not name (a subclass's outputs are known "
                       "only by calling it), so it could not be paired with an output activation")
        raise Skip("the file has no saved loss, so only the output activation could be checked")
    return findings


MEASURED = {"probabilities": "softmax", "independent probabilities": "sigmoid", "unbounded": "linear",
            "constant one": "softmax"}
SAID = {"probabilities": "rows in [0, 1] that sum to 1", "independent probabilities": "values each in [0, 1]",
        "unbounded": "values outside [0, 1]", "constant one": "exactly 1.0 for every example"}


def _outputs(facts) -> list:
    """(output name, activation, units, layer applying it, how it is known) for each model output.

    From the config where the output is Keras's own layer and activation; measured on
    the loaded model where it is custom (or the model is a subclass, whose config
    holds no layers); left out where it is custom and nothing was measured.
    """
    spec, info = facts.spec, facts.info
    meanings = list(info.meanings) if info is not None else []
    out = []
    if not spec.outputs and not meanings:
        # A library task (KerasHub's ImageClassifier, TextClassifier) keeps its head's activation in its
        # own config, with the number of classes: read without loading it.
        cfg = spec.config.get("config") if isinstance(spec.config, dict) else None
        act = cfg.get("activation") if isinstance(cfg, dict) else None
        units = cfg.get("num_classes") if isinstance(cfg, dict) else None
        if isinstance(act, str) and act in SQUASHING | UNBOUNDED and isinstance(units, int):
            out.append(("output", act, units, None, f"its config says activation={act!r} for "
                                                    f"{units} classes"))
        return out
    if not spec.outputs:  # a subclassed model: only the measurement says what it outputs
        for i, meaning in enumerate(meanings):
            if meaning in MEASURED:
                port = info.io.outputs[i]
                units = port.shape[-1] if port.shape else 1
                out.append((port.name, MEASURED[meaning], units, None,
                            f"it gives {SAID[meaning]} (measured on {info.measured_on})"))
        return out
    graph = graph_of(spec)
    for i, qual in enumerate(spec.outputs):
        act, units, where = graph.output_activation(qual)
        layer = spec.layer(where)
        custom_layer = layer is not None and layer.class_name.split(">")[-1] not in BUILTIN_LAYERS
        if not custom_layer and act in SQUASHING | UNBOUNDED:
            out.append((qual, act, units, where, None))
            continue
        meaning = meanings[i] if i < len(meanings) else "unknown"
        if meaning not in MEASURED:
            continue  # custom and not measured: say nothing rather than guess
        what = f"custom layer {layer.class_name.split('>')[-1]}" if custom_layer else f"custom activation {act!r}"
        if units is None and info is not None and i < len(info.io.outputs) and info.io.outputs[i].shape:
            units = info.io.outputs[i].shape[-1]  # a custom layer's units are only known from what it outputs
        out.append((qual, MEASURED[meaning], units, where,
                    f"its {what} gives {SAID[meaning]} (measured on {info.measured_on})"))
    return out


def _check(facts):
    spec = facts.spec
    losses = spec.compile.losses if spec.compile is not None else ()
    for i, (out, act, units, where, measured) in enumerate(_outputs(facts)):
        loss = losses[i] if i < len(losses) else None
        base = {"output": out, "activation": act, "activation_layer": where, "units": units,
                "loss": loss.name if loss else None, "from_logits": loss.from_logits if loss else None,
                "measured": measured}
        where = where or out
        applies = f"already applies {act} in '{where}'" if measured is None else f"already outputs probabilities: {measured}"
        is_what = f"is {act} (not a probability)" if measured is None else f"is not a probability: {measured}"
        if act == "softmax" and units == 1:
            how = (f"applies softmax over a single unit, so it outputs 1.0 for every input" if measured is None else
                   f"outputs exactly 1.0 for every example, as a softmax over a single unit does: {measured}")
            yield RULE.finding(
                layer=where,
                message=f"Layer '{where}' {how}; the loss may still fall because it is computed from the logits.",
                fix="For a yes/no output use one unit with a sigmoid and binary crossentropy: "
                    "keras.layers.Dense(1, activation='sigmoid') with loss='binary_crossentropy'.",
                evidence=base,
            )
            continue
        if loss is None or loss.custom:
            continue
        name = loss.name
        if act in SQUASHING and loss.from_logits:
            yield RULE.finding(
                layer=where,
                message=f"Output '{out}' {applies}, but the loss {name} is "
                        "built with from_logits=True, so it treats probabilities as logits (the "
                        "TensorFlow backend hides this by reusing cached logits; other backends and "
                        "custom loops apply the activation twice).",
                fix=(f"Build the task with activation=None (logits) and keep from_logits=True, or compile it with "
                     f"the loss built with from_logits=False (KerasHub's classifiers choose from_logits before "
                     f"they set their activation)." if measured and measured.startswith("its config says") else
                     f"Remove the {act} from '{where}' and keep from_logits=True (the output is then "
                     f"logits: apply keras.ops.{act} at inference), or keep the {act} and build the "
                     f"loss with from_logits=False."),
                evidence=base,
            )
        elif name in PROBABILISTIC and not loss.from_logits and act in UNBOUNDED:
            yield RULE.finding(
                layer=where,
                message=f"Output '{out}' {is_what} but the loss {name} expects "
                        "probabilities (from_logits=False): Keras clips the output to [1e-7, 1-1e-7] "
                        "and most gradients vanish.",
                fix=f"Build the loss with from_logits=True, e.g. keras.losses.{_class(name)}(from_logits=True), "
                    f"or end the model with the activation the loss expects "
                    f"({'sigmoid' if name in BINARY else 'softmax'}).",
                evidence=base,
            )
        elif name in CATEGORICAL and units == 1:
            yield RULE.finding(
                layer=where,
                message=f"Output '{out}' has a single unit but the loss {name} needs one unit per class.",
                fix="Use one unit per class with softmax, or for two classes a single sigmoid unit "
                    "with loss='binary_crossentropy'.",
                evidence=base,
            )
        elif act == "sigmoid" and name in CATEGORICAL and (units or 0) > 1:
            yield RULE.finding(
                layer=where,
                severity="warning",
                message=f"Output '{out}' applies sigmoid over {units} units, whose values do not sum to "
                        f"1, but the loss {name} treats them as one distribution over classes.",
                fix="For one-of-N classes use activation='softmax'; for independent labels keep "
                    "sigmoid and use loss='binary_crossentropy'.",
                evidence=base,
            )
        elif act == "softmax" and name in BINARY and (units or 0) > 1:
            yield RULE.finding(
                layer=where,
                severity="warning",
                message=f"Output '{out}' applies softmax over {units} units, which makes the labels "
                        f"compete, but the loss {name} scores each unit as an independent yes/no.",
                fix="For independent labels use activation='sigmoid'; for one-of-N classes keep "
                    "softmax and use loss='categorical_crossentropy'.",
                evidence=base,
            )


def _class(loss_name: str) -> str:
    return "".join(part.capitalize() for part in loss_name.split("_"))
