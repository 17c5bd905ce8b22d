"""Check one model: find the rules, pick the ones selected, build the facts they need, run them,
and hand the findings to the diagnosis.

The engine knows nothing of processes or of how many files there are: kerascheck.runners
run it over paths (in this process, or each file in a worker), chosen by the CLI and the API.
The tiers beyond the spec and the interventions are imported where they are built, so a
`--static` run never imports them (kerascheck.backend writes that boundary down)."""
from __future__ import annotations

import importlib
import os
import pkgutil
import traceback
import warnings
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Sequence

from kerascheck import formats
from kerascheck.diagnosis import diagnose
from kerascheck.errors import InputError, TierUnavailable, UsageError, error_line
from kerascheck.facts.layerstats import layer_table
from kerascheck.facts.libraries import LIBRARIES, installed_library, library_classes
from kerascheck.options import Options
from kerascheck.rule import LIVE_ONLY, SEVERITY_RANK, TIERS, Facts, Finding, Rule, Skip


@lru_cache(maxsize=1)
def all_rules() -> tuple[Rule, ...]:
    """Every rule module in kerascheck.rules, validated, sorted by code."""
    import kerascheck.rules as package

    rules, names, codes = [], set(), set()
    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda i: i.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"kerascheck.rules.{info.name}")
        rule = getattr(module, "RULE", None)
        if not isinstance(rule, Rule):
            raise ValueError(f"rule module {info.name} has no RULE = Rule(...)")
        # The module docstring is the rule's documentation and check() its logic,
        # so a rule is written once, in one file.
        rule = Rule(rule.name, rule.code, rule.severity, rule.tier, rule.needs, module.__doc__ or "",
                    getattr(module, "check", None))
        rule.validate(info.name)
        if rule.name in names or rule.code in codes:
            raise ValueError(f"rule {rule.name} ({rule.code}) is defined twice")
        names.add(rule.name)
        codes.add(rule.code)
        rules.append(rule)
    return tuple(sorted(rules, key=lambda r: r.code))


def find_rule(key: str) -> Rule | None:
    key = key.strip()
    for rule in all_rules():
        if key in (rule.name, rule.code) or key.upper() == rule.code:
            return rule
    return None


def select_rules(select: Sequence[str] = (), ignore: Sequence[str] = (), live: bool = False) -> list[Rule]:
    """Rules chosen by names, codes or code prefixes (ruff style: KC2 selects KC2xx).

    Rules that only a live training run can judge (needs "live": kerascheck.Monitor)
    are left out of a check of files unless selected by their own name or code.
    """

    def matches(rule: Rule, key: str) -> bool:
        key = key.strip()
        return key == rule.name or (key.upper().startswith("KC") and rule.code.startswith(key.upper()))

    for key in list(select) + list(ignore):
        if key.strip().upper() != "ALL" and not any(matches(r, key) for r in all_rules()):
            raise UsageError(f"unknown rule {key!r} (see kerascheck --list-rules)")
    def wanted(rule: Rule) -> bool:
        if "live" in rule.needs and not live:  # only by its own name or code
            return any(k.strip() == rule.name or k.strip().upper() == rule.code for k in select)
        return not select or any(k.upper() == "ALL" or matches(rule, k) for k in select)

    chosen = [r for r in all_rules() if wanted(r)]
    return [r for r in chosen if not any(matches(r, k) for k in ignore)]


@dataclass
class ModelResult:
    path: str
    format: str | None = None
    findings: list[Finding] = field(default_factory=list)
    skipped: list[dict] = field(default_factory=list)
    errors: list[dict] = field(default_factory=list)
    keras_version: str | None = None
    param_count: int | None = None
    tiers: list[str] = field(default_factory=list)
    probe: object = None  # ProbeResults when the probe tier ran
    graph: object = None  # GraphFacts when the graph tier ran
    layers: list = field(default_factory=list)  # per-layer weight statistics, for the HTML report
    unavailable: list = field(default_factory=list)  # rules that could not run because a tier failed
    rules_run: int = 0
    rules_total: int = 0
    notes: list = field(default_factory=list)  # facts about the file that are no problem (libraries it uses)
    fixed: dict | None = None  # --fix-out: the repaired copy written, and what went into it
    sha256: str | None = None  # of the bytes checked, when a runner knows it (a fetched copy, the cache)
    cacheable: bool = True  # False when a runner gave the check up: it says nothing certain about the file

    @classmethod
    def unchecked(cls, path: str, message: str) -> "ModelResult":
        """A model whose check was given up for a reason outside it (a timeout, the memory limit, a
        dead worker, a copy that could not be fetched): says why, and is never cached."""
        result = cls(path=path, cacheable=False)
        result.errors.append({"message": message})
        return result

    def to_dict(self) -> dict:
        probe = self.probe.record() if self.probe is not None and hasattr(self.probe, "record") else None
        return {
            "path": self.path,
            "format": self.format,
            "keras_version": self.keras_version,
            "parameters": self.param_count,
            "tiers": list(self.tiers),
            "rules_run": self.rules_run,
            "rules_total": self.rules_total,
            "notes": list(self.notes),
            "findings": [f.to_dict() for f in self.findings],
            "skipped": list(self.skipped),
            "errors": list(self.errors),
            "probes": probe,
            **({"fixed": self.fixed} if self.fixed is not None else {}),
        }


