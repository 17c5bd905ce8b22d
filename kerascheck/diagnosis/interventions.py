"""Interventions: a cause is claimed only when its fix, tried on kerascheck's copy, removes the symptom.

For every candidate link the diagnosis table allows (kerascheck.diagnosis.links.candidates) whose
cause is a warning or an error, the cause's fix is applied to kerascheck's loaded copy of the
model (never the file): standardised inputs or targets, an output activation or a
`from_logits` switched, kernels re-initialised, a rate that stayed finite, relu in saturating
hidden layers. (An info-level consequence measured on synthetic data is a hint, and not tried.)
The probe that showed the symptom runs again with the same seed, steps and examples, and the
consequence's own rule judges the new measurement. Symptom gone: the link is confirmed and
folded, with before and after. Symptom still there, or the run cut by the budget: the two
findings stay apart, and the cause's record says the fix did not remove it.

A failed overfit that no finding explains gets the candidates no rule names: hidden Dense
layers without an activation (the stack is one linear map), and an output activation whose
range cannot reach the targets.

Every edit is undone after its run, so each probe starts from the weights the file holds.
"""
from __future__ import annotations

import math
import time
from contextlib import contextmanager
from dataclasses import dataclass, field, replace

import numpy as np

from kerascheck.diagnosis.links import candidates
from kerascheck.errors import error_line
from kerascheck.rule import SEVERITY_RANK, Finding, Skip
from kerascheck.tiers.probe.gradients import first_last_ratio, measured_run, start_ratios
from kerascheck.tiers.probe.run import run_probes
from kerascheck.tiers.probe.setup import LABEL_KINDS, OutputLoss

MAX_INTERVENTIONS = 6  # re-runs per model: each costs one probe run
RELU_FAMILY = {"relu", "relu6", "leaky_relu", "elu", "selu", "gelu", "silu", "swish"}
SATURATING = {"sigmoid", "tanh", "hard_sigmoid", "softsign"}
# An output activation's range, for regression targets it must reach.
RANGES = {"sigmoid": (0.0, 1.0), "hard_sigmoid": (0.0, 1.0), "tanh": (-1.0, 1.0), "relu": (0.0, math.inf),
          "softplus": (0.0, math.inf), "relu6": (0.0, 6.0), "softsign": (-1.0, 1.0)}


