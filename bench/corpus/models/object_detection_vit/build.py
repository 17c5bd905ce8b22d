"""Object detection with Vision Transformers (keras-io examples/vision/object_detection_using_vision_transformer.py), a ViT regressing one bounding box from raw pixels with MSE.

Upstream: https://github.com/keras-team/keras-io/blob/ac7f64cb542cb0c76245ba77a55fe447dc562d01/examples/vision/object_detection_using_vision_transformer.py
(keras-io master of 2024-01-10, the Keras 3 version; Apache-2.0, author Karan V. Dave).

Kept as written: `mlp`, the Patches and PatchEncoder layers (PatchEncoder's get_config reads
the module-level hyperparameters, as in the example), `create_vit_object_detector` (no
rescaling: pixels in [0, 255] go straight into Patches and the Dense projection; pre-norm
transformer blocks; Flatten, Dropout(0.3), a 5-layer gelu MLP head and a linear Dense(4) box);
`AdamW(learning_rate=0.001, weight_decay=0.0001)` and `loss=MeanSquaredError()`; targets as the
example makes them: (top_left_x/w, top_left_y/h, bottom_right_x/w, bottom_right_y/h) in [0, 1].
Changed:
- the example sets KERAS_BACKEND="jax"; the corpus runs on TensorFlow (the code is backend-neutral);
- image_size 224 -> 64, patch_size 32 -> 16 (16 patches as in the example: 7x7=49 there),
  projection_dim 64 -> 32 (transformer_units [128, 64] -> [64, 32]), transformer_layers 4 -> 2,
  mlp_head_units [2048, 1024, 512, 64, 32] -> [256, 128, 64, 64, 32]; num_heads 4 kept;
- Caltech-101 airplanes -> 256 synthetic RGB images in [0, 255] (img_to_array's float32) with a
  bright rectangle where the box is, and the box coordinates as targets;
- `fit(batch_size=32, epochs=100, validation_split=0.1, callbacks=[ModelCheckpoint(...),
  EarlyStopping(...)])` -> 8 steps of 32 without the callbacks;
- the example saves `vit_object_detector.save("vit_object_detector.keras")`. That file saves,
  but Keras cannot reload it: Patches and PatchEncoder take no **kwargs ("TypeError:
  Patches.__init__() got an unexpected keyword argument 'name'"), and PatchEncoder's
  get_config holds keys its __init__ does not take. It is saved as `as_written.keras`.
  `model.keras` is the same model built with SavablePatches and SavablePatchEncoder: the
  example's classes plus only the from_config Keras needs.
"""
import os

import numpy as np
import keras
from keras import layers
from keras import ops

image_size = 64  # resize input images to this size (example: 224)
patch_size = 16  # Size of the patches to be extracted from the input images (example: 32)

