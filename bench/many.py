"""Memory over a long run: kerascheck with its probes over a folder of N models.

    python bench/many.py [--models 200]

Copies the bundled examples into a folder until it holds N models, runs kerascheck
over it, samples the resident memory of kerascheck and its worker processes twice
a second, and compares the first quarter of the run with the last: flat memory
means their peaks are about the same (workers are recycled every 20 files).
"""
import argparse
import glob
import os
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def tree_rss_mb(pid: int) -> int:
    total, stack = 0, [pid]
    while stack:
        p = stack.pop()
        try:
            with open(f"/proc/{p}/status") as fh:
                total += next(int(l.split()[1]) for l in fh if l.startswith("VmRSS")) // 1024
            with open(f"/proc/{p}/task/{p}/children") as fh:
                stack.extend(int(c) for c in fh.read().split())
        except (OSError, StopIteration):
            pass
    return total


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--models", type=int, default=200)
    args = parser.parse_args()
    examples = sorted(glob.glob(os.path.join(ROOT, "examples", "*.keras")) + glob.glob(os.path.join(ROOT, "examples", "*.h5")))
    with tempfile.TemporaryDirectory() as folder:
        for i in range(args.models):
            src = examples[i % len(examples)]
            shutil.copy(src, os.path.join(folder, f"{i:04d}_{os.path.basename(src)}"))
        start = time.monotonic()
        proc = subprocess.Popen([sys.executable, "-m", "kerascheck", "--format", "json", "--budget", "20", folder],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        samples = []
        while proc.poll() is None:
            samples.append((time.monotonic() - start, tree_rss_mb(proc.pid)))
            time.sleep(0.5)
    seconds = time.monotonic() - start
    quarter = max(len(samples) // 4, 1)
    first, last = max(m for _, m in samples[:quarter]), max(m for _, m in samples[-quarter:])
    print(f"{args.models} models in {seconds:.0f} s (exit {proc.returncode}); resident memory of kerascheck "
          f"and its workers, sampled twice a second:")
    for frac in (0.1, 0.25, 0.5, 0.75, 0.9):
        t, mb = samples[int(frac * (len(samples) - 1))]
        print(f"  {int(frac * 100):3d}% of the run ({t:5.0f} s): {mb:5d} MiB")
    print(f"  peak in the first quarter {first} MiB, in the last quarter {last} MiB: last/first = {last / first:.2f}")


if __name__ == "__main__":
    main()