@dataclass
class Change:
    """One mechanical fix: what it does to the model, the loss and optimizer, or the examples."""
    key: str  # stable name of the change, e.g. "standardise-inputs", "activation:dense_2=sigmoid"
    said: str  # "the inputs standardised" - read as "with {said}"
    not_in_file: str | None = None  # why --fix-out cannot write it (None: it can)
    activations: dict = field(default_factory=dict)  # layer path -> activation name
    reinit: dict = field(default_factory=dict)  # layer path -> initializer name for its kernels (biases -> 0)
    gammas: list = field(default_factory=list)  # BatchNormalization layers whose gamma goes to ones
    losses: dict = field(default_factory=dict)  # output index -> (loss name, from_logits)
    optimizer: dict = field(default_factory=dict)  # optimizer config entries to set
    learning_rate: float | None = None
    standardise_x: list = field(default_factory=list)  # input indices
    standardise_y: list = field(default_factory=list)  # output indices

    # -- the probe's side (kerascheck.tiers.probe.run.run_probes calls these)

    def edit_setup(self, setup) -> None:

        for index, (name, from_logits) in self.losses.items():
            fn = loss_object(name, from_logits)
            if index >= len(setup.losses) or fn is None:
                continue
            setup.losses[index] = OutputLoss(name, fn, from_logits, LABEL_KINDS.get(name, "real"),
                                             weight=setup.losses[index].weight)
        if self.optimizer:
            setup.opt_config = {k: v for k, v in setup.opt_config.items() if k not in ("clipnorm", "clipvalue")}
            setup.opt_config.update(self.optimizer)
        if self.learning_rate is not None:
            setup.opt_config = {**setup.opt_config, "learning_rate": self.learning_rate}
            setup.learning_rate = self.learning_rate

    def edit_sample(self, sample, io):
        if not self.standardise_x and not self.standardise_y:
            return sample
        xs = [standardised(x) if i in self.standardise_x else x for i, x in enumerate(sample.x)]
        ys = sample.y
        if ys is not None and self.standardise_y:
            ys = [standardised(y) if i in self.standardise_y else y for i, y in enumerate(ys)]
        return replace(sample, x=xs, y=ys)

    # -- the model's side

    @contextmanager
    def applied(self, model, paths: dict):
        """The model with this change's edits, undone on the way out."""
        undo = self.apply(model, paths)
        try:
            yield
        finally:
            for fn in reversed(undo):
                fn()

    def apply(self, model, paths: dict) -> list:
        """Edit `model` in place; the callables that undo each edit."""
        import keras

        layers = {path: layer for path, layer in paths.values()}
        undo = []
        for path, name in self.activations.items():
            layer = layers.get(path)
            if layer is not None and hasattr(layer, "activation"):
                old = layer.activation
                layer.activation = keras.activations.get(name)
                undo.append(lambda layer=layer, old=old: setattr(layer, "activation", old))
        seed = 0
        for path, init in self.reinit.items():
            layer = layers.get(path)
            for v in getattr(layer, "trainable_weights", []) if layer is not None else []:
                old = np.array(v.numpy())
                if len(v.shape) >= 2:
                    seed += 1
                    new = keras.initializers.get({"class_name": init, "config": {"seed": seed}})(v.shape,
                                                                                                dtype=v.dtype)
                elif v.path.endswith(("bias", "beta")):
                    new = np.zeros(v.shape, dtype=old.dtype)
                else:
                    continue
                v.assign(new)
                undo.append(lambda v=v, old=old: v.assign(old))
        for path in self.gammas:
            layer = layers.get(path)
            gamma = getattr(layer, "gamma", None)
            if gamma is not None:
                old = np.array(gamma.numpy())
                gamma.assign(np.ones(gamma.shape, dtype=old.dtype))
                undo.append(lambda v=gamma, old=old: v.assign(old))
        return undo

    def merge(self, other: "Change") -> "Change":
        """Both changes at once (for --fix-out)."""
        return Change(key=f"{self.key}+{other.key}", said=f"{self.said}, and {other.said}",
                      not_in_file=self.not_in_file or other.not_in_file,
                      activations={**self.activations, **other.activations}, reinit={**self.reinit, **other.reinit},
                      gammas=self.gammas + other.gammas, losses={**self.losses, **other.losses},
                      optimizer={**self.optimizer, **other.optimizer},
                      learning_rate=other.learning_rate if other.learning_rate is not None else self.learning_rate,
                      standardise_x=sorted(set(self.standardise_x) | set(other.standardise_x)),
                      standardise_y=sorted(set(self.standardise_y) | set(other.standardise_y)))


def loss_object(name: str, from_logits: bool):
    """Keras's loss class for a loss name ("binary_crossentropy" -> BinaryCrossentropy), built; None if none."""
    import keras

    cls = getattr(keras.losses, "".join(p.capitalize() for p in name.split("_")), None)
    return cls(from_logits=from_logits) if cls is not None else None


def standardised(a):
    """Each feature (last axis) to mean 0 and standard deviation 1 over everything else."""
    a = np.asarray(a)
    if a.dtype.kind not in "fiu" or a.ndim == 0:
        return a
    x = a.astype(np.float32)
    axes = tuple(range(x.ndim - 1)) if x.ndim > 1 else (0,)
    mean = x.mean(axis=axes, keepdims=True)
    std = x.std(axis=axes, keepdims=True)
    return (x - mean) / np.where(std > 1e-8, std, 1.0)


# ------------------------------------------------------------------ which change a cause asks for