@dataclass
class Report:
    models: list[ModelResult]
    rules: list[Rule]

    @property
    def findings(self) -> list[Finding]:
        return [f for m in self.models for f in m.findings]

    def to_json(self) -> str:
        from kerascheck.reports.json_report import render_json

        return render_json(self)

    def _repr_html_(self) -> str:
        from kerascheck.reports.notebook import render_notebook_html

        return render_notebook_html(self)

    def exit_code(self, fail_on: str = "warning") -> int:
        if any(m.errors for m in self.models):
            return 2
        threshold = SEVERITY_RANK[fail_on]
        return 1 if any(SEVERITY_RANK[f.severity] >= threshold for f in self.findings) else 0


def check_file(path: str, rules: Sequence[Rule], static: bool = False, options=None) -> ModelResult:
    """Every selected rule on the model at `path`, in this process; the file's problems as errors."""
    result = ModelResult(path=path)
    try:
        result.format = formats.sniff_format(path)
        with formats.open_spec(path) as spec:
            result.keras_version = spec.keras_version
            result.param_count = spec.param_count
            result.tiers = ["spec"]
            result.notes.extend(library_notes(spec) + clone_notes(spec))
            facts = Facts(spec=spec)
            if options is not None and getattr(options, "layer_stats", False):
                result.layers = layer_table(spec)
            tiers = _TierBuilder(facts, rules, options, result)
            if options is not None and options.data and any("arrays" in r.needs for r in rules):
                tiers.read_data()
            if not static and needs_loading(rules, static, options):
                # Loaded first, so every rule reads the same facts: a subclassed model's
                # layers get their real classes from the loaded model.
                tiers.ensure("model")
            for rule in rules:
                if "live" in rule.needs:  # a file holds no training run (kerascheck.Monitor has one)
                    result.skipped.append({"rule": rule.name, "reason": LIVE_ONLY})
                    continue
                if rule.tier != "spec":
                    if static:
                        result.skipped.append({"rule": rule.name, "reason": f"--static runs spec-tier rules only; "
                                                                            f"this rule needs the {rule.tier} tier"})
                        continue
                    reason = tiers.ensure(rule.tier) or tiers.probe_failure(rule)
                    if reason:
                        result.skipped.append({"rule": rule.name, "reason": reason})
                        result.unavailable.append(rule.name)
                        continue
                elif rule.needs and not static:
                    tiers.ensure_optional(rule)  # a spec rule with a probe part: runs either way
                run_rule(rule, facts, result, options)
            # Links between findings are tested by re-running probes, which --static never runs.
            with _quiet(tiers.options):
                result.findings, changes = diagnose(result.findings, facts, tiers.options, rules, test=not static)
            if options is not None and options.fix_out and changes:
                _write_fixed(facts, changes, result, options)
    except InputError as exc:
        # Said once: a file whose loading failed on it (recorded then) fails a rule on it again.
        if {"message": str(exc)} not in result.errors:
            result.errors.append({"message": str(exc)})
    # Worst first; among equals, a cause with consequences before a finding standing alone.
    result.findings.sort(key=lambda f: (-SEVERITY_RANK[f.severity], not f.evidence.get("consequences"), f.code,
                                        f.layer or ""))
    result.rules_run = len(rules) - len(result.skipped)
    result.rules_total = len(rules)
    return result


def _write_fixed(facts, changes: list, result: ModelResult, options) -> None:
    from kerascheck.diagnosis.repair import write_fixed

    records = [r for f in result.findings for r in f.evidence.get("fix_verified", ()) if r["verdict"] == "verified"]
    try:
        with _quiet(options):
            result.fixed = write_fixed(facts.spec, changes, records, options, options.fix_out)
    except (UsageError, InputError) as exc:
        result.errors.append({"message": str(exc)})
    except Exception as exc:  # the fixes were verified on kerascheck's copy; a copy Keras will not save is said
        result.errors.append({"message": _internal(exc, options, "--fix-out could not write the repaired copy")})


