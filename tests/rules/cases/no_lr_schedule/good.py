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


def gan_whose_optimizers_decay(tmp, fmt):
    from held_optimizers import held_gan

    decay = keras.optimizers.schedules.ExponentialDecay(2e-4, decay_steps=100, decay_rate=0.9)
    return held_gan(d_rate=decay, g_rate=keras.optimizers.schedules.CosineDecay(1e-4, 100))


CASES = [
    good("exponential_decay", exponential_decay, formats=("keras", "h5")),
    good("piecewise_constant", piecewise_constant),
    good("gan_whose_optimizers_decay", gan_whose_optimizers_decay),
]
