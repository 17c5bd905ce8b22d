"""Text for a person at a terminal: grouped by file, worst first, one summary line."""
from __future__ import annotations

import textwrap

import click

COLOURS = {"error": "red", "warning": "yellow", "info": "blue"}


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def render_text(report, color: bool = False, width: int = 100) -> str:
    def style(text, **kw):
        return click.style(text, **kw) if color else text

    lines: list[str] = []
    # A skip every file shares (a rule that needs --data, say) is said once, at the end.
    shared = None
    for model in report.models:
        pairs = {(s["rule"], s["reason"]) for s in model.skipped}
        shared = pairs if shared is None else shared & pairs
    shared = shared if len(report.models) > 1 else set()
    wrap = lambda text, indent: textwrap.fill(text, width=width, initial_indent=indent,
                                              subsequent_indent=indent, break_on_hyphens=False,
                                              break_long_words=False)
    for model in report.models:
        head = style(model.path, bold=True)
        meta = []
        if model.format:
            meta.append(model.format)
        if model.keras_version:
            meta.append(f"Keras {model.keras_version}")
        if model.param_count is not None:
            meta.append(f"{model.param_count:,} parameters")
        lines.append(f"{head}" + (f" ({', '.join(meta)})" if meta else ""))
        for note in getattr(model, "notes", []):
            lines.append(wrap(style(note, dim=True), "  "))
        probe = getattr(model, "probe", None)
        if probe is not None:
            note = f"probes ran on {probe.device} in {probe.seconds:.1f} s over {probe.data_description}"
            if getattr(probe, "inputs_drawn", None):
                note += " (" + "; ".join(probe.inputs_drawn) + ")"
            if probe.notes:
                note += "; " + "; ".join(probe.notes)
            if probe.defaults:
                note += "; assumed " + ", ".join(probe.defaults)
            if probe.cut:
                note += "; the time budget cut: " + "; ".join(probe.cut)
            lines.append(wrap(style(note, dim=True), "  "))
        graph = getattr(model, "graph", None)
        if graph is not None and getattr(graph, "loss_untraced", None):
            lines.append(wrap(style(f"graph rules read the forward pass only: {graph.loss_untraced}", dim=True), "  "))
        unavailable = getattr(model, "unavailable", [])
        if unavailable:
            lines.append(wrap(style(f"{len(unavailable)} of {model.rules_total} rules could not run "
                                    "(reasons below); what follows is not a clean bill of health",
                                    fg="yellow"), "  "))
        for err in model.errors:
            lines.append(wrap(f"{style('cannot check', fg='red', bold=True)}: {err['message']}", "  "))
        for f in model.findings:
            sev = style(f"{f.severity:<7}", fg=COLOURS[f.severity], bold=True)
            where = f"  layer {style(f.layer, bold=True)}" if f.layer else ""
            lines.append(f"  {sev} {f.code} {style(f.rule, bold=True)}{where}")
            lines.append(wrap(f.message, "      "))
            # Not wrapped: the fix usually ends in code meant to be copied whole.
            lines.append(f"      fix: {f.fix}")
            for v in f.evidence.get("fix_verified", ()):
                lines.append(wrap(verified_line(v), "      "))
            for c in f.evidence.get("consequences", ()):
                at = f" (layer {c['layer']})" if c.get("layer") else ""
                how = "follows directly" if (c.get("proof") or {}).get("how") == "direct" else "fixed with it"
                lines.append(wrap(style(f"also seen, {how}: {c['code']} {c['rule']}{at}: {c['message']}", dim=True),
                                  "      "))
        fixed = getattr(model, "fixed", None)
        if fixed:
            if fixed["path"]:
                lines.append(wrap(f"repaired copy: {fixed['path']} ({'; '.join(fixed['written'])}); changes and "
                                  f"evidence in {fixed['changes']}", "  "))
            for n in fixed["not_written"]:
                lines.append(wrap(style(f"not written into the copy: {n}", dim=True), "  "))
        by_reason: dict[str, list[str]] = {}
        for s in model.skipped:
            if (s["rule"], s["reason"]) not in shared:
                by_reason.setdefault(s["reason"], []).append(s["rule"])
        for reason, names in by_reason.items():
            lines.append(wrap(style(f"skipped {', '.join(names)}: {reason}", dim=True), "  "))
        if not model.errors and not model.findings:
            if model.rules_total and model.rules_run == 0:
                lines.append("  " + style("no selected rule could judge this file (see why above)", fg="yellow"))
            elif unavailable:
                lines.append("  " + style(f"no problems found by {model.rules_run} of {model.rules_total} rules; "
                                          f"{len(unavailable)} could not run", fg="yellow"))
            else:
                lines.append("  " + style("no problems found", fg="green"))
        lines.append("")
    by_reason = {}
    for rule, reason in sorted(shared or ()):
        by_reason.setdefault(reason, []).append(rule)
    for reason, names in by_reason.items():
        lines.append(wrap(style(f"skipped {', '.join(names)} in every file: {reason}", dim=True), ""))
    counts = {sev: sum(1 for f in report.findings if f.severity == sev) for sev in COLOURS}
    total = sum(counts.values())
    failed = sum(1 for m in report.models if m.errors)
    parts = ", ".join(_plural(n, sev) for sev, n in counts.items() if n)
    files = _plural(len(report.models), "file")
    blind = [m for m in report.models if getattr(m, "unavailable", None)]
    if total:
        summary = f"Found {_plural(total, 'problem')} ({parts}) in {files}"
    elif report.models and all(m.rules_total and m.rules_run == 0 for m in report.models):
        summary = f"No selected rule could judge the {files}"
    elif blind:
        summary = f"No problems found by the rules that could run in {files}"
    else:
        summary = f"No problems found in {files}"
    if failed:
        summary += f"; {_plural(failed, 'file')} could not be checked"
    if blind:
        summary += (f"; in {_plural(len(blind), 'file')} some rules could not run "
                    f"({sum(len(m.unavailable) for m in blind)} in all)")
    lines.append(style(summary + ".", bold=True))
    return "\n".join(lines) + "\n"


def verified_line(v: dict) -> str:
    """One line per fix kerascheck tried: what changed, and the measurement before and after."""
    before = (v.get("before") or {}).get("text", "?")
    after = (v.get("after") or {}).get("text")
    if v.get("verdict") == "verified":
        return f"verified: with {v['change']}, {v['for']} is gone ({before} -> {after})"
    if v.get("verdict") == "symptom stays":
        return f"tried, did not help: with {v['change']}, {v['for']} stays ({before} -> {after})"
    return f"not verified against {v['for']}: {v.get('why', 'not tried')}"
