"""The corpus of real model code: build what is missing, check every model three ways, compare with the truth.

    python bench/corpus/run.py                 # everything (make corpus)
    python bench/corpus/run.py vae captcha_ocr # some models
    python bench/corpus/run.py --build-only    # build, do not check
    python bench/corpus/run.py --rebuild NAME  # build NAME again even if it is up to date

Each model is a folder bench/corpus/models/<name>/ with
- build.py: the upstream example's code as its authors wrote it, plus build(out), which
  trains it a few steps on synthetic data shaped like the example's and saves it (the
  docstring names the upstream path and commit and every change);
- truth.yaml: the findings that are true of the example as written, each with a one-line
  justification, and the rules that may be skipped on it, each with why.

Built models go to bench/corpus/build/<name>/ (not committed), rebuilt when build.py or
lib.py changes. Every saved model (.keras, .h5, SavedModel folder) is checked by the
kerascheck command line three ways: default, --data data.npz, --static. The run fails on:
a model that could not be built, a crash or an internal error, an exit 2 the truth does
not expect, any warning or error the truth does not list, a listed finding that did not
come, and any skip of a rule that could have run (a skip that only says --static or the
missing --data is expected; any other must be in the truth file). RESULTS.md beside this
file gets the table.
"""
from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import statistics
import subprocess
import sys
import time

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
MODELS = os.path.join(HERE, "models")
BUILD = os.path.join(HERE, "build")
MODES = ("default", "data", "static")
SEVERE = ("warning", "error")
TIMEOUT = 900  # seconds per kerascheck run; kerascheck's own --timeout is 600

_BUILD_ONE = r"""
import importlib.util, os, sys
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, sys.argv[3])
name, out = sys.argv[1], sys.argv[2]
spec = importlib.util.spec_from_file_location("corpus_" + name, os.path.join(sys.argv[4], "build.py"))
module = importlib.util.module_from_spec(spec)
sys.modules[spec.name] = module
try:
    spec.loader.exec_module(module)
    module.build(out)
except BaseException as exc:
    import traceback
    traceback.print_exc()
    print("BUILD-ERROR: " + type(exc).__name__ + ": " + " ".join(str(exc).split())[:500], file=sys.stderr)
    sys.exit(1)
"""


@dataclasses.dataclass
class Run:
    """One kerascheck run on one saved model."""

    artifact: str
    mode: str
    command: list
    exit: int
    seconds: float
    peak_mb: float
    report: dict | None
    stderr: str
    problems: list = dataclasses.field(default_factory=list)  # why this run fails the corpus
    expected: list = dataclasses.field(default_factory=list)  # warnings/errors the truth lists
    used: set = dataclasses.field(default_factory=set)  # (kind, index) of the truth entries this run matched

    @property
    def model(self) -> dict:
        return (self.report or {}).get("models", [{}])[0] if self.report else {}


@dataclasses.dataclass
class Entry:
    name: str
    source: str
    built: bool = False
    build_seconds: float = 0.0
    build_error: str = ""
    runs: list = dataclasses.field(default_factory=list)

    @property
    def problems(self) -> list:
        out = [f"build failed: {self.build_error}"] if self.build_error else []
        for run in self.runs:
            out += [f"{os.path.basename(run.artifact)} [{run.mode}]: {p}" for p in run.problems]
        return out


# ------------------------------------------------------------------------------ building


def model_names() -> list[str]:
    return sorted(d for d in os.listdir(MODELS) if os.path.isfile(os.path.join(MODELS, d, "build.py")))


def _fingerprint(name: str) -> str:
    h = hashlib.sha256()
    for path in (os.path.join(MODELS, name, "build.py"), os.path.join(HERE, "lib.py")):
        with open(path, "rb") as f:
            h.update(f.read())
    return h.hexdigest()


