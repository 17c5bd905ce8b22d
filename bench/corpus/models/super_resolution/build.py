"""Image Super-Resolution using an Efficient Sub-Pixel CNN (keras-io examples/vision/super_resolution_sub_pixel.py), a fully convolutional ESPCN with inputs of any size (None, None, 1), a custom DepthToSpace layer and MSE on the luminance channel.

Upstream: https://github.com/keras-team/keras-io/blob/ac7f64cb542cb0c76245ba77a55fe447dc562d01/examples/vision/super_resolution_sub_pixel.py
(keras-io master of 2024-01-10, the Keras 3 version; Apache-2.0, author Xingyu Long, converted
to Keras 3 by Md Awsfalur Rahman).

Kept as written: upscale_factor 3, batch_size 8; scaling (/255), process_input (RGB -> YUV, the Y
channel resized down by 3 with "area") and process_target (the Y channel at full size);
DepthToSpace and get_model (4 relu Conv2Ds with orthogonal initialisers on an input of
unknown height and width, then DepthToSpace); `compile(optimizer=Adam(learning_rate=0.001),
loss=MeanSquaredError())`; the data as fit() receives it: low-resolution Y in [0, 1] as x,
full-resolution Y in [0, 1] as y.
Changed:
- crop_size 300 -> 60 (input_size 100 -> 20; the model itself takes any size);
- the BSDS500 photos -> 64 synthetic smooth RGB images in [0, 255] (blocky noise, upsampled),
  run through the example's scaling, process_input and process_target;
- `fit(train_ds, epochs=100, callbacks=[ESPCNCallback(), EarlyStopping, ModelCheckpoint(
  "/tmp/checkpoint.keras", save_weights_only=False, ...)], validation_data=valid_ds)` -> 8
  steps of 8 without the callbacks (ESPCNCallback only plots and prints PSNR);
- the example saves the whole model through ModelCheckpoint (.keras). That file saves, but
  Keras cannot load it: DepthToSpace.__init__ takes only block_size, while Keras's automatic
  config also holds trainable and dtype ("TypeError: DepthToSpace.__init__() got an unexpected
  keyword argument 'trainable'"). The example only ever reloads its weights
  (`model.load_weights`), which works.
  The file as written is `as_written.keras`; `model.keras` is the same model with
  SavableDepthToSpace, the example's class plus only the from_config Keras needs.
"""
import numpy as np
import tensorflow as tf  #  only for data preprocessing
import keras
from keras import layers
from keras import ops

crop_size = 60  # example: 300
upscale_factor = 3
input_size = crop_size // upscale_factor
batch_size = 8


def scaling(input_image):
    input_image = input_image / 255.0
    return input_image


# Use TF Ops to process.
def process_input(input, input_size, upscale_factor):
    input = tf.image.rgb_to_yuv(input)
    last_dimension_axis = len(input.shape) - 1
    y, u, v = tf.split(input, 3, axis=last_dimension_axis)
    return tf.image.resize(y, [input_size, input_size], method="area")


def process_target(input):
    input = tf.image.rgb_to_yuv(input)
    last_dimension_axis = len(input.shape) - 1
    y, u, v = tf.split(input, 3, axis=last_dimension_axis)
    return y


class DepthToSpace(layers.Layer):
    def __init__(self, block_size):
        super().__init__()
        self.block_size = block_size

    def call(self, input):
        batch, height, width, depth = ops.shape(input)
        depth = depth // (self.block_size**2)

        x = ops.reshape(
            input, [batch, height, width, self.block_size, self.block_size, depth]
        )
        x = ops.transpose(x, [0, 1, 3, 2, 4, 5])
        x = ops.reshape(
            x, [batch, height * self.block_size, width * self.block_size, depth]
        )
        return x


class SavableDepthToSpace(DepthToSpace):
    """The example's DepthToSpace plus the from_config Keras needs to rebuild it (not in the example)."""

    @classmethod
    def from_config(cls, config):
        return cls(config["block_size"])


def get_model(upscale_factor=3, channels=1, depth_to_space_cls=DepthToSpace):
    conv_args = {
        "activation": "relu",
        "kernel_initializer": "orthogonal",
        "padding": "same",
    }
    inputs = keras.Input(shape=(None, None, channels))
    x = layers.Conv2D(64, 5, **conv_args)(inputs)
    x = layers.Conv2D(64, 3, **conv_args)(x)
    x = layers.Conv2D(32, 3, **conv_args)(x)
    x = layers.Conv2D(channels * (upscale_factor**2), 3, **conv_args)(x)
    outputs = depth_to_space_cls(upscale_factor)(x)

    return keras.Model(inputs, outputs)


def build(out):
    import os

    import lib

    rng = lib.setup()
    photos = lib.pixels(rng, 64, (crop_size, crop_size, 3), 0.0, 255.0, smooth=6)
    images = scaling(tf.constant(photos))
    x_train = process_input(images, input_size, upscale_factor).numpy()
    y_train = process_target(images).numpy()
    for name, cls in (("as_written", DepthToSpace), ("model", SavableDepthToSpace)):
        keras.backend.clear_session()  # the same layer names in both files
        lib.setup()
        model = get_model(upscale_factor=upscale_factor, channels=1, depth_to_space_cls=cls)
        loss_fn = keras.losses.MeanSquaredError()
        optimizer = keras.optimizers.Adam(learning_rate=0.001)
        model.compile(
            optimizer=optimizer,
            loss=loss_fn,
        )
        lib.fit_steps(model, x_train, y_train, steps=8, batch_size=batch_size)
        model.save(os.path.join(out, name + ".keras"))
    lib.save_data(out, x=x_train, y=y_train)
