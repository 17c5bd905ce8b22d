"""Figures over the hostile and bad-input corpus: cases, worst time, peak memory, tracebacks.

    python bench/hostile.py

Runs tests/test_hostile.py (one test per CVE, all tiers) and tests/test_bad_input.py
(the static tier under a 3 GiB address-space limit) with a log of every kerascheck
process they start, then summarises it. The tests themselves assert that no payload
ran (marker files) and that each case ended in the right finding or a clean exit 2.
"""
import json
import os
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main():
    with tempfile.TemporaryDirectory() as tmp:
        log = os.path.join(tmp, "corpus.jsonl")
        proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                               "tests/test_hostile.py", "tests/test_bad_input.py"],
                              cwd=ROOT, env={**os.environ, "KERASCHECK_CORPUS_LOG": log},
                              capture_output=True, text=True)
        print(proc.stdout.strip().splitlines()[-1])
        runs = [json.loads(line) for line in open(log)] if os.path.exists(log) else []
    if not runs:
        sys.exit("no runs were logged")
    slowest = max(runs, key=lambda r: r["seconds"])
    biggest = max(runs, key=lambda r: r["peak_mb"])
    print(f"{len(runs)} kerascheck runs over the corpus")
    print(f"  tracebacks: {sum(r['traceback'] for r in runs)}")
    print(f"  exit codes: {sorted({r['exit'] for r in runs})}")
    print(f"  worst time: {slowest['seconds']:.1f} s ({slowest['case']})")
    print(f"  peak memory (kerascheck and its workers): {biggest['peak_mb']} MiB ({biggest['case']})")
    sys.exit(proc.returncode)


if __name__ == "__main__":
    main()
