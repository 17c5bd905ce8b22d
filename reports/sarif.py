"""SARIF 2.1.0 for code scanning (GitHub and others), validated against the official schema in tests."""
from __future__ import annotations

import hashlib
import json
import os

from kerascheck.reports.json_report import json_safe
from kerascheck.version import __version__

SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
LEVELS = {"error": "error", "warning": "warning", "info": "note"}


def _uri(path: str) -> tuple[str, dict]:
    """A repository-relative URI where the file lies under the working directory (what GitHub needs)."""
    absolute = os.path.abspath(path)
    rel = os.path.relpath(absolute, os.getcwd())
    if not rel.startswith(".."):
        return rel.replace(os.sep, "/"), {"uriBaseId": "%SRCROOT%"}
    return "file://" + absolute.replace(os.sep, "/"), {}


def _location(path: str, layer: str | None, line: int = 1) -> dict:
    uri, base = _uri(path)
    location = {"physicalLocation": {"artifactLocation": {"uri": uri, **base}, "region": {"startLine": line}}}
    if layer:
        # GitHub shows only physical locations; the layer is kept here and named in the message.
        location["logicalLocations"] = [{"name": layer.split("/")[-1], "fullyQualifiedName": layer,
                                         "kind": "member"}]
    return location


def source_of(finding) -> dict | None:
    """{"file", "line"} of the user's code a graph-tier finding points at, if it does."""
    source = finding.evidence.get("source") if isinstance(finding.evidence, dict) else None
    if isinstance(source, dict) and isinstance(source.get("file"), str) and isinstance(source.get("line"), int) \
            and source["line"] >= 1:
        return source
    return None


def _fingerprint(finding, path: str, ordinal: int) -> str:
    # Stable across runs: measured numbers in the message change, the rule, file and layer do not.
    key = f"{finding.code}|{_uri(path)[0]}|{finding.layer or ''}|{ordinal}"
    return hashlib.sha256(key.encode()).hexdigest()[:32]


def to_sarif(report) -> dict:
    rules = sorted(report.rules, key=lambda r: r.code)
    index = {r.code: i for i, r in enumerate(rules)}
    driver_rules = [{
        "id": r.code,
        "name": r.name,
        "shortDescription": {"text": r.summary},
        "fullDescription": {"text": r.doc.strip(), "markdown": r.doc.strip()},
        "help": {"text": r.doc.strip(), "markdown": r.doc.strip()},
        "defaultConfiguration": {"level": LEVELS[r.severity]},
        "properties": {"tags": ["keras", r.tier], "kerascheck-name": r.name},
    } for r in rules]
    results, notifications = [], []
    for model in report.models:
        seen: dict = {}
        for f in model.findings:
            key = (f.code, f.layer)
            seen[key] = seen.get(key, 0) + 1
            where = f"[layer {f.layer}] " if f.layer else ""
            also = "".join(f" Also seen, as a consequence: {c['code']} {c['rule']}"
                           f"{' (layer ' + c['layer'] + ')' if c.get('layer') else ''}: {c['message']}"
                           for c in f.evidence.get("consequences", ()))
            result = {
                "ruleId": f.code,
                "level": LEVELS[f.severity],
                "message": {"text": f"{where}{f.message} Fix: {f.fix}{also}"},
                "locations": [_location(model.path, f.layer)],
                "partialFingerprints": {"kerascheckFinding/v1": _fingerprint(f, model.path, seen[key])},
                "properties": {"rule": f.rule, "evidence": json_safe(dict(f.evidence))},
            }
            source = source_of(f)
            if source:
                # Findings in the user's own code point at the line; the model file stays related.
                result["locations"] = [_location(source["file"], f.layer, source["line"])]
                result["relatedLocations"] = [{"id": 1, **_location(model.path, None),
                                               "message": {"text": "the model file"}}]
            if f.code in index:
                result["ruleIndex"] = index[f.code]
            results.append(result)
        for err in model.errors:
            notifications.append({"level": "error", "message": {"text": err["message"]},
                                  "locations": [_location(model.path, None)]})
    return {
        "$schema": SCHEMA,
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {"name": "kerascheck", "version": __version__, "semanticVersion": __version__,
                                "informationUri": "https://pypi.org/project/kerascheck/", "rules": driver_rules}},
            "invocations": [{"executionSuccessful": not notifications,
                             "toolExecutionNotifications": notifications}],
            "originalUriBaseIds": {"%SRCROOT%": {"uri": "file://" + os.getcwd().replace(os.sep, "/") + "/"}},
            "results": results,
            # What ran on each model (tiers, rules, and what the probes trained with and on), as the
            # JSON report has it: a reviewer can tell a clean result from one nothing could judge.
            "properties": {"models": [json_safe({
                "path": model.path, "tiers": list(model.tiers), "rules_run": model.rules_run,
                "rules_total": model.rules_total, "skipped": list(model.skipped),
                "probes": model.probe.record() if model.probe is not None and hasattr(model.probe, "record")
                else None}) for model in report.models]},
        }],
    }


def render_sarif(report) -> str:
    return json.dumps(to_sarif(report), indent=2, allow_nan=False) + "\n"
