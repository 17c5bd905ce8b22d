"""Causes and consequences: one diagnosis per root cause.

Rules say what they measured; here the engine decides which findings explain
others. A finding explained by another is folded into it as a consequence
(`evidence.consequences`: rule, code, severity, layer, message) and no longer
counts towards the summary or the exit code. Chains fold to their root: NaN in the
data explains a divergence at every rate, which explains the failed overfit.

The relations are the engine's, written once here, so no rule has to know about
another.
"""
from __future__ import annotations

from dataclasses import replace

from kerascheck.rule import SEVERITY_RANK, Finding

PROBE_RULES = {"nan-in-training", "cannot-overfit", "batch-dependence", "exploding-gradients", "vanishing-gradients",
               "dead-units"}
UPDATE_KINDS = {"update-low", "update-high"}


def _kind(f: Finding) -> str | None:
    return f.evidence.get("kind")


def _probe_measurement(f: Finding) -> bool:
    """A finding that only reports what the probe runs measured (poisoned by NaN anywhere)."""
    return f.rule in PROBE_RULES or (f.rule == "unhealthy-weights" and _kind(f) in UPDATE_KINDS)


def _layer_index(order: list, layer) -> int | None:
    if layer is None:
        return None
    for i, name in enumerate(order):
        if name == layer or name.startswith(f"{layer}/") or layer.startswith(f"{name}/"):
            return i
    return None


def _upstream_or_same(order: list, consequence_layer, cause_layer) -> bool:
    """Whether consequence_layer sits at or before cause_layer (so the cause blocks its gradient)."""
    a, b = _layer_index(order, consequence_layer), _layer_index(order, cause_layer)
    if a is None or b is None:
        return consequence_layer == cause_layer
    return a <= b


def _downstream_or_same(order: list, consequence_layer, cause_layer) -> bool:
    a, b = _layer_index(order, consequence_layer), _layer_index(order, cause_layer)
    if a is None or b is None:
        return consequence_layer == cause_layer
    return a >= b


