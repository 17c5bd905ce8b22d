"""Training set-ups written the way the keras-io examples write them, small enough for the suite.

bench/corpus holds the examples themselves (bench/corpus/models/<name>/build.py, with their upstream
paths); these are the same patterns cut down: a VAE with no call() (generative/vae.py), a Distiller
whose loss lives in compute_loss (vision/knowledge_distillation.py), a trainer whose train_step
unpacks (x, y) (keras_recipes/trainer_pattern.py), a speech Transformer fed a dict by fit() with a
warm-up schedule (audio/transformer_asr.py). This file is also passed as --custom-objects.
"""
import keras
import numpy as np
import tensorflow as tf
from keras import layers, ops


@keras.saving.register_keras_serializable(package="kcsetups")
class Sampling(layers.Layer):
    def call(self, inputs):
        z_mean, z_log_var = inputs
        return z_mean + tf.exp(0.5 * z_log_var) * tf.random.normal(tf.shape(z_mean))


@keras.saving.register_keras_serializable(package="kcsetups")
class VAE(keras.Model):
    """No call(): it only trains, through its own train_step."""

    def __init__(self, encoder, decoder, **kwargs):
        super().__init__(**kwargs)
        self.encoder, self.decoder = encoder, decoder
        self.total = keras.metrics.Mean(name="total_loss")

    @property
    def metrics(self):
        return [self.total]

    def train_step(self, data):
        with tf.GradientTape() as tape:
            z_mean, z_log_var, z = self.encoder(data)
            reconstruction = self.decoder(z)
            loss = tf.reduce_mean(tf.reduce_sum(keras.losses.binary_crossentropy(data, reconstruction), axis=(1, 2)))
            kl = -0.5 * (1 + z_log_var - tf.square(z_mean) - tf.exp(z_log_var))
            loss = loss + tf.reduce_mean(tf.reduce_sum(kl, axis=1))
        grads = tape.gradient(loss, self.trainable_weights)
        self.optimizer.apply_gradients(zip(grads, self.trainable_weights))
        self.total.update_state(loss)
        return {"loss": self.total.result()}

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
    keras.utils.set_random_seed(0)
    inp = keras.Input((12, 12, 1))
    x = layers.Flatten()(layers.Conv2D(8, 3, strides=2, padding="same", activation="relu")(inp))
    x = layers.Dense(16, activation="relu")(x)
    z_mean, z_log_var = layers.Dense(2, name="z_mean")(x), layers.Dense(2, name="z_log_var")(x)
    encoder = keras.Model(inp, [z_mean, z_log_var, Sampling()([z_mean, z_log_var])], name="encoder")
    latent = keras.Input((2,))
    y = layers.Reshape((6, 6, 4))(layers.Dense(6 * 6 * 4, activation="relu")(latent))
    out = layers.Conv2DTranspose(1, 3, strides=2, padding="same", activation="sigmoid")(y)
    model = VAE(encoder, keras.Model(latent, out, name="decoder"))
    model.compile(optimizer=keras.optimizers.Adam())
    digits = (np.random.default_rng(0).random((64, 12, 12, 1)) > 0.8).astype("float32")
    model.fit(digits, epochs=1, batch_size=32, verbose=0)
    return model, digits


@keras.saving.register_keras_serializable(package="kcsetups")
class Distiller(keras.Model):
    """Its loss is in compute_loss, with what its own compile() sets: Keras saves none of it."""

    def __init__(self, student, teacher, **kwargs):
        super().__init__(**kwargs)
        self.student, self.teacher = student, teacher

    def compile(self, optimizer, student_loss_fn, distillation_loss_fn, alpha=0.1, temperature=3):
        super().compile(optimizer=optimizer)
        self.student_loss_fn, self.distillation_loss_fn = student_loss_fn, distillation_loss_fn
        self.alpha, self.temperature = alpha, temperature

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, allow_empty=False):
        teacher = self.teacher(x, training=False)
        student_loss = self.student_loss_fn(y, y_pred)
        distill = self.distillation_loss_fn(ops.softmax(teacher / self.temperature, axis=1),
                                            ops.softmax(y_pred / self.temperature, axis=1))
        return self.alpha * student_loss + (1 - self.alpha) * distill * self.temperature ** 2

    def call(self, x):
        return self.student(x)

    def get_config(self):
        return {**super().get_config(), "student": keras.saving.serialize_keras_object(self.student),
                "teacher": keras.saving.serialize_keras_object(self.teacher)}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        student = keras.saving.deserialize_keras_object(config.pop("student"))
        teacher = keras.saving.deserialize_keras_object(config.pop("teacher"))
        return cls(student, teacher, **config)


