"""Weights that no healthy network has: NaN/Inf, unbroken symmetry, scales far from any initialisation.

## What it does
Reads every weight tensor once and flags:

* NaN or Inf values anywhere (error);
* kernels that are all zero or one constant, and units whose incoming weights are
  identical to another unit's (error: the symmetry between them never breaks);
* kernels whose standard deviation is more than 10x above or below what
  Glorot and He initialisation give for that fan-in and fan-out (warning, with
  the ratio); kernels small because the layer's own initialiser made them so
  (GPT-2's and BERT's N(0, 0.02), behind layer normalisation) are not flagged,
  nor small kernels whose initialiser the file does not say (a subclass's or a
  library's layers read without loading, a SavedModel's variables);
* BatchNormalization with a negative moving variance (error) or one near zero,
  and normalisation layers whose gamma is near zero in most channels (warning);
* biases above 100 in magnitude (warning);
* when the probes run, each layer's update/weight ratio, ||kernel update|| /
  ||kernel|| per step, over the first 10 steps of training at the configured
  rate: about 1e-3 is healthy; below 1e-5 is flagged (warning), and above 0.1
  when the loss overshoots too (rises to twice its start within those steps):
  adaptive optimizers take large first steps by design (RMSprop's running
  average of squared gradients starts at zero), which harm only when they
  overshoot.

Problems of one kind in several layers are one finding that names every layer
with its number (per-layer evidence in JSON). Calibration of the update ratios
(`python bench/calibrate.py`): on the 13 healthy models of the test zoo (Adam,
RMSprop and SGD with momentum, trained briefly, probed with their data and with
synthetic data) every kernel's median ratio lay between 0.0026 and 0.076.

## Why is this bad?
Identical units receive identical gradients and stay identical forever, so a
layer of 512 copies learns what one unit would. Weights 10x too large saturate
tanh/sigmoid units and make activations explode layer by layer; 10x too small
make signals and gradients vanish. Initialisation and learning rate are tuned
together, and mature networks have weight histograms that look alike; one that
looks nothing like them is a sign the net will not train, or did not.

## How to fix
Use Keras's default initialisers (Glorot uniform; He normal before ReLU) instead
of constants or hand-picked scales, and re-initialise the model if training left
NaNs behind.

## Example
```python
keras.layers.Dense(256, kernel_initializer="zeros")
keras.layers.Dense(256, kernel_initializer=keras.initializers.RandomNormal(stddev=5.0))
```
Use instead:
```python
keras.layers.Dense(256, activation="relu", kernel_initializer="he_normal")
```

Zero-initialising the last BatchNormalization gamma of each residual block is a
known technique; ignore the gamma warning for those layers.
"""
import numpy as np

from kerascheck.facts.stats import chunked_histogram, chunked_stats, compute_fans, histogram, tensor_stats
from kerascheck.rule import Rule
from kerascheck.tiers.probe.evidence import context

RULE = Rule(name="unhealthy-weights", code="KC401", severity="warning", tier="spec", needs=("train",))
UPDATE_HIGH = 1e-1
UPDATE_LOW = 1e-5
UPDATE_STEPS = 10
# Large early updates are what adaptive optimizers do (RMSprop's running average of squared gradients
# starts at zero): they count as thrown around only when they overshoot, the loss rising to OVERSHOOT
# times its start within those steps.
OVERSHOOT = 2.0
# Tensors above this are read in slices, so memory stays bounded however large the file.
CHUNK_BYTES = 256 << 20

KERNELS = {"kernel", "depthwise_kernel", "pointwise_kernel"}
SYMMETRIC = KERNELS | {"recurrent_kernel"}
SCALE_FACTOR = 10.0
MIN_ELEMENTS_FOR_SCALE = 16
# A configured spread at least this large is a choice (transformers use 0.02); 1e-4 is an accident.
DELIBERATE_STD = 0.01
BIAS_LIMIT = 100.0
TINY_VARIANCE = 1e-6
TINY_GAMMA = 1e-3


