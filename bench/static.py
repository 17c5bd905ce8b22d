"""Speed and memory of the static tier, as ratios against baselines measured in the same run.

    python bench/static.py [--repeat 3] [--no-mlp]

On keras.applications.ResNet50(weights=None) saved as .keras, each in a fresh process:
  (a) the floor: read every weight array with h5py from the extracted weights file;
  (b) kerascheck --static --format json;
  (c) import keras; keras.models.load_model(path).
Targets: b/a <= 2.0, b/c <= 0.25, and peak RSS of (b) near the largest tensor plus
the interpreter. Then (b) on MLPs of about 1M, 10M and 100M parameters, to show
that time grows linearly with the weights.
"""
import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
CACHE = os.path.join(tempfile.gettempdir(), "kerascheck-bench")

FLOOR = """
import sys, h5py
f = h5py.File(sys.argv[1], "r")
def visit(name, obj):
    if isinstance(obj, h5py.Dataset):
        obj[()]
f.visititems(visit)
"""
BASELINE_RSS = "import numpy, h5py, click, json, zipfile"
KERAS_LOAD = "import sys, keras; keras.models.load_model(sys.argv[1])"


# Peak RSS from the process's own /proc/self/status (VmHWM), read as it exits, and
# from its own children: getrusage on the process itself would also count what it
# was before exec.
HWM = """
import atexit, resource, runpy, sys
out = sys.argv.pop(1)
def hwm():
    own = 0
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM"):
            own = int(line.split()[1])
    # kerascheck's worker processes (waited for by now) count too.
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    open(out, "w").write(str(max(own, children)))
atexit.register(hwm)
if sys.argv[1] == "-c":
    code, sys.argv = sys.argv[2], ["-c"] + sys.argv[3:]
    exec(compile(code, "<bench>", "exec"), {"__name__": "__main__"})
else:
    sys.argv = [sys.argv[2]] + sys.argv[3:]
    runpy.run_module(sys.argv[0], run_name="__main__", alter_sys=True)
"""


def timed(cmd, env=None):
    """(seconds, peak RSS in MiB) of one fresh process running `python -c CODE ...` or `python -m MOD ...`."""
    out = os.path.join(CACHE, "hwm.txt")
    wrapped = [cmd[0], "-c", HWM, out] + cmd[1:]
    start = time.perf_counter()
    code = subprocess.run(wrapped, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                          env={**os.environ, **(env or {})}).returncode
    elapsed = time.perf_counter() - start
    if code not in (0, 1):
        raise SystemExit(f"command failed with exit {code}: {' '.join(cmd)}")
    with open(out) as fh:
        return elapsed, int(fh.read()) / 1024


def median_of(cmd, repeat, env=None):
    runs = [timed(cmd, env) for _ in range(repeat)]
    return statistics.median(t for t, _ in runs), max(m for _, m in runs)


def build(name, expression):
    """Save a model built by `expression` in a separate process.

    The benchmark process itself never imports Keras: a forked child's peak RSS
    would otherwise start from this process's size.
    """
    os.makedirs(CACHE, exist_ok=True)
    path = os.path.join(CACHE, f"{name}.keras")
    if not os.path.exists(path):
        code = f"import sys, keras; model = {expression}; model.save(sys.argv[1])"
        subprocess.run([sys.executable, "-c", code, path], check=True, stderr=subprocess.DEVNULL)
    return path


