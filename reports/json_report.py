"""JSON exactly as docs/report.schema.json gives it; numbers that JSON cannot hold become strings.

--format jsonl writes one model per line, each an object of the schema's definitions/model, in
the order the checks end (a pipeline can act on each as it arrives)."""
from __future__ import annotations

import json
import math

import numpy as np

from kerascheck.version import __version__


def json_safe(value):
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, np.ndarray):
        return json_safe(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    return value


def to_json_dict(report) -> dict:
    return {"tool": "kerascheck", "version": __version__, "models": [json_safe(m.to_dict()) for m in report.models]}


def render_json(report) -> str:
    return json.dumps(to_json_dict(report), indent=2, allow_nan=False) + "\n"


def render_model_line(model) -> str:
    """One line of --format jsonl: the model's object, as in the JSON report's "models"."""
    return json.dumps(json_safe(model.to_dict()), allow_nan=False, separators=(",", ":")) + "\n"


def render_jsonl(report) -> str:
    return "".join(render_model_line(m) for m in report.models)
