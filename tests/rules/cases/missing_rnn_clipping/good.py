import keras
from keras import layers

from helpers import good


def lstm_global_clipnorm(tmp, fmt):
    m = keras.Sequential([keras.Input((10, 4)), layers.LSTM(8), layers.Dense(1)])
    m.compile(optimizer=keras.optimizers.Adam(1e-3, global_clipnorm=1.0), loss="mse")
    return m


def gru_clipvalue(tmp, fmt):
    m = keras.Sequential([keras.Input((10, 4)), layers.GRU(8), layers.Dense(1)])
    m.compile(optimizer=keras.optimizers.SGD(0.01, clipvalue=0.5), loss="mse")
    return m


def dense_without_clipping(tmp, fmt):
    m = keras.Sequential([keras.Input((4,)), layers.Dense(8), layers.Dense(1)])
    m.compile(optimizer="adam", loss="mse")
    return m


CASES = [
    good("lstm_global_clipnorm", lstm_global_clipnorm, formats=("keras", "h5")),
    good("gru_clipvalue", gru_clipvalue),
    good("dense_without_clipping", dense_without_clipping),
]
