"""Live cases: fitted with kerascheck.Monitor by tests/test_monitor.py (test_live_rule_case).

formats=() keeps the file harness (tests/rules/test_rules.py) from running them: a
saved file holds no training run, so there this rule has nothing to judge.
"""
import keras
import numpy as np
from keras import layers

from helpers import good


def shifted(tmp):
    rng = np.random.default_rng(0)
    x = (rng.standard_normal((640, 8)) * 3 + 5).astype("float32")
    y = (x[:, :4].sum(axis=1) > 20).astype("float32")[:, None]
    return {"x": x[:512], "y": y[:512], "validation": (x[512:], y[512:])}


def batchnorm_that_keeps_up(tmp, fmt):
    m = keras.Sequential([keras.Input((8,)), layers.Dense(16), layers.BatchNormalization(momentum=0.9),
                          layers.Activation("relu"), layers.Dense(1, activation="sigmoid")])
    m.compile(optimizer=keras.optimizers.Adam(1e-2), loss="binary_crossentropy")
    return m


def dropout(tmp, fmt):
    m = keras.Sequential([keras.Input((8,)), layers.Dense(32, activation="relu"), layers.Dropout(0.3),
                          layers.Dense(1, activation="sigmoid")])
    m.compile(optimizer=keras.optimizers.Adam(1e-2), loss="binary_crossentropy")
    return m


CASES = [
    good("batchnorm_that_keeps_up", batchnorm_that_keeps_up, formats=(), data=shifted,
         options={"fit": {"epochs": 4, "batch_size": 32}}),
    good("dropout", dropout, formats=(), data=shifted, options={"fit": {"epochs": 3, "batch_size": 32}}),
]
