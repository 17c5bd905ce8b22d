"""Speed of checking a SavedModel folder, as ratios against baselines measured in the same run.

    python bench/savedmodel.py [--repeat 3]

On keras.applications.ResNet50(weights=None) exported with model.export(), each
measurement in a fresh process, timed after the imports (TensorFlow, which every one
of them pays, and kerascheck's own modules), which would otherwise hide the differences:
  (a) read every variable with tf.train.load_checkpoint;
  (b) kerascheck's static part: read the folder into a spec, audit every function,
      run the spec-tier rules (unhealthy-weights reads every served weight);
  (c) tf.saved_model.load plus one call of the serving signature (batch of 1);
  (d) the whole check: every rule, the graph tier (import, analysis) and the
      batch-dependence probe (the signature called on 4 examples, then one at a time).
Targets: b/a <= 2 and d/c <= 1. The whole command lines (fresh process, TensorFlow
import, kerascheck's worker) are timed too: `kerascheck --static` and `kerascheck`.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
CACHE = os.path.join(tempfile.gettempdir(), "kerascheck-bench")

PRELUDE = """
import json, os, sys, time
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import numpy as np
import tensorflow as tf
path = sys.argv[1]
t0 = time.perf_counter()
"""
FLOOR = PRELUDE + """
reader = tf.train.load_checkpoint(os.path.join(path, "variables", "variables"))
for key in reader.get_variable_to_shape_map():
    reader.get_tensor(key)
print(json.dumps({"seconds": time.perf_counter() - t0}))
"""
LOAD_AND_CALL = PRELUDE + """
loaded = tf.saved_model.load(path)
fn = loaded.signatures["serving_default"]
spec = next(iter(fn.structured_input_signature[1].values()))
x = np.random.default_rng(0).standard_normal([1] + spec.shape.as_list()[1:]).astype("float32")
fn(tf.constant(x))
print(json.dumps({"seconds": time.perf_counter() - t0}))
"""
KERASCHECK = PRELUDE + """
from kerascheck.engine import check_file, select_rules
from kerascheck.options import Options
import kerascheck.formats.savedmodel.serving, kerascheck.tiers.graph.build, kerascheck.tiers.probe.run  # kerascheck's own modules: imported, like TensorFlow
static = sys.argv[2] == "static"
rules = select_rules()
t0 = time.perf_counter()
result = check_file(path, [r for r in rules if r.tier == "spec"] if static else rules, static=static,
                    options=Options(device="cpu"))
assert not result.errors, result.errors
print(json.dumps({"seconds": time.perf_counter() - t0, "tiers": result.tiers,
                  "findings": [(f.rule, f.layer) for f in result.findings],
                  "graph": getattr(result.graph, "seconds", None), "ops": getattr(result.graph, "ops", None),
                  "suspects": len(getattr(result.graph, "suspects", []) or [])}))
"""


def export(folder: str) -> str:
    path = os.path.join(folder, "resnet50_export")
    if not os.path.exists(os.path.join(path, "saved_model.pb")):
        code = ("import sys, keras; keras.utils.set_random_seed(0); "
                "keras.applications.ResNet50(weights=None).export(sys.argv[1], verbose=False)")
        subprocess.run([sys.executable, "-c", code, path], check=True, capture_output=True)
    return path


def timed(code: str, *args: str) -> dict:
    out = subprocess.run([sys.executable, "-c", code, *args], check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def wall(*args: str) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "kerascheck", *args], capture_output=True)
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    os.makedirs(CACHE, exist_ok=True)
    path = export(CACHE)
    size = sum(os.path.getsize(os.path.join(r, f)) for r, _, fs in os.walk(path) for f in fs)
    runs = {k: [] for k in "abcd"}
    last = {}
    for _ in range(args.repeat):
        runs["a"].append(timed(FLOOR, path)["seconds"])
        last["b"] = timed(KERASCHECK, path, "static")
        runs["b"].append(last["b"]["seconds"])
        runs["c"].append(timed(LOAD_AND_CALL, path)["seconds"])
        last["d"] = timed(KERASCHECK, path, "all")
        runs["d"].append(last["d"]["seconds"])
    med = {k: statistics.median(v) for k, v in runs.items()}
    print(f"ResNet50 exported with model.export() ({size / 2**20:.0f} MiB), median of {args.repeat} fresh processes, "
          "timed after importing TensorFlow:")
    print(f"  (a) tf.train.load_checkpoint reads every variable      {med['a']:6.2f} s")
    print(f"  (b) kerascheck static part (spec, audit, spec rules)   {med['b']:6.2f} s")
    print(f"  (c) tf.saved_model.load + one call of the signature    {med['c']:6.2f} s")
    print(f"  (d) kerascheck, every rule (graph tier, batch probe)   {med['d']:6.2f} s")
    print(f"  b/a = {med['b'] / med['a']:.2f}   (target <= 2.0)")
    print(f"  d/c = {med['d'] / med['c']:.2f}   (target <= 1.0)")
    d = last["d"]
    print(f"  (d) tiers {d['tiers']}; graph of {d['ops']} ops, {d['suspects']} suspects; seconds {d['graph']}; "
          f"findings {d['findings']}")
    print("Whole command lines (fresh process, imports, kerascheck's worker process), one run each:")
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", FLOOR, path], check=True, capture_output=True)
    floor = time.perf_counter() - start
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", LOAD_AND_CALL, path], check=True, capture_output=True)
    load = time.perf_counter() - start
    static, whole = wall(path, "--static", "--no-html"), wall(path, "--no-html")
    print(f"  python: load_checkpoint, read all      {floor:6.2f} s")
    print(f"  kerascheck --static                    {static:6.2f} s   ratio {static / floor:.2f}")
    print(f"  python: tf.saved_model.load + 1 call   {load:6.2f} s")
    print(f"  kerascheck                             {whole:6.2f} s   ratio {whole / load:.2f}")


if __name__ == "__main__":
    main()
