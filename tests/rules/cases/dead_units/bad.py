import keras
from keras import layers

from helpers import Expect, bad


def dead_relu(tmp, fmt):
    m = keras.Sequential([keras.Input((8,)),
                          layers.Dense(64, activation="relu", bias_initializer=keras.initializers.Constant(-100.0),
                                       name="dead"),
                          layers.Dense(1)])
    m.compile(optimizer="adam", loss="mse")
    return m


def saturated_sigmoid(tmp, fmt):
    m = keras.Sequential([keras.Input((8,)),
                          layers.Dense(32, activation="sigmoid", name="sat",
                                       kernel_initializer=keras.initializers.RandomNormal(stddev=1000.0, seed=3)),
                          layers.Dense(1)])
    m.compile(optimizer="adam", loss="mse")
    return m


CASES = [
    bad("dead_relu", dead_relu,
        Expect("dead", "warning", r"^64 of 64 units \(100%\) in relu layer 'dead' are never active on 256 examples",
               {"dead": 64, "dead_share": 1.0}),
        formats=("keras", "h5")),
    bad("saturated_sigmoid", saturated_sigmoid,
        Expect("sat", "warning", r"units \(\d+%\) in sigmoid layer 'sat' are saturated", {"saturated_share": (0.5, 1.0)})),
]
