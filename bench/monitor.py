"""What kerascheck.Monitor costs: a plain model.fit against the same fit watched by the monitor.

    python bench/monitor.py [--rounds 3] [--epochs 3]

Two models: a CNN of about 1M parameters on 32x32x3 images and a two-layer LSTM
on sequences. Each round fits a fresh copy of each model (same seed, same data)
plain and with `kerascheck.Monitor()` at its defaults, in turn; the first round
also with `kerascheck.Monitor(every=1)` (gradients, update ratios and the state
copy kept for a replay at every step). Everything a fit costs is timed, the
monitor's set-up (saving the copy it reads, tracing its measurements) and its end
(the rules, the report) included. The target for the defaults is 1.10x, judged on
the fastest fit of each kind (the one other processes on the machine disturbed
least; the medians are printed too). Exit status 1 when it is missed.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402


def cnn():
    import keras
    from keras import layers

    model = keras.Sequential([
        keras.Input((32, 32, 3)),
        layers.Conv2D(32, 3, padding="same", activation="relu"),
        layers.Conv2D(64, 3, padding="same", activation="relu"),
        layers.MaxPooling2D(),
        layers.Conv2D(128, 3, padding="same", activation="relu"),
        layers.MaxPooling2D(),
        layers.Conv2D(128, 3, padding="same", activation="relu"),
        layers.MaxPooling2D(),
        layers.Flatten(),
        layers.Dense(384, activation="relu"),
        layers.Dropout(0.3),
        layers.Dense(10, activation="softmax"),
    ], name="cnn")
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    return model


def lstm():
    import keras
    from keras import layers

    model = keras.Sequential([
        keras.Input((40, 16)),
        layers.LSTM(128, return_sequences=True),
        layers.LSTM(128),
        layers.Dense(1, activation="sigmoid"),
    ], name="lstm")
    model.compile(optimizer=keras.optimizers.Adam(1e-3, global_clipnorm=1.0), loss="binary_crossentropy")
    return model


def data(kind: str, n: int):
    rng = np.random.default_rng(0)
    if kind == "cnn":
        x = rng.random((n, 32, 32, 3), dtype=np.float32)
        y = rng.integers(0, 10, n)
    else:
        x = rng.standard_normal((n, 40, 16)).astype("float32")
        y = (x[:, :, 0].mean(axis=1) > 0).astype("float32")
    return x, y


def fit_once(kind: str, how: str, epochs: int, x, y):
    import keras

    import kerascheck

    keras.utils.set_random_seed(0)
    model = cnn() if kind == "cnn" else lstm()
    callbacks, monitor = [], None
    if how == "default":
        monitor = kerascheck.Monitor(verbose=0)
    elif how == "every=1":
        monitor = kerascheck.Monitor(every=1, verbose=0)
    if monitor is not None:
        callbacks.append(monitor)
    start = time.perf_counter()
    model.fit(x, y, epochs=epochs, batch_size=64, verbose=0, callbacks=callbacks)
    seconds = time.perf_counter() - start
    info = ""
    if monitor is not None:
        run = monitor.results.train
        info = (f"{len(run.losses)} measurements, every={run.every}, "
                f"{len(monitor.report.findings)} findings")
    params = model.count_params()
    keras.backend.clear_session()
    return seconds, info, params


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="rounds of plain and default fits (every=1: one)")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--cnn-examples", type=int, default=2560)
    parser.add_argument("--lstm-examples", type=int, default=8192)
    args = parser.parse_args(argv)
    ways = ("plain", "default", "every=1")
    worst = 0.0
    for kind in ("cnn", "lstm"):
        examples = args.cnn_examples if kind == "cnn" else args.lstm_examples
        x, y = data(kind, examples)
        fit_once(kind, "plain", 1, x[:128], y[:128])  # warm TensorFlow's own caches before timing
        times = {w: [] for w in ways}
        infos, params = {}, 0
        for round_ in range(args.rounds):
            for way in ways:
                if way == "every=1" and round_:
                    continue
                seconds, info, params = fit_once(kind, way, args.epochs, x, y)
                times[way].append(seconds)
                infos[way] = info
        best_plain, median_plain = min(times["plain"]), statistics.median(times["plain"])
        steps = args.epochs * -(-examples // 64)
        print(f"{kind}: {params:,} parameters, {args.epochs} epochs x {steps // args.epochs} steps of 64; "
              f"{args.rounds} fits each (every=1: one)")
        for way in ways:
            best, median = min(times[way]), statistics.median(times[way])
            ratio = best / best_plain
            if way == "default":
                worst = max(worst, ratio)
            runs = ", ".join(f"{s:.2f}" for s in times[way])
            extra = f"  [{infos[way]}]" if infos[way] else ""
            print(f"  {way:<8} fastest {best:7.2f} s  {ratio:5.3f}x   median {median:7.2f} s  "
                  f"{median / median_plain:5.3f}x   (runs: {runs}){extra}")
    print(f"default Monitor overhead: at most {worst:.3f}x a plain fit (target 1.10x)")
    return 0 if worst <= 1.10 else 1


if __name__ == "__main__":
    sys.exit(main())