def check(facts):
    flagged = set()
    found = []
    for layer in facts.spec.layers:
        cls = layer.class_name.split(">")[-1]
        for ref in layer.weights:
            if np.dtype(ref.dtype).kind not in "fiub":
                continue
            a = ref.read() if ref.nbytes <= CHUNK_BYTES else _Chunked(ref)
            for finding in _check_tensor(layer, cls, ref, a):
                flagged.add(finding.layer)
                found.append(finding)
    if facts.probe is not None:
        # A kernel already flagged (zero, tiny, huge) has a ratio that only echoes that.
        found.extend(_update_ratios(facts.probe, skip=flagged))
    yield from group(found)


# How a group of findings of one kind is said: one finding per cause, every layer named.
GROUPS = {
    "nonfinite": "{n} weight tensors hold NaN/Inf values: {items}.",
    "symmetry": "{n} kernels cannot break the symmetry between their units (every unit gets the same "
                "gradient): {items}.",
    "scale-high": "{n} kernels are over 10x larger than He initialisation gives for their fan-in, so "
                  "activations will explode or saturate: {items}.",
    "scale-low": "{n} kernels are over 10x smaller than Glorot initialisation gives for their fans, so signals "
                 "and gradients will vanish: {items}.",
    "update-low": "{n} of {total} layers barely learn: each training step changes their kernels by far less "
                  "than the healthy 1e-3 of their norm ({items}; median over the first steps{rate}).",
    "update-high": "{n} of {total} layers are thrown around: each training step changes their kernels by far "
                   "more than the healthy 1e-3 of their norm ({items}; median over the first steps{rate}).",
    "gamma": "{n} normalisation layers have |gamma| below 1e-3 in most channels, which switches them off: "
             "{items}.",
    "bias": "{n} layers have biases above 100 in magnitude, which saturate or pin their units: {items}.",
    "bn-variance": "{n} BatchNormalization layers have negative moving variances (NaN at inference): {items}.",
    "bn-tiny-variance": "{n} BatchNormalization layers have moving variances below 1e-6: {items}.",
}


def group(findings: list) -> list:
    """One finding per kind of problem, naming every layer it concerns; per-layer evidence kept."""
    by_kind: dict = {}
    for f in findings:
        by_kind.setdefault(f.evidence.get("kind"), []).append(f)
    out = []
    for kind, items in by_kind.items():
        if len(items) == 1 or kind not in GROUPS:
            out.extend(items)
            continue
        first = items[0]
        listed = [f.evidence.get("summary", f.layer) for f in items]
        text = ", ".join(listed[:12]) + (f" and {len(listed) - 12} more" if len(listed) > 12 else "")
        rate = first.evidence.get("learning_rate")
        message = GROUPS[kind].format(n=len(items), total=first.evidence.get("layers_measured", len(items)),
                                      items=text, rate=f" at learning rate {rate:.3g}" if rate else "")
        if first.evidence.get("synthetic_data"):
            message = message[:-1] + " (measured on synthetic data)."
        severity = max((f.severity for f in items), key=lambda s: {"error": 3, "warning": 2, "info": 1}[s])
        evidence = {k: v for k, v in first.evidence.items() if k not in ("histogram", "summary")}
        evidence.update(kind=kind, layers=[f.layer for f in items],
                        per_layer=[{"layer": f.layer, "message": f.message, **{k: v for k, v in f.evidence.items()
                                                                                 if k not in ("histogram",)}}
                                   for f in items])
        out.append(RULE.finding(layer=first.layer, severity=severity, message=message, fix=first.fix,
                                evidence=evidence))
    return out