class _TierBuilder:
    """Builds the model, graph and probe tiers at most once per file, and only when asked."""
    def __init__(self, facts: Facts, rules: Sequence[Rule], options, result: ModelResult):
        self.facts, self.result = facts, result
        self.options = options if options is not None else Options()
        self.want = {need for r in rules for need in r.needs}
        self.failed: dict[str, str] = {}
        self.runnable = None  # what the file's format hands the model tier (kerascheck.formats.load)

    def ensure(self, tier: str) -> str | None:
        """None when the tier is ready, else the reason it cannot be built."""
        if tier in self.failed:
            return self.failed[tier]
        if tier in ("graph", "probe") and "model" in self.failed:
            reason = self.failed["model"]
            if tier == "graph":
                reason = _lambda_reason(self.facts.spec, self.options) or reason
            self.failed[tier] = reason
            return reason
        try:
            if tier in ("model", "probe", "graph") and self.facts.model is None:
                self._load()
            if tier == "probe" and self.facts.probe is None:
                self._probe()
            if tier == "graph" and self.facts.graph is None:
                self._graph()
        except TierUnavailable as exc:
            reason = str(exc)
            if tier == "graph" and "model" in self.failed:
                reason = _lambda_reason(self.facts.spec, self.options) or reason
            self.failed[tier] = reason
            return reason
        return None

    def probe_failure(self, rule: Rule) -> str | None:
        """Why a probe this rule reads failed, when one did (the other probes' rules still run)."""
        probe = self.facts.probe
        if probe is None or rule.tier != "probe":
            return None
        for need in rule.needs:
            key = "train" if need in ("sweep", "gradients") else need
            if key in getattr(probe, "not_applicable", {}):
                return probe.not_applicable[key]
            if key in probe.failures:
                return f"the {_PROBE_NAMES.get(key, key)} probe failed: {probe.failures[key]}"
            for cut in (need, key):
                if cut in getattr(probe, "budget_cut", {}):
                    return probe.budget_cut[cut]
        return None

    def read_data(self) -> None:
        """The arrays of --data, read once for every rule that reads them (and the probes)."""
        from kerascheck.tiers.probe.data import read_arrays

        try:
            self.facts.data = read_arrays(self.options.data)
        except UsageError as exc:
            self.result.errors.append({"message": str(exc)})

    def ensure_optional(self, rule: Rule) -> None:
        needs = set(rule.needs) - {"arrays"}
        if not needs:
            return  # reads the --data arrays only, already read
        if needs == {"data"} and not (self.options and self.options.data):
            return  # its probe part measures --data only; nothing to build without it
        if needs <= {"outputs"}:
            self.ensure("model")
            return
        self.ensure("probe")

    def _load(self):
        """What the file's format hands the other tiers to run (a loaded Keras model, a serving function)."""
        options = self.options
        try:
            with _quiet(options):
                runnable = formats.load(self.facts.spec, options, self.facts.data)
        except TierUnavailable as exc:
            self.failed["model"] = self.failed["probe"] = str(exc)
            raise
        except (InputError, UsageError) as exc:
            self.result.errors.append({"message": str(exc)})
            why = "kerascheck could not use --data with this model" if str(exc).startswith("--data") else \
                "the model could not be loaded"
            self.failed["model"] = self.failed["probe"] = f"{why} (see the error above)"
            raise TierUnavailable(self.failed["model"]) from None
        except Exception as exc:  # TensorFlow refusing the model is a fact about the model, not a crash
            reason = _internal(exc, options, "loading the model")
            self.failed["model"] = self.failed["probe"] = reason
            raise TierUnavailable(reason) from None
        self.runnable = runnable
        # Rules read the Keras model and what the model tier learned of it (ModelInfo); a format that
        # hands no Keras model (a SavedModel's serving function) leaves `info` empty.
        keras_model = getattr(runnable, "kind", None) == "keras"
        self.facts.model = runnable.model if keras_model else runnable
        self.facts.info = runnable if keras_model else None
        self.facts.spec = getattr(runnable, "spec", None) or self.facts.spec
        self.result.tiers.append("model")

    def _graph(self):
        from kerascheck.tiers.graph.build import build as build_graph

        options = self.options
        try:
            with _quiet(options):
                self.facts.graph = build_graph(self.runnable, self.facts.spec, options)
        except TierUnavailable:
            raise
        except Exception as exc:
            raise TierUnavailable(_internal(exc, options, "the graph could not be built")) from None
        self.result.tiers.append("graph")
        self.result.graph = self.facts.graph

    def _probe(self):
        from kerascheck.tiers.probe.run import run_probes

        options = self.options
        try:
            with _quiet(options):
                self.facts.probe = run_probes(self.runnable, self.facts.spec, options, self.want)
        except TierUnavailable as exc:
            raise TierUnavailable(f"the probes could not run: {exc}") from None
        except UsageError as exc:
            self.result.errors.append({"message": str(exc)})
            raise TierUnavailable(f"the probes could not run: {exc}") from None
        except Exception as exc:  # TensorFlow refusing the model is a fact about the model, not a crash
            raise TierUnavailable(_internal(exc, options, "the probes could not run")) from None
        self.result.tiers.append("probe")
        self.result.probe = self.facts.probe


