"""Models rebuilt in the style of the official Keras examples, small enough for tests.

Each builder returns a compiled model as the example writes it (sizes shrunk), and
`data_<name>()` returns data in the example's format. The custom classes are
registered, so a kerascheck process gets them with `--custom-objects tests/realcode.py`.

    python tests/realcode.py OUTDIR   # saves every model (after a short fit) and its data

The examples: keras.io/examples nlp/text_classification_with_transformer,
generative/vae, vision/captcha_ocr, nlp/lstm_seq2seq,
vision/image_classification_from_scratch, vision/siamese_contrastive.
"""
from __future__ import annotations

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras  # noqa: E402
import numpy as np  # noqa: E402
from keras import layers, ops  # noqa: E402

PACKAGE = "realcode"
MAXLEN, VOCAB = 24, 200


# ------------------------------------------------------------ Transformer text classifier


@keras.saving.register_keras_serializable(package=PACKAGE)
class TransformerBlock(layers.Layer):
    def __init__(self, embed_dim, num_heads, ff_dim, rate=0.1, **kwargs):
        super().__init__(**kwargs)
        self.embed_dim, self.num_heads, self.ff_dim, self.rate = embed_dim, num_heads, ff_dim, rate
        self.att = layers.MultiHeadAttention(num_heads=num_heads, key_dim=embed_dim)
        self.ffn = keras.Sequential([layers.Dense(ff_dim, activation="relu"), layers.Dense(embed_dim)])
        self.layernorm1 = layers.LayerNormalization(epsilon=1e-6)
        self.layernorm2 = layers.LayerNormalization(epsilon=1e-6)
        self.dropout1 = layers.Dropout(rate)
        self.dropout2 = layers.Dropout(rate)

    def call(self, inputs):
        attn_output = self.att(inputs, inputs)
        attn_output = self.dropout1(attn_output)
        out1 = self.layernorm1(inputs + attn_output)
        ffn_output = self.ffn(out1)
        ffn_output = self.dropout2(ffn_output)
        return self.layernorm2(out1 + ffn_output)

    def get_config(self):
        return {**super().get_config(), "embed_dim": self.embed_dim, "num_heads": self.num_heads,
                "ff_dim": self.ff_dim, "rate": self.rate}


@keras.saving.register_keras_serializable(package=PACKAGE)
class TokenAndPositionEmbedding(layers.Layer):
    def __init__(self, maxlen, vocab_size, embed_dim, **kwargs):
        super().__init__(**kwargs)
        self.maxlen, self.vocab_size, self.embed_dim = maxlen, vocab_size, embed_dim
        self.token_emb = layers.Embedding(input_dim=vocab_size, output_dim=embed_dim)
        self.pos_emb = layers.Embedding(input_dim=maxlen, output_dim=embed_dim)

    def call(self, x):
        maxlen = ops.shape(x)[-1]
        positions = ops.arange(start=0, stop=maxlen, step=1)
        return self.token_emb(x) + self.pos_emb(positions)

    def get_config(self):
        return {**super().get_config(), "maxlen": self.maxlen, "vocab_size": self.vocab_size,
                "embed_dim": self.embed_dim}


def transformer_classifier():
    embed_dim, num_heads, ff_dim = 16, 2, 16
    inputs = layers.Input(shape=(MAXLEN,))  # float32 token ids, as the example writes it
    x = TokenAndPositionEmbedding(MAXLEN, VOCAB, embed_dim)(inputs)
    x = TransformerBlock(embed_dim, num_heads, ff_dim)(x)
    x = layers.GlobalAveragePooling1D()(x)
    x = layers.Dropout(0.1)(x)
    x = layers.Dense(20, activation="relu")(x)
    x = layers.Dropout(0.1)(x)
    outputs = layers.Dense(2, activation="softmax")(x)
    model = keras.Model(inputs=inputs, outputs=outputs)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def data_transformer_classifier(n=256, seed=0):
    """Padded reviews: token ids 1..VOCAB-1 then zeros; the label is whether token 7 occurs."""
    rng = np.random.default_rng(seed)
    x = np.zeros((n, MAXLEN), "float32")
    lengths = rng.integers(4, MAXLEN, n)
    for i, length in enumerate(lengths):
        x[i, :length] = rng.integers(1, VOCAB, length)
    y = np.any(x == 7, axis=1).astype("int64")
    x[y == 0, 0] = 3
    x[y == 1, 0] = 7
    return x, y


