"""How often kerascheck's fixes verify, and whether the copies --fix-out writes re-check clean (issue 22).

    python bench/repair.py                 # every model below
    python bench/repair.py --only deep_sigmoid,linear_stack

Builds a collection of buggy models (every rule with a mechanical fix, several bugs per rule, and
models with two bugs at once), each with data shaped like its task, in bench/repair/build/. Each is
checked once with --data and --fix-out, and the written copy is checked again with the same data.
It prints, per model: the findings at warning or error (after folding), the fixes tried and how many
verified, whether a copy was written, whether the re-check is clean of the rules that were repaired
in the file, and the seconds the interventions cost beside the whole check's. Then the shares over
the collection, as the README's table quotes them.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
BUILD = os.path.join(HERE, "repair", "build")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def _heart(rng, n=300):
    import numpy as np

    x = np.stack([rng.integers(29, 78, n), rng.integers(0, 2, n), rng.integers(94, 201, n),
                  rng.integers(126, 565, n), rng.integers(0, 2, n), rng.integers(71, 203, n),
                  rng.integers(0, 2, n)], axis=1).astype("float32")
    return x, rng.integers(0, 2, (n, 1)).astype("float32")


def models():
    """name -> (what is wrong, builder returning (model, data dict))."""
    import keras
    import numpy as np
    from keras import layers

    def rng():
        keras.utils.set_random_seed(0)
        return np.random.default_rng(0)

    def mlp(n_in, hidden, out, act="relu", out_act=None, **kw):
        return keras.Sequential([keras.Input((n_in,))] + [layers.Dense(h, activation=act, **kw) for h in hidden]
                                + [layers.Dense(out, activation=out_act)])

    def tabular_raw():
        r = rng()
        x, y = _heart(r)
        m = mlp(7, [32], 1, out_act="sigmoid")
        m.compile("adam", "binary_crossentropy")
        return m, {"x": x, "y": y}

    def pixels_raw():
        r = rng()
        x = r.integers(0, 256, (200, 16, 16, 1)).astype("float32")
        m = keras.Sequential([keras.Input((16, 16, 1)), layers.Conv2D(8, 3, activation="tanh"), layers.Flatten(),
                              layers.Dense(32, activation="tanh"), layers.Dense(10, activation="softmax")])
        m.compile("adam", "sparse_categorical_crossentropy")
        return m, {"x": x, "y": r.integers(0, 10, 200)}

    def prices_raw():
        r = rng()
        x = r.normal(size=(300, 8)).astype("float32")
        y = (200_000 + 50_000 * x[:, :1] + 1000 * r.normal(size=(300, 1))).astype("float32")
        m = mlp(8, [32, 32], 1)
        m.compile("adam", "mse")
        return m, {"x": x, "y": y}

    def softmax_one_unit():
        r = rng()
        m = mlp(10, [16], 1, out_act="softmax")
        m.compile("adam", "binary_crossentropy")
        return m, {"x": r.normal(size=(200, 10)).astype("float32"), "y": r.integers(0, 2, (200, 1)).astype("float32")}

    def sigmoid_categorical():
        r = rng()
        m = mlp(10, [32], 5, out_act="sigmoid")
        m.compile("adam", "sparse_categorical_crossentropy")
        return m, {"x": r.normal(size=(200, 10)).astype("float32"), "y": r.integers(0, 5, 200)}

    def probabilities_as_logits():
        r = rng()
        m = mlp(10, [32], 5, out_act="softmax")
        m.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        return m, {"x": r.normal(size=(200, 10)).astype("float32"), "y": r.integers(0, 5, 200)}

    def sigmoid_regression():
        r = rng()
        m = mlp(5, [32], 1, out_act="sigmoid")
        m.compile("adam", "mse")
        return m, {"x": r.normal(size=(200, 5)).astype("float32"),
                   "y": r.uniform(0, 100, (200, 1)).astype("float32")}

    def huge_init():
        r = rng()
        init = keras.initializers.RandomNormal(stddev=8.0)
        m = keras.Sequential([keras.Input((10,)), layers.Dense(64, activation="relu", kernel_initializer=init),
                              layers.Dense(64, activation="relu", kernel_initializer=init), layers.Dense(3)])
        m.compile(keras.optimizers.SGD(0.01), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        return m, {"x": r.normal(size=(200, 10)).astype("float32"), "y": r.integers(0, 3, 200)}

    def zero_kernels():
        r = rng()
        m = keras.Sequential([keras.Input((10,)), layers.Dense(32, activation="relu", kernel_initializer="zeros"),
                              layers.Dense(32, activation="relu", kernel_initializer="zeros"),
                              layers.Dense(4, activation="softmax")])
        m.compile("adam", "sparse_categorical_crossentropy")
        return m, {"x": r.normal(size=(200, 10)).astype("float32"), "y": r.integers(0, 4, 200)}

    def dead_relu():
        r = rng()
        m = keras.Sequential([keras.Input((10,)), layers.Dense(32, activation="relu", name="hidden",
                                                               bias_initializer=keras.initializers.Constant(-50.0)),
                              layers.Dense(4, activation="softmax")])
        m.compile("adam", "sparse_categorical_crossentropy")
        return m, {"x": r.normal(size=(200, 10)).astype("float32"), "y": r.integers(0, 4, 200)}

    def deep_sigmoid():
        r = rng()
        m = mlp(20, [32] * 10, 4, act="sigmoid", out_act="softmax")
        m.compile(keras.optimizers.SGD(0.01), "sparse_categorical_crossentropy")
        return m, {"x": r.normal(size=(200, 20)).astype("float32"), "y": r.integers(0, 4, 200)}

    def deep_tanh_regression():
        r = rng()
        x = r.normal(size=(200, 8)).astype("float32")
        m = mlp(8, [16] * 12, 1, act="tanh", kernel_initializer=keras.initializers.RandomNormal(stddev=0.05))
        m.compile(keras.optimizers.SGD(0.01), "mse")
        return m, {"x": x, "y": np.sin(x[:, :1] * 3).astype("float32")}

    def rate_too_high():
        r = rng()
        m = mlp(10, [32], 3)
        m.compile(keras.optimizers.SGD(learning_rate=50.0), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        return m, {"x": r.normal(size=(200, 10)).astype("float32"), "y": r.integers(0, 3, 200)}

    def linear_stack():
        r = rng()
        x = r.uniform(-2, 2, (200, 1)).astype("float32")
        m = keras.Sequential([keras.Input((1,)), layers.Dense(32), layers.Dense(32), layers.Dense(1)])
        m.compile("adam", "mse")
        return m, {"x": x, "y": (x ** 3 - x).astype("float32")}

    def raw_inputs_and_one_unit_softmax():
        r = rng()
        x, y = _heart(r)
        m = mlp(7, [32], 1, out_act="softmax")
        m.compile("adam", "binary_crossentropy")
        return m, {"x": x, "y": y}

    def deep_sigmoid_and_probabilities_as_logits():
        r = rng()
        m = mlp(20, [32] * 8, 4, act="sigmoid", out_act="softmax")
        m.compile(keras.optimizers.SGD(0.01), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        return m, {"x": r.normal(size=(200, 20)).astype("float32"), "y": r.integers(0, 4, 200)}

    return {
        "tabular_raw": ("raw clinical columns (unscaled-inputs)", tabular_raw),
        "pixels_raw": ("0..255 pixels into tanh layers (unscaled-inputs)", pixels_raw),
        "prices_raw": ("house prices as raw targets (unscaled-targets)", prices_raw),
        "softmax_one_unit": ("softmax over one unit (softmax-loss-mismatch)", softmax_one_unit),
        "sigmoid_categorical": ("sigmoid over 5 classes with a categorical loss (softmax-loss-mismatch)",
                                sigmoid_categorical),
        "probabilities_as_logits": ("softmax output with from_logits=True (softmax-loss-mismatch)",
                                    probabilities_as_logits),
        "sigmoid_regression": ("sigmoid output, targets 0..100 (label-mismatch)", sigmoid_regression),
        "huge_init": ("kernels drawn with stddev 8 (unhealthy-weights)", huge_init),
        "zero_kernels": ("zero kernels (unhealthy-weights)", zero_kernels),
        "dead_relu": ("ReLU layer with bias -50 (dead-units)", dead_relu),
        "deep_sigmoid": ("10 sigmoid layers, SGD (vanishing-gradients)", deep_sigmoid),
        "deep_tanh_regression": ("12 small-init tanh layers, SGD (vanishing-gradients)", deep_tanh_regression),
        "rate_too_high": ("SGD at rate 50 (nan-in-training)", rate_too_high),
        "linear_stack": ("Dense layers without activations fitting a cubic (cannot-overfit)", linear_stack),
        "raw_inputs_and_one_unit_softmax": ("two bugs: raw inputs, softmax over one unit",
                                            raw_inputs_and_one_unit_softmax),
        "deep_sigmoid_and_probabilities_as_logits": ("two bugs: deep sigmoid, softmax with from_logits=True",
                                                     deep_sigmoid_and_probabilities_as_logits),
    }


def build(names: list) -> dict:
    import numpy as np

    os.makedirs(BUILD, exist_ok=True)
    out = {}
    catalogue = models()
    for name in names:
        path, data = os.path.join(BUILD, f"{name}.keras"), os.path.join(BUILD, f"{name}.npz")
        if not (os.path.exists(path) and os.path.exists(data)):
            model, arrays = catalogue[name][1]()
            model.save(path)
            np.savez(data, **arrays)
        out[name] = (catalogue[name][0], path, data)
    return out


def kerascheck(*args: str) -> tuple[dict | None, float, str]:
    start = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "kerascheck", *args, "--format", "json", "--no-html"],
                          capture_output=True, text=True, cwd=ROOT, timeout=1200)
    seconds = time.monotonic() - start
    try:
        return json.loads(proc.stdout)["models"][0], seconds, proc.stderr
    except (json.JSONDecodeError, KeyError, IndexError):
        return None, seconds, proc.stderr


LOUD = ("warning", "error")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="")
    args = parser.parse_args(argv)
    catalogue = list(models())
    names = [n for n in args.only.split(",") if n] or catalogue
    built = build(names)
    fixed_dir = os.path.join(BUILD, "fixed")
    rows = []
    for name, (what, path, data) in built.items():
        report, seconds, err = kerascheck(path, "--data", data, "--fix-out", fixed_dir)
        if report is None:
            print(f"{name}: no report: {err.strip()[-300:]}")
            rows.append({"name": name, "crashed": True})
            continue
        loud = [f for f in report["findings"] if f["severity"] in LOUD]
        records = [r for f in report["findings"] for r in f["evidence"].get("fix_verified", ())]
        tried = [r for r in records if r["verdict"] != "not tried"]
        verified = [r for r in tried if r["verdict"] == "verified"]
        cost = sum(r["seconds"] for r in (report.get("probes") or {}).get("interventions", ()))
        fixed = report.get("fixed") or {}
        repaired = {f["rule"] for f in loud for r in f["evidence"].get("fix_verified", ())
                    if r["verdict"] == "verified" and r.get("written_by_fix_out")}
        repaired |= {c["rule"] for f in loud if any(r["verdict"] == "verified" and r.get("written_by_fix_out")
                                                   for r in f["evidence"].get("fix_verified", ()))
                     for c in f["evidence"].get("consequences", ())}
        clean = None
        left = []
        if fixed.get("path"):
            again, _, _ = kerascheck(fixed["path"], "--data", data)
            if again is not None:
                left = sorted({f["rule"] for f in again["findings"] if f["severity"] in LOUD} & repaired)
                clean = not left and not again["errors"]
        rows.append({"name": name, "what": what, "loud": len(loud), "rules": sorted({f["rule"] for f in loud}),
                     "tried": len(tried), "verified": len(verified), "written": bool(fixed.get("path")),
                     "clean": clean, "left": left, "seconds": seconds, "cost": cost})
        print(f"{name:42} {what}")
        print(f"    findings at warning/error: {', '.join(r for r in rows[-1]['rules']) or 'none'}; fixes tried "
              f"{len(tried)}, verified {len(verified)}; copy written: {'yes' if fixed.get('path') else 'no'}"
              + (f"; re-check clean of the repaired rules: {'yes' if clean else 'NO ' + ', '.join(left)}"
                 if clean is not None else "")
              + f"; {seconds:.1f} s, of which interventions {cost:.1f} s")
        for r in records:
            print(f"      {r['verdict']:14} {r['change']} -> {r['for']}: {r['before'].get('text')} -> "
                  f"{(r.get('after') or {}).get('text')}")
    ok = [r for r in rows if not r.get("crashed")]
    tried = sum(r["tried"] for r in ok)
    verified = sum(r["verified"] for r in ok)
    written = [r for r in ok if r["written"]]
    clean = [r for r in written if r["clean"]]
    seconds = sorted(r["seconds"] for r in ok)
    costs = sorted(r["cost"] for r in ok)
    print()
    print("| models | fixes tried | verified | copies written | copies re-checking clean of what they repaired | "
          "check, median s | interventions, median s | interventions, worst s |")
    print("|---|---|---|---|---|---|---|---|")
    print(f"| {len(ok)} | {tried} | {verified} ({verified / max(tried, 1):.0%}) | {len(written)} | "
          f"{len(clean)} of {len(written)} | {seconds[len(seconds) // 2] if seconds else 0:.1f} | "
          f"{costs[len(costs) // 2] if costs else 0:.1f} | {costs[-1] if costs else 0:.1f} |")
    crashed = [r["name"] for r in rows if r.get("crashed")]
    if crashed:
        print(f"crashed: {', '.join(crashed)}")
    return 1 if crashed or len(clean) < len(written) else 0


if __name__ == "__main__":
    sys.exit(main())
