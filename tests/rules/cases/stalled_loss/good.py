"""Live cases: fitted with kerascheck.Monitor by tests/test_monitor.py (test_live_rule_case).

formats=() keeps the file harness (tests/rules/test_rules.py) from running them: a
saved file holds no training run, so there this rule has nothing to judge.
"""
import keras
import numpy as np
from keras import layers

from helpers import good


def regression(tmp):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((320, 8)).astype("float32")
    return {"x": x, "y": x @ rng.standard_normal((8, 1)).astype("float32")}


def learning_mlp(tmp, fmt):
    m = keras.Sequential([keras.Input((8,)), layers.Dense(32, activation="relu"), layers.Dense(1)])
    m.compile(optimizer=keras.optimizers.Adam(1e-2), loss="mse")
    return m


CASES = [
    good("learning_mlp", learning_mlp, formats=(), data=regression, options={"fit": {"epochs": 3, "batch_size": 32}}),
]