def _output_index(facts, name) -> int:
    outputs = list(getattr(facts.spec, "outputs", None) or [])
    if name in outputs:
        return outputs.index(name)
    ports = [p.name for p in facts.info.io.outputs]
    return ports.index(name) if name in ports else 0


def _initializer_for(layer) -> str:
    act = getattr(getattr(layer, "activation", None), "__name__", "")
    return "he_normal" if act in RELU_FAMILY else "glorot_uniform"


def _layer(facts, path):
    for p, layer in facts.info.paths.values():
        if p == path:
            return layer
    return None


def _input_indices(facts, names) -> list:
    ports = [p.name for p in facts.info.io.inputs]
    found = [ports.index(n) for n in names if n in ports]
    if found:
        return found
    return [i for i, p in enumerate(facts.info.io.inputs) if str(p.dtype).startswith("float")]


def change_for(cause: Finding, facts) -> Change | None:
    """The mechanical fix of `cause`, or None when it has none (it is then never claimed as a cause)."""
    rule, ev = cause.rule, cause.evidence
    if rule == "unscaled-inputs" and "measured_at" in ev:
        names = ev.get("inputs") or [ev.get("input")]
        return Change("standardise-inputs", "the inputs " + ", ".join(f"'{n}'" for n in names) + " standardised",
                      not_in_file="the inputs are data: standardise them in your pipeline, or adapt a "
                                  "keras.layers.Normalization on your training data and put it first in the model",
                      standardise_x=_input_indices(facts, names))
    if rule == "unscaled-targets":
        outputs = [i for i, l in enumerate(facts.probe.label_kinds) if l == "real"] or [0]
        return Change("standardise-targets", "the targets standardised",
                      not_in_file="the targets are data: standardise them in your pipeline and invert the scaling "
                                  "on the predictions", standardise_y=outputs)
    if rule == "label-mismatch" and ev.get("kind") == "out-of-reach":
        layer = ev.get("activation_layer") or cause.layer
        if _layer(facts, layer) is None:
            return None
        return _reach(facts, _output_index(facts, ev.get("output")), layer)
    if rule in ("softmax-loss-mismatch", "label-mismatch"):
        return _output_change(cause, facts)
    # A grouped finding names every layer it concerns: the fix re-initialises them all.
    named = [p for p in (ev.get("layers") or [cause.layer]) if p is not None]
    if rule == "unhealthy-weights" and ev.get("kind") in ("scale-high", "scale-low", "symmetry"):
        found = {p: _layer(facts, p) for p in named}
        reinit = {p: _initializer_for(layer) for p, layer in found.items() if layer is not None}
        if not reinit:
            return None
        inits = sorted(set(reinit.values()))
        return Change("reinit:" + ",".join(reinit), f"the kernels of {_names(list(reinit))} re-initialised "
                                                     f"({', '.join(inits)})", reinit=reinit)
    if rule == "unhealthy-weights" and ev.get("kind") == "gamma":
        return Change("gamma:" + ",".join(named), f"the gamma of {_names(named)} set to ones", gammas=named)
    if rule == "dead-units":
        layer = _layer(facts, cause.layer)
        if layer is None or not getattr(layer, "trainable_weights", None):
            return None
        return Change(f"reinit:{cause.layer}", f"'{cause.layer}' re-initialised (he_normal kernel, zero bias)",
                      reinit={cause.layer: "he_normal"})
    if rule == "nan-in-training" and ev.get("stable_rate"):
        rate = float(ev["stable_rate"])
        return Change(f"rate={rate:.3g}", f"the learning rate {rate:.3g}", learning_rate=rate)
    if rule == "vanishing-gradients":
        hidden = _hidden_layers(facts, SATURATING)
        if not hidden:
            return None
        names = ", ".join(f"'{p}'" for p in hidden[:4]) + (" ..." if len(hidden) > 4 else "")
        return Change("relu-hidden", f"relu and he_normal kernels in the hidden layers {names}",
                      activations={p: "relu" for p in hidden}, reinit={p: "he_normal" for p in hidden})
    return None