def _update_ratios(probe, skip=frozenset()):
    run = probe.train
    if run is None or run.diverged_at is not None:
        return  # nan-in-training reports a diverging rate; the ratios would only echo it
    measured = len(run.update_ratios)
    losses = [v for v in run.losses[:UPDATE_STEPS] if np.isfinite(v)]
    overshoot = bool(losses) and max(losses[1:], default=losses[0]) > OVERSHOOT * abs(losses[0])
    for layer, ratios in run.update_ratios.items():
        if layer in skip:
            continue
        # An update of exactly zero is a zero gradient, which cannot-overfit and
        # vanishing-gradients report; only a moving kernel has a meaningful ratio.
        early = [r for r in ratios[:UPDATE_STEPS] if np.isfinite(r) and r > 0]
        if len(early) < min(UPDATE_STEPS, len(ratios)) // 2 or not early:
            continue
        median = float(np.median(early))
        if UPDATE_LOW <= median <= UPDATE_HIGH:
            continue
        high = median > UPDATE_HIGH
        if high and not overshoot:
            continue
        yield RULE.finding(
            layer=layer,
            message=f"Each training step changes the kernel of layer '{layer}' by {median:.2g} of its norm "
                    f"(median over the first {len(early)} "
                    f"{'measured steps of training' if getattr(probe, 'live', None) is not None else 'steps'} at "
                    f"learning rate {run.learning_rate:.3g}); about "
                    f"1e-3 is healthy, so this layer {'is thrown around' if high else 'barely learns'}"
                    f"{' (measured on synthetic data)' if probe.synthetic else ''}.",
            fix=(f"Lower the learning rate about {median / 1e-3:.2g}x" if high else
                 f"Raise the learning rate about {1e-3 / median:.2g}x")
                + " (or re-scale this layer's initialisation), then watch the ratio settle near 1e-3.",
            evidence={**context(probe), "update_ratios": ratios, "kind": "update-high" if high else "update-low",
                      "summary": f"'{layer}' {median:.2g}", "layers_measured": measured,
                      "median_first_steps": median, "learning_rate": run.learning_rate},
        )


class _Chunked:
    """A large tensor seen through slices: statistics and histograms without holding it whole."""

    def __init__(self, ref):
        self.ref = ref

    def stats(self):
        return chunked_stats(self.ref.chunks(CHUNK_BYTES))

    def histogram(self, st):
        return chunked_histogram(self.ref.chunks(CHUNK_BYTES), st.min, st.max)

    def count(self, predicate) -> int:
        return sum(int(np.count_nonzero(predicate(c))) for c in self.ref.chunks(CHUNK_BYTES))


def _count(a, predicate) -> int:
    return a.count(predicate) if isinstance(a, _Chunked) else int(np.count_nonzero(predicate(a)))


def _initializer_std(cfg) -> float | None:
    """The standard deviation a RandomNormal, TruncatedNormal or RandomUniform initialiser config gives."""
    if not isinstance(cfg, dict) or not isinstance(cfg.get("config"), dict):
        return None
    name, c = str(cfg.get("class_name", "")).split(">")[-1], cfg["config"]
    try:
        if name in ("RandomNormal", "random_normal"):
            return float(c.get("stddev", 0.05))
        if name in ("TruncatedNormal", "truncated_normal"):
            return 0.88 * float(c.get("stddev", 0.05))  # a normal cut at two standard deviations
        if name in ("RandomUniform", "random_uniform"):
            return (float(c.get("maxval", 0.05)) - float(c.get("minval", -0.05))) / 12 ** 0.5
    except (TypeError, ValueError):
        return None
    return None


def _as_configured(config, std: float) -> bool:
    """Whether the layer's own initialiser gives about this spread: small weights someone chose on purpose
    (GPT-2's and BERT's N(0, 0.02), behind layer normalisation) are not the accident this rule looks for."""
    for key, value in (config or {}).items():
        if key.endswith("initializer"):
            expected = _initializer_std(value)
            if expected and expected >= DELIBERATE_STD and 0.5 * expected <= std <= 2.0 * expected:
                return True
    return False


def _evidence(ref, a, st, **extra):
    hist = a.histogram(st) if isinstance(a, _Chunked) else histogram(a)
    return {"tensor": ref.path, "shape": list(ref.shape), **st.to_dict(), "histogram": hist, **extra}


