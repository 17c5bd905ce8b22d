"""Automatic Speech Recognition with Transformer (keras-io examples/audio/transformer_asr.py), a keras.Model subclass with its own train_step/test_step, a custom learning-rate schedule and a masked, label-smoothed loss.

Upstream: https://github.com/keras-team/keras-io/blob/ac7f64cb542cb0c76245ba77a55fe447dc562d01/examples/audio/transformer_asr.py
(keras-io master of 2024-01-10, the Keras 3 version; Apache-2.0, author Apoorv Nandan).

Kept as written: TokenEmbedding, SpeechFeatureEmbedding (3 strided Conv1D), TransformerEncoder,
TransformerDecoder (causal mask with tf.tile), Transformer (call on [source, target], its
train_step/test_step: teacher forcing, one-hot targets, a padding mask as sample_weight, and
`model.compute_loss(...)` on the module-level name `model`), get_data, VectorizeChar,
create_text_ds, path_to_audio, create_audio_ds, create_tf_dataset (batches of
{"source": spectrogram, "target": char ids}), CustomSchedule (linear warm-up and decay per
epoch) with the example's arguments and steps_per_epoch=len(ds), num_head=2, num_layers_dec=1,
num_classes=34, `loss_fn = CategoricalCrossentropy(from_logits=True, label_smoothing=0.1)`,
`compile(optimizer=keras.optimizers.Adam(learning_rate), loss=loss_fn)`.
Changed (shrunk for CPU):
- num_hid 200 -> 64, num_feed_forward 400 -> 128, num_layers_enc 4 -> 2;
- max_target_len 200 -> 60 characters; spectrograms padded to 688 frames instead of 2,754
  (~2.5 s of 22,050 Hz audio instead of ~10 s); the steps of path_to_audio after decode_wav
  (STFT frame 200 / step 80 / fft 256, magnitude ** 0.5, per-frame standardisation, zero
  padding) run as written on in-memory audio with pad_len 688;
- the example's module-level code runs inside build(). The example's train_step/test_step call
  `model.compute_loss`, i.e. the module-level global `model` that the example's script assigns
  (the instance being trained); SavableTransformer (below) binds that global to itself when it
  is built or reloaded, as the example's script does;
- LJSpeech (13,100 clips of one reader, transcripts < 200 characters) -> 256 synthetic clips at
  22,050 Hz whose sound spells the transcript (each character a 40 ms harmonic tone of its own
  pitch, with noise), transcripts of random English words (< 58 characters), vectorised by
  VectorizeChar; data.npz holds x_source (256, 688, 129) float32 and x_target (256, 60) int32,
  the dict fit() receives, and no y (the model's train_step takes none);
- `fit(ds, validation_data=val_ds, callbacks=[display_cb], epochs=1)` -> 2 epochs of 4 batches of
  64 (so len(ds) = 4 in the schedule), no validation, no DisplayOutputs callback (it only prints);
- the example does not save, and as written it cannot: `model.save()` raises "NotImplementedError:
  Learning rate schedule 'CustomSchedule' must override `get_config()` in order to be
  serializable." Beyond that, Keras 3.15 saves the Transformer with an auto-generated config that
  holds the constructor's DEFAULTS, not the arguments given (num_layers_enc 4, target_maxlen 100,
  num_classes 10 for a model built with 2, 60 and 34), and reloading it fails: "TypeError:
  <class 'Transformer'> could not be deserialized properly ... Transformer.__init__() got an
  unexpected keyword argument 'trainable'". So no as-written file can exist. The saved model uses
  SavableCustomSchedule (CustomSchedule plus get_config) and SavableTransformer (Transformer plus
  a get_config with its real arguments, and the binding of the global `model` described above),
  nothing else; saved as `model.keras`.
"""
import os

os.environ["KERAS_BACKEND"] = "tensorflow"

from glob import glob
import tensorflow as tf
import keras
from keras import layers


