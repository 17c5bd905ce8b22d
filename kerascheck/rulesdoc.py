"""The README's rule table, generated from the rules' own metadata so nothing is written twice.

    python -m kerascheck.rulesdoc README.md    # rewrite the table in place
"""
from __future__ import annotations

import sys

START, END = "<!-- rules:start -->", "<!-- rules:end -->"


def rule_table() -> str:
    from kerascheck.engine import all_rules

    rows = ["| Code | Rule | Default severity | Needs | What it flags |", "|---|---|---|---|---|"]
    for rule in all_rules():
        needs = "live run" if "live" in rule.needs else rule.tier
        rows.append(f"| {rule.code} | `{rule.name}` | {rule.severity} | {needs} | {rule.summary} |")
    return "\n".join(rows)


def with_table(text: str) -> str:
    head, sep, rest = text.partition(START)
    _, sep2, tail = rest.partition(END)
    if not sep or not sep2:
        raise ValueError(f"README has no {START} ... {END} block")
    return f"{head}{START}\n{rule_table()}\n{END}{tail}"


def main(path: str) -> None:
    with open(path, encoding="utf-8") as fh:
        text = fh.read()
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(with_table(text))


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "README.md")
