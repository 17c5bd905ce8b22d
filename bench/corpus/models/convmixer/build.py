"""Image classification with ConvMixer (keras-io examples/vision/convmixer.py), depthwise/pointwise conv blocks with gelu and BatchNorm, Rescaling inside the model, augmentation on the dataset.

Upstream: https://github.com/keras-team/keras-io/blob/ac7f64cb542cb0c76245ba77a55fe447dc562d01/examples/vision/convmixer.py
(keras-io master of 2024-01-10, the Keras 3 version; Apache-2.0, author Sayak Paul).

Kept as written: augmentation_layers and augment_images (RandomCrop(32, 32), RandomFlip, applied
to the training batches OUTSIDE the model, as make_datasets maps them); activation_block,
conv_stem, conv_mixer_block and get_conv_mixer_256_8 (Rescaling(1/255) first, softmax output);
the compile of run_experiment (AdamW(learning_rate=0.001, weight_decay=0.0001),
loss="sparse_categorical_crossentropy", metrics=["accuracy"]); CIFAR-10 as fit() receives it:
augmented pixels in [0, 255] (float32 after the augmentation layers) and (n, 1) uint8 labels.
Changed:
- ConvMixer-256/8 -> ConvMixer-128/4: `get_conv_mixer_256_8(filters=128, depth=4)` (the
  example's function, called with smaller arguments; kernel_size 5 and patch_size 2 kept),
  for CPU time: the 256/8 network runs 16x16x256 feature maps through 8 blocks;
- CIFAR-10 -> 256 synthetic 32x32x3 uint8 images with a visible class signal, augmented once by
  augment_images as make_datasets does for the training set;
- `fit(train_dataset, epochs=10, callbacks=[ModelCheckpoint("/tmp/checkpoint.keras", ...)])` ->
  8 steps of 32 without the callback; run_experiment's compile part is compile_experiment;
  saved as `model.keras` (the example's checkpoint saves the whole model as .keras).
"""
import keras
from keras import layers

import tensorflow as tf
import numpy as np

learning_rate = 0.001
weight_decay = 0.0001
batch_size = 128
num_epochs = 10

image_size = 32


augmentation_layers = [
    keras.layers.RandomCrop(image_size, image_size),
    keras.layers.RandomFlip("horizontal"),
]


def augment_images(images):
    for layer in augmentation_layers:
        images = layer(images, training=True)
    return images


def activation_block(x):
    x = layers.Activation("gelu")(x)
    return layers.BatchNormalization()(x)


def conv_stem(x, filters: int, patch_size: int):
    x = layers.Conv2D(filters, kernel_size=patch_size, strides=patch_size)(x)
    return activation_block(x)


def conv_mixer_block(x, filters: int, kernel_size: int):
    # Depthwise convolution.
    x0 = x
    x = layers.DepthwiseConv2D(kernel_size=kernel_size, padding="same")(x)
    x = layers.Add()([activation_block(x), x0])  # Residual.

    # Pointwise convolution.
    x = layers.Conv2D(filters, kernel_size=1)(x)
    x = activation_block(x)

    return x


def get_conv_mixer_256_8(
    image_size=32, filters=256, depth=8, kernel_size=5, patch_size=2, num_classes=10
):
    """ConvMixer-256/8: https://openreview.net/pdf?id=TVHS5Y4dNvM.
    The hyperparameter values are taken from the paper.
    """
    inputs = keras.Input((image_size, image_size, 3))
    x = layers.Rescaling(scale=1.0 / 255)(inputs)

    # Extract patch embeddings.
    x = conv_stem(x, filters, patch_size)

    # ConvMixer blocks.
    for _ in range(depth):
        x = conv_mixer_block(x, filters, kernel_size)

    # Classification block.
    x = layers.GlobalAvgPool2D()(x)
    outputs = layers.Dense(num_classes, activation="softmax")(x)

    return keras.Model(inputs, outputs)


def compile_experiment(model):
    optimizer = keras.optimizers.AdamW(
        learning_rate=learning_rate, weight_decay=weight_decay
    )

    model.compile(
        optimizer=optimizer,
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )


def build(out):
    import os

    import lib

    rng = lib.setup()
    images, labels = lib.class_images(rng, 256, (image_size, image_size, 3), 10, 0.0, 255.0)
    images = np.round(images).astype("uint8")
    # make_datasets(is_train=True) maps augment_images over the training batches.
    x_train = keras.ops.convert_to_numpy(augment_images(tf.constant(images))).astype("float32")
    y_train = labels.reshape(-1, 1).astype("uint8")
    conv_mixer_model = get_conv_mixer_256_8(filters=128, depth=4)
    compile_experiment(conv_mixer_model)
    lib.fit_steps(conv_mixer_model, x_train, y_train, steps=8, batch_size=32)
    conv_mixer_model.save(os.path.join(out, "model.keras"))
    lib.save_data(out, x=x_train, y=y_train)
