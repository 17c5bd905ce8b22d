"""Size and cost of the HTML report for ResNet50 with all tiers (target: under 5 MB).

    python bench/report_size.py [--budget 60]
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from static import build  # noqa: E402  (the cached ResNet50 .keras)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--budget", default="60")
    args = parser.parse_args()
    resnet = build("resnet50", "keras.applications.ResNet50(weights=None)")
    with tempfile.TemporaryDirectory() as tmp:
        html = os.path.join(tmp, "report.html")
        start = time.monotonic()
        proc = subprocess.run([sys.executable, "-m", "kerascheck", resnet, "--html", html, "--budget", args.budget],
                              capture_output=True, text=True)
        seconds = time.monotonic() - start
        size = os.path.getsize(html)
    print(f"ResNet50, all tiers, budget {args.budget} s: exit {proc.returncode} in {seconds:.0f} s; "
          f"HTML report {size / 1e6:.2f} MB (target < 5 MB)")


if __name__ == "__main__":
    main()
