import keras
from keras import layers

from helpers import good


def plain_model(tmp, fmt):
    inp = keras.Input((4,))
    m = keras.Model(inp, layers.Dense(1)(layers.Dense(8, activation="gelu")(inp)))
    m.compile(optimizer="adam", loss="mse")
    return m


def lookup_with_inline_vocabulary(tmp, fmt):
    inp = keras.Input((1,), dtype="string")
    ids = layers.StringLookup(vocabulary=["a", "b", "c"])(inp)
    m = keras.Model(inp, layers.Dense(1)(layers.Embedding(5, 2)(ids)))
    m.compile(optimizer="adam", loss="mse")
    return m


def feature_space_concat(tmp, fmt):
    """FeatureSpace's inference model: Keras writes its TFDConcat layer under keras.src.layers.preprocessing."""
    import numpy as np

    space = keras.utils.FeatureSpace(features={"age": "float_normalized", "kind": "integer_categorical"},
                                     output_mode="concat")
    space.adapt(_dataset({"age": np.linspace(20, 80, 16).astype("float32"), "kind": np.arange(16) % 3}))
    inputs = space.get_inputs()
    m = keras.Model(inputs, layers.Dense(1, activation="sigmoid")(space.get_encoded_features()))
    m.compile(optimizer="adam", loss="binary_crossentropy")
    return m


def _dataset(columns):
    import tensorflow as tf

    return tf.data.Dataset.from_tensor_slices(columns).batch(4)


CASES = [
    good("plain_model", plain_model, formats=("keras", "h5")),
    good("lookup_with_inline_vocabulary", lookup_with_inline_vocabulary),
    good("feature_space_concat", feature_space_concat),
]