def _reach(facts, index: int, layer: str) -> Change:
    """A linear output, and targets brought to unit scale when they are far from it (a linear unit from
    fresh weights needs thousands of steps to reach targets in the hundreds)."""
    change = Change(f"output-linear:{index}", f"a linear output in '{layer}'", activations={layer: "linear"})
    ys = facts.probe and _targets(facts, index)
    if ys is not None and ys.size and (abs(float(ys.mean())) > 10 or float(ys.std()) > 10):
        change.key += "+standardise-targets"
        change.said += " and the targets standardised"
        change.standardise_y = [index]
        change.not_in_file = ("the targets are data: standardise them in your pipeline and invert the scaling on "
                              "the predictions (the linear output is written)")
    return change


def _targets(facts, index: int):
    if facts.data is None:
        return None
    ys = list(facts.data.ys.values()) + list(facts.data.positional_y)
    if index >= len(ys):
        return None
    y = np.asarray(ys[index], dtype=np.float64)
    return y[np.isfinite(y)]


def _names(paths: list) -> str:
    return ", ".join(f"'{p}'" for p in paths[:4]) + (f" and {len(paths) - 4} more" if len(paths) > 4 else "")


def _output_change(cause: Finding, facts) -> Change | None:
    ev = cause.evidence
    index = _output_index(facts, ev.get("output"))
    act, units, loss = ev.get("activation"), ev.get("units"), ev.get("loss")
    where = ev.get("activation_layer") or cause.layer
    to_act, to_loss = ev.get("fix_activation"), ev.get("fix_loss")
    logits = ev.get("from_logits")
    if cause.rule == "softmax-loss-mismatch":
        if act == "softmax" and units == 1:
            to_act, to_loss = "sigmoid", "binary_crossentropy"
        elif act in SATURATING | {"softmax"} and logits:
            return Change(f"from_logits:{index}=False", f"the loss built with from_logits=False",
                          losses={index: (loss, False)}) if loss else None
        elif act not in SATURATING | {"softmax"} and logits is False and loss:
            return Change(f"from_logits:{index}=True", f"the loss built with from_logits=True",
                          losses={index: (loss, True)})
        elif act == "sigmoid" and (units or 0) > 1:
            to_act = "softmax"
        elif act == "softmax" and (units or 0) > 1:
            to_act = "sigmoid"
    if not to_act and not to_loss:
        return None
    change = Change(f"output:{index}", "", activations={}, losses={})
    parts = []
    if to_act and to_act != act and where and _layer(facts, where) is not None:
        change.activations[where] = to_act
        parts.append(f"{to_act} in '{where}'")
    if to_loss and to_loss != loss:
        change.losses[index] = (to_loss, False)
        parts.append(f"the loss {to_loss}")
    if not parts:
        return None
    change.key += ":" + "+".join(parts)
    change.said = " and ".join(parts)
    return change


def _hidden_layers(facts, activations: set) -> list:
    """Paths of the Dense and convolution layers that are not outputs and apply one of `activations`."""
    outputs = set(getattr(facts.spec, "outputs", None) or [])
    out = []
    for path, layer in facts.info.paths.values():
        kind = type(layer).__name__
        act = getattr(getattr(layer, "activation", None), "__name__", "")
        if (kind == "Dense" or kind.startswith("Conv")) and act in activations and path not in outputs \
                and not _is_output_layer(facts, layer):
            out.append(path)
    return out


def _is_output_layer(facts, layer) -> bool:
    model = facts.info.model
    try:
        outputs = model.outputs or []
    except Exception:
        return False
    return any(getattr(t, "_keras_history", (None,))[0] is layer for t in outputs)


# ------------------------------------------------------------------ measuring before and after


