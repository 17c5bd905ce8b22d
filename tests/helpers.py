"""Shared helpers for tests: running the CLI, saving models, and crafting hostile archives."""
from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
import zipfile
from dataclasses import dataclass, field
from typing import Any, Callable

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def kerascheck(*args: str, cwd: str | None = None, env: dict | None = None, timeout: float = 120):
    """Run the real console entry point in a fresh process; returns CompletedProcess."""
    full_env = {**os.environ, "NO_COLOR": "1", **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "kerascheck", *args],
        capture_output=True, text=True, cwd=cwd or ROOT, env=full_env, timeout=timeout,
    )


def save(model, directory, name: str, fmt: str = "keras") -> str:
    path = os.path.join(str(directory), f"{name}.{fmt}")
    model.save(path)
    return path


def rewrite_archive(src: str, dst: str, *, config: Callable[[dict], Any] | None = None,
                    extra: dict[str, bytes] | None = None, drop: tuple[str, ...] = ()) -> str:
    """Copy a .keras archive, editing config.json and adding members, as an attacker would."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for info in zin.infolist():
            if info.filename in drop:
                continue
            data = zin.read(info)
            if info.filename == "config.json" and config is not None:
                cfg = json.loads(data)
                result = config(cfg)
                data = json.dumps(cfg if result is None else result).encode()
            zout.writestr(info.filename, data)
        for name, data in (extra or {}).items():
            zout.writestr(name, data)
    return dst


def layer_config(cfg: dict, name: str) -> dict:
    for entry in cfg["config"]["layers"]:
        if entry["config"].get("name") == name:
            return entry
    raise KeyError(name)


@dataclass
class Expect:
    layer: str | None
    severity: str
    message: str  # a regular expression searched in the message
    evidence: dict = field(default_factory=dict)  # key -> exact value, or (low, high) bounds


@dataclass
class Case:
    name: str
    build: Callable  # (tmp_dir, fmt) -> keras.Model to save, or the path of a crafted file
    expect: list = field(default_factory=list)
    formats: tuple = ("keras",)
    skipped: str | None = None  # a regular expression the skip reason must match
    data: Callable | None = None  # (tmp_dir) -> path of an .npz for --data


def bad(name, build, *expect, formats=("keras",), skipped=None, data=None):
    return Case(name, build, list(expect), formats, skipped, data)


def good(name, build, formats=("keras",), data=None):
    return Case(name, build, [], formats, None, data)


ANY_LAYER = "<any layer>"


def probe_options(**overrides):
    """Options for probe tests: the real defaults, with a budget that a loaded CI machine still meets."""
    from kerascheck.modeltier import Options

    return Options(**{"budget": 120.0, **overrides})


def check_evidence(evidence: dict, wanted: dict) -> list[str]:
    problems = []
    for key, want in wanted.items():
        got = evidence.get(key)
        if isinstance(want, tuple):
            if not (isinstance(got, (int, float)) and want[0] <= got <= want[1]):
                problems.append(f"evidence {key}={got!r} not within {want}")
        elif got != want:
            problems.append(f"evidence {key}={got!r}, expected {want!r}")
    return problems


def matches(finding, expect: Expect) -> bool:
    return ((expect.layer == ANY_LAYER or finding.layer == expect.layer) and finding.severity == expect.severity
            and re.search(expect.message, finding.message) is not None
            and not check_evidence(finding.evidence, expect.evidence))