def baseline(rev: str) -> str:
    """An installed copy of kerascheck at `rev` (a folder for PYTHONPATH), built from a git worktree."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    target = os.path.join(CACHE, f"baseline-{rev}")
    if not os.path.exists(target):
        tree = os.path.join(CACHE, f"tree-{rev}")
        subprocess.run(["git", "-C", root, "worktree", "add", "--detach", tree, rev], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                            "--target", target, tree], check=True)
        finally:
            subprocess.run(["git", "-C", root, "worktree", "remove", "--force", tree], check=False)
    return target


def mlp(width):
    return (f"keras.Sequential([keras.Input(({width},))] + [keras.layers.Dense({width}, activation='relu') "
            f"for _ in range(4)] + [keras.layers.Dense(10)])")


def largest_tensor_mib(path):
    from kerascheck.formats import open_spec

    with open_spec(path) as spec:
        return max(w.size * 4 for l in spec.layers for w in l.weights) / 2**20


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--no-mlp", action="store_true")
    parser.add_argument("--baseline-rev", metavar="REV",
                        help="also time (b) for kerascheck as of this git revision, in the same run")
    args = parser.parse_args()
    py = sys.executable

    resnet = build("resnet50", "keras.applications.ResNet50(weights=None)")
    weights_h5 = os.path.join(CACHE, "resnet50.weights.h5")
    with zipfile.ZipFile(resnet) as zf, open(weights_h5, "wb") as out:
        out.write(zf.read("model.weights.h5"))

    a, a_rss = median_of([py, "-c", FLOOR, weights_h5], args.repeat)
    b, b_rss = median_of([py, "-m", "kerascheck", "--static", "--format", "json", resnet], args.repeat)
    c, c_rss = median_of([py, "-c", KERAS_LOAD, resnet], args.repeat)
    _, base_rss = median_of([py, "-c", BASELINE_RSS], 1)
    big = largest_tensor_mib(resnet)  # the reader imports no Keras, so this keeps the process small

    print(f"ResNet50 .keras ({os.path.getsize(resnet) / 2**20:.0f} MiB), median of {args.repeat} fresh processes:")
    print(f"  (a) h5py reads every weight   {a:6.2f} s   peak RSS {a_rss:6.0f} MiB")
    print(f"  (b) kerascheck --static       {b:6.2f} s   peak RSS {b_rss:6.0f} MiB")
    print(f"  (c) keras load_model          {c:6.2f} s   peak RSS {c_rss:6.0f} MiB")
    print(f"  b/a = {b / a:.2f}   (target <= 2.0)")
    print(f"  b/c = {b / c:.2f}   (target <= 0.25)")
    print(f"  RSS of (b) = interpreter with numpy/h5py/click {base_rss:.0f} MiB + {b_rss - base_rss:.0f} MiB; "
          f"largest tensor {big:.1f} MiB; all weights {os.path.getsize(weights_h5) / 2**20:.0f} MiB")
    if args.baseline_rev:
        old = baseline(args.baseline_rev)
        b0, _ = median_of([py, "-m", "kerascheck", "--static", "--format", "json", resnet], args.repeat,
                          env={"PYTHONPATH": old})
        b1, _ = median_of([py, "-m", "kerascheck", "--static", "--format", "json", resnet], args.repeat)
        print(f"  (b) at {args.baseline_rev}: {b0:.2f} s; now {b1:.2f} s; now/then = {b1 / b0:.2f}")

    if args.no_mlp:
        return
    print("\nkerascheck --static on MLPs (4 hidden Dense layers), fresh process each:")
    rows = []
    for width in (500, 1580, 5000):
        path = build(f"mlp{width}", mlp(width))
        t, rss = median_of([py, "-m", "kerascheck", "--static", "--format", "json", path], args.repeat)
        from kerascheck.formats import open_spec

        with open_spec(path) as spec:
            params = spec.param_count
        rows.append((params, t, rss))
    startup, _ = median_of([py, "-m", "kerascheck", "--list-rules"], args.repeat)
    for params, t, rss in rows:
        per = (t - startup) / params * 1e6
        print(f"  {params / 1e6:7.1f} M params   {t:6.2f} s   peak RSS {rss:6.0f} MiB   "
              f"{per * 1e3:6.2f} ms per M params after {startup:.2f} s start-up")
    (p1, t1, _), (p3, t3, _) = rows[0], rows[-1]
    growth = (t3 - startup) / max(t1 - startup, 1e-9)
    print(f"  {p3 / p1:.0f}x the parameters took {growth:.0f}x the time (beyond start-up): linear means about "
          f"{p3 / p1:.0f}x")


if __name__ == "__main__":
    main()