def measurement(rule: str, probe, finding: Finding | None = None) -> dict:
    """The numbers behind a consequence's rule, from one probe run: what before and after compare."""
    if rule == "cannot-overfit":
        result = probe.overfit
        if result is None:
            return {"text": "the overfit probe did not run"}
        run = result["run"]
        acc = result.get("accuracy")
        worked = next((r for r in result.get("retries") or [] if r["ok"]), None)
        what = (f"memorised the 10 examples in {run.steps_done} steps" if result["ok"] else
                f"memorised the 10 examples at rate {worked['learning_rate']:.3g} in {worked['steps']} steps "
                f"(not at {run.learning_rate:.3g})" if worked else
                f"did not memorise the 10 examples in {run.steps_done} steps")
        if worked:
            acc, first, last = worked["accuracy"], worked["first_loss"], worked["last_loss"]
        else:
            first, last = result["first_loss"], result["last_loss"]
        score = f"accuracy {acc:.0%}, " if acc is not None else ""
        return {"text": f"{what} ({score}loss {first:.4g} -> {last:.4g})",
                "memorised": bool(result["ok"] or worked), "steps": run.steps_done, "accuracy": acc,
                "at_rate": worked["learning_rate"] if worked and not result["ok"] else None,
                "first_loss": _num(first), "last_loss": _num(last),
                "losses": [_num(v) for v in run.losses]}
    if rule == "dead-units":
        layer = finding.layer if finding is not None else None
        st = (probe.activations or {}).get(layer)
        if st is None:
            return {"text": f"no activations of '{layer}' measured"}
        return {"text": f"{st.get('dead_share', 0):.0%} of the units of '{layer}' dead, "
                        f"{st.get('saturated_share', 0):.0%} saturated", "layer": layer,
                "dead_share": st.get("dead_share"), "saturated_share": st.get("saturated_share")}
    run = probe.train
    if run is None:
        return {"text": "the training probe did not run"}
    out = {"diverged_at": run.diverged_at, "steps": run.steps_done, "losses": [_num(v) for v in run.losses]}
    if rule == "exploding-gradients":
        ratios = start_ratios(probe)
        layer = finding.layer if finding is not None and finding.layer in ratios else \
            (max(ratios, key=ratios.get) if ratios else None)
        if layer is not None:
            out.update(layer=layer, start_ratio=ratios[layer])
            out["text"] = f"first-steps gradient of '{layer}' {ratios[layer]:.3g}x its kernel"
        else:
            out["text"] = "no first-steps gradient measured"
    elif rule == "vanishing-gradients":
        measured = first_last_ratio(probe, measured_run(probe))
        if measured is not None:
            out.update(first=measured[0], last=measured[1], ratio=measured[2])
            out["text"] = f"first/last layer gradient ratio {measured[2]:.3g}"
        else:
            out["text"] = "no gradient ratio measured"
    else:
        out["text"] = (f"diverged at step {run.diverged_at}" if run.diverged_at is not None else
                       f"finite for {run.steps_done} steps (loss {run.losses[0]:.4g} -> {run.losses[-1]:.4g})"
                       if run.losses else "no steps")
    return out


def _num(v):
    v = float(v)
    return round(v, 6) if math.isfinite(v) else str(v).lower()


def _symptom(found: list, consequence: Finding) -> bool:
    """Whether the re-run shows the consequence again: its rule, on its layer, at warning or worse."""
    for f in found:
        if f.rule != consequence.rule or SEVERITY_RANK[f.severity] < SEVERITY_RANK["warning"]:
            continue
        if consequence.layer is None or f.layer == consequence.layer or \
                f.evidence.get("kind") == consequence.evidence.get("kind") and consequence.rule != "dead-units":
            return True
    return False


