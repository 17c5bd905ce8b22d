"""Are kerascheck's verdicts the same on an idle machine and a busy one? (issue 20)

    python bench/determinism.py                  # 12 corpus models, 3 runs each way, idle and busy
    python bench/determinism.py --repeats 2 --models vae,mnist_convnet

Each model of the corpus (bench/corpus; built by `make corpus` or here) is checked `repeats` times
without --data and `repeats` times with it, first on an idle machine, then with two processes
burning a CPU each in the background. A run's verdict is the set of its findings as (rule,
severity, layer) plus its skipped rules; all runs of one model and mode must agree. It prints, per
model, whether they did, and the share of runs whose finding messages were byte-identical to the
first run's (numbers in messages come from the probes, so they too should not move).
"""
from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "corpus"))
import run as corpus  # noqa: E402  (bench/corpus/run.py)

MODELS = ["mnist_convnet", "image_classification_from_scratch", "oxford_pets_segmentation", "addition_rnn",
          "bidirectional_lstm_imdb", "timeseries_classification_transformer", "vit_classifier", "vae",
          "collaborative_filtering", "structured_from_scratch", "timeseries_anomaly_detection", "antirectifier"]


def _burn(stop):
    x = 0
    while not stop.is_set():
        for i in range(100_000):
            x = (x * 31 + i) % 1_000_003


def verdict(report: dict) -> tuple:
    model = report["models"][0]
    findings = tuple(sorted((f["rule"], f["severity"], f["layer"] or "") for f in model["findings"]))
    skipped = tuple(sorted(s["rule"] for s in model["skipped"]))
    return findings, skipped


def messages(report: dict) -> tuple:
    return tuple(sorted(f["message"] for f in report["models"][0]["findings"]))


def check(name: str, mode: str) -> dict | None:
    artifact = corpus.artifacts(name)[0]
    cmd = corpus.command(name, artifact, mode, corpus.load_truth(name))
    code, seconds, _, stdout, stderr = corpus.run_kerascheck(cmd)
    try:
        return {"report": json.loads(stdout), "seconds": seconds}
    except json.JSONDecodeError:
        print(f"  {name} [{mode}]: no report (exit {code}): {stderr.strip()[-200:]}", file=sys.stderr)
        return None


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--burners", type=int, default=2, help="CPU-burning processes for the busy runs")
    args = parser.parse_args(argv)
    names = [n for n in args.models.split(",") if n]
    for name in names:
        built, _, error = corpus.build(name)
        if error:
            print(f"{name}: could not be built: {error}")
            return 2
    results: dict = {}
    for load in ("idle", "busy"):
        stop = multiprocessing.Event()
        burners = [multiprocessing.Process(target=_burn, args=(stop,), daemon=True)
                   for _ in range(args.burners if load == "busy" else 0)]
        for b in burners:
            b.start()
        try:
            for name in names:
                for mode in ("default", "data"):
                    for _ in range(args.repeats):
                        got = check(name, mode)
                        if got is not None:
                            results.setdefault((name, mode), []).append((load, got))
        finally:
            stop.set()
            for b in burners:
                b.join(timeout=5)
    total = same = agreeing = 0
    print(f"{'model':40} {'mode':8} {'runs':>4}  verdicts agree  messages identical  seconds idle/busy")
    for (name, mode), runs in results.items():
        first = runs[0][1]["report"]
        verdicts = {verdict(r["report"]) for _, r in runs}
        identical = sum(1 for _, r in runs if messages(r["report"]) == messages(first))
        idle = [r["seconds"] for load, r in runs if load == "idle"]
        busy = [r["seconds"] for load, r in runs if load == "busy"]
        total += len(runs)
        same += identical
        agreeing += len(verdicts) == 1
        print(f"{name:40} {mode:8} {len(runs):>4}  {'yes' if len(verdicts) == 1 else 'NO':>14}  "
              f"{identical}/{len(runs):<17} {sum(idle) / max(len(idle), 1):5.1f} / {sum(busy) / max(len(busy), 1):5.1f}")
        if len(verdicts) > 1:
            for v in verdicts:
                print(f"    {v}")
    print(f"{agreeing} of {len(results)} model/mode pairs gave one verdict in every run; "
          f"{same} of {total} runs ({same / max(total, 1):.0%}) had messages byte-identical to the first run's")
    return 0 if agreeing == len(results) else 1


if __name__ == "__main__":
    sys.exit(main())