def build(name: str, force: bool = False) -> tuple[bool, float, str]:
    """(built now, seconds, error) — the model's build folder holds its saved models and data.npz."""
    out = os.path.join(BUILD, name)
    stamp = os.path.join(out, ".built")
    fingerprint = _fingerprint(name)
    if not force and os.path.exists(stamp) and open(stamp).read() == fingerprint:
        return False, 0.0, ""
    if os.path.isdir(out):
        import shutil

        shutil.rmtree(out)
    os.makedirs(out)
    start = time.monotonic()
    proc = subprocess.run([sys.executable, "-c", _BUILD_ONE, name, out, HERE, os.path.join(MODELS, name)],
                          capture_output=True, text=True, cwd=out, env=_env(), timeout=1800)
    seconds = time.monotonic() - start
    if proc.returncode != 0:
        lines = [l for l in proc.stderr.splitlines() if l.startswith("BUILD-ERROR: ")]
        tail = (proc.stderr or proc.stdout).strip().splitlines()
        return True, seconds, lines[-1][13:] if lines else (tail[-1] if tail else f"exit {proc.returncode}")
    if not artifacts(name):
        return True, seconds, "build() saved no model"
    with open(stamp, "w") as f:
        f.write(fingerprint)
    return True, seconds, ""


def artifacts(name: str) -> list[str]:
    """The saved models a build wrote: .keras and .h5 files, SavedModel folders."""
    out = os.path.join(BUILD, name)
    found = []
    for entry in sorted(os.listdir(out)):
        path = os.path.join(out, entry)
        if os.path.isdir(path) and os.path.exists(os.path.join(path, "saved_model.pb")):
            found.append(path)
        elif entry.endswith((".keras", ".h5")):
            found.append(path)
    return found


def _env() -> dict:
    env = dict(os.environ)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    env["PYTHONHASHSEED"] = "0"
    env.pop("KERASCHECK_DEBUG", None)
    return env


# ------------------------------------------------------------------------------ checking


def load_truth(name: str) -> dict:
    path = os.path.join(MODELS, name, "truth.yaml")
    if not os.path.exists(path):
        return {}
    with open(path) as f:
        truth = yaml.safe_load(f) or {}
    for key in ("findings", "skips", "errors"):
        for item in truth.get(key) or []:
            if not str(item.get("why", "")).strip():
                raise SystemExit(f"{path}: every entry of {key} needs a why (the justification)")
    return truth


def command(name: str, artifact: str, mode: str, truth: dict) -> list:
    cmd = [sys.executable, "-m", "kerascheck", artifact, "--format", "json", "--no-html", "--fail-on", "error"]
    build_py = os.path.join(MODELS, name, "build.py")
    if mode == "static":
        cmd.append("--static")
    elif truth.get("custom_objects", True):
        cmd += ["--custom-objects", build_py]
    data = os.path.join(BUILD, name, "data.npz")
    if mode == "data":
        cmd += ["--data", data]
    cmd += [str(a) for a in truth.get("args") or []]
    return cmd


