import os

import keras
import numpy as np
from keras import layers

from helpers import Expect, bad


def mlp(tmp, fmt):
    m = keras.Sequential([keras.Input((6,)), layers.Dense(8, activation="relu"), layers.Dense(1)])
    m.compile(optimizer="adam", loss="mse")
    return m


def two_inputs(tmp, fmt):
    a, b = keras.Input((4,), name="a"), keras.Input((3,), name="b")
    m = keras.Model([a, b], layers.Dense(1)(layers.Concatenate()([a, b])))
    m.compile(optimizer="adam", loss="mse")
    return m


def _npz(tmp, **arrays):
    path = os.path.join(str(tmp), "data.npz")
    np.savez(path, **arrays)
    return path


def nan_in_x(tmp):
    x = np.random.default_rng(0).normal(size=(40, 6)).astype("float32")
    x[[3, 17], 2] = np.nan
    return _npz(tmp, x=x, y=np.zeros((40, 1), "float32"))


def inf_in_y(tmp):
    y = np.zeros((40, 1), "float32")
    y[5] = np.inf
    return _npz(tmp, x=np.ones((40, 6), "float32"), y=y)


def nan_in_one_input(tmp):
    rng = np.random.default_rng(0)
    b = rng.normal(size=(40, 3)).astype("float32")
    b[9, 0] = np.nan
    return _npz(tmp, x_a=rng.normal(size=(40, 4)).astype("float32"), x_b=b, y=np.zeros((40, 1), "float32"))


CASES = [
    bad("nan_in_x", mlp,
        Expect(None, "error", r"^--data holds 2 non-finite values: 2 NaN in 'x' \(2 of 40 rows, column 2; first rows "
                              r"3, 17\)", {"kind": "nonfinite"}),
        data=nan_in_x),
    bad("inf_in_y", mlp,
        Expect(None, "error", r"^--data holds 1 non-finite value: 1 Inf in 'y' \(1 of 40 rows, column 0; first rows 5\)"),
        data=inf_in_y),
    bad("nan_in_one_input", two_inputs,
        Expect(None, "error", r"1 NaN in 'x_b' \(1 of 40 rows, column 0; first rows 9\)"),
        data=nan_in_one_input),
]