class Verifier:
    """Runs the interventions of one model, at most MAX_INTERVENTIONS, each result kept for its link."""
    def __init__(self, facts, options, rules: dict):
        self.facts, self.options, self.rules = facts, options, rules  # rules: name -> Rule of this check
        self.runs = 0
        self.cache: dict = {}
        self.changes: dict = {}  # key -> Change tried

    def available(self) -> str | None:
        facts = self.facts
        if facts.probe is None or facts.info is None or facts.model is None:
            return "the probes did not run"
        if getattr(facts.spec, "format", "") == "savedmodel":
            return "a SavedModel's serving function cannot be edited"
        return None

    def test(self, cause: Finding, consequence: Finding) -> dict | None:
        """The record of trying cause's fix against consequence, or None when it has no mechanical fix."""
        change = change_for(cause, self.facts)
        if change is None:
            return None
        return self.try_change(change, consequence)

    def try_change(self, change: Change, consequence: Finding) -> dict:
        key = (change.key, consequence.rule, consequence.layer)
        self.changes.setdefault(change.key, change)
        if key in self.cache:
            return self.cache[key]
        before = measurement(consequence.rule, self.facts.probe, consequence)
        record = {"change": change.said, "key": change.key, "for": consequence.rule,
                  "layer": consequence.layer, "before": before, "written_by_fix_out": change.not_in_file is None}
        if change.not_in_file:
            record["not_in_file"] = change.not_in_file
        if self.runs >= MAX_INTERVENTIONS:
            record.update(verdict="not tried", why=f"kerascheck tries at most {MAX_INTERVENTIONS} fixes per model")
            self.cache[key] = record
            return record
        self.runs += 1
        rule = self.rules[consequence.rule]
        start = time.monotonic()
        try:
            probe = self._rerun(change, set(rule.needs))
        except Exception as exc:  # a fix the model refuses (an activation it cannot take) proves nothing

            record.update(verdict="not tried", why=f"the changed model could not train: {error_line(exc)}")
            self.cache[key] = record
            return record
        after = measurement(consequence.rule, probe, consequence)
        record["after"] = after
        # What verification cost, for bench/repair.py: in the probes' record (which holds times), never
        # in a finding, whose evidence is the same on every run.
        self.facts.probe.interventions.append({"change": change.said, "for": consequence.rule,
                                               "seconds": round(time.monotonic() - start, 2)})
        if probe.budget_cut or probe.failures:
            why = "; ".join(list(probe.budget_cut.values()) + list(probe.failures.values()))
            record.update(verdict="not tried", why=f"the probe could not finish with the fix: {why}")
        else:
            try:
                found = list(rule.check(replace(self.facts, probe=probe)))
            except Skip as exc:
                found, record["why"] = None, str(exc)
            if found is None:
                record["verdict"] = "not tried"
            else:
                gone = not _symptom(found, consequence) and after.get("memorised", True)
                record["verdict"] = "verified" if gone else "symptom stays"
        self.cache[key] = record
        return record

    def _rerun(self, change: Change, needs: set):
        facts = self.facts
        options = replace(self.options, progress=False)
        want = needs | ({"train"} if needs & {"sweep"} else set())
        with change.applied(facts.model, facts.info.paths):
            return run_probes(facts.info, facts.spec, options, want, change=change)


