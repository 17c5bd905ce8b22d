"""The custom layers of examples/custom_norm.keras: pass this file with --custom-objects.

    kerascheck examples/custom_norm.keras --custom-objects examples/custom_layers.py

Both layers are written the way they are often written, and both can produce NaN.
"""
import keras
from keras import ops


class Standardize(keras.layers.Layer):
    """Zero mean, unit variance per example: without an epsilon, a constant row divides 0 by 0."""

    def call(self, x):
        mean = ops.mean(x, axis=-1, keepdims=True)
        return (x - mean) / ops.std(x, axis=-1, keepdims=True)


class Attention(keras.layers.Layer):
    """A softmax over scores, written out: exp overflows for scores above about 88."""

    def call(self, scores):
        weights = ops.exp(scores)
        return weights / ops.sum(weights, axis=-1, keepdims=True)
