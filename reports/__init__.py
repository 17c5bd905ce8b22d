"""Renderers: each turns one engine Report into text for people or machines. They never import rules."""

FORMATS = ("text", "json", "jsonl", "sarif", "github")


def render(report, fmt: str, **options) -> str:
    if fmt == "json":
        from kerascheck.reports.json_report import render_json

        return render_json(report)
    if fmt == "jsonl":
        from kerascheck.reports.json_report import render_jsonl

        return render_jsonl(report)
    if fmt == "sarif":
        from kerascheck.reports.sarif import render_sarif

        return render_sarif(report)
    if fmt == "github":
        from kerascheck.reports.github import render_github

        return render_github(report)
    if fmt == "text":
        from kerascheck.reports.text import render_text

        return render_text(report, **options)
    raise ValueError(f"unknown format {fmt!r}")
