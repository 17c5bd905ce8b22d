"""Shared helpers for tests: running the CLI, saving models, and crafting hostile archives."""
from __future__ import annotations

import functools
import json
import os
import re
import subprocess
import sys
import zipfile
from dataclasses import dataclass, field
from typing import Any, Callable

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HEALTHY = os.path.join(ROOT, "examples", "healthy.keras")


# What TensorFlow, absl and Keras print on their own; none of it may reach a user's terminal.
TF_NOISE = ("tensorflow/core", "absl::", "I0000 ", "W0000 ", "E0000 ", "oneDNN", "cuda", "cpu_feature_guard",
            "retracing", "UserWarning", "DeprecationWarning", "WARNING:tensorflow", "WARNING:absl",
            "This TensorFlow binary")


def assert_quiet(stderr: str) -> None:
    noise = [line for line in stderr.splitlines() if any(n in line for n in TF_NOISE)]
    assert noise == [], f"library noise on stderr: {noise[:5]}"


def kerascheck(*args: str, cwd: str | None = None, env: dict | None = None, timeout: float = 120):
    """Run the real console entry point in a fresh process; returns CompletedProcess.

    Every run is also a check that nothing from TensorFlow, absl or Keras reached stderr
    (unless the run asked for --verbose).
    """
    full_env = {**os.environ, "NO_COLOR": "1", **(env or {})}
    proc = subprocess.run(
        [sys.executable, "-m", "kerascheck", *args],
        capture_output=True, text=True, cwd=cwd or ROOT, env=full_env, timeout=timeout,
    )
    if "--verbose" not in args and "-v" not in args:
        assert_quiet(proc.stderr)
    return proc


REPORT_SCHEMA = os.path.join(ROOT, "docs", "report.schema.json")


@functools.cache
def report_validator():
    """A Draft 7 validator of docs/report.schema.json, the published contract of --format json."""
    import jsonschema

    with open(REPORT_SCHEMA) as fh:
        schema = json.load(fh)
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(schema)


def _schema_problems(error, limit: int = 300) -> list[str]:
    """Lines for a schema error: the JSON path of each failing element, why, and where in the schema.

    For a oneOf/anyOf it is the branches whose type the element has (a probes record that breaks
    the record's schema, not "is not null") that say what is wrong, at their own deeper paths.
    """
    if error.context:
        near = [e for e in error.context
                if not (e.validator == "type" and list(e.absolute_path) == list(error.absolute_path))]
        if near:
            return [line for e in near for line in _schema_problems(e, limit)]
    message = error.message if len(error.message) <= limit else error.message[:limit] + " ..."
    return [f"{error.json_path}: {message} (schema {'/'.join(map(str, error.absolute_schema_path))})"]


def json_report(text: str) -> dict:
    """Parse a kerascheck JSON report and check it against docs/report.schema.json.

    Every JSON report a test reads goes through here: the CLI's `--format json` output (stdout or
    --output file) and `Report.to_json()` / `render(report, "json")` in-process. A report that breaks
    the schema fails the test with the JSON path of each element that does not follow it.
    """
    report = json.loads(text)
    errors = sorted(report_validator().iter_errors(report), key=lambda e: [str(p) for p in e.absolute_path])
    problems = [line for e in errors for line in _schema_problems(e)]
    if problems:
        more = f"\n  ... and {len(problems) - 20} more" if len(problems) > 20 else ""
        raise AssertionError("the JSON report does not follow docs/report.schema.json:\n"
                             + "\n".join(f"  {line}" for line in problems[:20]) + more)
    return report


def import_file(path, name: str):
    """Import a Python file as module `name` (not added to sys.modules), the way a user's script would run it."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def wrap(*stack, width: int = 8):
    """keras.Model(Input((width,)) -> each layer in turn): the smallest model around the layers a case is about."""
    import keras

    inp = keras.Input((width,))
    x = inp
    for layer in stack:
        x = layer(x)
    return keras.Model(inp, x)


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


def rewrite_weights(src: str, dst: str, edit: Callable) -> str:
    """Copy a .keras archive with its model.weights.h5 changed by `edit(h5py.File)`."""
    import tempfile

    import h5py

    with tempfile.TemporaryDirectory() as tmp:
        weights = os.path.join(tmp, "w.h5")
        with zipfile.ZipFile(src) as zf, open(weights, "wb") as fh:
            fh.write(zf.read("model.weights.h5"))
        with h5py.File(weights, "a") as f:
            edit(f)
        with open(weights, "rb") as fh:
            data = fh.read()
    return rewrite_archive(src, dst, drop=("model.weights.h5",), extra={"model.weights.h5": data})


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
    options: dict = field(default_factory=dict)  # more Options, such as {"unsafe": True}


def bad(name, build, *expect, formats=("keras",), skipped=None, data=None, options=None):
    return Case(name, build, list(expect), formats, skipped, data, dict(options or {}))


def good(name, build, formats=("keras",), data=None, options=None):
    return Case(name, build, [], formats, None, data, dict(options or {}))


ANY_LAYER = "<any layer>"


def probe_options(**overrides):
    """Options for probe tests: the real defaults, with a budget that a loaded CI machine still meets."""
    from kerascheck.options import Options

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


def run_measured(args: list, *, cwd=None, env=None, timeout: float = 120, preexec_fn=None):
    """Run a command, polling /proc for its peak RSS; returns (CompletedProcess-like, peak MiB, seconds).

    With KERASCHECK_CORPUS_LOG set, one line per run is appended there for bench/hostile.py.
    """
    import time

    start = time.monotonic()
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=cwd or ROOT,
                            env={**os.environ, "NO_COLOR": "1", **(env or {})}, preexec_fn=preexec_fn)
    peak = 0
    while proc.poll() is None:
        for pid in [proc.pid] + _children(proc.pid):
            try:
                with open(f"/proc/{pid}/status") as fh:
                    for line in fh:
                        if line.startswith("VmRSS"):
                            peak = max(peak, int(line.split()[1]) // 1024)
            except OSError:
                pass
        if time.monotonic() - start > timeout:
            proc.kill()
            raise AssertionError(f"{args} did not finish within {timeout} s")
        time.sleep(0.05)
    out, err = proc.communicate()
    seconds = time.monotonic() - start
    if "kerascheck" in " ".join(map(str, args)) and "--verbose" not in args:
        assert_quiet(err)
    log = os.environ.get("KERASCHECK_CORPUS_LOG")
    if log:
        with open(log, "a") as fh:
            fh.write(json.dumps({"case": os.environ.get("PYTEST_CURRENT_TEST", "?").split(" ")[0],
                                 "seconds": seconds, "peak_mb": peak, "exit": proc.returncode,
                                 "traceback": "Traceback" in out + err}) + "\n")
    return subprocess.CompletedProcess(args, proc.returncode, out, err), peak, seconds


def _children(pid: int) -> list:
    """Worker processes of a kerascheck run (their memory counts too)."""
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as fh:
            return [int(p) for p in fh.read().split()]
    except OSError:
        return []


def pixels_npz(tmp, name="pixels.npz", low=0, high=256, examples=64):
    """--data of integer pixel values (0..255 by default) for a 32x32x3 image model, regression targets."""
    import numpy as np

    rng = np.random.default_rng(0)
    path = os.path.join(str(tmp), name)
    np.savez(path, x=rng.integers(low, high, (examples, 32, 32, 3)).astype("float32"),
             y=rng.standard_normal((examples, 1)))
    return path
