"""Image classification from scratch (keras-io examples/vision/image_classification_from_scratch.py), a small Xception with Rescaling inside the model and augmentation on the dataset.

Upstream: https://github.com/keras-team/keras-io/blob/ac7f64cb542cb0c76245ba77a55fe447dc562d01/examples/vision/image_classification_from_scratch.py
(keras-io master of 2024-01-10, the Keras 3 version; Apache-2.0, author fchollet).

Kept as written: `data_augmentation` (RandomFlip("horizontal"), RandomRotation(0.1)) applied to
the training images OUTSIDE the model, as the example does (its option 2: `train_ds.map(...)`);
`make_model` with its Rescaling(1/255) entry block, separable-conv residual blocks, BatchNorm,
Dropout(0.25) and a 1-unit logit output for 2 classes; `compile(optimizer=Adam(3e-4),
loss=BinaryCrossentropy(from_logits=True), metrics=[BinaryAccuracy(name="acc")])`; integer
labels (0 cat, 1 dog) shaped (n,) as `image_dataset_from_directory` yields them.
Changed:
- image_size (180, 180) -> (64, 64);
- every width halved to keep CPU time and size small: entry Conv2D 128 -> 64, the block sizes
  [256, 512, 728] -> [128, 256, 364], the last SeparableConv2D 1024 -> 512
  (make_model takes a `width` factor, 1.0 reproduces the example; the build uses 0.5);
- the Cats vs Dogs JPEGs -> 256 synthetic RGB images in [0, 255] with a visible class signal,
  augmented once by the example's data_augmentation before fit (as the example's map does);
- `fit(train_ds, epochs=25, callbacks=[ModelCheckpoint("save_at_{epoch}.keras")])` -> 8 steps of
  32 without the callback; saved as `model.keras` (the example's checkpoint saves .keras files).
"""
import os

import numpy as np
import keras
from keras import layers

image_size = (64, 64)
batch_size = 128

data_augmentation_layers = [
    layers.RandomFlip("horizontal"),
    layers.RandomRotation(0.1),
]


def data_augmentation(images):
    for layer in data_augmentation_layers:
        images = layer(images)
    return images


def make_model(input_shape, num_classes, width=1.0):
    def w(n):
        return int(n * width)

    inputs = keras.Input(shape=input_shape)

    # Entry block
    x = layers.Rescaling(1.0 / 255)(inputs)
    x = layers.Conv2D(w(128), 3, strides=2, padding="same")(x)
    x = layers.BatchNormalization()(x)
    x = layers.Activation("relu")(x)

    previous_block_activation = x  # Set aside residual

    for size in [w(256), w(512), w(728)]:
        x = layers.Activation("relu")(x)
        x = layers.SeparableConv2D(size, 3, padding="same")(x)
        x = layers.BatchNormalization()(x)

        x = layers.Activation("relu")(x)
        x = layers.SeparableConv2D(size, 3, padding="same")(x)
        x = layers.BatchNormalization()(x)

        x = layers.MaxPooling2D(3, strides=2, padding="same")(x)

        # Project residual
        residual = layers.Conv2D(size, 1, strides=2, padding="same")(
            previous_block_activation
        )
        x = layers.add([x, residual])  # Add back residual
        previous_block_activation = x  # Set aside next residual

    x = layers.SeparableConv2D(w(1024), 3, padding="same")(x)
    x = layers.BatchNormalization()(x)
    x = layers.Activation("relu")(x)

    x = layers.GlobalAveragePooling2D()(x)
    if num_classes == 2:
        units = 1
    else:
        units = num_classes

    x = layers.Dropout(0.25)(x)
    # We specify activation=None so as to return logits
    outputs = layers.Dense(units, activation=None)(x)
    return keras.Model(inputs, outputs)


def build(out):
    import lib

    rng = lib.setup()
    images, labels = lib.class_images(rng, 256, image_size + (3,), 2, 0.0, 255.0)
    # The example maps data_augmentation over the training dataset before fit().
    x_train = keras.ops.convert_to_numpy(data_augmentation(images)).astype("float32")
    y_train = labels.astype("int32")
    model = make_model(input_shape=image_size + (3,), num_classes=2, width=0.5)
    model.compile(
        optimizer=keras.optimizers.Adam(3e-4),
        loss=keras.losses.BinaryCrossentropy(from_logits=True),
        metrics=[keras.metrics.BinaryAccuracy(name="acc")],
    )
    lib.fit_steps(model, x_train, y_train, steps=8, batch_size=32)
    model.save(os.path.join(out, "model.keras"))
    lib.save_data(out, x=x_train, y=y_train)
