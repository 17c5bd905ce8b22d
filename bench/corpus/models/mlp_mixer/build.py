"""Image classification with modern MLP models (keras-io examples/vision/mlp_image_classification.py), the MLP-Mixer: an adapted Normalization and augmentation inside the model, custom Patches and MLPMixerLayer blocks.

Upstream: https://github.com/keras-team/keras-io/blob/ac7f64cb542cb0c76245ba77a55fe447dc562d01/examples/vision/mlp_image_classification.py
(keras-io master of 2024-01-10, the Keras 3 version; Apache-2.0, author Khalid Salama).

Kept as written, at full size (image_size 64, patch_size 8, embedding_dim 256, num_blocks 4,
dropout 0.2, 100 classes): build_classifier; the compile of run_experiment
(AdamW(learning_rate=0.005, weight_decay=0.0001) -- the MLP-Mixer's rate --,
SparseCategoricalCrossentropy(from_logits=True), top-1 and top-5 metrics); the data_augmentation
Sequential (Normalization adapted on the training images, Resizing(64, 64), RandomFlip,
RandomZoom); Patches, PositionEmbedding and MLPMixerLayer as written; the 4-block MLP-Mixer
Sequential; CIFAR-100 as the example feeds it: uint8 pixels in [0, 255], (n, 1) uint8 labels.
Only the MLP-Mixer is built (the example also trains FNet and gMLP).
Changed:
- CIFAR-100 -> 256 synthetic 32x32x3 uint8 images with a visible class signal (the
  Normalization is adapted on them, as the example adapts it on x_train);
- data_augmentation and the block Sequential are made by functions and passed in
  (build_classifier takes data_augmentation as an argument);
- `fit(batch_size=128, epochs=1, validation_split=0.1, callbacks=[early_stopping, reduce_lr])`
  -> 8 steps of 32 without the callbacks (the example's ReduceLROnPlateau(factor=0.5,
  patience=5) does decay its rate on plateaus; callbacks are not saved);
- run_experiment's compile part is compile_experiment; the example does not save; saved
  as `model.keras`.
"""
import numpy as np
import keras
from keras import layers

num_classes = 100
input_shape = (32, 32, 3)

weight_decay = 0.0001
batch_size = 128
num_epochs = 1  # Recommended num_epochs = 50
dropout_rate = 0.2
image_size = 64  # We'll resize input images to this size.
patch_size = 8  # Size of the patches to be extracted from the input images.
num_patches = (image_size // patch_size) ** 2  # Size of the data array.
embedding_dim = 256  # Number of hidden units.
num_blocks = 4  # Number of blocks.
learning_rate = 0.005  # the MLP-Mixer's rate (set before its experiment in the example)


def build_classifier(blocks, data_augmentation, positional_encoding=False):
    inputs = layers.Input(shape=input_shape)
    # Augment data.
    augmented = data_augmentation(inputs)
    # Create patches.
    patches = Patches(patch_size)(augmented)
    # Encode patches to generate a [batch_size, num_patches, embedding_dim] tensor.
    x = layers.Dense(units=embedding_dim)(patches)
    if positional_encoding:
        x = x + PositionEmbedding(sequence_length=num_patches)(x)
    # Process x using the module blocks.
    x = blocks(x)
    # Apply global average pooling to generate a [batch_size, embedding_dim] representation tensor.
    representation = layers.GlobalAveragePooling1D()(x)
    # Apply dropout.
    representation = layers.Dropout(rate=dropout_rate)(representation)
    # Compute logits outputs.
    logits = layers.Dense(num_classes)(representation)
    # Create the Keras model.
    return keras.Model(inputs=inputs, outputs=logits)


def compile_experiment(model):
    # Create Adam optimizer with weight decay.
    optimizer = keras.optimizers.AdamW(
        learning_rate=learning_rate,
        weight_decay=weight_decay,
    )
    # Compile the model.
    model.compile(
        optimizer=optimizer,
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=[
            keras.metrics.SparseCategoricalAccuracy(name="acc"),
            keras.metrics.SparseTopKCategoricalAccuracy(5, name="top5-acc"),
        ],
    )


def make_data_augmentation():
    return keras.Sequential(
        [
            layers.Normalization(),
            layers.Resizing(image_size, image_size),
            layers.RandomFlip("horizontal"),
            layers.RandomZoom(height_factor=0.2, width_factor=0.2),
        ],
        name="data_augmentation",
    )


class Patches(layers.Layer):
    def __init__(self, patch_size, **kwargs):
        super().__init__(**kwargs)
        self.patch_size = patch_size

    def call(self, x):
        patches = keras.ops.image.extract_patches(x, self.patch_size)
        batch_size = keras.ops.shape(patches)[0]
        num_patches = keras.ops.shape(patches)[1] * keras.ops.shape(patches)[2]
        patch_dim = keras.ops.shape(patches)[3]
        out = keras.ops.reshape(patches, (batch_size, num_patches, patch_dim))
        return out


class PositionEmbedding(keras.layers.Layer):
    def __init__(
        self,
        sequence_length,
        initializer="glorot_uniform",
        **kwargs,
    ):
        super().__init__(**kwargs)
        if sequence_length is None:
            raise ValueError("`sequence_length` must be an Integer, received `None`.")
        self.sequence_length = int(sequence_length)
        self.initializer = keras.initializers.get(initializer)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "sequence_length": self.sequence_length,
                "initializer": keras.initializers.serialize(self.initializer),
            }
        )
        return config

    def build(self, input_shape):
        feature_size = input_shape[-1]
        self.position_embeddings = self.add_weight(
            name="embeddings",
            shape=[self.sequence_length, feature_size],
            initializer=self.initializer,
            trainable=True,
        )

        super().build(input_shape)

    def call(self, inputs, start_index=0):
        shape = keras.ops.shape(inputs)
        feature_length = shape[-1]
        sequence_length = shape[-2]
        # trim to match the length of the input sequence, which might be less
        # than the sequence_length of the layer.
        position_embeddings = keras.ops.convert_to_tensor(self.position_embeddings)
        position_embeddings = keras.ops.slice(
            position_embeddings,
            (start_index, 0),
            (sequence_length, feature_length),
        )
        return keras.ops.broadcast_to(position_embeddings, shape)

    def compute_output_shape(self, input_shape):
        return input_shape