def distiller():
    keras.utils.set_random_seed(0)

    def net(name, width):
        inp = keras.Input((8,))
        return keras.Model(inp, layers.Dense(3)(layers.Dense(width, activation="relu")(inp)), name=name)

    model = Distiller(net("student", 8), net("teacher", 32))
    model.compile(keras.optimizers.Adam(), keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  keras.losses.KLDivergence())
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((64, 8)).astype("float32"), rng.integers(0, 3, 64)
    model.fit(x, y, epochs=1, batch_size=32, verbose=0)
    return model, x, y


@keras.saving.register_keras_serializable(package="kcsetups")
class MyTrainer(keras.Model):
    """Its train_step unpacks (x, y) and applies its own loss; compile() gets an optimizer only."""

    def __init__(self, model, **kwargs):
        super().__init__(**kwargs)
        self.model = model
        self.loss_fn = keras.losses.SparseCategoricalCrossentropy()

    def train_step(self, data):
        x, y = data
        with tf.GradientTape() as tape:
            loss = self.loss_fn(y, self(x, training=True))
        grads = tape.gradient(loss, self.trainable_variables)
        self.optimizer.apply_gradients(zip(grads, self.trainable_variables))
        return {"loss": loss}

    def call(self, x):
        return self.model(x)

    def get_config(self):
        return {**super().get_config(), "model": keras.saving.serialize_keras_object(self.model)}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        return cls(keras.saving.deserialize_keras_object(config.pop("model")), **config)


def trainer():
    keras.utils.set_random_seed(0)
    inner = keras.Sequential([keras.Input((6,)), layers.Dense(16, activation="relu"),
                              layers.Dense(4, activation="softmax")])
    model = MyTrainer(inner)
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((64, 6)).astype("float32"), rng.integers(0, 4, 64)
    model.fit(x, y, epochs=1, batch_size=32, verbose=0)
    return model, x, y


@keras.saving.register_keras_serializable(package="kcsetups")
class WarmUp(keras.optimizers.schedules.LearningRateSchedule):
    """A Transformer's warm-up: a custom schedule, rebuilt only with the user's code."""

    def __init__(self, peak=1e-3, warmup=4):
        self.peak, self.warmup = peak, warmup

    def __call__(self, step):
        step = ops.cast(step, "float32") + 1.0
        return self.peak * ops.minimum(step / self.warmup, 1.0)

    def get_config(self):
        return {"peak": self.peak, "warmup": self.warmup}


@keras.saving.register_keras_serializable(package="kcsetups")
class Seq2Seq(keras.Model):
    """fit() hands its train_step a dict {"source", "target"}; call() takes [source, target[:, :-1]]."""

    def __init__(self, vocab=12, **kwargs):
        super().__init__(**kwargs)
        self.vocab = vocab
        self.encode = layers.Dense(8, activation="relu")
        self.embed = layers.Embedding(vocab, 8)
        self.out = layers.Dense(vocab)

    def call(self, inputs):
        source, target = inputs
        context = ops.mean(self.encode(source), axis=1, keepdims=True)
        return self.out(self.embed(target) + context)

    def train_step(self, batch):
        source, target = batch["source"], batch["target"]
        with tf.GradientTape() as tape:
            preds = self([source, target[:, :-1]])
            loss = self.compute_loss(None, ops.one_hot(target[:, 1:], self.vocab), preds)
        grads = tape.gradient(loss, self.trainable_variables)
        self.optimizer.apply_gradients(zip(grads, self.trainable_variables))
        return {"loss": loss}

    def get_config(self):
        return {**super().get_config(), "vocab": self.vocab}


def seq2seq():
    keras.utils.set_random_seed(0)
    model = Seq2Seq()
    model.compile(optimizer=keras.optimizers.Adam(WarmUp()),
                  loss=keras.losses.CategoricalCrossentropy(from_logits=True, label_smoothing=0.1))
    rng = np.random.default_rng(0)
    data = {"source": rng.standard_normal((64, 10, 5)).astype("float32"),
            "target": rng.integers(1, 12, (64, 7)).astype("int32")}
    model.fit(tf.data.Dataset.from_tensor_slices(data).batch(16), epochs=1, verbose=0)
    return model, data