class TokenEmbedding(layers.Layer):
    def __init__(self, num_vocab=1000, maxlen=100, num_hid=64):
        super().__init__()
        self.emb = keras.layers.Embedding(num_vocab, num_hid)
        self.pos_emb = layers.Embedding(input_dim=maxlen, output_dim=num_hid)

    def call(self, x):
        maxlen = tf.shape(x)[-1]
        x = self.emb(x)
        positions = tf.range(start=0, limit=maxlen, delta=1)
        positions = self.pos_emb(positions)
        return x + positions


class SpeechFeatureEmbedding(layers.Layer):
    def __init__(self, num_hid=64, maxlen=100):
        super().__init__()
        self.conv1 = keras.layers.Conv1D(
            num_hid, 11, strides=2, padding="same", activation="relu"
        )
        self.conv2 = keras.layers.Conv1D(
            num_hid, 11, strides=2, padding="same", activation="relu"
        )
        self.conv3 = keras.layers.Conv1D(
            num_hid, 11, strides=2, padding="same", activation="relu"
        )

    def call(self, x):
        x = self.conv1(x)
        x = self.conv2(x)
        return self.conv3(x)


class TransformerEncoder(layers.Layer):
    def __init__(self, embed_dim, num_heads, feed_forward_dim, rate=0.1):
        super().__init__()
        self.att = layers.MultiHeadAttention(num_heads=num_heads, key_dim=embed_dim)
        self.ffn = keras.Sequential(
            [
                layers.Dense(feed_forward_dim, activation="relu"),
                layers.Dense(embed_dim),
            ]
        )
        self.layernorm1 = layers.LayerNormalization(epsilon=1e-6)
        self.layernorm2 = layers.LayerNormalization(epsilon=1e-6)
        self.dropout1 = layers.Dropout(rate)
        self.dropout2 = layers.Dropout(rate)

    def call(self, inputs, training=False):
        attn_output = self.att(inputs, inputs)
        attn_output = self.dropout1(attn_output, training=training)
        out1 = self.layernorm1(inputs + attn_output)
        ffn_output = self.ffn(out1)
        ffn_output = self.dropout2(ffn_output, training=training)
        return self.layernorm2(out1 + ffn_output)


class TransformerDecoder(layers.Layer):
    def __init__(self, embed_dim, num_heads, feed_forward_dim, dropout_rate=0.1):
        super().__init__()
        self.layernorm1 = layers.LayerNormalization(epsilon=1e-6)
        self.layernorm2 = layers.LayerNormalization(epsilon=1e-6)
        self.layernorm3 = layers.LayerNormalization(epsilon=1e-6)
        self.self_att = layers.MultiHeadAttention(
            num_heads=num_heads, key_dim=embed_dim
        )
        self.enc_att = layers.MultiHeadAttention(num_heads=num_heads, key_dim=embed_dim)
        self.self_dropout = layers.Dropout(0.5)
        self.enc_dropout = layers.Dropout(0.1)
        self.ffn_dropout = layers.Dropout(0.1)
        self.ffn = keras.Sequential(
            [
                layers.Dense(feed_forward_dim, activation="relu"),
                layers.Dense(embed_dim),
            ]
        )

    def causal_attention_mask(self, batch_size, n_dest, n_src, dtype):
        """Masks the upper half of the dot product matrix in self attention.

        This prevents flow of information from future tokens to current token.
        1's in the lower triangle, counting from the lower right corner.
        """
        i = tf.range(n_dest)[:, None]
        j = tf.range(n_src)
        m = i >= j - n_src + n_dest
        mask = tf.cast(m, dtype)
        mask = tf.reshape(mask, [1, n_dest, n_src])
        mult = tf.concat(
            [tf.expand_dims(batch_size, -1), tf.constant([1, 1], dtype=tf.int32)], 0
        )
        return tf.tile(mask, mult)

    def call(self, enc_out, target):
        input_shape = tf.shape(target)
        batch_size = input_shape[0]
        seq_len = input_shape[1]
        causal_mask = self.causal_attention_mask(batch_size, seq_len, seq_len, tf.bool)
        target_att = self.self_att(target, target, attention_mask=causal_mask)
        target_norm = self.layernorm1(target + self.self_dropout(target_att))
        enc_out = self.enc_att(target_norm, enc_out)
        enc_out_norm = self.layernorm2(self.enc_dropout(enc_out) + target_norm)
        ffn_out = self.ffn(enc_out_norm)
        ffn_out_norm = self.layernorm3(enc_out_norm + self.ffn_dropout(ffn_out))
        return ffn_out_norm


