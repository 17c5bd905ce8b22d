"""Image-like inputs reach the first weighted layer without rescaling or normalisation.

## What it does
For each model input that looks like an image (dtype uint8, or a shape of
height x width x 1, 3 or 4 channels), follows the layers it feeds and reports the
input when it reaches a weighted layer (Dense, Conv, ...) without passing a
`Rescaling`, `Normalization` or other normalisation layer. Paths through Lambda
or custom layers are given the benefit of the doubt, since their scaling cannot
be seen.

This is a hint at info severity: preprocessing often happens outside the model
(the `keras.applications` models are built that way), and kerascheck cannot see
that from the file alone.

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
from kerascheck.keras_names import BUILTIN_LAYERS
from kerascheck.rule import Rule
from kerascheck.topology import SCALING_LAYERS, graph_of

RULE = Rule(name="unscaled-inputs", code="KC301", severity="info", tier="spec")

OPAQUE = {"Lambda", "TFOpLambda", "SlicingOpLambda"}


def image_like(inp) -> bool:
    shape = inp.shape
    return inp.dtype == "uint8" or (len(shape) == 4 and shape[-1] in (1, 3, 4))


def check(facts):
    spec = facts.spec
    graph = graph_of(spec)
    for inp in spec.inputs:
        if not image_like(inp):
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
                    "(scaling done outside the model is invisible to this check).",
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
