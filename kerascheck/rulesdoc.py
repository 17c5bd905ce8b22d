"""The README's rule table, generated from the rules' own metadata so nothing is written twice.

    python -m kerascheck.rulesdoc README.md    # rewrite the table in place
"""
from __future__ import annotations

import sys
from kerascheck.diagnosis.links import DIRECT_LINKS
from kerascheck.engine import all_rules

START, END = "<!-- rules:start -->", "<!-- rules:end -->"


def rule_table() -> str:

    rows = ["| Code | Rule | Default severity | Needs | What it flags |", "|---|---|---|---|---|"]
    for rule in all_rules():
        needs = "live run" if "live" in rule.needs else rule.tier
        rows.append(f"| {rule.code} | `{rule.name}` | {rule.severity} | {needs} | {rule.summary} |")
    return "\n".join(rows)


LINKS_START, LINKS_END = "<!-- links:start -->", "<!-- links:end -->"


def links_list() -> str:
    """The links kerascheck folds without an intervention, and why each needs none."""
    return "\n".join(f"- **{name}**: {why}." for name, why in DIRECT_LINKS.items())


def _replace(text: str, start: str, end: str, body: str) -> str:
    head, sep, rest = text.partition(start)
    _, sep2, tail = rest.partition(end)
    if not sep or not sep2:
        raise ValueError(f"README has no {start} ... {end} block")
    return f"{head}{start}\n{body}\n{end}{tail}"


def with_table(text: str) -> str:
    text = _replace(text, START, END, rule_table())
    return _replace(text, LINKS_START, LINKS_END, links_list())


def main(path: str) -> None:
    with open(path, encoding="utf-8") as fh:
        text = fh.read()
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(with_table(text))


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "README.md")
