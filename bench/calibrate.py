"""Calibration of the probe rules' thresholds on the healthy zoo (tests/zoo.py).

    python bench/calibrate.py [--only NAME ...]

Trains every zoo model briefly on its learnable task, checks it with all rules on its
own data and on synthetic data, and prints what the thresholds are set against: the
largest gradient jump over the recent median, the first/last RMS gradient ratio, the
range of update/weight ratios, the largest dead or saturated share, the overfit
outcome, and every finding at warning or error (there must be none). The rules'
docstrings quote these numbers.
"""
import argparse
import math
import os
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests"))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--only", nargs="*", default=None)
    args = parser.parse_args()

    import numpy as np

    import zoo
    from kerascheck.engine import all_rules, check_file
    from kerascheck.tiers.probe.gradients import first_last_ratio, gradient_run, spike_ratios
    from kerascheck.options import Options
    from kerascheck.tiers.probe.gradients import start_ratios

    names = args.only or list(zoo.BUILDERS)
    worst = {"start": 0.0, "jump": 0.0, "ratio": 0.0, "update_lo": math.inf, "update_hi": 0.0, "dead": 0.0, "loud": 0}
    with tempfile.TemporaryDirectory() as tmp:
        print(f"{'model':<18} {'data':<9} {'max jump':>9} {'grad f/l':>9} {'update ratios':>19} {'dead/sat':>9} "
              f"{'overfit':>8} {'start g/w':>9}  loud findings")
        for name in names:
            path, data = zoo.save(name, tmp)
            for label, options in (("--data", Options(data=data, budget=120, custom_objects=(zoo.__file__,))),
                                   ("synthetic", Options(budget=120, custom_objects=(zoo.__file__,)))):
                result = check_file(path, list(all_rules()), options=options)
                probe = result.probe
                run = gradient_run(probe) if probe is not None else None
                jump = float(spike_ratios(run.global_norms).max()) if run is not None and run.steps_done > 4 else 0.0
                ratio = first_last_ratio(probe, run) if run is not None else None
                ratio = ratio[2] if ratio else float("nan")
                ups = [float(np.median([r for r in rs[:10] if r > 0])) for rs in (run.update_ratios.values() if run
                                                                                   else []) if any(r > 0 for r in rs[:10])]
                dead = max([st.get("dead_share", st.get("saturated_share", 0.0))
                            for st in (probe.activations or {}).values()] or [0.0]) if probe else 0.0
                over = probe.overfit if probe else None
                verdict = "ok" if over and over["ok"] else ("-" if over is None else "FAILED")
                start = max(start_ratios(probe).values(), default=0.0) if probe is not None else 0.0
                worst["start"] = max(worst["start"], start)
                loud = [f"{f.rule}({f.severity})" for f in result.findings if f.severity in ("warning", "error")]
                loud += [f"error:{e['message'][:60]}" for e in result.errors]
                lo, hi = (min(ups), max(ups)) if ups else (float("nan"), float("nan"))
                print(f"{name:<18} {label:<9} {jump:>9.3g} {ratio:>9.3g} {lo:>9.2g}..{hi:<9.2g} {dead:>9.2f} "
                      f"{verdict:>8} {start:>9.3g}  {', '.join(loud) or '-'}")
                worst["jump"] = max(worst["jump"], jump)
                worst["ratio"] = max(worst["ratio"], ratio if ratio == ratio else 0.0)
                if ups:
                    worst["update_lo"], worst["update_hi"] = min(worst["update_lo"], lo), max(worst["update_hi"], hi)
                if label == "--data":
                    worst["dead"] = max(worst["dead"], dead)
                worst["loud"] += len(loud)
    print(f"\nover the zoo: largest jump {worst['jump']:.3g}x its recent median (spike threshold 10x); "
          f"largest first/last gradient ratio {worst['ratio']:.3g} (threshold 1000); update ratios "
          f"{worst['update_lo']:.2g} to {worst['update_hi']:.2g} (thresholds 1e-5 and 0.1); largest dead/saturated "
          f"share on --data {worst['dead']:.2f} (threshold 0.5); largest first-steps gradient/kernel ratio "
          f"{worst['start']:.3g} (threshold 100); findings at warning or error: {worst['loud']}")


if __name__ == "__main__":
    main()
