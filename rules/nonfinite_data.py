"""The data given with --data holds NaN or Inf values.

## What it does
Reads every array of `--data` (inputs `x`, `x_<input name>`, labels `y`,
`y_<output name>`, or what a `module:function` returns) and counts NaN and Inf
values: how many, in which arrays, in which columns (the last axis) and in which
rows, first ones first. Needs `--data`; skipped without it. It reads the arrays
only: nothing is loaded or run.

On a live training run (`kerascheck.Monitor`), it reads the batch that turned
the loss or the weights non-finite, and names its step and epoch.

When the probes run on such data, training is NaN from the first batch that
holds one, so the NaN training, the failed overfit and the broken gradients the
other rules would measure are folded under this finding as its consequences.

## Why is this bad?
A single NaN in a batch makes the loss NaN, its gradients NaN, and every weight
NaN after one update; an Inf does the same through `inf - inf` or `0 * inf`.
The model is not at fault, and lowering the learning rate or clipping
gradients does nothing. Missing values read as NaN, a division by zero or a log
of zero in preprocessing are the usual sources.

## How to fix
Clean the data before training: drop or impute the rows that hold NaN/Inf, and
fix the preprocessing step that made them.

## Example
```python
x = pandas.read_csv("train.csv").values  # missing values become NaN
model.fit(x, y)
```
Use instead:
```python
keep = np.isfinite(x).all(axis=1) & np.isfinite(y).all(axis=-1)
model.fit(x[keep], y[keep])
```
"""
import numpy as np

from kerascheck.rule import Rule, Skip

RULE = Rule(name="nonfinite-data", code="KC303", severity="error", tier="spec", needs=("arrays",))

MAX_ROWS = 5


def arrays_of(raw) -> list:
    """(name, array) for every array of --data, inputs first."""
    named = [(k, v) for k, v in sorted(raw.xs.items())] + [(f"x[{i}]", v) for i, v in enumerate(raw.positional_x)]
    named += [(k, v) for k, v in sorted(raw.ys.items())] + [(f"y[{i}]", v) for i, v in enumerate(raw.positional_y)]
    return named


def check(facts):
    raw = facts.data
    if raw is None:
        raise Skip("needs --data: kerascheck only judges data it is given")
    found = []
    for name, a in arrays_of(raw):
        a = np.asarray(a)
        if a.dtype.kind not in "fc" or a.size == 0:
            continue
        bad = ~np.isfinite(a)
        if not bad.any():
            continue
        nan, inf = int(np.count_nonzero(np.isnan(a))), int(np.count_nonzero(np.isinf(a)))
        per_row = bad.reshape(len(a), -1).any(axis=1) if a.ndim else bad.reshape(1)
        rows = np.flatnonzero(per_row)
        columns = np.flatnonzero(bad.reshape(-1, a.shape[-1]).any(axis=0)) if a.ndim >= 2 else np.array([], int)
        found.append({"array": name, "nan": nan, "inf": inf, "examples": int(len(a)) if a.ndim else 1,
                      "rows_affected": int(len(rows)), "first_rows": rows[:MAX_ROWS].tolist(),
                      "columns": columns[:20].tolist(), "columns_affected": int(len(columns))})
    if not found:
        return
    parts = []
    for f in found:
        what = " and ".join(p for p in (f"{f['nan']} NaN" if f["nan"] else "", f"{f['inf']} Inf" if f["inf"] else "")
                            if p)
        where = f"{f['rows_affected']} of {f['examples']} rows"
        if f["columns"]:
            cols = ", ".join(map(str, f["columns"][:8])) + (" ..." if f["columns_affected"] > 8 else "")
            where += f", column{'s' if f['columns_affected'] > 1 else ''} {cols}"
        rows = ", ".join(map(str, f["first_rows"])) + (", ..." if f["rows_affected"] > MAX_ROWS else "")
        parts.append(f"{what} in '{f['array']}' ({where}; first rows {rows})")
    total = sum(f["nan"] + f["inf"] for f in found)
    yield RULE.finding(
        layer=None,
        message=f"{getattr(raw, 'described_as', '--data')} holds {total} non-finite value{'s' if total != 1 else ''}: "
                + "; ".join(parts)
                + ". Any batch that holds one makes the loss, the gradients and then every weight NaN, "
                  "whatever the model.",
        fix="Clean the data before training: keep = np.isfinite(x).reshape(len(x), -1).all(axis=1); "
            "x, y = x[keep], y[keep] (or impute the values), and fix the step that made them.",
        evidence={"arrays": found, "data_source": raw.source, "kind": "nonfinite"},
    )