def _check_tensor(layer, cls, ref, a):
    st = a.stats() if isinstance(a, _Chunked) else tensor_stats(a)
    where = f"'{ref.name}' of layer '{layer.qualname}'"
    if st.nonfinite:
        yield RULE.finding(
            layer=layer.qualname, severity="error",
            message=f"Weight {where} holds {st.nonfinite} NaN/Inf values out of {st.size}.",
            fix="Reload the weights from a checkpoint saved before training diverged, or re-initialise "
                "the model; then lower the learning rate or clip gradients (global_clipnorm=1.0).",
            evidence=_evidence(ref, a, st, kind="nonfinite",
                               summary=f"'{ref.name}' of '{layer.qualname}' ({st.nonfinite} of {st.size})"),
        )
        return
    name = ref.name
    if name in SYMMETRIC and st.size >= 2:
        if st.absmax == 0.0 or st.min == st.max:
            value = "zero" if st.absmax == 0.0 else f"the constant {st.min:.4g}"
            yield RULE.finding(
                layer=layer.qualname, severity="error",
                message=f"Weight {where} ({'x'.join(map(str, ref.shape))}) is {value} everywhere, so "
                        "every unit computes the same thing and receives the same gradient.",
                fix="Initialise kernels randomly: keras.layers."
                    f"{cls if cls.isidentifier() else 'Dense'}(..., kernel_initializer='glorot_uniform').",
                evidence=_evidence(ref, a, st, kind="symmetry",
                                   summary=f"'{ref.name}' of '{layer.qualname}' ({value})"),
            )
            return
        if name in KERNELS and len(ref.shape) >= 2 and ref.shape[-1] > 1 and not isinstance(a, _Chunked):
            dup = _duplicate_units(a)
            if dup:
                yield RULE.finding(
                    layer=layer.qualname, severity="error",
                    message=f"{dup} of {ref.shape[-1]} units in layer '{layer.qualname}' have incoming "
                            f"weights ('{ref.name}') identical to another unit's; identical units get "
                            "identical gradients and never become different.",
                    fix="Initialise the kernel randomly (kernel_initializer='glorot_uniform') instead of "
                        "copying or tiling values.",
                    evidence=_evidence(ref, a, st, duplicate_units=dup, kind="symmetry",
                                       summary=f"'{layer.qualname}' ({dup} of {ref.shape[-1]} units alike)"),
                )
    # A layer whose class the file does not say (a library's layer inside a subclass, read without
    # loading) may hold a lookup table as much as a matmul kernel: its scale is not judged by Glorot's.
    if name in KERNELS and st.size >= MIN_ELEMENTS_FOR_SCALE and cls != "Layer" and not cls.endswith("Embedding"):
        fan_in, fan_out = compute_fans(ref.shape)
        glorot = float(np.sqrt(2.0 / (fan_in + fan_out)))
        he = float(np.sqrt(2.0 / fan_in))
        low, high = min(glorot, he), max(glorot, he)
        expected = {"glorot": glorot, "he": he, "fan_in": fan_in, "fan_out": fan_out}
        if st.std > SCALE_FACTOR * high:
            ratio = st.std / high
            yield RULE.finding(
                layer=layer.qualname,
                message=f"Weight {where} has standard deviation {st.std:.4g}, {ratio:.0f}x what He "
                        f"initialisation gives for fan-in {fan_in} ({high:.3g}); activations will "
                        "explode or saturate.",
                fix="Use a scaled initialiser: kernel_initializer='he_normal' before ReLU, "
                    "'glorot_uniform' otherwise.",
                evidence=_evidence(ref, a, st, expected_std=expected, ratio=ratio, kind="scale-high",
                                   summary=f"'{layer.qualname}' std {st.std:.3g}, {ratio:.0f}x He"),
            )
        elif st.std < low / SCALE_FACTOR and layer.config.get("kernel_initializer") is not None \
                and not _as_configured(layer.config, st.std):
            ratio = low / max(st.std, 1e-30)
            yield RULE.finding(
                layer=layer.qualname,
                message=f"Weight {where} has standard deviation {st.std:.3g}, {ratio:.0f}x smaller than "
                        f"Glorot initialisation gives for fan-in {fan_in} and fan-out {fan_out} "
                        f"({low:.3g}); signals and gradients will vanish.",
                fix="Use a scaled initialiser: kernel_initializer='glorot_uniform' (or 'he_normal' "
                    "before ReLU).",
                evidence=_evidence(ref, a, st, expected_std=expected, ratio=1.0 / ratio, kind="scale-low",
                                   summary=f"'{layer.qualname}' std {st.std:.3g}, {ratio:.0f}x below Glorot"),
            )
    if cls == "BatchNormalization" and name == "moving_variance":
        negative = _count(a, lambda v: v < 0)
        tiny = _count(a, lambda v: (v >= 0) & (v < TINY_VARIANCE))
        if negative:
            yield RULE.finding(
                layer=layer.qualname, severity="error",
                message=f"BatchNormalization '{layer.qualname}' has a negative moving variance in "
                        f"{negative} of {st.size} channels (min {st.min:.4g}); the square root in "
                        "inference mode is NaN.",
                fix="The statistics are corrupt: recompute them by running the model in training mode "
                    "over a few hundred batches, or reload a good checkpoint.",
                evidence=_evidence(ref, a, st, negative_channels=negative, kind="bn-variance",
                                   summary=f"'{layer.qualname}' ({negative} negative)"),
            )
        elif tiny:
            yield RULE.finding(
                layer=layer.qualname,
                message=f"BatchNormalization '{layer.qualname}' has a moving variance below "
                        f"{TINY_VARIANCE:g} in {tiny} of {st.size} channels; at inference those channels "
                        "are divided by about sqrt(epsilon) and any deviation is amplified.",
                fix="Check those channels for dead inputs, or raise epsilon: "
                    "keras.layers.BatchNormalization(epsilon=1e-3).",
                evidence=_evidence(ref, a, st, tiny_channels=tiny, kind="bn-tiny-variance",
                                   summary=f"'{layer.qualname}' ({tiny} of {st.size} channels)"),
            )
    if name == "gamma" and cls in ("BatchNormalization", "LayerNormalization", "GroupNormalization"):
        tiny = _count(a, lambda v: np.abs(v) < TINY_GAMMA)
        if st.size and tiny * 2 >= st.size:
            yield RULE.finding(
                layer=layer.qualname,
                message=f"{cls} '{layer.qualname}' has |gamma| below {TINY_GAMMA:g} in {tiny} of "
                        f"{st.size} channels, which switches those channels off.",
                fix="Initialise gamma to ones (gamma_initializer='ones'), unless this is the deliberate "
                    "zero-init of a residual branch.",
                evidence=_evidence(ref, a, st, tiny_channels=tiny, kind="gamma",
                                   summary=f"'{layer.qualname}' ({tiny} of {st.size} channels)"),
            )
    if name == "bias" and st.absmax > BIAS_LIMIT:
        yield RULE.finding(
            layer=layer.qualname,
            message=f"Bias of layer '{layer.qualname}' reaches {st.absmax:.4g} (limit {BIAS_LIMIT:g}); a "
                    "shift that large saturates sigmoid/tanh units and pins ReLU units on or off.",
            fix="Initialise biases to zeros (bias_initializer='zeros') and check the learning rate.",
            evidence=_evidence(ref, a, st, kind="bias", summary=f"'{layer.qualname}' {st.absmax:.3g}"),
        )


def _duplicate_units(a: np.ndarray) -> int:
    """How many units (last axis) have incoming weights identical to another unit's.

    One matrix-vector product with a random vector finds the candidates without
    copying the kernel; only near-equal projections are compared exactly.
    """
    units = a.shape[-1]
    m = a.reshape(-1, units)
    r = np.random.default_rng(0).standard_normal(m.shape[0]).astype(m.dtype if m.dtype.kind == "f" else np.float64)
    proj = (r @ m).astype(np.float64)
    order = np.argsort(proj, kind="stable")
    ps = proj[order]
    close = np.abs(np.diff(ps)) <= 1e-5 * (np.abs(ps[1:]) + np.abs(ps[:-1])) + 1e-30
    duplicated = set()
    for k in np.flatnonzero(close):
        i, j = int(order[k]), int(order[k + 1])
        if np.array_equal(m[:, i], m[:, j]):
            duplicated.update((i, j))
    return len(duplicated)
