"""Endpoint layer pattern (keras-io examples/keras_recipes/endpoint_layer_pattern.py), a LogisticEndpoint layer that takes the targets and sample weights as inputs, adds its loss with add_loss() and returns softmax of one logit; compiled with an optimizer only.

Upstream: https://github.com/keras-team/keras-io/blob/ac7f64cb542cb0c76245ba77a55fe447dc562d01/examples/keras_recipes/endpoint_layer_pattern.py
(keras-io master of 2024-01-10, the Keras 3 version; Apache-2.0, author fchollet).

Kept as written: LogisticEndpoint (BinaryCrossentropy(from_logits=True) added with add_loss,
a BinaryAccuracy metric, `return tf.nn.softmax(logits)` on a (batch, 1) logit), the three
models the example builds: the Functional training model with inputs "inputs" (764),
"targets" (1) and "sample_weight" (1), Dense(1) logits, `compile(keras.optimizers.Adam(1e-3))`
(no loss) and `fit(data)` on a dict without labels; the inference-only model (inputs only,
weights copied with set_weights); the LogReg subclass calling the endpoint on a dict input,
compiled and fitted the same way. The data are the example's own: `np.random.random` inputs,
targets and sample weights (float64 in [0, 1)).
Changed:
- the example's module-level code runs inside build();
- 1,000 random examples, `fit(data, epochs=2)` -> 256 examples, one epoch (8 steps of 32);
- the example does not save. As written its models save but do not load again: Keras 3.15
  passes the saved `trainable` and `dtype` back to the constructors, and loading fails with
  "TypeError: LogisticEndpoint.__init__() got an unexpected keyword argument 'trainable'"
  (the Functional models) and "TypeError: LogReg.__init__() got an unexpected keyword
  argument 'trainable'" (the subclass). So the as-written training model is saved as
  `as_written.keras` and the as-written LogReg as `as_written_logreg.keras` (kerascheck must
  say why they cannot be loaded), and the loadable copies use SavableLogisticEndpoint and
  SavableLogReg, the example's classes with an __init__ that also takes the **kwargs Keras
  passes back (and drops them: they hold the defaults, trainable=True and float32), nothing
  else: the training model as `model.keras`, the inference model as `inference.keras`, the
  LogReg model as `logreg.keras`;
- data.npz holds the 256 examples as the dict fit() receives: x_inputs (256, 764),
  x_targets (256, 1), x_sample_weight (256, 1), all float64; no y (the models train on
  their add_loss only).
"""
import os

os.environ["KERAS_BACKEND"] = "tensorflow"

import tensorflow as tf
import keras
import numpy as np


class LogisticEndpoint(keras.layers.Layer):
    def __init__(self, name=None):
        super().__init__(name=name)
        self.loss_fn = keras.losses.BinaryCrossentropy(from_logits=True)
        self.accuracy_metric = keras.metrics.BinaryAccuracy(name="accuracy")

    def call(self, logits, targets=None, sample_weight=None):
        if targets is not None:
            # Compute the training-time loss value and add it
            # to the layer using `self.add_loss()`.
            loss = self.loss_fn(targets, logits, sample_weight)
            self.add_loss(loss)

            # Log the accuracy as a metric (we could log arbitrary metrics,
            # including different metrics for training and inference.)
            self.accuracy_metric.update_state(targets, logits, sample_weight)

        # Return the inference-time prediction tensor (for `.predict()`).
        return tf.nn.softmax(logits)


def make_training_model(LogisticEndpoint=LogisticEndpoint):
    inputs = keras.Input((764,), name="inputs")
    logits = keras.layers.Dense(1)(inputs)
    targets = keras.Input((1,), name="targets")
    sample_weight = keras.Input((1,), name="sample_weight")
    preds = LogisticEndpoint()(logits, targets, sample_weight)
    model = keras.Model([inputs, targets, sample_weight], preds)
    return model


def make_inference_model(LogisticEndpoint=LogisticEndpoint):
    inputs = keras.Input((764,), name="inputs")
    logits = keras.layers.Dense(1)(inputs)
    preds = LogisticEndpoint()(logits, targets=None, sample_weight=None)
    inference_model = keras.Model(inputs, preds)
    return inference_model


class LogReg(keras.Model):
    def __init__(self):
        super().__init__()
        self.dense = keras.layers.Dense(1)
        self.logistic_endpoint = LogisticEndpoint()

    def call(self, inputs):
        # Note that all inputs should be in the first argument
        # since we want to be able to call `model.fit(inputs)`.
        logits = self.dense(inputs["inputs"])
        preds = self.logistic_endpoint(
            logits=logits,
            targets=inputs["targets"],
            sample_weight=inputs["sample_weight"],
        )
        return preds


class SavableLogisticEndpoint(LogisticEndpoint):
    """The example's LogisticEndpoint, able to take back the trainable/dtype Keras saved (not in the example)."""

    def __init__(self, name=None, **kwargs):
        super().__init__(name=name)


class SavableLogReg(LogReg):
    """The example's LogReg, able to take back the trainable/dtype Keras saved (not in the example)."""

    def __init__(self, **kwargs):
        super().__init__()


def train(model, data):
    model.compile(keras.optimizers.Adam(1e-3))
    model.fit(data, epochs=1, verbose=0)
    return model


def build(out):
    import lib

    lib.setup()
    data = {
        "inputs": np.random.random((256, 764)),
        "targets": np.random.random((256, 1)),
        "sample_weight": np.random.random((256, 1)),
    }

    # As written: they save, but Keras cannot load them again.
    train(make_training_model(), data).save(os.path.join(out, "as_written.keras"))
    train(LogReg(), data).save(os.path.join(out, "as_written_logreg.keras"))

    model = train(make_training_model(SavableLogisticEndpoint), data)
    model.save(os.path.join(out, "model.keras"))

    inference_model = make_inference_model(SavableLogisticEndpoint)
    inference_model.set_weights(model.get_weights())
    inference_model.save(os.path.join(out, "inference.keras"))

    train(SavableLogReg(), data).save(os.path.join(out, "logreg.keras"))

    lib.save_data(out, **{"x_" + k: v for k, v in data.items()})
