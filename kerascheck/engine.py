"""Find the rules, pick the ones selected, build the facts they need, run them."""
from __future__ import annotations

import importlib
import os
import pkgutil
import sys
import traceback
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Iterable, Sequence

from kerascheck.errors import InputError, UsageError
from kerascheck.rule import LIVE_ONLY, SEVERITY_RANK, TIERS, Facts, Finding, Rule, Skip

MODEL_SUFFIXES = (".keras", ".h5", ".hdf5")


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


def expand_paths(paths: Iterable[str]) -> list[str]:
    """Files to check, in a stable order: folders are searched recursively.

    A SavedModel folder is kept as one entry so the reader can say it is unsupported.
    """
    out: list[str] = []
    for path in paths:
        if os.path.isdir(path) and not os.path.exists(os.path.join(path, "saved_model.pb")):
            for root, dirs, files in os.walk(path):
                dirs.sort()
                saved = [d for d in dirs if os.path.exists(os.path.join(root, d, "saved_model.pb"))]
                out.extend(os.path.join(root, d) for d in saved)
                dirs[:] = [d for d in dirs if d not in saved and not d.startswith(".")]
                out.extend(os.path.join(root, f) for f in sorted(files) if f.lower().endswith(MODEL_SUFFIXES))
        else:
            out.append(path)
    return out


def check_file(path: str, rules: Sequence[Rule], static: bool = False, options=None) -> ModelResult:
    from kerascheck.reader import open_spec, sniff_format

    result = ModelResult(path=path)
    try:
        result.format = sniff_format(path)
        with open_spec(path) as spec:
            result.keras_version = spec.keras_version
            result.param_count = spec.param_count
            result.tiers = ["spec"]
            result.notes.extend(library_notes(spec) + clone_notes(spec))
            facts = Facts(spec=spec)
            if options is not None and getattr(options, "layer_stats", False):
                from kerascheck.layerstats import layer_table

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
                _run_rule(rule, facts, result, options)
            from kerascheck.diagnosis import fold
            from kerascheck.interventions import verify

            order = facts.probe.layer_order if facts.probe is not None else []
            confirmed: dict = {}
            changes: list = []
            if not static and result.findings:
                used = tiers._options()
                with _quiet(used):
                    confirmed, result.findings, changes = verify(result.findings, facts, used, order, rules)
            result.findings = fold(result.findings, order, confirmed)
            if options is not None and options.fix_out and changes:
                _write_fixed(facts, changes, result, options)
    except InputError as exc:
        result.errors.append({"message": str(exc)})
    # Worst first; among equals, a cause with consequences before a finding standing alone.
    result.findings.sort(key=lambda f: (-SEVERITY_RANK[f.severity], not f.evidence.get("consequences"), f.code,
                                        f.layer or ""))
    result.rules_run = len(rules) - len(result.skipped)
    result.rules_total = len(rules)
    return result


def _write_fixed(facts, changes: list, result: ModelResult, options) -> None:
    from kerascheck.repair import write_fixed

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
        self.facts, self.options, self.result = facts, options, result
        self.want = {need for r in rules for need in r.needs}
        self.failed: dict[str, str] = {}

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
        except _Unavailable as exc:
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
        from kerascheck.probe.data import read_arrays

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

    def _options(self):
        from kerascheck.modeltier import Options

        if self.options is None:
            self.options = Options()
        return self.options

    def _load(self):
        if self.facts.spec.format == "savedmodel":  # SavedModel folders: kerascheck.savedmodel (issue 14)
            from kerascheck.savedmodel import tiers

            return tiers.load(self)
        from kerascheck.modeltier import TierUnavailable, load_model
        from kerascheck.probe import prepare

        options = self._options()
        loaded = False
        try:
            with _quiet(options):
                model = load_model(self.facts.spec, options)
                loaded = True
                self.facts.info = prepare(model, self.facts.spec, options, self.facts.data)
                self.facts.model = model
        except TierUnavailable as exc:
            what = "the model loaded, but kerascheck could not run it" if loaded else "the model was not loaded"
            self.failed["model"] = self.failed["probe"] = f"{what}: {exc}"
            raise _Unavailable(self.failed["model"]) from None
        except (InputError, UsageError) as exc:
            self.result.errors.append({"message": str(exc)})
            why = "kerascheck could not use --data with this model" if str(exc).startswith("--data") else \
                "the model could not be loaded"
            self.failed["model"] = self.failed["probe"] = f"{why} (see the error above)"
            raise _Unavailable(self.failed["model"]) from None
        except Exception as exc:  # TensorFlow refusing the model is a fact about the model, not a crash
            reason = _internal(exc, options, "loading the model")
            self.failed["model"] = self.failed["probe"] = reason
            raise _Unavailable(reason) from None
        self.facts.spec = _with_live_classes(self.facts.spec, self.facts.info)
        self.result.tiers.append("model")

    def _graph(self):
        if self.facts.spec.format == "savedmodel":  # SavedModel folders: kerascheck.savedmodel (issue 14)
            from kerascheck.savedmodel import tiers

            return tiers.graph(self)
        from kerascheck.graph import build_graph
        from kerascheck.modeltier import TierUnavailable

        options = self._options()
        try:
            with _quiet(options):
                self.facts.graph = build_graph(self.facts.info, self.facts.spec, options)
        except TierUnavailable as exc:
            raise _Unavailable(f"the graph could not be built: {exc}") from None
        except Exception as exc:
            raise _Unavailable(_internal(exc, options, "the graph could not be built")) from None
        self.result.tiers.append("graph")
        self.result.graph = self.facts.graph

    def _probe(self):
        if self.facts.spec.format == "savedmodel":  # SavedModel folders: kerascheck.savedmodel (issue 14)
            from kerascheck.savedmodel import tiers

            return tiers.probe(self)
        from kerascheck.errors import UsageError
        from kerascheck.modeltier import TierUnavailable
        from kerascheck.probe import run_probes

        options = self._options()
        try:
            with _quiet(options):
                self.facts.probe = run_probes(self.facts.info, self.facts.spec, options, self.want)
        except TierUnavailable as exc:
            raise _Unavailable(f"the probes could not run: {exc}") from None
        except UsageError as exc:
            self.result.errors.append({"message": str(exc)})
            raise _Unavailable(f"the probes could not run: {exc}") from None
        except Exception as exc:  # TensorFlow refusing the model is a fact about the model, not a crash
            raise _Unavailable(_internal(exc, options, "the probes could not run")) from None
        self.result.tiers.append("probe")
        self.result.probe = self.facts.probe


