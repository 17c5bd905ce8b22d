"""Live cases: fitted with kerascheck.Monitor by tests/test_monitor.py (test_live_rule_case).

formats=() keeps the file harness (tests/rules/test_rules.py) from running them: a
saved file holds no training run, so there this rule has nothing to judge.
"""
import keras
import numpy as np
from keras import layers

from helpers import Expect, bad


def regression(tmp):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((320, 8)).astype("float32")
    return {"x": x, "y": x @ rng.standard_normal((8, 1)).astype("float32")}


def mlp(optimizer):
    m = keras.Sequential([keras.Input((8,)), layers.Dense(32, activation="relu", name="hidden"),
                          layers.Dense(1, name="out")])
    m.compile(optimizer=optimizer, loss="mse")
    return m


def frozen(tmp, fmt):
    m = mlp(keras.optimizers.Adam(1e-2))
    m.trainable = False
    m.compile(optimizer=keras.optimizers.Adam(1e-2), loss="mse")
    return m


def rate_raised_too_far(tmp, fmt):
    return mlp(keras.optimizers.Adam(1e-2))


def rate_far_too_small(tmp, fmt):
    return mlp(keras.optimizers.SGD(1e-7))


# Epochs 1-2 at 1e-2, then 0.3: the loss climbs back over epoch 3.
RAISE = {"epochs": 4, "batch_size": 32,
         "callbacks": lambda: [keras.callbacks.LearningRateScheduler(lambda epoch, lr: 1e-2 if epoch < 2 else 0.3)]}

CASES = [
    bad("frozen", frozen,
        Expect(None, "error", r"^The model has no trainable weights \(every layer is frozen\), so training cannot "
                              r"change it: the loss was [\d.]+ after 1 epoch\.$", {"kind": "frozen", "epoch": 1}),
        formats=(), data=regression, options={"fit": {"epochs": 2, "batch_size": 32}}),
    bad("rate_raised_too_far", rate_raised_too_far,
        Expect(None, "warning", r"^The training loss rose by \d+% over epoch 3, from [\d.]+ to [\d.]+, at learning "
                                r"rate 0\.3: the rate in force is too high",
               {"kind": "rise", "learning_rate": (0.299, 0.301), "change": (0.1, 100.0), "epoch": 3}),
        formats=(), data=regression, options={"fit": RAISE}),
    bad("rate_far_too_small", rate_far_too_small,
        Expect(None, "warning", r"^The training loss changed by [-+]0\.\d+% over epoch 2, .* at learning rate 1e-07: "
                                r"it is still within 5% of where training started",
               {"kind": "not-learning", "learning_rate": (0.99e-7, 1.01e-7)}),
        formats=(), data=regression, options={"fit": {"epochs": 3, "batch_size": 32}}),
]
