import keras
import numpy as np
from keras import layers

from helpers import good


def trained_mixed_model(tmp, fmt):
    inp = keras.Input((12, 12, 3))
    x = layers.Conv2D(8, 3, activation="relu", kernel_initializer="he_normal")(inp)
    x = layers.BatchNormalization()(x)
    x = layers.DepthwiseConv2D(3)(x)
    x = layers.SeparableConv2D(8, 3)(x)
    x = layers.GlobalAveragePooling2D()(x)
    x = layers.LayerNormalization()(x)
    out = layers.Dense(3, activation="softmax")(x)
    m = keras.Model(inp, out)
    m.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    rng = np.random.default_rng(0)
    m.fit(rng.normal(size=(16, 12, 12, 3)), rng.integers(0, 3, 16), epochs=2, verbose=0)
    return m


def lstm_with_embedding(tmp, fmt):
    m = keras.Sequential([keras.Input((6,), dtype="int32"), layers.Embedding(50, 8), layers.LSTM(8),
                          layers.Dense(1)])
    m.compile(optimizer=keras.optimizers.Adam(global_clipnorm=1.0), loss="mse")
    return m


CASES = [
    good("trained_mixed_model", trained_mixed_model, formats=("keras", "h5")),
    good("lstm_with_embedding", lstm_with_embedding),
]


def adam_default_rate(tmp, fmt):
    m = keras.Sequential([keras.Input((8,)), layers.Dense(32, activation="relu"), layers.Dense(1)])
    m.compile(optimizer=keras.optimizers.Adam(1e-3), loss="mse")
    return m


CASES.append(good("adam_default_rate", adam_default_rate))


def transformer_style_init_at_small_width(tmp, fmt):
    """KerasHub's GPT-2 and BERT initialise with N(0, 0.02): at a test config's width of 16 that is 12x below
    Glorot, a choice made in the layer's config and kept at scale by layer normalisation."""
    init = keras.initializers.TruncatedNormal(stddev=0.02, seed=0)
    inp = keras.Input((10, 16))
    x = layers.LayerNormalization()(layers.Dense(16, kernel_initializer=init, name="attention_output")(inp))
    x = layers.LayerNormalization()(layers.Dense(16, kernel_initializer=init, name="feedforward")(x) + x)
    m = keras.Model(inp, layers.Dense(4, name="head")(x))
    m.compile(optimizer="adam", loss="mse")
    return m


CASES.append(good("transformer_style_init_at_small_width", transformer_style_init_at_small_width))