input_shape = (image_size, image_size, 3)  # input image shape
learning_rate = 0.001
weight_decay = 0.0001
batch_size = 32
num_epochs = 100
num_patches = (image_size // patch_size) ** 2
projection_dim = 32  # example: 64
num_heads = 4
# Size of the transformer layers
transformer_units = [
    projection_dim * 2,
    projection_dim,
]
transformer_layers = 2  # example: 4
mlp_head_units = [256, 128, 64, 64, 32]  # Size of the dense layers (example: [2048, 1024, 512, 64, 32])


def mlp(x, hidden_units, dropout_rate):
    for units in hidden_units:
        x = layers.Dense(units, activation=keras.activations.gelu)(x)
        x = layers.Dropout(dropout_rate)(x)
    return x


class Patches(layers.Layer):
    def __init__(self, patch_size):
        super().__init__()
        self.patch_size = patch_size

    def call(self, images):
        input_shape = ops.shape(images)
        batch_size = input_shape[0]
        height = input_shape[1]
        width = input_shape[2]
        channels = input_shape[3]
        num_patches_h = height // self.patch_size
        num_patches_w = width // self.patch_size
        patches = keras.ops.image.extract_patches(images, size=self.patch_size)
        patches = ops.reshape(
            patches,
            (
                batch_size,
                num_patches_h * num_patches_w,
                self.patch_size * self.patch_size * channels,
            ),
        )
        return patches

    def get_config(self):
        config = super().get_config()
        config.update({"patch_size": self.patch_size})
        return config


class PatchEncoder(layers.Layer):
    def __init__(self, num_patches, projection_dim):
        super().__init__()
        self.num_patches = num_patches
        self.projection = layers.Dense(units=projection_dim)
        self.position_embedding = layers.Embedding(
            input_dim=num_patches, output_dim=projection_dim
        )

    # Override function to avoid error while saving model
    def get_config(self):
        config = super().get_config().copy()
        config.update(
            {
                "input_shape": input_shape,
                "patch_size": patch_size,
                "num_patches": num_patches,
                "projection_dim": projection_dim,
                "num_heads": num_heads,
                "transformer_units": transformer_units,
                "transformer_layers": transformer_layers,
                "mlp_head_units": mlp_head_units,
            }
        )
        return config

    def call(self, patch):
        positions = ops.expand_dims(
            ops.arange(start=0, stop=self.num_patches, step=1), axis=0
        )
        projected_patches = self.projection(patch)
        encoded = projected_patches + self.position_embedding(positions)
        return encoded


class SavablePatches(Patches):
    """The example's Patches plus the from_config Keras needs (its __init__ takes no name/dtype)."""

    @classmethod
    def from_config(cls, config):
        layer = cls(config["patch_size"])
        layer.name = config["name"]
        return layer


class SavablePatchEncoder(PatchEncoder):
    """The example's PatchEncoder plus the from_config Keras needs (its __init__ takes no name/dtype)."""

    @classmethod
    def from_config(cls, config):
        layer = cls(config["num_patches"], config["projection_dim"])
        layer.name = config["name"]
        return layer


def create_vit_object_detector(
    input_shape,
    patch_size,
    num_patches,
    projection_dim,
    num_heads,
    transformer_units,
    transformer_layers,
    mlp_head_units,
    patches_cls=Patches,
    encoder_cls=PatchEncoder,
):
    inputs = keras.Input(shape=input_shape)
    # Create patches
    patches = patches_cls(patch_size)(inputs)
    # Encode patches
    encoded_patches = encoder_cls(num_patches, projection_dim)(patches)

    # Create multiple layers of the Transformer block.
    for _ in range(transformer_layers):
        # Layer normalization 1.
        x1 = layers.LayerNormalization(epsilon=1e-6)(encoded_patches)
        # Create a multi-head attention layer.
        attention_output = layers.MultiHeadAttention(
            num_heads=num_heads, key_dim=projection_dim, dropout=0.1
        )(x1, x1)
        # Skip connection 1.
        x2 = layers.Add()([attention_output, encoded_patches])
        # Layer normalization 2.
        x3 = layers.LayerNormalization(epsilon=1e-6)(x2)
        # MLP
        x3 = mlp(x3, hidden_units=transformer_units, dropout_rate=0.1)
        # Skip connection 2.
        encoded_patches = layers.Add()([x3, x2])

    # Create a [batch_size, projection_dim] tensor.
    representation = layers.LayerNormalization(epsilon=1e-6)(encoded_patches)
    representation = layers.Flatten()(representation)
    representation = layers.Dropout(0.3)(representation)
    # Add MLP.
    features = mlp(representation, hidden_units=mlp_head_units, dropout_rate=0.3)

    bounding_box = layers.Dense(4)(
        features
    )  # Final four neurons that output bounding box

    # return Keras model.
    return keras.Model(inputs=inputs, outputs=bounding_box)


def compile_experiment(model, learning_rate, weight_decay):
    optimizer = keras.optimizers.AdamW(
        learning_rate=learning_rate, weight_decay=weight_decay
    )

    # Compile model.
    model.compile(optimizer=optimizer, loss=keras.losses.MeanSquaredError())


def synthetic_airplanes(rng, n):
    """Images in [0, 255] with one bright box each, and the box as the example scales it."""
    x = rng.uniform(0.0, 80.0, size=(n, image_size, image_size, 3)).astype("float32")
    y = np.zeros((n, 4), "float32")
    for i in range(n):
        w = rng.integers(image_size // 3, image_size - 4)
        h = rng.integers(image_size // 6, image_size // 2)
        x0 = rng.integers(0, image_size - w)
        y0 = rng.integers(0, image_size - h)
        x[i, y0:y0 + h, x0:x0 + w] += rng.uniform(120.0, 170.0, size=3)
        y[i] = (x0 / image_size, y0 / image_size, (x0 + w) / image_size, (y0 + h) / image_size)
    return np.clip(x, 0.0, 255.0), y


def build(out):
    import lib

    rng = lib.setup()
    x_train, y_train = synthetic_airplanes(rng, 256)
    for name, classes in (("as_written", (Patches, PatchEncoder)),
                          ("model", (SavablePatches, SavablePatchEncoder))):
        keras.backend.clear_session()  # the same layer names in both files
        lib.setup()
        vit_object_detector = create_vit_object_detector(
            input_shape,
            patch_size,
            num_patches,
            projection_dim,
            num_heads,
            transformer_units,
            transformer_layers,
            mlp_head_units,
            *classes,
        )
        compile_experiment(vit_object_detector, learning_rate, weight_decay)
        lib.fit_steps(vit_object_detector, x_train, y_train, steps=8, batch_size=batch_size)
        vit_object_detector.save(os.path.join(out, name + ".keras"))
    lib.save_data(out, x=x_train, y=y_train)
