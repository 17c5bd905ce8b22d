"""GitHub Actions workflow commands (::error file=...::...), one per finding.

Layer names and messages come from untrusted files, so they are escaped the way
GitHub's own toolkit does: a message cannot end the command early or start another.
"""
from __future__ import annotations

from kerascheck.reports.sarif import source_of

COMMANDS = {"error": "error", "warning": "warning", "info": "notice"}


def escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def render_github(report) -> str:
    lines = []
    for model in report.models:
        path = escape_property(model.path)
        for err in model.errors:
            lines.append(f"::error file={path},title={escape_property('kerascheck: cannot check')}::"
                         f"{escape_data(err['message'])}")
        for f in model.findings:
            where = f"layer {f.layer}: " if f.layer else ""
            title = escape_property(f"{f.code} {f.rule}")
            source = source_of(f)
            at = f"file={escape_property(source['file'])},line={source['line']}" if source else f"file={path},line=1"
            lines.append(f"::{COMMANDS[f.severity]} {at},title={title}::"
                         f"{escape_data(where + f.message + ' Fix: ' + f.fix)}")
    return "\n".join(lines) + ("\n" if lines else "")
