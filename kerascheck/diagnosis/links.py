"""Causes and consequences: one diagnosis per root cause.

Rules say what they measured; here the engine decides which findings explain
others. A finding explained by another is folded into it as a consequence
(`evidence.consequences`: rule, code, severity, layer, message, and how the link
was proven) and no longer counts towards the summary or the exit code. Chains
fold to their root: NaN in the data explains a divergence at every rate, which
explains the failed overfit.

`links` lists the candidate links, written once here so no rule has to know about
another. Most are claims about cause, and a claim is only folded when an
intervention confirmed it (kerascheck.diagnosis.interventions: the cause's fix applied to
kerascheck's copy, the symptom's probe run again with the same seed and steps,
the symptom gone). A few need no test, because the consequence is arithmetic or
the same measurement seen twice; DIRECT_LINKS lists them with why, and the rule
docs repeat it.
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


# The links that need no intervention, and why: each is either arithmetic or one measurement seen
# twice. Every other link is a claim about cause and is folded only when an intervention confirms it.
DIRECT_LINKS = {
    "nonfinite-data": "NaN or Inf in --data reaches every probe step that uses it: every probe measurement, and the "
                      "input and target statistics, are computed on non-finite values",
    "nonfinite-weights": "weights that are already NaN or Inf make every forward pass and gradient non-finite",
    "same-output": "label-mismatch and softmax-loss-mismatch on the same output, activation and loss are one "
                   "problem; the labels only choose which side of the pair to change",
    "poisoned-run": "a training run that turned non-finite at the configured rate from its first steps gives "
                    "gradient, update and activation measurements taken on NaN",
    "same-divergence": "the overfit run diverged at the same rate as the training probe: it is the same divergence",
    "localised-nan": "the first non-finite value of the diverging step was found at this layer's output, layer by "
                     "layer (kerascheck localises it), so the NaN in training starts here",
    "zero-gradient": "a layer that outputs the same value for every unit or example (all units dead, a zero kernel or "
                     "gamma) passes exactly zero gradient to the layers before it, and a constant to those after it",
    "same-measurement": "vanishing-gradients and a low update ratio on the same layers are one measurement: the "
                        "update is the rate times the gradient",
    "constant-output": "a softmax over a single unit outputs exactly 1.0 whatever its input, so its gradient is "
                       "exactly zero and the predictions cannot differ between examples: the failed overfit measured "
                       "that constant",
    "unclipped-spikes": "missing-rnn-clipping is raised to a warning by the gradient spikes the training probe measured "
                        "(before any clipping acts); the spike finding is that same measurement",
}


def _link(cause: Finding, other: Finding, order: list) -> tuple | None:
    """("direct", why) when `cause` explains `other` by arithmetic, ("test", "") when it may and an intervention
    must confirm it, None when it cannot."""
    if cause is other or SEVERITY_RANK[cause.severity] < SEVERITY_RANK["warning"] and \
            cause.rule != "missing-rnn-clipping":
        return None
    direct = lambda why: ("direct", why)  # noqa: E731
    test = ("test", "")
    rule, kind = cause.rule, _kind(cause)
    if rule == "nonfinite-data":
        if _probe_measurement(other) or other.rule in ("unscaled-inputs", "unscaled-targets"):
            return direct("nonfinite-data")
        return None
    if rule == "unhealthy-weights" and kind == "nonfinite":
        return direct("nonfinite-weights") if _probe_measurement(other) else None
    if rule == "label-mismatch" and other.rule == "softmax-loss-mismatch":
        ours, theirs = cause.evidence, other.evidence
        same = bool(ours.get("rewires")) and SEVERITY_RANK[cause.severity] >= SEVERITY_RANK[other.severity] and \
            all(ours.get(key) == theirs.get(key) for key in ("output", "activation", "loss"))
        return direct("same-output") if same else None
    # Labels the output cannot reach, or an output the loss misreads: nothing can be memorised.
    if rule in ("label-mismatch", "softmax-loss-mismatch") and cause.severity == "error":
        spread = other.evidence.get("prediction_spread")
        if other.rule == "cannot-overfit" and cause.evidence.get("activation") == "softmax" and \
                cause.evidence.get("units") == 1 and spread is not None and spread < 1e-6:
            return direct("constant-output")
        if other.rule == "cannot-overfit" or (rule == "label-mismatch" and other.rule == "nan-in-training"):
            return test
        return None
    if rule == "nan-in-training":
        if kind in ("init", "nan-source"):
            return direct("poisoned-run") if _probe_measurement(other) and other.rule != "nan-in-training" else None
        if other.rule == "cannot-overfit":
            return direct("same-divergence") if _nan_losses(other) else test
        return None
    if rule == "unhealthy-weights":
        if kind == "scale-high":
            if other.rule in ("nan-in-training", "exploding-gradients", "dead-units"):
                return test
            return test if other.rule == "cannot-overfit" else None
        if kind == "scale-low":
            return test if other.rule in ("vanishing-gradients", "cannot-overfit") else None
        if kind in ("symmetry", "gamma"):
            if other.rule == "vanishing-gradients" and _upstream_or_same(order, other.layer, cause.layer):
                return direct("zero-gradient")
            if other.rule == "dead-units" and _downstream_or_same(order, other.layer, cause.layer):
                return direct("zero-gradient")
            return test if other.rule == "cannot-overfit" else None
        return None
    if rule == "dead-units" and cause.evidence.get("dead_share", 0) >= 0.99:
        if other.rule == "dead-units":
            still = "still input" in str(other.evidence.get("kind_of_problem")) and \
                _downstream_or_same(order, other.layer, cause.layer) and other.layer != cause.layer
            return direct("zero-gradient") if still else None
        if other.rule == "vanishing-gradients" and _upstream_or_same(order, other.layer, cause.layer):
            return direct("zero-gradient")
        if other.rule == "cannot-overfit":
            zero = other.evidence.get("zero_gradient_layers") or []
            return test if any(_upstream_or_same(order, z, cause.layer) for z in zero) else None
        return None
    if rule in ("risky-division", "unstable-softmax") and cause.severity == "error":
        if other.rule == "nan-in-training":
            first = (other.evidence.get("first_nonfinite") or {}).get("layer")
            return direct("localised-nan") if first == cause.layer or _kind(other) == "nan-source" else None
        return direct("localised-nan") if other.rule == "cannot-overfit" and _nan_losses(other) else None
    if rule in ("unscaled-inputs", "unscaled-targets"):
        if other.rule == "exploding-gradients" and _kind(other) == "init":
            return test
        # Raw scales saturate squashing units, whose gradients then vanish.
        return test if other.rule in ("cannot-overfit", "vanishing-gradients", "dead-units") else None
    if rule == "missing-rnn-clipping":
        return direct("unclipped-spikes") if other.rule == "exploding-gradients" and _kind(other) == "spikes" else None
    if rule == "vanishing-gradients":
        rms = cause.evidence.get("layer_rms") or {}
        if other.rule == "unhealthy-weights" and _kind(other) == "update-low" and other.layer in rms and \
                rms[other.layer] * 10 <= max(rms.values()):
            return direct("same-measurement")  # its gradient is one of those that vanished
        return test if other.rule == "cannot-overfit" else None
    return None


def _nan_losses(f: Finding) -> bool:
    """Whether the overfit run diverged (NaN, or a loss that exploded), as the training probe did."""
    run = f.evidence.get("overfit") or {}
    return run.get("diverged_at") is not None or any(v in ("nan", "inf", "-inf") for v in run.get("losses") or [])


# When two findings could explain each other, the one higher here is the cause.
PRIORITY = ["nonfinite-data", "unhealthy-weights", "label-mismatch", "softmax-loss-mismatch", "risky-division",
            "unstable-softmax", "nan-in-training", "dead-units", "missing-rnn-clipping", "unscaled-inputs",
            "unscaled-targets"]


def _rank(f: Finding) -> int:
    return PRIORITY.index(f.rule) if f.rule in PRIORITY else len(PRIORITY)


def candidates(findings: list, layer_order: list | None = None) -> list:
    """[(cause index, consequence index, "direct" or "test", why)] for every link the table allows."""
    order = list(layer_order or [])
    out = []
    for j, f in enumerate(findings):
        for i, c in enumerate(findings):
            if i == j:
                continue
            link = _link(c, f, order)
            # A cause must not itself be explained by its consequence (no cycles): keep the better-ranked one.
            if link and not (_link(f, c, order) and _rank(f) < _rank(c)):
                out.append((i, j, link[0], link[1]))
    return out


def fold(findings: list, layer_order: list | None = None, confirmed: dict | None = None) -> list:
    """The findings with every proven consequence folded into its root cause.

    `confirmed` maps (cause index, consequence index) to the record of the intervention that
    confirmed the link; a "test" link without one stays two findings. Direct links need none.
    """
    confirmed = confirmed or {}
    proofs: dict = {}
    for i, j, how, why in candidates(findings, layer_order):
        if how == "direct":
            proofs[(i, j)] = {"how": "direct", "why": DIRECT_LINKS[why]}
        elif (i, j) in confirmed:
            proofs[(i, j)] = {"how": "intervention", **confirmed[(i, j)]}
    parent: dict = {}
    for j in range(len(findings)):
        causes = [i for (i, k) in proofs if k == j]
        if causes:
            parent[j] = min(causes, key=lambda i: (_rank(findings[i]), -SEVERITY_RANK[findings[i].severity], i))

    def root(i: int) -> int:
        seen = set()
        while i in parent and i not in seen:
            seen.add(i)
            i = parent[i]
        return i

    folded: dict = {}
    for j in parent:
        r = root(j)
        if r != j:
            folded.setdefault(r, []).append(j)
    out = []
    for i, f in enumerate(findings):
        if i in parent and root(i) != i:
            continue
        if i in folded:
            consequences = [{"rule": findings[j].rule, "code": findings[j].code, "severity": findings[j].severity,
                             "layer": findings[j].layer, "message": findings[j].message,
                             "proof": proofs[(parent[j], j)]} for j in folded[i]]
            f = replace(f, evidence={**f.evidence, "consequences": consequences})
        out.append(f)
    return out
