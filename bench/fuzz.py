"""The long fuzz run: the strategies of tests/test_fuzz.py with many more cases, and a tally.

    python bench/fuzz.py [--cases 2500]

Four families, --cases each (10,000 by default): mutated bytes, mutated config.json,
mutated weights, and hostile configs (a payload put anywhere in a .keras config or a
legacy .h5 file's model_config or training_config). Prints how each case ended: clean,
flagged (hostile files: an unsafe-code error), rejected with one line (exit 2), stopped
by the timeout (a hang), crashed (a traceback or an internal error: the kinds are
listed), missed (a hostile file passed unflagged), ran (a payload's marker file
appeared). Exits 1 unless tracebacks, hangs, misses and payload executions are all 0.
"""
import argparse
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests"))

from hypothesis import HealthCheck, given, settings  # noqa: E402

from fuzzing import (Outcomes, byte_mutations, check_bytes, config_mutations, hostile_mutations,  # noqa: E402
                     weight_mutations)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--cases", type=int, default=2500, help="cases per family")
    parser.add_argument("--keep", metavar="DIR", help="write every case that was not clean, flagged or rejected here")
    args = parser.parse_args()
    if args.keep:
        os.makedirs(args.keep, exist_ok=True)
    total = Outcomes()
    for name, strategy, hostile in (("bytes", byte_mutations(), False), ("config", config_mutations(), False),
                                    ("weights", weight_mutations(), False), ("hostile", hostile_mutations(), True)):
        outcomes = Outcomes()
        crashes = []

        @settings(max_examples=args.cases, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        @given(strategy)
        def run(data):
            payload, suffix = data if hostile else (data, ".keras")
            try:
                outcome = check_bytes(payload, suffix, outcomes, hostile=hostile)
            except Exception as exc:  # tallied, not raised: the run reports every kind it finds
                outcomes["crashed"] += 1
                crashes.append(f"{type(exc).__name__}: {' '.join(str(exc).split())[:200]}")
                outcome = "crashed"
            if args.keep and outcome not in ("clean", "flagged", "rejected"):
                with open(os.path.join(args.keep, f"{name}-{outcome}-{sum(outcomes.values())}{suffix}"), "wb") as fh:
                    fh.write(payload)

        start = time.monotonic()
        run()
        total.update(outcomes)
        extra = (f"{outcomes['flagged']} flagged, {outcomes['missed']} missed, {outcomes['ran']} payloads ran, "
                 if hostile else "")
        print(f"{name:8s} {sum(outcomes.values()):6d} cases in {time.monotonic() - start:6.1f} s: "
              f"{outcomes['clean']} clean, {extra}{outcomes['rejected']} rejected with one line, "
              f"{outcomes['stopped']} stopped by the timeout, {outcomes['crashed']} crashed", flush=True)
        for crash in sorted(set(crashes))[:10]:
            print("    crash:", crash)
    bad = total["crashed"] + total["stopped"] + total["missed"] + total["ran"]
    print(f"total    {sum(total.values()):6d} cases: tracebacks {total['crashed']}, hangs {total['stopped']}, "
          f"payload executions {total['ran']}, hostile files missed {total['missed']}")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