def embedding_classifier():
    """A plain top-level Embedding on float token ids (the unscaled-inputs false alarm)."""
    inputs = layers.Input(shape=(MAXLEN,))
    x = layers.Embedding(VOCAB, 16)(inputs)
    x = layers.GlobalAveragePooling1D()(x)
    outputs = layers.Dense(2, activation="softmax")(x)
    model = keras.Model(inputs, outputs)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    return model


data_embedding_classifier = data_transformer_classifier


# ---------------------------------------------------------------------------- VAE


@keras.saving.register_keras_serializable(package=PACKAGE)
class Sampling(layers.Layer):
    """Uses (z_mean, z_log_var) to sample z, the vector encoding a digit."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.seed_generator = keras.random.SeedGenerator(1337)

    def call(self, inputs):
        z_mean, z_log_var = inputs
        batch = ops.shape(z_mean)[0]
        dim = ops.shape(z_mean)[1]
        epsilon = keras.random.normal(shape=(batch, dim), seed=self.seed_generator)
        return z_mean + ops.exp(0.5 * z_log_var) * epsilon


LATENT = 2


def _vae_parts():
    encoder_inputs = keras.Input(shape=(28, 28, 1))
    x = layers.Conv2D(8, 3, activation="relu", strides=2, padding="same")(encoder_inputs)
    x = layers.Conv2D(16, 3, activation="relu", strides=2, padding="same")(x)
    x = layers.Flatten()(x)
    x = layers.Dense(16, activation="relu")(x)
    z_mean = layers.Dense(LATENT, name="z_mean")(x)
    z_log_var = layers.Dense(LATENT, name="z_log_var")(x)
    z = Sampling()([z_mean, z_log_var])
    encoder = keras.Model(encoder_inputs, [z_mean, z_log_var, z], name="encoder")
    latent_inputs = keras.Input(shape=(LATENT,))
    x = layers.Dense(7 * 7 * 16, activation="relu")(latent_inputs)
    x = layers.Reshape((7, 7, 16))(x)
    x = layers.Conv2DTranspose(16, 3, activation="relu", strides=2, padding="same")(x)
    x = layers.Conv2DTranspose(8, 3, activation="relu", strides=2, padding="same")(x)
    decoder_outputs = layers.Conv2DTranspose(1, 3, activation="sigmoid", padding="same")(x)
    decoder = keras.Model(latent_inputs, decoder_outputs, name="decoder")
    return encoder, decoder


@keras.saving.register_keras_serializable(package=PACKAGE)
class VAE(keras.Model):
    def __init__(self, encoder, decoder, **kwargs):
        super().__init__(**kwargs)
        self.encoder = encoder
        self.decoder = decoder
        self.total_loss_tracker = keras.metrics.Mean(name="total_loss")
        self.reconstruction_loss_tracker = keras.metrics.Mean(name="reconstruction_loss")
        self.kl_loss_tracker = keras.metrics.Mean(name="kl_loss")

    @property
    def metrics(self):
        return [self.total_loss_tracker, self.reconstruction_loss_tracker, self.kl_loss_tracker]

    def call(self, inputs):
        z_mean, z_log_var, z = self.encoder(inputs)
        return self.decoder(z)

    def train_step(self, data):
        import tensorflow as tf

        if isinstance(data, tuple):
            data = data[0]
        with tf.GradientTape() as tape:
            z_mean, z_log_var, z = self.encoder(data)
            reconstruction = self.decoder(z)
            reconstruction_loss = ops.mean(ops.sum(
                keras.losses.binary_crossentropy(data, reconstruction), axis=(1, 2)))
            kl_loss = -0.5 * (1 + z_log_var - ops.square(z_mean) - ops.exp(z_log_var))
            kl_loss = ops.mean(ops.sum(kl_loss, axis=1))
            total_loss = reconstruction_loss + kl_loss
        grads = tape.gradient(total_loss, self.trainable_weights)
        self.optimizer.apply_gradients(zip(grads, self.trainable_weights))
        self.total_loss_tracker.update_state(total_loss)
        self.reconstruction_loss_tracker.update_state(reconstruction_loss)
        self.kl_loss_tracker.update_state(kl_loss)
        return {"loss": self.total_loss_tracker.result(),
                "reconstruction_loss": self.reconstruction_loss_tracker.result(),
                "kl_loss": self.kl_loss_tracker.result()}

    def get_config(self):
        return {**super().get_config(), "encoder": keras.saving.serialize_keras_object(self.encoder),
                "decoder": keras.saving.serialize_keras_object(self.decoder)}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        encoder = keras.saving.deserialize_keras_object(config.pop("encoder"))
        decoder = keras.saving.deserialize_keras_object(config.pop("decoder"))
        return cls(encoder, decoder, **config)


def vae():
    encoder, decoder = _vae_parts()
    model = VAE(encoder, decoder)
    model.compile(optimizer=keras.optimizers.Adam())
    return model


def data_vae(n=128, seed=0):
    """Digit-like images in [0, 1]: a bright square at a random place."""
    rng = np.random.default_rng(seed)
    x = np.zeros((n, 28, 28, 1), "float32")
    for i in range(n):
        r, c = rng.integers(0, 20, 2)
        x[i, r:r + 8, c:c + 8, 0] = 1.0
    return x, None


# ------------------------------------------------------------------------- CTC OCR

CHARS = 10
IMG_W, IMG_H, LABEL_LEN = 32, 16, 2


@keras.saving.register_keras_serializable(package=PACKAGE)
class CTCLayer(layers.Layer):
    """The captcha example's endpoint layer: computes the CTC loss with add_loss, returns the predictions."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)

    def call(self, y_true, y_pred):
        batch_len = ops.cast(ops.shape(y_true)[0], dtype="int32")
        input_length = ops.cast(ops.shape(y_pred)[1], dtype="int32") * ops.ones((batch_len,), dtype="int32")
        label_length = ops.cast(ops.shape(y_true)[1], dtype="int32") * ops.ones((batch_len,), dtype="int32")
        loss = ops.ctc_loss(ops.cast(y_true, "int32"), y_pred, label_length, input_length, mask_index=CHARS + 1)
        self.add_loss(ops.mean(loss))
        return y_pred


