"""Image segmentation with a U-Net-like architecture (keras-io examples/vision/oxford_pets_image_segmentation.py), an Xception-style U-Net with a per-pixel softmax and sparse categorical cross-entropy.

Upstream: https://github.com/keras-team/keras-io/blob/ac7f64cb542cb0c76245ba77a55fe447dc562d01/examples/vision/oxford_pets_image_segmentation.py
(keras-io master of 2024-01-10, the Keras 3 version; Apache-2.0, author fchollet).

Kept as written: `get_model` (the separable-conv downsampling blocks, the
Conv2DTranspose/UpSampling2D upsampling blocks with their residual projections, the 3-class
per-pixel softmax Conv2D); `compile(optimizer=Adam(1e-4), loss="sparse_categorical_crossentropy")`;
the data as the example's `load_img_masks` yields it: images float32 in [0, 255] (the example
calls `tf.image.convert_image_dtype(input_img, "float32")` on the float32 output of
`tf.image.resize`, which is a no-op, so the pixels reach the model unscaled) and uint8 masks
(h, w, 1) with the classes 0, 1, 2 (trimap values 1..3 minus one).
Changed:
- img_size (160, 160) -> (64, 64);
- every width halved (get_model takes a `width` factor, 1.0 reproduces the example; the build
  uses 0.5): 32 -> 16, [64, 128, 256] -> [32, 64, 128], [256, 128, 64, 32] -> [128, 64, 32, 16].
  With the example's widths (2.06M parameters at 64x64) one kerascheck check on 2 CPU cores
  ran past its 300 s probe budget;
- the Oxford Pets JPEGs and trimaps -> 256 synthetic RGB images in [0, 255] and smooth
  trimap-like masks (the class of each 8x8 block follows its mean brightness: 40% background,
  30% pet, 30% border), learnable from the pixels;
- `fit(train_dataset, epochs=50, callbacks=[ModelCheckpoint("oxford_segmentation.keras",
  save_best_only=True)])` -> 8 steps of 16; saved as `model.keras` (the example's checkpoint
  saves a .keras file).
"""
import os

import numpy as np
import keras
from keras import layers

img_size = (64, 64)
num_classes = 3
batch_size = 32


def get_model(img_size, num_classes, width=1.0):
    def w(n):
        return int(n * width)

    inputs = keras.Input(shape=img_size + (3,))

    ### [First half of the network: downsampling inputs] ###

    # Entry block
    x = layers.Conv2D(w(32), 3, strides=2, padding="same")(inputs)
    x = layers.BatchNormalization()(x)
    x = layers.Activation("relu")(x)

    previous_block_activation = x  # Set aside residual

    # Blocks 1, 2, 3 are identical apart from the feature depth.
    for filters in [w(64), w(128), w(256)]:
        x = layers.Activation("relu")(x)
        x = layers.SeparableConv2D(filters, 3, padding="same")(x)
        x = layers.BatchNormalization()(x)

        x = layers.Activation("relu")(x)
        x = layers.SeparableConv2D(filters, 3, padding="same")(x)
        x = layers.BatchNormalization()(x)

        x = layers.MaxPooling2D(3, strides=2, padding="same")(x)

        # Project residual
        residual = layers.Conv2D(filters, 1, strides=2, padding="same")(
            previous_block_activation
        )
        x = layers.add([x, residual])  # Add back residual
        previous_block_activation = x  # Set aside next residual

    ### [Second half of the network: upsampling inputs] ###

    for filters in [w(256), w(128), w(64), w(32)]:
        x = layers.Activation("relu")(x)
        x = layers.Conv2DTranspose(filters, 3, padding="same")(x)
        x = layers.BatchNormalization()(x)

        x = layers.Activation("relu")(x)
        x = layers.Conv2DTranspose(filters, 3, padding="same")(x)
        x = layers.BatchNormalization()(x)

        x = layers.UpSampling2D(2)(x)

        # Project residual
        residual = layers.UpSampling2D(2)(previous_block_activation)
        residual = layers.Conv2D(filters, 1, padding="same")(residual)
        x = layers.add([x, residual])  # Add back residual
        previous_block_activation = x  # Set aside next residual

    # Add a per-pixel classification layer
    outputs = layers.Conv2D(num_classes, 3, activation="softmax", padding="same")(x)

    # Define the model
    model = keras.Model(inputs, outputs)
    return model


def build(out):
    import lib

    rng = lib.setup()
    x_train = lib.pixels(rng, 256, img_size + (3,), 0.0, 255.0, smooth=8)
    # Trimap-like masks, smooth like real trimaps: the class of each 8x8 block follows the
    # block's mean brightness (0 background, 1 pet, 2 border); constant within a block.
    n, h, w_ = x_train.shape[:3]
    blocks = x_train.mean(axis=-1).reshape(n, h // 8, 8, w_ // 8, 8).mean(axis=(2, 4))
    block_classes = np.digitize(blocks, [np.percentile(blocks, 40), np.percentile(blocks, 70)])
    y_train = np.repeat(np.repeat(block_classes, 8, axis=1), 8, axis=2)[..., None].astype("uint8")
    model = get_model(img_size, num_classes, width=0.5)
    model.compile(
        optimizer=keras.optimizers.Adam(1e-4), loss="sparse_categorical_crossentropy"
    )
    lib.fit_steps(model, x_train, y_train, steps=8, batch_size=16)
    model.save(os.path.join(out, "model.keras"))
    lib.save_data(out, x=x_train, y=y_train)