class Transformer(keras.Model):
    def __init__(
        self,
        num_hid=64,
        num_head=2,
        num_feed_forward=128,
        source_maxlen=100,
        target_maxlen=100,
        num_layers_enc=4,
        num_layers_dec=1,
        num_classes=10,
    ):
        super().__init__()
        self.loss_metric = keras.metrics.Mean(name="loss")
        self.num_layers_enc = num_layers_enc
        self.num_layers_dec = num_layers_dec
        self.target_maxlen = target_maxlen
        self.num_classes = num_classes

        self.enc_input = SpeechFeatureEmbedding(num_hid=num_hid, maxlen=source_maxlen)
        self.dec_input = TokenEmbedding(
            num_vocab=num_classes, maxlen=target_maxlen, num_hid=num_hid
        )

        self.encoder = keras.Sequential(
            [self.enc_input]
            + [
                TransformerEncoder(num_hid, num_head, num_feed_forward)
                for _ in range(num_layers_enc)
            ]
        )

        for i in range(num_layers_dec):
            setattr(
                self,
                f"dec_layer_{i}",
                TransformerDecoder(num_hid, num_head, num_feed_forward),
            )

        self.classifier = layers.Dense(num_classes)

    def decode(self, enc_out, target):
        y = self.dec_input(target)
        for i in range(self.num_layers_dec):
            y = getattr(self, f"dec_layer_{i}")(enc_out, y)
        return y

    def call(self, inputs):
        source = inputs[0]
        target = inputs[1]
        x = self.encoder(source)
        y = self.decode(x, target)
        return self.classifier(y)

    @property
    def metrics(self):
        return [self.loss_metric]

    def train_step(self, batch):
        """Processes one batch inside model.fit()."""
        source = batch["source"]
        target = batch["target"]
        dec_input = target[:, :-1]
        dec_target = target[:, 1:]
        with tf.GradientTape() as tape:
            preds = self([source, dec_input])
            one_hot = tf.one_hot(dec_target, depth=self.num_classes)
            mask = tf.math.logical_not(tf.math.equal(dec_target, 0))
            loss = model.compute_loss(None, one_hot, preds, sample_weight=mask)
        trainable_vars = self.trainable_variables
        gradients = tape.gradient(loss, trainable_vars)
        self.optimizer.apply_gradients(zip(gradients, trainable_vars))
        self.loss_metric.update_state(loss)
        return {"loss": self.loss_metric.result()}

    def test_step(self, batch):
        source = batch["source"]
        target = batch["target"]
        dec_input = target[:, :-1]
        dec_target = target[:, 1:]
        preds = self([source, dec_input])
        one_hot = tf.one_hot(dec_target, depth=self.num_classes)
        mask = tf.math.logical_not(tf.math.equal(dec_target, 0))
        loss = model.compute_loss(None, one_hot, preds, sample_weight=mask)
        self.loss_metric.update_state(loss)
        return {"loss": self.loss_metric.result()}

    def generate(self, source, target_start_token_idx):
        """Performs inference over one batch of inputs using greedy decoding."""
        bs = tf.shape(source)[0]
        enc = self.encoder(source)
        dec_input = tf.ones((bs, 1), dtype=tf.int32) * target_start_token_idx
        dec_logits = []
        for i in range(self.target_maxlen - 1):
            dec_out = self.decode(enc, dec_input)
            logits = self.classifier(dec_out)
            logits = tf.argmax(logits, axis=-1, output_type=tf.int32)
            last_logit = tf.expand_dims(logits[:, -1], axis=-1)
            dec_logits.append(last_logit)
            dec_input = tf.concat([dec_input, last_logit], axis=-1)
        return dec_input


def get_data(wavs, id_to_text, maxlen=50):
    """returns mapping of audio paths and transcription texts"""
    data = []
    for w in wavs:
        id = w.split("/")[-1].split(".")[0]
        if len(id_to_text[id]) < maxlen:
            data.append({"audio": w, "text": id_to_text[id]})
    return data