def ctc_ocr():
    input_img = layers.Input(shape=(IMG_W, IMG_H, 1), name="image", dtype="float32")
    labels = layers.Input(name="label", shape=(None,), dtype="float32")
    x = layers.Conv2D(8, (3, 3), activation="relu", kernel_initializer="he_normal", padding="same",
                      name="Conv1")(input_img)
    x = layers.MaxPooling2D((2, 2), name="pool1")(x)
    x = layers.Conv2D(16, (3, 3), activation="relu", kernel_initializer="he_normal", padding="same",
                      name="Conv2")(x)
    x = layers.MaxPooling2D((2, 2), name="pool2")(x)
    new_shape = ((IMG_W // 4), (IMG_H // 4) * 16)
    x = layers.Reshape(target_shape=new_shape, name="reshape")(x)
    x = layers.Dense(16, activation="relu", name="dense1")(x)
    x = layers.Dropout(0.2)(x)
    x = layers.Bidirectional(layers.LSTM(16, return_sequences=True, dropout=0.25))(x)
    x = layers.Dense(CHARS + 2, activation="softmax", name="dense2")(x)
    output = CTCLayer(name="ctc_loss")(labels, x)
    model = keras.models.Model(inputs=[input_img, labels], outputs=output, name="ocr_model_v1")
    model.compile(optimizer=keras.optimizers.Adam(global_clipnorm=1.0))
    return model


def data_ctc_ocr(n=64, seed=0):
    """Images of LABEL_LEN digit 'glyphs' (a bar per character at a height set by the digit)."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, CHARS, (n, LABEL_LEN)).astype("float32")
    img = np.zeros((n, IMG_W, IMG_H, 1), "float32")
    for i in range(n):
        for k, ch in enumerate(labels[i].astype(int)):
            img[i, k * 16 + 4:k * 16 + 12, ch + 3, 0] = 1.0  # one glyph per 16 columns
    return {"image": img, "label": labels}, None


# --------------------------------------------------------------- LSTM encoder-decoder

ENC_TOKENS, DEC_TOKENS, LATENT_DIM = 12, 14, 48


def seq2seq():
    encoder_inputs = keras.Input(shape=(None, ENC_TOKENS), name="encoder_tokens")
    encoder = layers.LSTM(LATENT_DIM, return_state=True)
    encoder_outputs, state_h, state_c = encoder(encoder_inputs)
    encoder_states = [state_h, state_c]
    decoder_inputs = keras.Input(shape=(None, DEC_TOKENS), name="decoder_tokens")
    decoder_lstm = layers.LSTM(LATENT_DIM, return_sequences=True, return_state=True)
    decoder_outputs, _, _ = decoder_lstm(decoder_inputs, initial_state=encoder_states)
    decoder_dense = layers.Dense(DEC_TOKENS, activation="softmax")
    decoder_outputs = decoder_dense(decoder_outputs)
    model = keras.Model([encoder_inputs, decoder_inputs], decoder_outputs)
    model.compile(optimizer=keras.optimizers.RMSprop(clipnorm=1.0), loss="categorical_crossentropy",
                  metrics=["accuracy"])
    return model


def data_seq2seq(n=128, seed=0, steps=8):
    """Counting: each sequence counts up from a random token; with teacher forcing the decoder
    predicts the next token from the one before (one-hot)."""
    rng = np.random.default_rng(seed)
    tokens = (rng.integers(0, ENC_TOKENS, (n, 1)) + np.arange(steps)) % ENC_TOKENS
    enc = np.eye(ENC_TOKENS, dtype="float32")[tokens]
    target = np.eye(DEC_TOKENS, dtype="float32")[tokens]
    dec = np.concatenate([np.zeros((n, 1, DEC_TOKENS), "float32"), target[:, :-1]], axis=1)
    return [enc, dec], target


# ---------------------------------------------------------- image classifier from scratch


def image_classifier(input_shape=(16, 16, 3), num_classes=2):
    data_augmentation = [layers.RandomFlip("horizontal"), layers.RandomRotation(0.1)]
    inputs = keras.Input(shape=input_shape)
    x = inputs
    for layer in data_augmentation:
        x = layer(x)
    x = layers.Rescaling(1.0 / 255)(x)
    x = layers.Conv2D(16, 3, strides=2, padding="same")(x)
    x = layers.BatchNormalization()(x)
    x = layers.Activation("relu")(x)
    previous_block_activation = x
    for size in [16, 32]:
        x = layers.Activation("relu")(x)
        x = layers.SeparableConv2D(size, 3, padding="same")(x)
        x = layers.BatchNormalization()(x)
        x = layers.Activation("relu")(x)
        x = layers.SeparableConv2D(size, 3, padding="same")(x)
        x = layers.BatchNormalization()(x)
        x = layers.MaxPooling2D(3, strides=2, padding="same")(x)
        residual = layers.Conv2D(size, 1, strides=2, padding="same")(previous_block_activation)
        x = layers.add([x, residual])
        previous_block_activation = x
    x = layers.SeparableConv2D(32, 3, padding="same")(x)
    x = layers.BatchNormalization()(x)
    x = layers.Activation("relu")(x)
    x = layers.GlobalAveragePooling2D()(x)
    units = 1 if num_classes == 2 else num_classes
    x = layers.Dropout(0.25)(x)
    outputs = layers.Dense(units, activation=None)(x)
    model = keras.Model(inputs, outputs)
    model.compile(optimizer=keras.optimizers.Adam(3e-4), loss=keras.losses.BinaryCrossentropy(from_logits=True),
                  metrics=[keras.metrics.BinaryAccuracy(name="acc")])
    return model


def data_image_classifier(n=128, seed=0):
    """Pixels 0..255; class 1 images are brighter in the left half."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    x = rng.uniform(0, 200, (n, 16, 16, 3)).astype("float32")
    x[y == 1, :, :8] += 55
    return x, y.astype("float32").reshape(-1, 1)


# ------------------------------------------------------------ siamese, contrastive loss


@keras.saving.register_keras_serializable(package=PACKAGE)
def contrastive_loss(y_true, y_pred, margin=1.0):
    square_pred = ops.square(y_pred)
    margin_square = ops.square(ops.maximum(margin - (y_pred), 0))
    return ops.mean((1 - y_true) * square_pred + (y_true) * margin_square)


@keras.saving.register_keras_serializable(package=PACKAGE)
class EuclideanDistance(layers.Layer):
    def call(self, vects):
        x, y = vects
        sum_square = ops.sum(ops.square(x - y), axis=1, keepdims=True)
        return ops.sqrt(ops.maximum(sum_square, keras.backend.epsilon()))


def siamese():
    input_ = layers.Input((28, 28, 1))
    x = layers.BatchNormalization()(input_)
    x = layers.Conv2D(4, (5, 5), activation="tanh")(x)
    x = layers.AveragePooling2D(pool_size=(2, 2))(x)
    x = layers.Conv2D(16, (5, 5), activation="tanh")(x)
    x = layers.AveragePooling2D(pool_size=(2, 2))(x)
    x = layers.Flatten()(x)
    x = layers.BatchNormalization()(x)
    x = layers.Dense(10, activation="tanh")(x)
    embedding_network = keras.Model(input_, x, name="embedding")
    input_1 = layers.Input((28, 28, 1), name="left")
    input_2 = layers.Input((28, 28, 1), name="right")
    tower_1 = embedding_network(input_1)
    tower_2 = embedding_network(input_2)
    merge_layer = EuclideanDistance()([tower_1, tower_2])
    normal_layer = layers.BatchNormalization()(merge_layer)
    output_layer = layers.Dense(1, activation="sigmoid")(normal_layer)
    model = keras.Model(inputs=[input_1, input_2], outputs=output_layer)
    model.compile(loss=contrastive_loss, optimizer="RMSprop", metrics=["accuracy"])
    return model


def data_siamese(n=128, seed=0):
    """Pairs of 'digits' (a bar at a row set by the class); label 1 for a pair of the same class."""
    rng = np.random.default_rng(seed)
    a, same = rng.integers(0, 10, n), rng.integers(0, 2, n)
    b = np.where(same == 1, a, (a + rng.integers(1, 10, n)) % 10)

    def draw(cls):
        img = rng.uniform(0, 0.1, (n, 28, 28, 1)).astype("float32")
        for i, c in enumerate(cls):
            img[i, 2 + 2 * c:4 + 2 * c, 4:24, 0] = 1.0
        return img
    return [draw(a), draw(b)], same.astype("float32").reshape(-1, 1)


# ------------------------------------------------ custom layers the examples get wrong


@keras.saving.register_keras_serializable(package=PACKAGE)
class CTCLossLayer(layers.Layer):
    """A custom layer whose output is keras.ops.ctc_loss: the library's own Log ops are not the user's."""

    def call(self, inputs):
        labels, probs = inputs
        batch = ops.shape(labels)[0]
        label_length = ops.full((batch,), ops.shape(labels)[1], dtype="int32")
        logit_length = ops.full((batch,), ops.shape(probs)[1], dtype="int32")
        return ops.expand_dims(ops.ctc_loss(ops.cast(labels, "int32"), probs, label_length, logit_length,
                                            mask_index=CHARS + 1), -1)


@keras.saving.register_keras_serializable(package=PACKAGE)
def identity_loss(y_true, y_pred):
    """The Keras 2 captcha pattern: the model outputs its loss; compile() just averages it."""
    return ops.mean(y_pred)


def ctc_loss_layer():
    labels = layers.Input((LABEL_LEN,), name="labels")
    feats = layers.Input((IMG_W // 4, 16), name="features")
    hidden = layers.Dense(16, activation="relu", name="hidden")(feats)
    probs = layers.Dense(CHARS + 2, activation="softmax", name="probs")(hidden)
    loss = CTCLossLayer(name="ctc")([labels, probs])
    model = keras.Model([labels, feats], loss)
    model.compile(optimizer=keras.optimizers.Adam(1e-3, global_clipnorm=1.0), loss=identity_loss)
    return model


def data_ctc_loss_layer(n=64, seed=0):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, CHARS, (n, LABEL_LEN)).astype("float32")
    feats = rng.normal(size=(n, IMG_W // 4, 16)).astype("float32")
    for i in range(n):  # the features carry the labels, one per half of the sequence
        for k, ch in enumerate(labels[i].astype(int)):
            feats[i, k * (IMG_W // 8):(k + 1) * (IMG_W // 8), ch] += 3.0
    return {"labels": labels, "features": feats}, np.zeros((n, 1), "float32")


PADDED_LEN = 64


def padded_pooling():
    """Mean-pooling over padding that nothing masks: every review pools to about the same vector."""
    inputs = layers.Input(shape=(PADDED_LEN,), dtype="int32")
    x = layers.Embedding(VOCAB, 8)(inputs)
    x = layers.GlobalAveragePooling1D()(x)
    x = layers.Dense(32, activation="relu", name="features")(x)
    outputs = layers.Dense(2, activation="softmax")(x)
    model = keras.Model(inputs, outputs)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    return model


def data_padded_pooling(n=256, seed=0):
    rng = np.random.default_rng(seed)
    x = np.zeros((n, PADDED_LEN), "int32")
    x[:, 0] = rng.integers(1, VOCAB, n)  # one token, then padding
    return x, (x[:, 0] % 2).astype("int64")


@keras.saving.register_keras_serializable(package=PACKAGE)
class NoKwargs(layers.Layer):
    """The common mistake: __init__ without **kwargs (Keras passes name, trainable, dtype on load)."""

    def __init__(self, units):
        super().__init__()
        self.units = units
        self.dense = layers.Dense(units)

    def call(self, x):
        return self.dense(x)

    def get_config(self):
        return {**super().get_config(), "units": self.units}


def no_kwargs_layer():
    inputs = keras.Input((8,))
    outputs = NoKwargs(4)(inputs)
    model = keras.Model(inputs, outputs)
    model.compile(optimizer="adam", loss="mse")
    return model


@keras.saving.register_keras_serializable(package=PACKAGE)
class FailsWhenTraining(layers.Layer):
    """Refuses to run in training mode: every training probe fails, the inference probes do not."""

    def call(self, x, training=None):
        if training:
            import tensorflow as tf

            tf.debugging.assert_non_negative(x - 1e9, message="this layer refuses to train")
        return x


def fails_when_training():
    inp = keras.Input((8,))
    x = FailsWhenTraining()(layers.Dense(8, activation="relu")(inp))
    model = keras.Model(inp, layers.Dense(2)(x))
    model.compile(optimizer="adam", loss="mse")
    return model


BUILDERS = {
    "transformer_classifier": transformer_classifier,
    "embedding_classifier": embedding_classifier,
    "vae": vae,
    "ctc_ocr": ctc_ocr,
    "seq2seq": seq2seq,
    "image_classifier": image_classifier,
    "siamese": siamese,
    "ctc_loss_layer": ctc_loss_layer,
    "no_kwargs_layer": no_kwargs_layer,
    "padded_pooling": padded_pooling,
    "fails_when_training": fails_when_training,
}


def data_for(name):
    return globals().get(f"data_{name}", lambda: (None, None))()


def build_and_fit(name, epochs=1):
    """The model, trained briefly on its data when it has some (subclassed models need a fit to be built)."""
    keras.utils.set_random_seed(0)
    model = BUILDERS[name]()
    x, y = data_for(name)
    if x is not None:
        model.fit(x, y, epochs=epochs, batch_size=32, verbose=0)
    return model


def save_npz(name, path):
    """The model's data as kerascheck's --data file (x / x_<input name>, y)."""
    x, y = data_for(name)
    arrays = {}
    if isinstance(x, dict):
        arrays.update({f"x_{k}": v for k, v in x.items()})
    elif isinstance(x, list):
        arrays.update({f"x_{i}": v for i, v in enumerate(x)})
    else:
        arrays["x"] = x
    if y is not None:
        arrays["y"] = y
    np.savez(path, **arrays)
    return path


if __name__ == "__main__":
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    for name in BUILDERS:
        model = build_and_fit(name)
        model.save(os.path.join(out, f"{name}.keras"))
        if data_for(name)[0] is not None:
            save_npz(name, os.path.join(out, f"{name}.npz"))
        print("saved", name)
