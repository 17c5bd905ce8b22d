"""Wall time of the probe tier, this tree against a baseline kerascheck, on the healthy zoo (issue 20).

    python bench/probe_time.py --baseline-rev f7278e3

The baseline is installed from that revision into a throwaway virtual environment (a git worktree
and `pip install`, once, under /tmp) so both run in fresh processes on the same machine, one after
the other per model. Each run checks a zoo model (tests/zoo.py) with --data and only the probe
rules, so the time is mostly the probes'. It prints the time of each and the ratio now/then: the
overfit experiment's retries at other rates must not double it (they run only when the first run
fails).
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests"))
PROBE_RULES = "nan-in-training,cannot-overfit,batch-dependence,exploding-gradients,vanishing-gradients,dead-units"


def baseline(rev: str) -> str:
    """The python of a virtual environment holding kerascheck at `rev` (made once)."""
    where = os.path.join(tempfile.gettempdir(), f"kerascheck-base-{rev}")
    python = os.path.join(where, "venv", "bin", "python")
    if os.path.exists(python):
        return python
    tree = os.path.join(where, "tree")
    subprocess.run(["git", "-C", ROOT, "worktree", "add", "--force", tree, rev], check=True, capture_output=True)
    subprocess.run([sys.executable, "-m", "venv", os.path.join(where, "venv")], check=True)
    subprocess.run([python, "-m", "pip", "install", "--quiet", tree], check=True)
    return python


def timed(python: str, path: str, data: str, code: str) -> float:
    start = time.monotonic()
    subprocess.run([python, "-m", "kerascheck", path, "--data", data, "--select", PROBE_RULES, "--format", "json",
                    "--custom-objects", code, "--fail-on", "error"], capture_output=True,
                   # not ROOT: `python -m` puts the working directory first on sys.path, and the baseline
                   # must run the kerascheck installed in its own environment, not this tree's
                   cwd=os.path.dirname(path),
                   env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    return time.monotonic() - start


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline-rev", required=True)
    parser.add_argument("--only", nargs="*")
    args = parser.parse_args(argv)
    import zoo

    then_python = baseline(args.baseline_rev)
    ratios = []
    with tempfile.TemporaryDirectory() as tmp:
        print(f"{'model':<18} {'then s':>7} {'now s':>7} {'now/then':>9}")
        for name in args.only or list(zoo.BUILDERS):
            path, data = zoo.save(name, tmp)
            then = timed(then_python, path, data, zoo.__file__)
            now = timed(sys.executable, path, data, zoo.__file__)
            ratios.append(now / then)
            print(f"{name:<18} {then:>7.1f} {now:>7.1f} {now / then:>9.2f}")
    print(f"median now/then {statistics.median(ratios):.2f}, worst {max(ratios):.2f} over {len(ratios)} models")
    return 0


if __name__ == "__main__":
    sys.exit(main())
