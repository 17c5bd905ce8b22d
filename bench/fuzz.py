"""The long fuzz run: the strategies of tests/test_fuzz.py with many more cases, and a tally.

    python bench/fuzz.py [--cases 2000]

Prints how many cases each family ran and how they ended: clean, rejected with one
line (exit 2), or crashed (anything else; the kinds are listed). Exits 1 on a crash.
"""
import argparse
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests"))

from hypothesis import HealthCheck, given, settings  # noqa: E402

from fuzzing import Outcomes, byte_mutations, check_bytes, config_mutations, weight_mutations  # noqa: E402


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--cases", type=int, default=2000, help="cases per family")
    args = parser.parse_args()
    total = Outcomes()
    for name, strategy in (("bytes", byte_mutations()), ("config", config_mutations()),
                           ("weights", weight_mutations())):
        outcomes = Outcomes()
        crashes = []

        @settings(max_examples=args.cases, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        @given(strategy)
        def run(data):
            try:
                check_bytes(data, ".keras", outcomes)
            except Exception as exc:  # tallied, not raised: the run reports every kind it finds
                outcomes["crashed"] += 1
                crashes.append(f"{type(exc).__name__}: {' '.join(str(exc).split())[:200]}")

        start = time.monotonic()
        run()
        total.update(outcomes)
        print(f"{name:8s} {sum(outcomes.values()):6d} cases in {time.monotonic() - start:6.1f} s: "
              f"{outcomes['clean']} clean, {outcomes['rejected']} rejected with one line, "
              f"{outcomes['stopped']} stopped by the timeout, {outcomes['crashed']} crashed")
        for crash in sorted(set(crashes))[:10]:
            print("    crash:", crash)
    print(f"total    {sum(total.values()):6d} cases, {total['crashed']} crashed")
    sys.exit(1 if total["crashed"] else 0)


if __name__ == "__main__":
    main()