class VectorizeChar:
    def __init__(self, max_len=50):
        self.vocab = (
            ["-", "#", "<", ">"]
            + [chr(i + 96) for i in range(1, 27)]
            + [" ", ".", ",", "?"]
        )
        self.max_len = max_len
        self.char_to_idx = {}
        for i, ch in enumerate(self.vocab):
            self.char_to_idx[ch] = i

    def __call__(self, text):
        text = text.lower()
        text = text[: self.max_len - 2]
        text = "<" + text + ">"
        pad_len = self.max_len - len(text)
        return [self.char_to_idx.get(ch, 1) for ch in text] + [0] * pad_len

    def get_vocabulary(self):
        return self.vocab


def create_text_ds(data):
    texts = [_["text"] for _ in data]
    text_ds = [vectorizer(t) for t in texts]
    text_ds = tf.data.Dataset.from_tensor_slices(text_ds)
    return text_ds


def path_to_audio(path):
    # spectrogram using stft
    audio = tf.io.read_file(path)
    audio, _ = tf.audio.decode_wav(audio, 1)
    audio = tf.squeeze(audio, axis=-1)
    stfts = tf.signal.stft(audio, frame_length=200, frame_step=80, fft_length=256)
    x = tf.math.pow(tf.abs(stfts), 0.5)
    # normalisation
    means = tf.math.reduce_mean(x, 1, keepdims=True)
    stddevs = tf.math.reduce_std(x, 1, keepdims=True)
    x = (x - means) / stddevs
    audio_len = tf.shape(x)[0]
    # padding to 10 seconds
    pad_len = 2754
    paddings = tf.constant([[0, pad_len], [0, 0]])
    x = tf.pad(x, paddings, "CONSTANT")[:pad_len, :]
    return x


def create_audio_ds(data):
    flist = [_["audio"] for _ in data]
    audio_ds = tf.data.Dataset.from_tensor_slices(flist)
    audio_ds = audio_ds.map(path_to_audio, num_parallel_calls=tf.data.AUTOTUNE)
    return audio_ds


def create_tf_dataset(data, bs=4):
    audio_ds = create_audio_ds(data)
    text_ds = create_text_ds(data)
    ds = tf.data.Dataset.zip((audio_ds, text_ds))
    ds = ds.map(lambda x, y: {"source": x, "target": y})
    ds = ds.batch(bs)
    ds = ds.prefetch(tf.data.AUTOTUNE)
    return ds


class CustomSchedule(keras.optimizers.schedules.LearningRateSchedule):
    def __init__(
        self,
        init_lr=0.00001,
        lr_after_warmup=0.001,
        final_lr=0.00001,
        warmup_epochs=15,
        decay_epochs=85,
        steps_per_epoch=203,
    ):
        super().__init__()
        self.init_lr = init_lr
        self.lr_after_warmup = lr_after_warmup
        self.final_lr = final_lr
        self.warmup_epochs = warmup_epochs
        self.decay_epochs = decay_epochs
        self.steps_per_epoch = steps_per_epoch

    def calculate_lr(self, epoch):
        """linear warm up - linear decay"""
        warmup_lr = (
            self.init_lr
            + ((self.lr_after_warmup - self.init_lr) / (self.warmup_epochs - 1)) * epoch
        )
        decay_lr = tf.math.maximum(
            self.final_lr,
            self.lr_after_warmup
            - (epoch - self.warmup_epochs)
            * (self.lr_after_warmup - self.final_lr)
            / self.decay_epochs,
        )
        return tf.math.minimum(warmup_lr, decay_lr)

    def __call__(self, step):
        epoch = step // self.steps_per_epoch
        epoch = tf.cast(epoch, "float32")
        return self.calculate_lr(epoch)


class SavableCustomSchedule(CustomSchedule):
    """The example's CustomSchedule plus the get_config Keras needs to save it (not in the example)."""

    def get_config(self):
        return {"init_lr": self.init_lr, "lr_after_warmup": self.lr_after_warmup, "final_lr": self.final_lr,
                "warmup_epochs": self.warmup_epochs, "decay_epochs": self.decay_epochs,
                "steps_per_epoch": self.steps_per_epoch}


