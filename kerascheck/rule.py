"""What a rule is, what it produces, and the facts it reads."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping

SEVERITIES = ("error", "warning", "info")
SEVERITY_RANK = {"error": 3, "warning": 2, "info": 1}
# The tiers of facts, cheapest first.
TIERS = ("spec", "model", "graph", "probe")
DOC_SECTIONS = ("## What it does", "## Why is this bad?", "## How to fix")
# Why a rule with needs=("live",) is skipped on a file: only kerascheck.Monitor sees a training run.
LIVE_ONLY = "needs a live training run: add kerascheck.Monitor() to model.fit(..., callbacks=[...])"


class Skip(Exception):
    """Raised by a check that cannot judge this model; the reason is reported."""


@dataclass(frozen=True)
class Finding:
    rule: str
    code: str
    severity: str
    layer: str | None
    message: str
    fix: str
    evidence: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {
            "rule": self.rule,
            "code": self.code,
            "severity": self.severity,
            "layer": self.layer,
            "message": self.message,
            "fix": self.fix,
            "evidence": dict(self.evidence),
        }


@dataclass(frozen=True)
class Rule:
    name: str
    code: str
    severity: str  # the default; a check may raise or lower it per finding
    tier: str
    needs: tuple = ()  # for probe rules: which shared runs they read ("train", "overfit", ...)
    doc: str = ""  # filled from the rule module's docstring at discovery
    check: Callable[["Facts"], Iterable[Finding]] | None = field(default=None, compare=False, repr=False)

    @property
    def summary(self) -> str:
        return self.doc.strip().splitlines()[0].strip() if self.doc.strip() else ""

    def finding(self, *, layer: str | None, message: str, fix: str, severity: str | None = None,
                evidence: Mapping[str, Any] | None = None) -> Finding:
        severity = severity or self.severity
        if severity not in SEVERITIES:
            raise ValueError(f"unknown severity {severity!r}")
        return Finding(self.name, self.code, severity, layer, message, fix, dict(evidence or {}))

    def validate(self, module_name: str) -> None:
        problems = []
        if not re.fullmatch(r"[a-z][a-z0-9]*(-[a-z0-9]+)*", self.name):
            problems.append("name must be kebab-case")
        if module_name != self.name.replace("-", "_"):
            problems.append(f"module must be named {self.name.replace('-', '_')}.py")
        if not re.fullmatch(r"KC[1-9]\d\d", self.code):
            problems.append("code must look like KC101")
        if self.severity not in SEVERITIES:
            problems.append(f"severity must be one of {SEVERITIES}")
        if self.tier not in TIERS:
            problems.append(f"tier must be one of {TIERS}")
        if not self.summary:
            problems.append("the module docstring must start with a one-line summary")
        for section in DOC_SECTIONS:
            if section not in self.doc:
                problems.append(f"the docstring lacks a '{section}' section")
        if self.check is None:
            problems.append("the module must define check(facts)")
        if problems:
            raise ValueError(f"rule module {module_name}: " + "; ".join(problems))


@dataclass
class Facts:
    """What the engine knows about one model; rules read it and never change it.

    The model, graph and probe tiers are filled in by the engine only when a selected
    rule needs them.
    """

    spec: Any  # kerascheck.facts.spec.ModelSpec
    model: Any = None  # the keras.Model kerascheck loaded (its own copy)
    info: Any = None  # kerascheck.tiers.probe.run.ModelInfo: inputs, outputs, layer names, what outputs mean
    data: Any = None  # kerascheck.tiers.probe.data.RawData: the arrays of --data as given (None without --data)
    graph: Any = None  # kerascheck.tiers.graph.analysis.GraphFacts
    probe: Any = None  # kerascheck.tiers.probe.results.ProbeResults
