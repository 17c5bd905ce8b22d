"""OCR model for reading Captchas (keras-io examples/vision/captcha_ocr.py), a CNN + bidirectional LSTM with a CTC endpoint layer (add_loss) and two inputs, image and label.

Upstream: https://github.com/keras-team/keras-io/blob/ac7f64cb542cb0c76245ba77a55fe447dc562d01/examples/vision/captcha_ocr.py
(keras-io master of 2024-01-10, the Keras 3 version; Apache-2.0, author A_K_Nain).

Kept as written: ctc_batch_cost and ctc_label_dense_to_sparse, the CTCLayer endpoint layer
(add_loss, returns y_pred), build_model (taking the CTC layer class as an argument) at full size (200x50 grayscale input transposed so
width is time, Conv1/Conv2 he_normal, Reshape, dense1, Dropout(0.2), two Bidirectional LSTMs
with dropout 0.25, softmax over len(vocabulary)+1 classes, CTCLayer), `model.compile(optimizer=
keras.optimizers.Adam())` with no loss; the data as `encode_single_sample` hands it to fit():
a dict {"image": float32 in [0, 1] shaped (200, 50, 1), "label": the 5 character ids from
StringLookup (1..19; 0 is the OOV slot)}.
Changed:
- the 1040 captcha PNGs -> 256 synthetic captchas over the dataset's 19 characters
  (2345678bcdefgmnpwxy): each of the 5 characters is a 40-pixel-wide segment whose bright rows
  depend on the character, so the labels can be read from the pixels;
- `fit(train_dataset, epochs=100, callbacks=[EarlyStopping(...)])` -> 8 steps of 16 (the
  example's batch_size) without the callback;
- the example does not save. As written the model saves but cannot be reloaded: CTCLayer's
  __init__ takes only `name`, while Keras's config also holds trainable and dtype
  ("TypeError: CTCLayer.__init__() got an unexpected keyword argument 'trainable'"). That file
  is `as_written.keras`; `model.keras` is the same model with SavableCTCLayer, the example's
  CTCLayer plus only the from_config Keras needs;
- data.npz holds x_image and x_label (the two inputs) and no y: the model trains on the
  CTC loss its layer adds.
"""
import os

os.environ["KERAS_BACKEND"] = "tensorflow"

import numpy as np
import tensorflow as tf
import keras
from keras import layers

# The characters of captcha_images_v2 (sorted set of the file names' characters).
characters = sorted(list("2345678bcdefgmnpwxy"))

# Batch size for training and validation
batch_size = 16

# Desired image dimensions
img_width = 200
img_height = 50

# Factor by which the image is going to be downsampled
# by the convolutional blocks. We will be using two
# convolution blocks and each block will have
# a pooling layer which downsample the features by a factor of 2.
# Hence total downsampling factor would be 4.
downsample_factor = 4

# Maximum length of any captcha in the dataset
max_length = 5

# Mapping characters to integers
char_to_num = layers.StringLookup(vocabulary=list(characters), mask_token=None)

# Mapping integers back to original characters
num_to_char = layers.StringLookup(
    vocabulary=char_to_num.get_vocabulary(), mask_token=None, invert=True
)


def ctc_batch_cost(y_true, y_pred, input_length, label_length):
    label_length = tf.cast(tf.squeeze(label_length, axis=-1), tf.int32)
    input_length = tf.cast(tf.squeeze(input_length, axis=-1), tf.int32)
    sparse_labels = tf.cast(ctc_label_dense_to_sparse(y_true, label_length), tf.int32)

    y_pred = tf.math.log(tf.transpose(y_pred, perm=[1, 0, 2]) + keras.backend.epsilon())

    return tf.expand_dims(
        tf.compat.v1.nn.ctc_loss(
            inputs=y_pred, labels=sparse_labels, sequence_length=input_length
        ),
        1,
    )


def ctc_label_dense_to_sparse(labels, label_lengths):
    label_shape = tf.shape(labels)
    num_batches_tns = tf.stack([label_shape[0]])
    max_num_labels_tns = tf.stack([label_shape[1]])

    def range_less_than(old_input, current_input):
        return tf.expand_dims(tf.range(tf.shape(old_input)[1]), 0) < tf.fill(
            max_num_labels_tns, current_input
        )

    init = tf.cast(tf.fill([1, label_shape[1]], 0), tf.bool)
    dense_mask = tf.compat.v1.scan(
        range_less_than, label_lengths, initializer=init, parallel_iterations=1
    )
    dense_mask = dense_mask[:, 0, :]

    label_array = tf.reshape(
        tf.tile(tf.range(0, label_shape[1]), num_batches_tns), label_shape
    )
    label_ind = tf.compat.v1.boolean_mask(label_array, dense_mask)

    batch_array = tf.transpose(
        tf.reshape(
            tf.tile(tf.range(0, label_shape[0]), max_num_labels_tns),
            tf.reverse(label_shape, [0]),
        )
    )
    batch_ind = tf.compat.v1.boolean_mask(batch_array, dense_mask)
    indices = tf.transpose(
        tf.reshape(tf.concat([batch_ind, label_ind], axis=0), [2, -1])
    )

    vals_sparse = tf.compat.v1.gather_nd(labels, indices)

    return tf.SparseTensor(
        tf.cast(indices, tf.int64), vals_sparse, tf.cast(label_shape, tf.int64)
    )