def _explains(cause: Finding, other: Finding, order: list) -> bool:
    if cause is other or SEVERITY_RANK[cause.severity] < SEVERITY_RANK["warning"] and \
            cause.rule != "missing-rnn-clipping":
        return False
    rule, kind = cause.rule, _kind(cause)
    # Non-finite values in the data or the weights poison every probe measurement.
    if rule == "nonfinite-data" or (rule == "unhealthy-weights" and kind == "nonfinite"):
        return _probe_measurement(other) or other.rule in ("unscaled-inputs", "unscaled-targets") and \
            rule == "nonfinite-data"
    # The labels show which side of an output's activation/loss pair is wrong; the config-only finding on
    # the same output and pair is the same cause with less evidence (and a fix that does not choose).
    if rule == "label-mismatch" and other.rule == "softmax-loss-mismatch":
        ours, theirs = cause.evidence, other.evidence
        return bool(ours.get("rewires")) and SEVERITY_RANK[cause.severity] >= SEVERITY_RANK[other.severity] and \
            all(ours.get(key) == theirs.get(key) for key in ("output", "activation", "loss"))
    # Labels the output cannot reach, or an output the loss misreads: nothing can be memorised.
    if rule in ("label-mismatch", "softmax-loss-mismatch") and cause.severity == "error":
        return other.rule == "cannot-overfit" or (rule == "label-mismatch" and other.rule == "nan-in-training")
    # Training that diverges at every rate: the scale problem behind it explains the rest.
    if rule == "nan-in-training":
        if kind in ("init", "nan-source"):
            return _probe_measurement(other) and other.rule != "nan-in-training"
        return other.rule == "cannot-overfit"  # the overfit probe trains at the same rate
    if rule == "unhealthy-weights":
        if kind == "scale-high":
            return other.rule in ("nan-in-training", "exploding-gradients", "dead-units") or (
                other.rule == "cannot-overfit" and not other.evidence.get("visible_cause", True))
        if kind == "scale-low":
            return other.rule == "vanishing-gradients"
        if kind in ("symmetry", "gamma"):
            # A layer that passes no gradient (or the same to every unit) starves the layers before it.
            if other.rule == "vanishing-gradients":
                return _upstream_or_same(order, other.layer, cause.layer)
            if other.rule == "dead-units":
                # Everything after a zero kernel sees the same constant for every example.
                return _downstream_or_same(order, other.layer, cause.layer)
            if other.rule == "cannot-overfit":
                return True
        return False
    if rule == "dead-units" and cause.evidence.get("dead_share", 0) >= 0.99:
        # A layer whose units are all dead passes no gradient to anything before it,
        # and the same zeros to everything after it.
        if other.rule == "dead-units":
            return "still input" in str(other.evidence.get("kind_of_problem")) and \
                _downstream_or_same(order, other.layer, cause.layer) and other.layer != cause.layer
        if other.rule == "vanishing-gradients":
            return _upstream_or_same(order, other.layer, cause.layer)
        if other.rule == "cannot-overfit":
            zero = other.evidence.get("zero_gradient_layers") or []
            return any(_upstream_or_same(order, z, cause.layer) for z in zero)
        return False
    if rule in ("risky-division", "unstable-softmax") and cause.severity == "error":
        # A confirmed NaN source in the user's code explains training that turns NaN from it.
        if other.rule == "nan-in-training":
            first = (other.evidence.get("first_nonfinite") or {}).get("layer")
            return first is None or first == cause.layer or _kind(other) == "nan-source"
        return other.rule == "cannot-overfit" and _nan_losses(other)
    # Raw-scale inputs or targets make every gradient as large as they are from the first step on.
    if rule in ("unscaled-inputs", "unscaled-targets"):
        return other.rule == "exploding-gradients" and _kind(other) == "init"
    if rule == "missing-rnn-clipping":
        return other.rule == "exploding-gradients" and _kind(other) == "spikes"
    return False


def _nan_losses(f: Finding) -> bool:
    losses = (f.evidence.get("overfit") or {}).get("losses") or []
    return any(v in ("nan", "inf", "-inf") for v in losses)


# When two findings could explain each other, the one higher here is the cause.
PRIORITY = ["nonfinite-data", "unhealthy-weights", "label-mismatch", "softmax-loss-mismatch", "risky-division",
            "unstable-softmax", "nan-in-training", "dead-units", "missing-rnn-clipping", "unscaled-inputs",
            "unscaled-targets"]


def _rank(f: Finding) -> int:
    return PRIORITY.index(f.rule) if f.rule in PRIORITY else len(PRIORITY)


def fold(findings: list, layer_order: list | None = None) -> list:
    """The findings with every consequence folded into its root cause."""
    order = list(layer_order or [])
    parent: dict = {}
    for i, f in enumerate(findings):
        causes = [j for j, c in enumerate(findings) if j != i and _explains(c, f, order)]
        # A cause must not itself be explained by f (no cycles): keep the better-ranked one.
        causes = [j for j in causes if not (_explains(f, findings[j], order) and _rank(f) < _rank(findings[j]))]
        if causes:
            parent[i] = min(causes, key=lambda j: (_rank(findings[j]), -SEVERITY_RANK[findings[j].severity], j))

    def root(i: int) -> int:
        seen = set()
        while i in parent and i not in seen:
            seen.add(i)
            i = parent[i]
        return i

    folded: dict = {}
    for i in parent:
        r = root(i)
        if r != i:
            folded.setdefault(r, []).append(findings[i])
    out = []
    for i, f in enumerate(findings):
        if i in parent and root(i) != i:
            continue
        if i in folded:
            consequences = [{"rule": c.rule, "code": c.code, "severity": c.severity, "layer": c.layer,
                             "message": c.message} for c in folded[i]]
            f = replace(f, evidence={**f.evidence, "consequences": consequences})
        out.append(f)
    return out
