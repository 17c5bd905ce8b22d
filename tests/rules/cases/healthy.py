"""Models that no rule may flag at all (run with every rule selected)."""
import keras
from keras import layers

from helpers import good


def _schedule():
    return keras.optimizers.schedules.ExponentialDecay(1e-3, decay_steps=1000, decay_rate=0.9)


def cnn(tmp, fmt):
    inp = keras.Input((28, 28, 1))
    x = layers.Rescaling(1 / 255)(inp)
    x = layers.Conv2D(16, 3, strides=2, activation="relu", kernel_initializer="he_normal")(x)
    x = layers.BatchNormalization()(x)
    x = layers.Flatten()(x)
    m = keras.Model(inp, layers.Dense(10, activation="softmax")(x))
    m.compile(optimizer=keras.optimizers.Adam(_schedule()), loss="sparse_categorical_crossentropy")
    return m


def clipped_lstm(tmp, fmt):
    m = keras.Sequential([keras.Input((20,), dtype="int32"), layers.Embedding(100, 8),
                          layers.Bidirectional(layers.LSTM(8)), layers.Dense(1, activation="sigmoid")])
    m.compile(optimizer=keras.optimizers.Adam(_schedule(), global_clipnorm=1.0), loss="binary_crossentropy")
    return m


def logits_classifier(tmp, fmt):
    m = keras.Sequential([keras.Input((16,)), layers.Dense(32, activation="relu"), layers.Dropout(0.2),
                          layers.Dense(5)])
    m.compile(optimizer=keras.optimizers.SGD(_schedule(), momentum=0.9),
              loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return m


CASES = [
    good("cnn", cnn, formats=("keras", "h5")),
    good("clipped_lstm", clipped_lstm, formats=("keras", "h5")),
    good("logits_classifier", logits_classifier),
]
