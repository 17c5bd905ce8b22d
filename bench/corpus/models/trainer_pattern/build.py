"""Trainer pattern (keras-io examples/keras_recipes/trainer_pattern.py), a MyTrainer Model subclass wrapping another model, with its own loss in train_step/test_step and a compile() given only an optimizer.

Upstream: https://github.com/keras-team/keras-io/blob/ac7f64cb542cb0c76245ba77a55fe447dc562d01/examples/keras_recipes/trainer_pattern.py
(keras-io master of 2024-01-10, the Keras 3 version; Apache-2.0, author Kaushik Chakraborty).

Kept as written: MyTrainer (wraps `model`, SparseCategoricalCrossentropy as self.loss_fn,
SparseCategoricalAccuracy, train_step, test_step, call), model_a (Sequential without Input:
Flatten, Dense(256, relu), Dropout(0.2), Dense(10, softmax)), model_b (Functional, Input
(28, 28, 1), Flatten, Dense(512, relu), Dropout(0.4), Dense(10, softmax)),
`trainer_1.compile(optimizer=keras.optimizers.SGD())`, `trainer_2.compile(optimizer=
keras.optimizers.Adam())`, and the data as fit() receives it: x_train of shape (N, 28, 28)
(no channel axis, also for model_b), float64 in [0, 1] from `x_train / 255.0`, labels uint8.
Changed:
- MNIST (downloaded) -> 512 synthetic 28x28 digits whose class is visible in them;
- the example's module-level code runs inside build();
- `fit(epochs=5, batch_size=64, validation_data=...)` -> one epoch of 512 (8 steps of 64),
  no validation;
- the example does not save, and as written it cannot: `trainer.save()` raises Keras's
  NotImplementedError ("Object MyTrainer was created by passing non-serializable argument
  values in `__init__()`, and therefore the object must override `get_config()` in order to
  be serializable. Please implement `get_config()`."). The saved class, SavableMyTrainer, is
  the example's MyTrainer plus the get_config/from_config that Keras asks for, nothing else;
  trainer_2 (model_b, Adam) is saved as `model.keras`, trainer_1 (model_a, SGD) as
  `trainer_sgd.keras`;
- data.npz holds the first 256 digits (x float64 (256, 28, 28)) and labels (y uint8 (256,)).
"""
import os

os.environ["KERAS_BACKEND"] = "tensorflow"

import tensorflow as tf
import keras


class MyTrainer(keras.Model):
    def __init__(self, model):
        super().__init__()
        self.model = model
        # Create loss and metrics here.
        self.loss_fn = keras.losses.SparseCategoricalCrossentropy()
        self.accuracy_metric = keras.metrics.SparseCategoricalAccuracy()

    @property
    def metrics(self):
        # List metrics here.
        return [self.accuracy_metric]

    def train_step(self, data):
        x, y = data
        with tf.GradientTape() as tape:
            y_pred = self.model(x, training=True)  # Forward pass
            # Compute loss value
            loss = self.loss_fn(y, y_pred)

        # Compute gradients
        trainable_vars = self.trainable_variables
        gradients = tape.gradient(loss, trainable_vars)

        # Update weights
        self.optimizer.apply_gradients(zip(gradients, trainable_vars))

        # Update metrics
        for metric in self.metrics:
            metric.update_state(y, y_pred)

        # Return a dict mapping metric names to current value.
        return {m.name: m.result() for m in self.metrics}

    def test_step(self, data):
        x, y = data

        # Inference step
        y_pred = self.model(x, training=False)

        # Update metrics
        for metric in self.metrics:
            metric.update_state(y, y_pred)
        return {m.name: m.result() for m in self.metrics}

    def call(self, x):
        # Equivalent to `call()` of the wrapped keras.Model
        x = self.model(x)
        return x


def make_model_a():
    # A model defined using Sequential API
    return keras.models.Sequential(
        [
            keras.layers.Flatten(),
            keras.layers.Dense(256, activation="relu"),
            keras.layers.Dropout(0.2),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )


def make_model_b():
    # A model defined using Functional API
    func_input = keras.Input(shape=(28, 28, 1))
    x = keras.layers.Flatten()(func_input)
    x = keras.layers.Dense(512, activation="relu")(x)
    x = keras.layers.Dropout(0.4)(x)
    func_output = keras.layers.Dense(10, activation="softmax")(x)
    return keras.Model(func_input, func_output)


class SavableMyTrainer(MyTrainer):
    """The example's MyTrainer plus the two methods Keras needs to rebuild it from a file (not in the example).

    MyTrainer.__init__ takes no **kwargs, so the config holds only the wrapped model.
    """

    def get_config(self):
        return {"model": keras.saving.serialize_keras_object(self.model)}

    @classmethod
    def from_config(cls, config):
        return cls(keras.saving.deserialize_keras_object(config["model"]))


def build(out):
    import lib

    rng = lib.setup()
    images, labels = lib.class_images(rng, 512, (28, 28), 10, 0.0, 255.0)
    x_train, y_train = images.round().astype("float64"), labels.astype("uint8")
    x_train = x_train / 255.0

    trainer_1 = SavableMyTrainer(make_model_a())
    trainer_2 = SavableMyTrainer(make_model_b())

    trainer_1.compile(optimizer=keras.optimizers.SGD())
    trainer_1.fit(x_train, y_train, epochs=1, batch_size=64, verbose=0)
    trainer_1.save(os.path.join(out, "trainer_sgd.keras"))

    trainer_2.compile(optimizer=keras.optimizers.Adam())
    trainer_2.fit(x_train, y_train, epochs=1, batch_size=64, verbose=0)
    trainer_2.save(os.path.join(out, "model.keras"))

    lib.save_data(out, x=x_train[:256], y=y_train[:256])
