"""PixelCNN (keras-io examples/generative/pixelcnn.py), masked convolutions in custom layers that rewrite their own kernel in call(), an Input with a fixed batch size of 128, binary pixels as inputs and targets.

Upstream: https://github.com/keras-team/keras-io/blob/ac7f64cb542cb0c76245ba77a55fe447dc562d01/examples/generative/pixelcnn.py
(keras-io master of 2024-01-10, the Keras 3 version; Apache-2.0, author ADMoreau).

Kept as written: PixelConvLayer (a Conv2D whose kernel is multiplied by a NumPy mask made in
build() and assigned back in every call(); its __init__ passes no kwargs to the base Layer
and gives every kwarg to the Conv2D) and ResidualBlock, the model layout
(`keras.Input(shape=(28, 28, 1), batch_size=128)`, a 7x7 type-A PixelConvLayer, 5
ResidualBlocks, two 1x1 type-B PixelConvLayers, Conv2D(1, sigmoid)), `Adam(learning_rate=
0.0005)` with binary_crossentropy, and the data: MNIST binarised to 0/1 float32 (pixels
below 0.33 * 256 -> 0, others 1) fed as both x and y, `fit(batch_size=128,
validation_split=0.1)`.
Changed:
- MNIST (downloaded) -> 1,138 synthetic 28x28x1 images with blob strokes, binarised with
  the example's rule (about 20% ones, like MNIST);
- filters 128 -> 32 in every layer (the 7x7 layer, the ResidualBlocks and the 1x1 layers):
  at 128 one batch of 128 costs ~60 GFLOP forward, far too slow for a CPU check;
- the example's module-level code runs inside build(); the pixel-by-pixel sampling demo is
  not run;
- `epochs=50` -> 1 epoch of 1,024 training images (8 steps of 128, validation_split=0.1 as
  written);
- the example does not save; saved as `model.keras` (Keras saves the custom layers through
  the constructor arguments it records itself);
- data.npz holds the first 256 images as x and as y (the example fits x=data, y=data).
"""
import numpy as np
import keras
from keras import layers
from keras import ops

# Model / data parameters
num_classes = 10
input_shape = (28, 28, 1)
n_residual_blocks = 5
FILTERS = 32  # 128 in the example


# The first layer is the PixelCNN layer. This layer simply
# builds on the 2D convolutional layer, but includes masking.
class PixelConvLayer(layers.Layer):
    def __init__(self, mask_type, **kwargs):
        super().__init__()
        self.mask_type = mask_type
        self.conv = layers.Conv2D(**kwargs)

    def build(self, input_shape):
        # Build the conv2d layer to initialize kernel variables
        self.conv.build(input_shape)
        # Use the initialized kernel to create the mask
        kernel_shape = ops.shape(self.conv.kernel)
        self.mask = np.zeros(shape=kernel_shape)
        self.mask[: kernel_shape[0] // 2, ...] = 1.0
        self.mask[kernel_shape[0] // 2, : kernel_shape[1] // 2, ...] = 1.0
        if self.mask_type == "B":
            self.mask[kernel_shape[0] // 2, kernel_shape[1] // 2, ...] = 1.0

    def call(self, inputs):
        self.conv.kernel.assign(self.conv.kernel * self.mask)
        return self.conv(inputs)


# Next, we build our residual block layer.
# This is just a normal residual block, but based on the PixelConvLayer.
class ResidualBlock(keras.layers.Layer):
    def __init__(self, filters, **kwargs):
        super().__init__(**kwargs)
        self.conv1 = keras.layers.Conv2D(
            filters=filters, kernel_size=1, activation="relu"
        )
        self.pixel_conv = PixelConvLayer(
            mask_type="B",
            filters=filters // 2,
            kernel_size=3,
            activation="relu",
            padding="same",
        )
        self.conv2 = keras.layers.Conv2D(
            filters=filters, kernel_size=1, activation="relu"
        )

    def call(self, inputs):
        x = self.conv1(inputs)
        x = self.pixel_conv(x)
        x = self.conv2(x)
        return keras.layers.add([inputs, x])


def make_model():
    inputs = keras.Input(shape=input_shape, batch_size=128)
    x = PixelConvLayer(
        mask_type="A", filters=FILTERS, kernel_size=7, activation="relu", padding="same"
    )(inputs)

    for _ in range(n_residual_blocks):
        x = ResidualBlock(filters=FILTERS)(x)

    for _ in range(2):
        x = PixelConvLayer(
            mask_type="B",
            filters=FILTERS,
            kernel_size=1,
            strides=1,
            activation="relu",
            padding="valid",
        )(x)

    out = keras.layers.Conv2D(
        filters=1, kernel_size=1, strides=1, activation="sigmoid", padding="valid"
    )(x)

    pixel_cnn = keras.Model(inputs, out)
    adam = keras.optimizers.Adam(learning_rate=0.0005)
    pixel_cnn.compile(optimizer=adam, loss="binary_crossentropy")
    return pixel_cnn


def build(out):
    import os

    import lib

    rng = lib.setup()
    x = lib.pixels(rng, 1138, input_shape, 0.0, 255.0, smooth=3)
    # Scale so that about 20% of the pixels pass the example's threshold, as in MNIST.
    x = x * (0.33 * 256) / np.quantile(x, 0.80)
    data = np.where(x < (0.33 * 256), 0, 1)
    data = data.astype(np.float32)

    pixel_cnn = make_model()
    pixel_cnn.fit(
        x=data, y=data, batch_size=128, epochs=1, validation_split=0.1, verbose=0
    )
    pixel_cnn.save(os.path.join(out, "model.keras"))
    lib.save_data(out, x=data[:256], y=data[:256])