_PROBE_NAMES = {"train": "training", "overfit": "overfit", "batch": "batch-dependence",
                "activations": "activation-statistics", "data": "data-statistics"}


class _Unavailable(Exception):
    pass


def _internal(exc: BaseException, options, what: str) -> str:
    """The reason a tier failed on an unexpected exception; the traceback under --verbose."""
    if os.environ.get("KERASCHECK_DEBUG"):
        raise exc
    from kerascheck.modelio import error_line

    if options is not None and getattr(options, "verbose", False):
        traceback.print_exception(exc)
    return f"{what}: {error_line(exc)}"


class _quiet:
    """Python warnings off while a tier is built (Keras warns about what rules report properly)."""

    def __init__(self, options):
        self.verbose = bool(getattr(options, "verbose", False))

    def __enter__(self):
        import warnings

        self._catch = warnings.catch_warnings()
        self._catch.__enter__()
        if not self.verbose:
            warnings.simplefilter("ignore")
        return self

    def __exit__(self, *exc):
        self._catch.__exit__(*exc)


def _with_live_classes(spec, info):
    """For a subclassed model, the spec's layers with the classes and configs of the loaded layers.

    The file names no classes for a subclass's layers; the reader guessed them. The
    loaded model knows them, and Keras's own layers' configs are safe to read.
    """
    from dataclasses import replace

    from kerascheck.reader import is_subclassed

    if info is None or not is_subclassed(spec.config):
        return spec
    by_path = {path: layer for path, layer in info.paths.values()}
    layers = []
    for layer in spec.layers:
        live = by_path.get(layer.qualname)
        if live is not None:
            cls = type(live)
            module = getattr(cls, "__module__", "") or ""
            try:
                config = live.get_config() if module.startswith("keras") else dict(layer.config)
            except Exception:
                config = dict(layer.config)
            layer = replace(layer, class_name=cls.__name__, module=module, config=config)
        layers.append(layer)
    new = replace(spec, layers=tuple(layers))
    for key in ("_qualname_cache", "_graph"):
        new.__dict__.pop(key, None)
    return new


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
    from kerascheck.modeltier import LIBRARIES, installed_library, library_classes

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


def _run_rule(rule: Rule, facts: Facts, result: ModelResult, options=None) -> None:
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


def check_paths(paths: Sequence[str], rules: Sequence[Rule], static: bool = False, options=None,
                limits=None) -> Report:
    """Check every model under `paths`.

    With `limits`, each file is checked in a worker process with a timeout and a
    memory limit (kerascheck.isolation); without, in this process (the Python API,
    where the caller's registered classes must be visible).
    """
    files = expand_paths(paths)
    if limits is not None and files:
        from kerascheck.isolation import check_isolated

        method = "spawn" if needs_loading(rules, static, options) or "tensorflow" in sys.modules else "fork"
        return Report(models=check_isolated(files, list(rules), static, options, limits, method),
                      rules=list(rules))
    return Report(models=[check_file(p, rules, static, options) for p in files], rules=list(rules))


__all__ = ["TIERS", "Report", "ModelResult", "all_rules", "select_rules", "check_paths", "check_file", "expand_paths"]
