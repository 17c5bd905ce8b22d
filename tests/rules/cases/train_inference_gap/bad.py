"""Live cases: fitted with kerascheck.Monitor by tests/test_monitor.py (test_live_rule_case).

formats=() keeps the file harness (tests/rules/test_rules.py) from running them: a
saved file holds no training run, so there this rule has nothing to judge.
"""
import keras
import numpy as np
from keras import layers

from helpers import Expect, bad


def shifted(tmp):
    """Inputs far from zero mean: BatchNormalization's moving statistics start at mean 0, variance 1."""
    rng = np.random.default_rng(0)
    x = (rng.standard_normal((640, 8)) * 3 + 5).astype("float32")
    y = (x[:, :4].sum(axis=1) > 20).astype("float32")[:, None]
    return {"x": x[:512], "y": y[:512], "validation": (x[512:], y[512:])}


def slow_batchnorm(tmp, fmt):
    m = keras.Sequential([keras.Input((8,)), layers.Dense(16, name="dense"),
                          layers.BatchNormalization(momentum=0.999, name="bn"), layers.Activation("relu"),
                          layers.Dense(1, activation="sigmoid", name="out")])
    m.compile(optimizer=keras.optimizers.Adam(1e-2), loss="binary_crossentropy")
    return m


CASES = [
    bad("slow_batchnorm", slow_batchnorm,
        Expect("bn", "warning", r"^At the end of epoch 3 the validation loss [\d.]+ is [\d.]+x the training loss "
                                r"[\d.]+, and the fixed batch of training examples scores [\d.]+ in inference mode "
                                r"against [\d.]+ in training mode .*BatchNormalization 'bn'.* After 48 steps the "
                                r"moving statistics of 'bn' \(momentum 0\.999\) still hold 95% of their starting "
                                r"values\.$",
               {"kind": "mode-gap", "epoch": 3, "step": 48}),
        formats=(), data=shifted, options={"fit": {"epochs": 3, "batch_size": 32}}),
]
