"""Inputs reach the first weighted layer unscaled: raw pixels, means far from 0, scales far apart.

## What it does
Inputs that hold ids rather than measurements (they feed an `Embedding`, a lookup
or a category encoding, or the model casts them to integers) are not judged: their
scale means nothing, and normalising them would break the lookup.

With `--data`, measures what actually reaches the first weighted layer of each
input (after any Rescaling or Normalization inside the model): per-feature
mean, standard deviation and range. It warns about raw 0..255 pixels, means far
from 0 (above 10 and above 3 standard deviations), standard deviations far from 1
(above 10 or below 0.01), and features whose scales differ by more than 100x.

Without `--data`, it gives a structural hint: for each model input that looks like an image (dtype uint8, or a shape of
height x width x 1, 3 or 4 channels), follows the layers it feeds and reports the
input when it reaches a weighted layer (Dense, Conv, ...) without passing a
`Rescaling`, `Normalization` or other normalisation layer. Paths through Lambda
or custom layers are given the benefit of the doubt, since their scaling cannot
be seen.

This hint is at info severity: preprocessing often happens outside the model
(the `keras.applications` models are built that way), and kerascheck cannot see
that from the file alone; `--data` measures it, and what it measures is a
warning. Synthetic data is never measured (its scale is kerascheck's choice).

## Why is this bad?
Raw pixels in 0..255 make the first layer's pre-activations hundreds of times
larger than its initialisation assumes: units saturate, gradients for the first
layer dwarf the rest, and the learning rate that suits the other layers is far
too high for it. Nets train best on inputs scaled the way others scale them:
roughly zero mean and unit variance, or [0, 1] for images.

## How to fix
Put the scaling inside the model, so it travels with it and cannot be forgotten
at inference.

## Example
```python
inputs = keras.Input((224, 224, 3))
x = keras.layers.Conv2D(32, 3)(inputs)
```
Use instead:
```python
inputs = keras.Input((224, 224, 3))
x = keras.layers.Rescaling(1 / 255)(inputs)
x = keras.layers.Conv2D(32, 3)(x)
```
"""
import numpy as np

from kerascheck.facts.keras_names import BUILTIN_LAYERS
from kerascheck.facts.topology import SCALING_LAYERS, graph_of
from kerascheck.rule import Rule
from kerascheck.tiers.probe.evidence import context

RULE = Rule(name="unscaled-inputs", code="KC301", severity="info", tier="spec", needs=("data",))

OPAQUE = {"Lambda", "TFOpLambda", "SlicingOpLambda"}


def image_like(inp) -> bool:
    shape = inp.shape
    return inp.dtype == "uint8" or (len(shape) == 4 and shape[-1] in (1, 3, 4))


def check(facts):
    probe = facts.probe
    if probe is not None and not probe.synthetic and probe.input_stats:
        yield from _measured(probe)  # evidence from the user's data supersedes the structural guess
        return
    yield from _structural(facts)


def _measured(probe):
    # Inputs concatenated before the layer they reach are one measurement there: one finding names them all.
    groups: dict = {}
    for st, problems, ratio in _measured_problems(probe):
        key = (st["first_weighted"], st["measured_at"], tuple(problems))
        groups.setdefault(key, []).append((st, ratio))
    for (first, measured_at, problems), members in groups.items():
        st, ratio = members[0]
        names = [m["input"] for m, _ in members]
        who = f"Input '{names[0]}' reaches" if len(names) == 1 else \
            "Inputs " + ", ".join(f"'{n}'" for n in names) + " reach"
        yield RULE.finding(
            layer=first,
            severity="warning",
            message=f"{who} the weighted layer '{first}' with " + "; ".join(problems)
                    + f" (measured at {measured_at} over {st['examples']} examples from --data).",
            fix="Standardise inside the model: norm = keras.layers.Normalization(); norm.adapt(x_train); "
                "x = norm(inputs) (or keras.layers.Rescaling(1 / 255) for pixels).",
            evidence={**context(probe), **st, "inputs": names, "scale_ratio": ratio},
        )


def _measured_problems(probe):
    """(input stats, what is wrong with them, largest ratio of feature scales) per input with a problem."""
    for st in probe.input_stats:
        if st.get("categorical"):
            continue  # ids index a table: their scale means nothing
        mean, std = np.asarray(st["mean"]), np.asarray(st["std"])
        lo, hi = min(st["min"]), max(st["max"])
        problems = []
        shape = tuple(st.get("shape") or ())
        images = len(shape) == 3 and shape[-1] in (1, 3, 4)
        if images and st["integer_valued"] and lo >= 0 and 20 < hi <= 255:
            problems.append(f"raw pixel values from {lo:g} to {hi:g}")
        far = np.abs(mean) > np.maximum(10.0, 3 * std)
        if far.any():
            problems.append(f"{int(far.sum())} feature(s) with means far from 0 (up to {np.abs(mean).max():.4g})")
        spread = float(np.median(std))
        if spread > 10 or 0 < spread < 0.01:
            problems.append(f"a median standard deviation of {spread:.3g}, far from 1")
        positive = std[std > 0]
        ratio = float(positive.max() / positive.min()) if positive.size > 1 else 1.0
        if ratio > 100:
            problems.append(f"feature scales that differ {ratio:.0f}x")
        if problems:
            yield st, problems, ratio


def _structural(facts):
    spec = facts.spec
    graph = graph_of(spec)
    # The probes' roles follow the model's own input order (a dict's sorted keys), so match them by name.
    roles = {port.name: role for port, role in zip(facts.info.io.inputs, facts.info.roles)} \
        if facts.info is not None else {}
    for inp in spec.inputs:
        role = roles.get(inp.name)
        if not image_like(inp) or (role is not None and role.categorical):
            continue
        start = spec.layer(inp.name)
        if start is not None:
            frontier = list(graph.consumers(start.qualname))
        else:  # a Sequential model saved without its InputLayer
            frontier = [l.qualname for l in spec.layers
                        if l.scope == () and not l.inbound and l.class_name != "InputLayer"][:1]
        first = _first_unscaled_weighted(graph, frontier)
        if first is None:
            continue
        yield RULE.finding(
            layer=first,
            message=f"Input '{inp.name}' looks like images (shape {_fmt(inp.shape)}, {inp.dtype}) and reaches "
                    f"the weighted layer '{first}' with no Rescaling or Normalization layer in between; if "
                    "the pixels arrive as 0..255 the first layer starts far outside its working range "
                    "(scaling done outside the model is invisible here: pass --data to measure it).",
            fix="Scale inside the model: x = keras.layers.Rescaling(1 / 255)(inputs), or "
                "keras.layers.Normalization() adapted to the training data.",
            evidence={"input": inp.name, "shape": list(inp.shape), "dtype": inp.dtype, "first_weighted": first},
        )


def _first_unscaled_weighted(graph, frontier):
    seen = set()
    while frontier:
        qual = frontier.pop(0)
        if qual in seen:
            continue
        seen.add(qual)
        layer = graph.by_qual[qual]
        cls = layer.class_name.split(">")[-1]
        if cls in SCALING_LAYERS or cls in OPAQUE or layer.class_name not in BUILTIN_LAYERS:
            continue  # scaled here, or scaling we cannot see
        if layer.weights:
            return qual
        frontier.extend(graph.consumers(qual))
    return None


def _fmt(shape) -> str:
    return "(" + ", ".join("None" if d is None else str(d) for d in shape) + ")"