def run_kerascheck(cmd: list) -> tuple[int, float, float, str, str]:
    """(exit, wall seconds, peak RSS in MiB of kerascheck and its workers, stdout, stderr)."""
    import tempfile

    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        start = time.monotonic()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, cwd=ROOT, env=_env())
        try:
            _, status, usage = _wait4(proc, TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, status, usage = os.wait4(proc.pid, 0)
            status = -9
        seconds = time.monotonic() - start
        out.seek(0)
        err.seek(0)
        code = os.waitstatus_to_exitcode(status) if status != -9 else -9
        # wait4's maxrss covers the process and every descendant it waited for (the workers).
        return code, seconds, usage.ru_maxrss / 1024.0, out.read(), err.read()


def _wait4(proc, timeout: float):
    deadline = time.monotonic() + timeout
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            proc.returncode = 0  # reaped here; keep Popen from waiting again
            return pid, status, usage
        if time.monotonic() > deadline:
            raise subprocess.TimeoutExpired(proc.args, timeout)
        time.sleep(0.05)


def schema_errors(report: dict) -> list:
    """Where a JSON report departs from the contract in docs/report.schema.json (jsonschema comes with
    the test extras; without it the reports are judged on their findings alone)."""
    try:
        import jsonschema
    except ImportError:
        return []
    global _VALIDATOR
    if _VALIDATOR is None:
        with open(os.path.join(ROOT, "docs", "report.schema.json")) as fh:
            _VALIDATOR = jsonschema.Draft7Validator(json.load(fh))
    return [f"$.{'.'.join(str(p) for p in e.absolute_path)}: {e.message[:200]}"
            for e in _VALIDATOR.iter_errors(report)][:5]


_VALIDATOR = None


def _applies(item: dict, artifact: str, mode: str) -> bool:
    files = item.get("files")
    modes = item.get("modes")
    return (not files or os.path.basename(artifact) in files) and (not modes or mode in modes)


def _auto_skip(reason: str, mode: str) -> bool:
    """Skips any run of this kind must make: --static, no --data, a file holds no live run."""
    if mode == "static" and reason.startswith("--static runs spec-tier rules only"):
        return True
    if mode != "data" and reason.startswith("needs --data"):
        return True
    return reason.startswith("needs a live training run")


def judge(run: Run, truth: dict, spec_rules: set) -> None:
    """Fill run.problems: what in this run the truth does not account for."""
    if run.exit == -9:
        run.problems.append(f"timed out after {TIMEOUT} s")
        return
    if run.report is None:
        line = run.stderr.strip().splitlines()[-1] if run.stderr.strip() else f"exit {run.exit}, no JSON"
        run.problems.append(f"crashed: {line}")
        return
    if "Traceback (most recent call last)" in run.stderr:
        run.problems.append("a traceback on stderr")
    for error in schema_errors(run.report):
        run.problems.append(f"the report breaks docs/report.schema.json: {error}")
    model = run.model
    errors = [e["message"] for e in model.get("errors", [])]
    allowed = [e for e in truth.get("errors") or [] if _applies(e, run.artifact, run.mode)]
    for message in errors:
        if "internal error" in message:
            run.problems.append(f"internal error: {message}")
        elif not any(e["message"] in message for e in allowed):
            run.problems.append(f"error the truth does not expect: {message}")
    if run.exit == 2 and not errors:
        run.problems.append("exit 2 without an error in the report")
    findings = model.get("findings", [])
    listed = [f for f in truth.get("findings") or [] if _applies(f, run.artifact, run.mode)]

    def matches(item, finding):
        return item["rule"] == finding["rule"] and item.get("layer", finding["layer"]) == finding["layer"] and \
            item.get("severity", finding["severity"]) == finding["severity"]

    all_listed = truth.get("findings") or []
    for finding in findings:
        for k, item in enumerate(all_listed):
            if _applies(item, run.artifact, run.mode) and matches(item, finding):
                run.used.add(("findings", k))
        if finding["severity"] not in SEVERE:
            continue
        if any(matches(item, finding) for item in listed):
            run.expected.append(finding)
        else:
            where = f" (layer {finding['layer']})" if finding["layer"] else ""
            run.problems.append(f"false {finding['severity']}: {finding['rule']}{where}: {finding['message']}")
    for item in listed:
        if run.mode == "static" and item["rule"] not in spec_rules:
            continue
        if item.get("required", True) and not any(matches(item, f) for f in findings):
            where = f" (layer {item['layer']})" if item.get("layer") else ""
            run.problems.append(f"missed: {item['rule']}{where}, listed as true: {item['why']}")
    skips = [s for s in truth.get("skips") or [] if _applies(s, run.artifact, run.mode)]
    all_skips = truth.get("skips") or []
    for skip in model.get("skipped", []):
        if _auto_skip(skip["reason"], run.mode):
            continue
        for k, s in enumerate(all_skips):
            if _applies(s, run.artifact, run.mode) and s["rule"] == skip["rule"] and s.get("reason", "") in skip["reason"]:
                run.used.add(("skips", k))
        if not any(s["rule"] == skip["rule"] and s.get("reason", "") in skip["reason"] for s in skips):
            run.problems.append(f"skipped {skip['rule']}: {skip['reason']}")


def spec_rule_names() -> set:
    sys.path.insert(0, ROOT)
    from kerascheck.engine import all_rules

    return {r.name for r in all_rules() if r.tier == "spec"}


def check(name: str, truth: dict, spec_rules: set, modes=MODES, log=print) -> list[Run]:
    runs = []
    for artifact in artifacts(name):
        for mode in modes:
            if mode == "data" and not os.path.exists(os.path.join(BUILD, name, "data.npz")):
                continue
            cmd = command(name, artifact, mode, truth)
            code, seconds, peak, stdout, stderr = run_kerascheck(cmd)
            try:
                report = json.loads(stdout) if stdout.strip() else None
            except json.JSONDecodeError:
                report = None
            run = Run(artifact, mode, cmd, code, seconds, peak, report, stderr)
            if stdout.strip():  # kept beside the build, for writing and reviewing truth files
                with open(os.path.join(BUILD, name, f"{os.path.basename(artifact)}.{mode}.json"), "w") as f:
                    f.write(stdout)
            judge(run, truth, spec_rules)
            runs.append(run)
            log(f"  {os.path.basename(artifact)} [{mode}] exit {code} in {seconds:.1f} s, {peak:.0f} MiB"
                + (f": {len(run.problems)} problem(s)" if run.problems else ""))
            for p in run.problems:
                log(f"    - {p[:300]}")
    return runs


# ------------------------------------------------------------------------------ results


def _source(name: str) -> str:
    """The first line of build.py's docstring: which example this is."""
    import ast

    with open(os.path.join(MODELS, name, "build.py")) as f:
        doc = ast.get_docstring(ast.parse(f.read())) or name
    return doc.strip().splitlines()[0]


def write_results(entries: list[Entry], path: str) -> None:
    runs = [r for e in entries for r in e.runs]
    per_model = [sum(r.seconds for r in e.runs) for e in entries if e.runs]
    default_times = [r.seconds for r in runs if r.mode == "default"]
    crashes = sum(1 for r in runs if any(p.startswith(("crashed", "internal error", "a traceback", "timed out"))
                                         for p in r.problems))
    false = sum(1 for r in runs for p in r.problems if p.startswith("false "))
    skips = sum(1 for r in runs for p in r.problems if p.startswith("skipped "))
    missed = sum(1 for r in runs for p in r.problems if p.startswith("missed"))
    failed_builds = sum(1 for e in entries if e.build_error)
    lines = ["# The corpus of real model code", "",
             "Written by `make corpus` (`python bench/corpus/run.py`); do not edit by hand. Each model is built",
             "from an upstream example or KerasHub's tests (bench/corpus/models/<name>/build.py names the path,",
             "commit and every change) and checked three ways: default, `--data data.npz`, `--static`.",
             f"Checked at {_commit()}.", "",
             f"- models: {len(entries)} ({failed_builds} could not be built), saved models checked: "
             f"{len({r.artifact for r in runs})}, kerascheck runs: {len(runs)}",
             f"- crashes and internal errors: {crashes}",
             f"- false warnings and errors: {false}",
             f"- unjustified skips: {skips}",
             f"- true findings missed: {missed}",
             f"- warnings and errors that the truth files justify: "
             f"{sum(len(r.expected) for r in runs)}"]
    if per_model:
        lines.append(f"- time per model (all its runs): median {statistics.median(per_model):.0f} s, worst "
                     f"{max(per_model):.0f} s; one default check: median {statistics.median(default_times):.0f} s, "
                     f"worst {max(default_times):.0f} s")
        lines.append(f"- peak memory of one check (kerascheck and its worker): median "
                     f"{statistics.median(r.peak_mb for r in runs):.0f} MiB, worst {max(r.peak_mb for r in runs):.0f} MiB")
    lines += ["", "| model | source | saved | exit (default / data / static) | seconds | peak MiB | rules run | "
                  "skipped | true warnings and errors | problems |", "|---|---|---|---|---|---|---|---|---|---|"]
    for e in entries:
        if not e.runs:
            lines.append(f"| {e.name} | {e.source} | - | - | - | - | - | - | - | {'; '.join(e.problems) or '-'} |")
            continue
        for artifact in dict.fromkeys(r.artifact for r in e.runs):
            rs = {r.mode: r for r in e.runs if r.artifact == artifact}
            exits = " / ".join(str(rs[m].exit) if m in rs else "-" for m in MODES)
            secs = " / ".join(f"{rs[m].seconds:.0f}" if m in rs else "-" for m in MODES)
            peak = max(r.peak_mb for r in rs.values())
            ran = " / ".join(_rules_run(rs[m]) if m in rs else "-" for m in MODES)
            skipped = " / ".join(str(len(rs[m].model.get("skipped", []))) if m in rs else "-" for m in MODES)
            true = sorted({f"{f['rule']} ({f['severity']})" for r in rs.values() for f in r.expected})
            probs = sum(len(r.problems) for r in rs.values())
            lines.append(f"| {e.name} | {e.source} | {os.path.basename(artifact)} | {exits} | {secs} | {peak:.0f} | "
                         f"{ran} | {skipped} | {', '.join(true) or '-'} | {probs or '-'} |")
    lines += ["", "## Per model", ""]
    for e in entries:
        lines.append(f"### {e.name}")
        lines.append("")
        lines.append(e.source)
        lines.append("")
        stale = _stale(e)
        if stale:
            lines.append(f"- truth entries no run matched (kerascheck no longer does this): {'; '.join(stale)}")
        if e.build_error:
            lines.append(f"- **could not be built**: {e.build_error}")
        for r in e.runs:
            model = r.model
            head = f"- `{os.path.basename(r.artifact)}` {r.mode}: exit {r.exit}, {r.seconds:.1f} s, {r.peak_mb:.0f} MiB"
            lines.append(head)
            for f in model.get("findings", []):
                if f["severity"] in SEVERE:
                    tag = "true" if f in r.expected else "**false**"
                    lines.append(f"  - {tag} {f['severity']} {f['rule']}"
                                 f"{' (' + f['layer'] + ')' if f['layer'] else ''}: {_short(f['message'])}")
            for s in model.get("skipped", []):
                if not _auto_skip(s["reason"], r.mode):
                    lines.append(f"  - skipped {s['rule']}: {_short(s['reason'])}")
            for p in r.problems:
                if not p.startswith(("false ", "skipped ")):
                    lines.append(f"  - **{_short(p)}**")
        lines.append("")
    with open(path, "w") as f:
        f.write("\n".join(lines).rstrip() + "\n")


RECHECK = "## Re-checked since the full run"


def _commit() -> str:
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                              timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "kerascheck", "rules", "reports"], cwd=ROOT,
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return head + ("+changes" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def write_recheck(entries: list[Entry], path: str) -> None:
    """Models checked again (after a fix) replace their earlier entry in RESULTS.md's re-check section;
    the full run's table above it stays as that run left it, so the file says what each figure is."""
    with open(path) as f:
        text = f.read()
    head, _, tail = text.partition("\n" + RECHECK + "\n")
    blocks = {}
    for block in tail.split("\n### ")[1:]:
        blocks[block.split("\n", 1)[0].strip()] = "### " + block.rstrip() + "\n"
    commit = _commit()
    for e in entries:
        lines = [f"### {e.name}", "", f"checked again at {commit}: "
                 + ("no problems" if not e.problems else f"{len(e.problems)} problem(s)"), ""]
        for r in e.runs:
            lines.append(f"- `{os.path.basename(r.artifact)}` {r.mode}: exit {r.exit}, {r.seconds:.1f} s, "
                         f"{r.peak_mb:.0f} MiB, rules run {_rules_run(r)}")
            for f in r.expected:
                lines.append(f"  - true {f['severity']} {f['rule']}{' (' + f['layer'] + ')' if f['layer'] else ''}: "
                             f"{_short(f['message'])}")
            for skip in r.model.get("skipped", []):
                if not _auto_skip(skip["reason"], r.mode):
                    lines.append(f"  - skipped {skip['rule']}: {_short(skip['reason'])}")
            for p in r.problems:
                lines.append(f"  - **{_short(p)}**")
        blocks[e.name] = "\n".join(lines) + "\n"
    intro = ("Models checked again after the full run above, each with the commit it was checked at; where a "
             "model appears here, this entry replaces its row above.")
    with open(path, "w") as f:
        f.write(head.rstrip() + "\n\n" + RECHECK + "\n\n" + intro + "\n\n"
                + "\n".join(blocks[name] for name in sorted(blocks)))


def _stale(entry: Entry) -> list:
    """Truth entries (findings and skips) that no run of the model matched, for the reviewer."""
    if not entry.runs:
        return []
    truth = load_truth(entry.name)
    used = set().union(*(r.used for r in entry.runs))
    out = []
    for kind in ("findings", "skips"):
        for k, item in enumerate(truth.get(kind) or []):
            if (kind, k) not in used and item.get("required", True) is not False and kind == "skips":
                out.append(f"skip of {item['rule']} ({item.get('reason', '')})")
    return out


def _rules_run(run: Run) -> str:
    model = run.model
    total = len((run.report or {}).get("rules", [])) if run.report else 0
    return str(model.get("rules_run", "?")) if "rules_run" in model else \
        str(total - len(model.get("skipped", []))) if total else "?"


def _short(text: str, limit: int = 400) -> str:
    text = " ".join(str(text).split()).replace("|", "\\|")
    return text if len(text) <= limit else text[:limit - 3] + "..."


# ------------------------------------------------------------------------------ main


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="models to build and check (default: all)")
    parser.add_argument("--build-only", action="store_true")
    parser.add_argument("--rebuild", action="store_true", help="build again even if up to date")
    parser.add_argument("--modes", default=",".join(MODES), help="comma-separated: default,data,static")
    parser.add_argument("--results", default=os.path.join(HERE, "RESULTS.md"),
                        help="where to write the table (only when every model is checked)")
    args = parser.parse_args(argv)
    names = args.names or model_names()
    unknown = [n for n in names if n not in model_names()]
    if unknown:
        print(f"unknown corpus models: {', '.join(unknown)}", file=sys.stderr)
        return 2
    modes = tuple(m for m in args.modes.split(",") if m)
    spec_rules = spec_rule_names()
    entries = []
    for name in names:
        entry = Entry(name, _source(name))
        print(f"{name}: {entry.source}", flush=True)
        try:
            entry.built, entry.build_seconds, entry.build_error = build(name, force=args.rebuild)
        except subprocess.TimeoutExpired:
            entry.build_error = "the build took over 30 minutes"
        if entry.built:
            print(f"  built in {entry.build_seconds:.0f} s" + (f": FAILED {entry.build_error}" if entry.build_error
                                                              else ""), flush=True)
        if not entry.build_error and not args.build_only:
            entry.runs = check(name, load_truth(name), spec_rules, modes, log=lambda s: print(s, flush=True))
        entries.append(entry)
    failed = [e for e in entries if e.problems]
    if not args.build_only and not args.names and modes == MODES:
        write_results(entries, args.results)
        print(f"wrote {os.path.relpath(args.results, ROOT)}")
    elif not args.build_only and modes == MODES and os.path.exists(args.results):
        write_recheck(entries, args.results)
        print(f"added the re-check of {len(entries)} model(s) to {os.path.relpath(args.results, ROOT)}")
    print(f"{len(entries)} models, {len(failed)} with problems"
          + (": " + ", ".join(e.name for e in failed) if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