def verify(findings: list, facts, options, layer_order: list, rules: list) -> tuple[dict, list, list]:
    """Confirm the table's candidate links by intervention.

    Returns ({(cause index, consequence index): record} for confirmed links, the findings with each
    tried fix recorded on its cause as `evidence.fix_verified`, the Changes that verified).
    """

    verifier = Verifier(facts, options, {r.name: r for r in rules})
    if verifier.available() is not None:
        return {}, findings, []
    confirmed: dict = {}
    tried: dict = {}
    # Only causes at warning or worse are tried (the table asks that of them); their consequences at any
    # severity, so that an info-level failed overfit is not left without the cause that explains it.
    # An info-level consequence measured on synthetic examples is a hint, not worth a re-run.
    hint = facts.probe.synthetic or facts.probe.synthetic_labels
    links = candidates(findings, layer_order)
    tests = [(i, j) for i, j, how, _ in links if how == "test"
             and not (hint and findings[j].severity == "info")]
    # Worst consequences first, so the budget of re-runs goes where it matters.
    tests.sort(key=lambda ij: (-SEVERITY_RANK[findings[ij[1]].severity], ij))
    for i, j in tests:
        record = verifier.test(findings[i], findings[j])
        if record is None:
            continue
        tried.setdefault(i, []).append(record)
        if record["verdict"] == "verified":
            confirmed[(i, j)] = _brief(record)
    # A direct link needs no test to be folded, but its cause's fix still gets its before and after
    # (and can then be written by --fix-out): tried against a failed overfit it explains.
    for i, j, how, _ in links:
        if how == "direct" and i not in tried and findings[j].rule == "cannot-overfit" and \
                SEVERITY_RANK[findings[i].severity] >= SEVERITY_RANK["warning"]:
            record = verifier.test(findings[i], findings[j])
            if record is not None:
                tried.setdefault(i, []).append(record)
    out = list(findings)
    unexplained = [j for j, f in enumerate(findings) if f.rule == "cannot-overfit" and f.evidence.get("kind") != "rate"
                   and not any(k == j for (_, k) in confirmed) and not any(k == j and how == "direct" for _, k, how, _ in links)]
    for j in unexplained:
        out[j] = _hidden_cause(verifier, findings[j]) or out[j]
    for i, f in enumerate(out):
        measured = _measured_fix(f)
        if measured is not None:
            tried.setdefault(i, []).append(measured)
            rate = measured["learning_rate"]
            verifier.changes.setdefault(measured["key"], Change(measured["key"], measured["change"],
                                                                learning_rate=rate))
    for i, records in tried.items():
        out[i] = replace(out[i], evidence={**out[i].evidence, "fix_verified": records})
    unique: dict = {}
    for f in out:
        for r in f.evidence.get("fix_verified", ()):
            if r["verdict"] == "verified" and r["key"] in verifier.changes:
                change = verifier.changes[r["key"]]
                rate = (r.get("after") or {}).get("at_rate")
                if rate:  # it memorised only at another rate: that rate is part of the fix
                    change = change.merge(Change(f"rate={rate:.3g}", f"the learning rate {rate:.3g}",
                                                 learning_rate=rate))
                unique.setdefault(r["key"], change)
    return confirmed, out, list(unique.values())


def _measured_fix(f: Finding) -> dict | None:
    """A fix the probe already tried while measuring (another rate), recorded the same way."""
    ev = f.evidence
    if SEVERITY_RANK[f.severity] < SEVERITY_RANK["warning"]:
        return None
    if f.rule == "cannot-overfit" and ev.get("kind") == "rate":
        run = ev.get("overfit") or {}
        acc = ev.get("accuracy")
        return {"change": f"the learning rate {ev['memorised_at']:.3g}", "key": f"rate={ev['memorised_at']:.3g}",
                "for": f.rule, "layer": None, "verdict": "verified", "written_by_fix_out": True,
                "before": {"text": f"did not memorise the 10 examples in {run.get('steps_done')} steps at "
                                   f"{ev.get('learning_rate', run.get('learning_rate')):.3g}"
                                   + (f" (accuracy {acc:.0%})" if acc is not None else ""),
                           "losses": run.get("losses", [])},
                "after": {"text": f"memorised them in {ev['memorised_in_steps']} steps at {ev['memorised_at']:.3g}"},
                "learning_rate": ev["memorised_at"]}
    if f.rule == "nan-in-training" and ev.get("stable_rate"):
        train = ev.get("train") or {}
        return {"change": f"the learning rate {ev['stable_rate']:.3g}", "key": f"rate={ev['stable_rate']:.3g}",
                "for": f.rule, "layer": f.layer, "verdict": "verified", "written_by_fix_out": True,
                "before": {"text": f"diverged at step {train.get('diverged_at')} at {train.get('learning_rate'):.3g}",
                           "losses": train.get("losses", [])},
                "after": {"text": f"finite for 100 steps at {ev['stable_rate']:.3g}"},
                "learning_rate": ev["stable_rate"]}
    return None