class MLPMixerLayer(layers.Layer):
    def __init__(self, num_patches, hidden_units, dropout_rate, *args, **kwargs):
        super().__init__(*args, **kwargs)

        self.mlp1 = keras.Sequential(
            [
                layers.Dense(units=num_patches, activation="gelu"),
                layers.Dense(units=num_patches),
                layers.Dropout(rate=dropout_rate),
            ]
        )
        self.mlp2 = keras.Sequential(
            [
                layers.Dense(units=num_patches, activation="gelu"),
                layers.Dense(units=hidden_units),
                layers.Dropout(rate=dropout_rate),
            ]
        )
        self.normalize = layers.LayerNormalization(epsilon=1e-6)

    def build(self, input_shape):
        return super().build(input_shape)

    def call(self, inputs):
        # Apply layer normalization.
        x = self.normalize(inputs)
        # Transpose inputs from [num_batches, num_patches, hidden_units] to [num_batches, hidden_units, num_patches].
        x_channels = keras.ops.transpose(x, axes=(0, 2, 1))
        # Apply mlp1 on each channel independently.
        mlp1_outputs = self.mlp1(x_channels)
        # Transpose mlp1_outputs from [num_batches, hidden_dim, num_patches] to [num_batches, num_patches, hidden_units].
        mlp1_outputs = keras.ops.transpose(mlp1_outputs, axes=(0, 2, 1))
        # Add skip connection.
        x = mlp1_outputs + inputs
        # Apply layer normalization.
        x_patches = self.normalize(x)
        # Apply mlp2 on each patch independtenly.
        mlp2_outputs = self.mlp2(x_patches)
        # Add skip connection.
        x = x + mlp2_outputs
        return x


def make_mlpmixer_blocks():
    return keras.Sequential(
        [MLPMixerLayer(num_patches, embedding_dim, dropout_rate) for _ in range(num_blocks)]
    )


def build(out):
    import os

    import lib

    rng = lib.setup()
    images, labels = lib.class_images(rng, 256, input_shape, num_classes, 0.0, 255.0)
    x_train = np.round(images).astype("uint8")
    y_train = labels.reshape(-1, 1).astype("uint8")
    data_augmentation = make_data_augmentation()
    # Compute the mean and the variance of the training data for normalization.
    data_augmentation.layers[0].adapt(x_train)
    mlpmixer_classifier = build_classifier(make_mlpmixer_blocks(), data_augmentation)
    compile_experiment(mlpmixer_classifier)
    lib.fit_steps(mlpmixer_classifier, x_train, y_train, steps=8, batch_size=32)
    mlpmixer_classifier.save(os.path.join(out, "model.keras"))
    lib.save_data(out, x=x_train, y=y_train)
