import keras
from keras import layers

from helpers import good


def exponential_decay(tmp, fmt):
    m = keras.Sequential([keras.Input((4,)), layers.Dense(1)])
    s = keras.optimizers.schedules.ExponentialDecay(1e-3, decay_steps=100, decay_rate=0.9)
    m.compile(optimizer=keras.optimizers.Adam(s), loss="mse")
    return m


def piecewise_constant(tmp, fmt):
    m = keras.Sequential([keras.Input((4,)), layers.Dense(1)])
    s = keras.optimizers.schedules.PiecewiseConstantDecay([100, 130], [1e-3, 1e-3 / 1.5, 1e-3 / 2.25])
    m.compile(optimizer=keras.optimizers.SGD(s), loss="mse")
    return m


CASES = [
    good("exponential_decay", exponential_decay, formats=("keras", "h5")),
    good("piecewise_constant", piecewise_constant),
]
