import os

import keras
import numpy as np
from keras import layers

from helpers import Expect, bad


def regression(tmp, fmt):
    m = keras.Sequential([keras.Input((8,)), layers.Dense(32, activation="relu"), layers.Dense(1, name="price")])
    m.compile(optimizer="adam", loss="mse")
    return m


def prices(tmp):
    rng = np.random.default_rng(0)
    path = os.path.join(str(tmp), "prices.npz")
    np.savez(path, x=rng.standard_normal((200, 8)).astype("float32"),
             y=(300_000 + 50_000 * rng.standard_normal((200, 1))).astype("float32"))
    return path


CASES = [
    bad("house_prices", regression,
        Expect("price", "warning", r"targets reach a mean of [23]\.\d+e\+05 and a standard deviation of [45]\.\d+e\+04 "
                                   r"\(over 200 examples\), fitted by the linear output 'price'",
               {"examples": 200}),
        data=prices),
    bad("no_data", regression, skipped=r"needs --data with targets"),
]