_PROBE_NAMES = {"train": "training", "overfit": "overfit", "batch": "batch-dependence",
                "activations": "activation-statistics", "data": "data-statistics"}


def _internal(exc: BaseException, options, what: str) -> str:
    """The reason a tier failed on an unexpected exception; the traceback under --verbose."""
    if os.environ.get("KERASCHECK_DEBUG"):
        raise exc
    if options is not None and getattr(options, "verbose", False):
        traceback.print_exception(exc)
    return f"{what}: {error_line(exc)}"


class _quiet:
    """Python warnings off while a tier is built (Keras warns about what rules report properly)."""
    def __init__(self, options):
        self.verbose = bool(getattr(options, "verbose", False))

    def __enter__(self):
        self._catch = warnings.catch_warnings()
        self._catch.__enter__()
        if not self.verbose:
            warnings.simplefilter("ignore")
        return self

    def __exit__(self, *exc):
        self._catch.__exit__(*exc)


def _lambda_reason(spec, options) -> str | None:
    """Why the graph rules cannot look inside a file's Lambdas: their code runs only with --unsafe."""
    if options is not None and options.unsafe:
        return None
    names = [layer.name for layer in spec.layers if layer.class_name == "Lambda" and _carries_code(layer.config)]
    if not names:
        return None
    which = ", ".join(f"'{n}'" for n in names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
    return (f"the Lambda layer{'s' if len(names) > 1 else ''} {which} could not be inspected safely: tracing a "
            "Lambda runs the bytecode stored in the file, which kerascheck does only with --unsafe")


def library_notes(spec) -> list:
    """What Keras-family libraries the file's classes come from: library code, never the user's."""
    notes = []
    for lib, names in library_classes(spec.config).items():
        version = installed_library(lib)
        shown = ", ".join(names[:6]) + (f" and {len(names) - 6} more" if len(names) > 6 else "")
        state = f"{lib} {version} is installed" if version else f"{lib} is not installed: the model tier needs it"
        notes.append(f"uses {LIBRARIES[lib]} classes ({state}; library code, not yours): {shown}")
    return notes


def clone_notes(spec) -> list:
    """Inputs Keras renamed '<tensor>CLONE': the model was built from the middle of another graph (a
    FeatureSpace's encoded features), so the layers that made its inputs are not in this file."""
    clones = [i.name for i in spec.inputs if i.name.endswith("CLONE")]
    if not clones:
        return []
    names = ", ".join(f"'{n}'" for n in clones[:4]) + (f" and {len(clones) - 4} more" if len(clones) > 4 else "")
    return [f"input{'s' if len(clones) > 1 else ''} {names} {'were' if len(clones) > 1 else 'was'} a tensor in the "
            "middle of another model when this one was built: the layers that made "
            f"{'them' if len(clones) > 1 else 'it'} (preprocessing, say) are not in this file, so the model takes "
            "what they output, not raw data; save the model that includes them for inference"]


def _carries_code(config) -> bool:
    """Whether a Lambda's config holds bytecode; one naming a function ('euclidean_distance') holds none."""
    function = config.get("function") if isinstance(config, dict) else None
    if isinstance(function, dict):
        return function.get("class_name") != "function"
    return not isinstance(function, str)


def run_rule(rule: Rule, facts: Facts, result: ModelResult, options=None) -> None:
    try:
        result.findings.extend(rule.check(facts))
    except Skip as exc:
        result.skipped.append({"rule": rule.name, "reason": str(exc)})
    except InputError:
        raise  # a weight that turns out unreadable makes the file unreadable
    except Exception as exc:  # one broken rule must not hide the others' findings
        if os.environ.get("KERASCHECK_DEBUG"):
            raise
        if options is not None and getattr(options, "verbose", False):
            traceback.print_exception(exc)
        where = traceback.extract_tb(exc.__traceback__)[-1]
        result.errors.append({
            "message": f"internal error in rule {rule.name} ({type(exc).__name__}: {exc} at "
                       f"{os.path.basename(where.filename)}:{where.lineno}); please report it; "
                       "run with --verbose for the traceback"
        })


def needs_loading(rules: Sequence[Rule], static: bool, options=None) -> bool:
    """Whether any selected rule will make kerascheck load the model with Keras."""
    if static:
        return False
    data = bool(options and options.data)
    rules = [r for r in rules if "live" not in r.needs]
    needs = [set(r.needs) - {"arrays"} for r in rules]
    return any(r.tier != "spec" or (n and (n != {"data"} or data)) for r, n in zip(rules, needs))


__all__ = ["TIERS", "Report", "ModelResult", "all_rules", "find_rule", "select_rules", "check_file", "run_rule"]