class SavableTransformer(Transformer):
    """The example's Transformer plus a get_config with its real arguments (not in the example).

    It also binds the module-level name `model` to the instance, as the example's script does
    (`model = Transformer(...)`): the inherited train_step/test_step read that global.
    """

    def __init__(self, **config):
        super().__init__(**config)
        self.init_config = dict(config)
        globals()["model"] = self

    def get_config(self):
        return dict(self.init_config)


max_target_len = 60  # upstream 200
pad_len_frames = 688  # upstream 2754 (path_to_audio's pad_len)


def build(out):
    import numpy as np

    import lib

    rng = lib.setup()
    n, sr = 256, 22050

    words = ("the of and to in a was that he for it with as his on be at by had which this "
             "from not are or were they president would there been their one oswald commission "
             "time who said when them made also these rifle building street after").split()
    vectorizer = VectorizeChar(max_target_len)
    vocab = vectorizer.get_vocabulary()
    pitch = {ch: 110.0 * 2 ** (i / 8.0) for i, ch in enumerate(vocab)}

    def say(text):
        """22,050 Hz audio in [-1, 1] that spells `text`, 40 ms per character."""
        seg = int(0.04 * sr)
        t = np.arange(seg) / sr
        pieces = []
        for ch in text.lower():
            f = pitch.get(ch, 100.0)
            tone = sum(np.sin(2 * np.pi * h * f * t) / h for h in (1, 2, 3)) if ch != " " else 0 * t
            pieces.append(tone * np.hanning(seg))
        audio = np.concatenate(pieces) + 0.02 * rng.standard_normal(seg * len(text))
        return (0.6 * audio / np.abs(audio).max()).astype("float32")

    def audio_to_spectrogram(audio):
        """path_to_audio after tf.audio.decode_wav, as written, with pad_len shrunk."""
        stfts = tf.signal.stft(audio, frame_length=200, frame_step=80, fft_length=256)
        x = tf.math.pow(tf.abs(stfts), 0.5)
        # normalisation
        means = tf.math.reduce_mean(x, 1, keepdims=True)
        stddevs = tf.math.reduce_std(x, 1, keepdims=True)
        x = (x - means) / stddevs
        audio_len = tf.shape(x)[0]
        # padding to 10 seconds
        pad_len = pad_len_frames
        paddings = tf.constant([[0, pad_len], [0, 0]])
        x = tf.pad(x, paddings, "CONSTANT")[:pad_len, :]
        return x

    texts = []
    for _ in range(n):
        text = ""
        limit = rng.integers(15, max_target_len - 2)
        while True:
            word = words[rng.integers(len(words))]
            if len(text) + len(word) + 1 > limit:
                break
            text = (text + " " + word).strip()
        texts.append(text.capitalize() + ".")
    source = np.stack([audio_to_spectrogram(say(t)).numpy() for t in texts]).astype("float32")
    target = np.array([vectorizer(t) for t in texts], dtype="int32")
    ds = tf.data.Dataset.from_tensor_slices({"source": source, "target": target}).batch(64)

    model = SavableTransformer(
        num_hid=64,  # upstream 200
        num_head=2,
        num_feed_forward=128,  # upstream 400
        target_maxlen=max_target_len,
        num_layers_enc=2,  # upstream 4
        num_layers_dec=1,
        num_classes=34,
    )
    loss_fn = keras.losses.CategoricalCrossentropy(
        from_logits=True,
        label_smoothing=0.1,
    )
    learning_rate = SavableCustomSchedule(
        init_lr=0.00001,
        lr_after_warmup=0.001,
        final_lr=0.00001,
        warmup_epochs=15,
        decay_epochs=85,
        steps_per_epoch=len(ds),
    )
    optimizer = keras.optimizers.Adam(learning_rate)
    model.compile(optimizer=optimizer, loss=loss_fn)
    history = model.fit(ds, epochs=2, verbose=0)
    model.save(os.path.join(out, "model.keras"))
    lib.save_data(out, x_source=source, x_target=target)
