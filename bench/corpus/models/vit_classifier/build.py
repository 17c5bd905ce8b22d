"""Image classification with Vision Transformer (keras-io examples/vision/image_classification_with_vision_transformer.py), a ViT with an adapted Normalization inside the model and custom Patches/PatchEncoder layers.

Upstream: https://github.com/keras-team/keras-io/blob/ac7f64cb542cb0c76245ba77a55fe447dc562d01/examples/vision/image_classification_with_vision_transformer.py
(keras-io master of 2024-01-10, the Keras 3 version; Apache-2.0, author Khalid Salama).

Kept as written: the `data_augmentation` Sequential (Normalization adapted on the training
images, Resizing, RandomFlip, RandomRotation(0.02), RandomZoom(0.2, 0.2)) as the model's first
layer; `mlp`, the Patches and PatchEncoder layers (with their incomplete get_config);
`create_vit_classifier` (pre-norm transformer blocks, MultiHeadAttention with dropout 0.1,
Flatten, Dropout(0.5), MLP head, 100 logits); `AdamW(learning_rate=0.001, weight_decay=0.0001)`,
`SparseCategoricalCrossentropy(from_logits=True)` and the two accuracy metrics; CIFAR-100's
uint8 pixels in [0, 255] and its (n, 1) uint8 labels, fed as the example feeds them.
Changed:
- the example sets KERAS_BACKEND="jax"; the corpus runs on TensorFlow (the code is backend-neutral);
- image_size 72 -> 36 (patch_size 6 kept, so 36 patches instead of 144), projection_dim 64 -> 32
  (transformer_units [128, 64] -> [64, 32]), transformer_layers 8 -> 2, mlp_head_units
  [2048, 1024] -> [256, 128]; num_heads 4 and num_classes 100 kept;
- CIFAR-100 -> 256 synthetic 32x32x3 uint8 images with a visible class signal (the
  Normalization is adapted on them, as the example adapts it on x_train);
- `fit(batch_size=256, epochs=10, validation_split=0.1, callbacks=[ModelCheckpoint(...)])` ->
  8 steps of 32 without the callback;
- the example does not save the model (only a weights checkpoint). As written it saves but
  cannot be reloaded: Patches and PatchEncoder take no **kwargs, so Keras's from_config
  fails with "TypeError: Patches.__init__() got an unexpected keyword argument 'name'"
  (and PatchEncoder's get_config lacks projection_dim). That file is saved as
  `as_written.keras`. `model.keras` is the same model built with SavablePatches and
  SavablePatchEncoder: the example's classes plus only the get_config/from_config Keras needs.
"""
import os

import numpy as np
import keras
from keras import layers
from keras import ops

num_classes = 100
input_shape = (32, 32, 3)

learning_rate = 0.001
weight_decay = 0.0001
batch_size = 256
num_epochs = 10  # For real training, use num_epochs=100. 10 is a test value
image_size = 36  # We'll resize input images to this size (example: 72)
patch_size = 6  # Size of the patches to be extract from the input images
num_patches = (image_size // patch_size) ** 2
projection_dim = 32  # example: 64
num_heads = 4
transformer_units = [
    projection_dim * 2,
    projection_dim,
]  # Size of the transformer layers
transformer_layers = 2  # example: 8
mlp_head_units = [
    256,
    128,
]  # Size of the dense layers of the final classifier (example: [2048, 1024])


def make_data_augmentation():
    return keras.Sequential(
        [
            layers.Normalization(),
            layers.Resizing(image_size, image_size),
            layers.RandomFlip("horizontal"),
            layers.RandomRotation(factor=0.02),
            layers.RandomZoom(height_factor=0.2, width_factor=0.2),
        ],
        name="data_augmentation",
    )


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

    def call(self, patch):
        positions = ops.expand_dims(
            ops.arange(start=0, stop=self.num_patches, step=1), axis=0
        )
        projected_patches = self.projection(patch)
        encoded = projected_patches + self.position_embedding(positions)
        return encoded

    def get_config(self):
        config = super().get_config()
        config.update({"num_patches": self.num_patches})
        return config


class SavablePatches(Patches):
    """The example's Patches plus the from_config Keras needs (its __init__ takes no name/dtype)."""

    @classmethod
    def from_config(cls, config):
        layer = cls(config["patch_size"])
        layer.name = config["name"]
        return layer


class SavablePatchEncoder(PatchEncoder):
    """The example's PatchEncoder plus projection_dim in its config and the from_config Keras needs."""

    def get_config(self):
        config = super().get_config()
        config.update({"projection_dim": self.projection.units})
        return config

    @classmethod
    def from_config(cls, config):
        layer = cls(config["num_patches"], config["projection_dim"])
        layer.name = config["name"]
        return layer


def create_vit_classifier(data_augmentation, patches_cls=Patches, encoder_cls=PatchEncoder):
    inputs = keras.Input(shape=input_shape)
    # Augment data.
    augmented = data_augmentation(inputs)
    # Create patches.
    patches = patches_cls(patch_size)(augmented)
    # Encode patches.
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
        # MLP.
        x3 = mlp(x3, hidden_units=transformer_units, dropout_rate=0.1)
        # Skip connection 2.
        encoded_patches = layers.Add()([x3, x2])

    # Create a [batch_size, projection_dim] tensor.
    representation = layers.LayerNormalization(epsilon=1e-6)(encoded_patches)
    representation = layers.Flatten()(representation)
    representation = layers.Dropout(0.5)(representation)
    # Add MLP.
    features = mlp(representation, hidden_units=mlp_head_units, dropout_rate=0.5)
    # Classify outputs.
    logits = layers.Dense(num_classes)(features)
    # Create the Keras model.
    model = keras.Model(inputs=inputs, outputs=logits)
    return model


def compile_experiment(model):
    optimizer = keras.optimizers.AdamW(
        learning_rate=learning_rate, weight_decay=weight_decay
    )

    model.compile(
        optimizer=optimizer,
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=[
            keras.metrics.SparseCategoricalAccuracy(name="accuracy"),
            keras.metrics.SparseTopKCategoricalAccuracy(5, name="top-5-accuracy"),
        ],
    )


def build(out):
    import lib

    rng = lib.setup()
    images, labels = lib.class_images(rng, 256, input_shape, num_classes, 0.0, 255.0)
    x_train = np.round(images).astype("uint8")
    y_train = labels.reshape(-1, 1).astype("uint8")
    for name, classes in (("as_written", (Patches, PatchEncoder)),
                          ("model", (SavablePatches, SavablePatchEncoder))):
        lib.setup()
        data_augmentation = make_data_augmentation()
        # Compute the mean and the variance of the training data for normalization.
        data_augmentation.layers[0].adapt(x_train)
        model = create_vit_classifier(data_augmentation, *classes)
        compile_experiment(model)
        lib.fit_steps(model, x_train, y_train, steps=8, batch_size=32)
        model.save(os.path.join(out, name + ".keras"))
    lib.save_data(out, x=x_train, y=y_train)
