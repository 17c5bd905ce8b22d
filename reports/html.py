"""The HTML report: one self-contained file (inline CSS, SVG and a little JS), Jinja2 with autoescaping.

Everything that comes from a model file is escaped by Jinja2; charts are drawn from
numbers only. A Content-Security-Policy forbids loading anything from the network.
"""
from __future__ import annotations

import datetime
import re

import jinja2

from kerascheck.reports import svg
from kerascheck.reports.sarif import source_of
from kerascheck.reports.text import verified_line
from kerascheck.version import __version__

SEVERITIES = ("error", "warning", "info")


def _env() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.PackageLoader("kerascheck.reports", "templates"),
                             autoescape=jinja2.select_autoescape(["html", "j2"]), trim_blocks=True,
                             lstrip_blocks=True)
    env.filters["num"] = _num
    return env


def _num(v) -> str:
    if isinstance(v, str):
        return v
    if v is None:
        return ""
    if isinstance(v, int):
        return f"{v:,}"
    return f"{v:.4g}"


def _section(doc: str, title: str) -> str:
    match = re.search(rf"## {re.escape(title)}\n(.*?)(?=\n## |\Z)", doc, re.S)
    return " ".join(match.group(1).split()) if match else ""


def _probe_charts(probe) -> list[dict]:
    if probe is None:
        return []
    charts = []
    if probe.train is not None:
        series = {f"training at {probe.train.learning_rate:.3g}": probe.train.losses}
        if probe.stable_run is not None:
            series[f"stable rate {probe.stable_run.learning_rate:.3g}"] = probe.stable_run.losses
        chart = svg.line_chart(series, log_y=True)
        if chart:
            charts.append({"title": "Loss while training at the configured rate (log scale)", "chart": chart})
        grad_run = probe.stable_run if probe.train.diverged_at is not None else probe.train
        if grad_run is not None and grad_run.layer_norms:
            chart = svg.line_chart(grad_run.layer_norms, log_y=True)
            if chart:
                charts.append({"title": "Gradient norm per layer per step (log scale)", "chart": chart})
        if probe.sweep:
            sweep = svg.sweep_points(probe.train.learning_rate, probe.sweep)
            if sweep:
                charts.append({"title": "Learning-rate sweep: red diverged, green stayed finite", "sweep": sweep})
    if probe.overfit is not None:
        chart = svg.line_chart({"10 examples": probe.overfit["run"].losses}, log_y=True)
        if chart:
            charts.append({"title": "Loss while overfitting 10 examples (log scale)", "chart": chart})
    if probe.activations:
        bars = []
        for layer, st in probe.activations.items():
            share = st.get("dead_share", st.get("saturated_share", 0.0))
            bars.append({"layer": layer, "share": share, "kind": "dead" if "dead_share" in st else "saturated",
                         "width": round(share * 300, 1)})
        charts.append({"title": "Units never active (ReLU) or saturated (sigmoid/tanh), per layer", "bars": bars})
    return charts


def _fixes(f) -> list[dict]:
    """Each fix kerascheck tried for this finding: its line, and the loss before and after on one chart."""
    out = []
    for v in f.evidence.get("fix_verified", ()):
        before = (v.get("before") or {}).get("losses") or []
        after = (v.get("after") or {}).get("losses") or []
        series = {"before": [x for x in before if not isinstance(x, str)],
                  "after the fix": [x for x in after if not isinstance(x, str)]}
        chart = svg.line_chart(series, log_y=True) if before and after else None
        out.append({"line": verified_line(v), "verdict": v.get("verdict"), "chart": chart})
    return out


def render_html(report) -> str:
    docs = {r.name: r for r in report.rules}
    models = []
    for m in report.models:
        counts = {s: sum(1 for f in m.findings if f.severity == s) for s in SEVERITIES}
        findings = []
        for f in m.findings:
            rule = docs.get(f.rule)
            doc = rule.doc.strip() if rule else ""
            findings.append({"f": f, "why": _section(doc, "Why is this bad?"), "doc": doc, "source": source_of(f),
                             "fixes": _fixes(f)})
        layers = []
        for row in m.layers:
            tensors = [{**t, "svg": svg.histogram_bars(t["histogram"], t["expected_std"])} for t in row["tensors"]]
            layers.append({**row, "tensors": tensors})
        models.append({"m": m, "counts": counts, "findings": findings, "layers": layers,
                       "charts": _probe_charts(m.probe), "anchor": f"model-{len(models)}"})
    rules_seen = sorted({f.rule for m in report.models for f in m.findings})
    return _env().get_template("report.html.j2").render(
        models=models, version=__version__, severities=SEVERITIES, rules_seen=rules_seen,
        generated=datetime.datetime.now().strftime("%Y-%m-%d %H:%M"),
        totals={s: sum(1 for f in report.findings if f.severity == s) for s in SEVERITIES})
