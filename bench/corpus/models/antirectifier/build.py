"""Simple custom layer example: Antirectifier (keras-io examples/keras_recipes/antirectifier.py), a custom layer with its own weight and get_config inside a Sequential MLP on flattened digits, logits with from_logits=True.

Upstream: https://github.com/keras-team/keras-io/blob/ac7f64cb542cb0c76245ba77a55fe447dc562d01/examples/keras_recipes/antirectifier.py
(keras-io master of 2024-01-10, the Keras 3 version; Apache-2.0, author fchollet).

Kept as written: the Antirectifier layer (mean-centring, concatenated relu(x) and relu(-x),
a he_normal (2d, d) kernel, get_config), the model (Input 784, Dense(256), Antirectifier,
Dense(256), Antirectifier, Dropout(0.5), Dense(10) logits),
`compile(loss=SparseCategoricalCrossentropy(from_logits=True), optimizer=RMSprop(),
metrics=[SparseCategoricalAccuracy()])`, and the data as fit() receives it: flattened pixels
float32 scaled to [0, 1] by `/= 255`, integer labels (uint8, as mnist.load_data gives them).
Changed:
- MNIST (downloaded) -> 1,200 synthetic 28x28 digits (flattened to 784) whose class is
  visible in them;
- the example's module-level code runs inside build();
- `fit(batch_size=128, epochs=20, validation_split=0.15)` -> one epoch of 1,024 training
  digits (8 steps of 128, validation_split=0.15 as written); the final evaluate is not run;
- the example does not save; saved as `model.keras`;
- data.npz holds the first 256 digits (x float32 (256, 784)) and labels (y uint8 (256,)).
"""
import keras
from keras import layers
from keras import ops


class Antirectifier(layers.Layer):
    def __init__(self, initializer="he_normal", **kwargs):
        super().__init__(**kwargs)
        self.initializer = keras.initializers.get(initializer)

    def build(self, input_shape):
        output_dim = input_shape[-1]
        self.kernel = self.add_weight(
            shape=(output_dim * 2, output_dim),
            initializer=self.initializer,
            name="kernel",
            trainable=True,
        )

    def call(self, inputs):
        inputs -= ops.mean(inputs, axis=-1, keepdims=True)
        pos = ops.relu(inputs)
        neg = ops.relu(-inputs)
        concatenated = ops.concatenate([pos, neg], axis=-1)
        mixed = ops.matmul(concatenated, self.kernel)
        return mixed

    def get_config(self):
        # Implement get_config to enable serialization. This is optional.
        base_config = super().get_config()
        config = {"initializer": keras.initializers.serialize(self.initializer)}
        return dict(list(base_config.items()) + list(config.items()))


# Training parameters
batch_size = 128
num_classes = 10
epochs = 20


def make_model():
    model = keras.Sequential(
        [
            keras.Input(shape=(784,)),
            layers.Dense(256),
            Antirectifier(),
            layers.Dense(256),
            Antirectifier(),
            layers.Dropout(0.5),
            layers.Dense(10),
        ]
    )
    model.compile(
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        optimizer=keras.optimizers.RMSprop(),
        metrics=[keras.metrics.SparseCategoricalAccuracy()],
    )
    return model


def build(out):
    import os

    import lib

    rng = lib.setup()
    images, labels = lib.class_images(rng, 1205, (28, 28), num_classes, 0.0, 255.0)
    x_train = images.reshape(-1, 784).round()
    y_train = labels.astype("uint8")
    x_train = x_train.astype("float32")
    x_train /= 255

    model = make_model()
    model.fit(x_train, y_train, batch_size=batch_size, epochs=1, validation_split=0.15, verbose=0)
    model.save(os.path.join(out, "model.keras"))
    lib.save_data(out, x=x_train[:256], y=y_train[:256])