def _brief(record: dict) -> dict:
    return {"change": record["change"], "before": record["before"].get("text"),
            "after": record["after"].get("text")}


def _hidden_cause(verifier: Verifier, finding: Finding) -> Finding | None:
    """A failed overfit's cause that no rule names, when an intervention confirms it."""
    facts = verifier.facts
    if verifier.available() is not None or SEVERITY_RANK[finding.severity] < SEVERITY_RANK["info"]:
        return None
    for change, why in _hidden_candidates(facts):
        record = verifier.try_change(change, replace(finding, severity="error"))
        if record["verdict"] != "verified":
            continue
        message = (finding.message.split(" Likely causes:")[0] + f" Cause, verified by intervention: {why}: "
                   f"with {change.said}, the model {record['after']['text']}.")
        return replace(finding, severity="error", message=message,
                       fix=f"Apply the verified fix: {change.said}.",
                       evidence={**finding.evidence, "visible_cause": True, "causes": [why],
                                 "fix_verified": [record]})
    return None


def _hidden_candidates(facts) -> list:
    out = []
    linear = _linear_stack(facts)
    if linear:
        names = ", ".join(f"'{p}'" for p in linear[:4]) + (" ..." if len(linear) > 4 else "")
        out.append((Change("relu-linear-hidden", f"relu in the hidden layers {names}",
                           activations={p: "relu" for p in linear}),
                    f"the hidden Dense layers {names} have no activation, so the stack is one linear map"))
    for index, layer_path, act, lo, hi in _unreachable_outputs(facts):
        out.append((_reach(facts, index, layer_path),
                    f"the output '{layer_path}' applies {act}, whose range cannot reach targets from "
                    f"{lo:.4g} to {hi:.4g}"))
    return out


def _linear_stack(facts) -> list:
    """Hidden Dense layers with no activation whose output goes straight into another Dense layer."""
    model = facts.info.model
    layers = [layer for _, layer in facts.info.paths.values()]
    out = []
    for a, b in zip(layers, layers[1:]):
        act = getattr(getattr(a, "activation", None), "__name__", "")
        if type(a).__name__ == "Dense" and type(b).__name__ == "Dense" and act == "linear" \
                and not _is_output_layer(facts, a) and _feeds(model, a, b):
            path = next(p for p, layer in facts.info.paths.values() if layer is a)
            out.append(path)
    return out


def _feeds(model, a, b) -> bool:
    """Whether layer a's output is layer b's input (Sequential order, or a Functional edge)."""
    try:
        nodes = getattr(b, "_inbound_nodes", []) or []
        for node in nodes:
            for t in getattr(node, "input_tensors", []) or []:
                if getattr(t, "_keras_history", (None,))[0] is a:
                    return True
    except Exception:
        return False
    return False


def _unreachable_outputs(facts) -> list:
    """(output index, layer, activation, target min, target max) for outputs whose range misses the targets."""
    probe, info = facts.probe, facts.info
    if probe.synthetic or probe.synthetic_labels or facts.data is None:
        return []
    out = []
    outputs = list(facts.spec.outputs or [])
    for index, kind in enumerate(probe.label_kinds):
        if kind != "real" or index >= len(outputs):
            continue
        layer = _layer(facts, outputs[index].split("/")[-1]) or _layer(facts, outputs[index])
        act = getattr(getattr(layer, "activation", None), "__name__", "") if layer is not None else ""
        if act not in RANGES:
            continue
        y = _targets(facts, index)
        if y is None:
            continue
        lo_r, hi_r = RANGES[act]
        if y.size and (y.min() < lo_r - 1e-6 or y.max() > hi_r + 1e-6):
            path = next(p for p, l in info.paths.values() if l is layer)
            out.append((index, path, act, float(y.min()), float(y.max())))
    return out