class CTCLayer(layers.Layer):
    def __init__(self, name=None):
        super().__init__(name=name)
        self.loss_fn = ctc_batch_cost

    def call(self, y_true, y_pred):
        # Compute the training-time loss value and add it
        # to the layer using `self.add_loss()`.
        batch_len = tf.cast(tf.shape(y_true)[0], dtype="int64")
        input_length = tf.cast(tf.shape(y_pred)[1], dtype="int64")
        label_length = tf.cast(tf.shape(y_true)[1], dtype="int64")

        input_length = input_length * tf.ones(shape=(batch_len, 1), dtype="int64")
        label_length = label_length * tf.ones(shape=(batch_len, 1), dtype="int64")

        loss = self.loss_fn(y_true, y_pred, input_length, label_length)
        self.add_loss(loss)

        # At test time, just return the computed predictions
        return y_pred


class SavableCTCLayer(CTCLayer):
    """The example's CTCLayer plus the from_config Keras needs (its __init__ takes only name)."""

    @classmethod
    def from_config(cls, config):
        return cls(name=config["name"])


def build_model(ctc_cls=CTCLayer):
    # Inputs to the model
    input_img = layers.Input(
        shape=(img_width, img_height, 1), name="image", dtype="float32"
    )
    labels = layers.Input(name="label", shape=(None,), dtype="float32")

    # First conv block
    x = layers.Conv2D(
        32,
        (3, 3),
        activation="relu",
        kernel_initializer="he_normal",
        padding="same",
        name="Conv1",
    )(input_img)
    x = layers.MaxPooling2D((2, 2), name="pool1")(x)

    # Second conv block
    x = layers.Conv2D(
        64,
        (3, 3),
        activation="relu",
        kernel_initializer="he_normal",
        padding="same",
        name="Conv2",
    )(x)
    x = layers.MaxPooling2D((2, 2), name="pool2")(x)

    # We have used two max pool with pool size and strides 2.
    # Hence, downsampled feature maps are 4x smaller. The number of
    # filters in the last layer is 64. Reshape accordingly before
    # passing the output to the RNN part of the model
    new_shape = ((img_width // 4), (img_height // 4) * 64)
    x = layers.Reshape(target_shape=new_shape, name="reshape")(x)
    x = layers.Dense(64, activation="relu", name="dense1")(x)
    x = layers.Dropout(0.2)(x)

    # RNNs
    x = layers.Bidirectional(layers.LSTM(128, return_sequences=True, dropout=0.25))(x)
    x = layers.Bidirectional(layers.LSTM(64, return_sequences=True, dropout=0.25))(x)

    # Output layer
    x = layers.Dense(
        len(char_to_num.get_vocabulary()) + 1, activation="softmax", name="dense2"
    )(x)

    # Add CTC layer for calculating CTC loss at each step
    output = ctc_cls(name="ctc_loss")(labels, x)

    # Define the model
    model = keras.models.Model(
        inputs=[input_img, labels], outputs=output, name="ocr_model_v1"
    )
    # Optimizer
    opt = keras.optimizers.Adam()
    # Compile the model and return
    model.compile(optimizer=opt)
    return model


def synthetic_captchas(rng, n):
    """(images (n, 200, 50, 1) in [0, 1], already transposed; label ids (n, 5)) as encode_single_sample returns them."""
    text = rng.integers(0, len(characters), size=(n, max_length))
    img = rng.uniform(0.6, 0.9, size=(n, img_width, img_height, 1)).astype("float32")  # light background
    seg = img_width // max_length
    for i in range(n):
        for k, c in enumerate(text[i]):
            row = 4 + 2 * c  # the character's strokes sit at a character-dependent height
            img[i, k * seg + 8:k * seg + seg - 8, row:row + 6, 0] = rng.uniform(0.0, 0.2)
    label_strings = ["".join(characters[c] for c in t) for t in text]
    labels = np.stack([char_to_num(tf.strings.unicode_split(s, input_encoding="UTF-8")).numpy()
                       for s in label_strings])
    return img, labels


def build(out):
    import lib

    rng = lib.setup()
    images, labels = synthetic_captchas(rng, 256)
    for name, ctc_cls in (("as_written", CTCLayer), ("model", SavableCTCLayer)):
        keras.backend.clear_session()  # the same layer names in both files
        lib.setup()
        model = build_model(ctc_cls)
        lib.fit_steps(model, {"image": images, "label": labels}, steps=8, batch_size=batch_size)
        model.save(os.path.join(out, name + ".keras"))
    lib.save_data(out, x_image=images, x_label=labels)
