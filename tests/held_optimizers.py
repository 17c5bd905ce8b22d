"""A GAN written the way keras-io's dcgan_overriding_train_step.py writes it: its own compile()
takes two optimizers and a loss function, and its own train_step steps both; Keras stores the
default optimizer of super().compile() in the compile config, which never steps."""
import keras
import numpy as np
import tensorflow as tf


@keras.saving.register_keras_serializable(package="kctests")
class HeldGAN(keras.Model):
    def __init__(self, discriminator, generator, latent_dim, **kwargs):
        super().__init__(**kwargs)
        self.discriminator, self.generator, self.latent_dim = discriminator, generator, latent_dim

    def compile(self, d_optimizer, g_optimizer, loss_fn):
        super().compile()
        self.d_optimizer, self.g_optimizer, self.loss_fn = d_optimizer, g_optimizer, loss_fn

    def get_config(self):
        return {**super().get_config(), "latent_dim": self.latent_dim,
                "discriminator": keras.saving.serialize_keras_object(self.discriminator),
                "generator": keras.saving.serialize_keras_object(self.generator)}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        d = keras.saving.deserialize_keras_object(config.pop("discriminator"))
        g = keras.saving.deserialize_keras_object(config.pop("generator"))
        return cls(d, g, **config)

    def train_step(self, real):
        batch = tf.shape(real)[0]
        z = keras.random.normal((batch, self.latent_dim))
        with tf.GradientTape() as tape:
            scores = self.discriminator(tf.concat([self.generator(z), real], 0))
            d_loss = self.loss_fn(tf.concat([tf.ones((batch, 1)), tf.zeros((batch, 1))], 0), scores)
        grads = tape.gradient(d_loss, self.discriminator.trainable_weights)
        self.d_optimizer.apply_gradients(zip(grads, self.discriminator.trainable_weights))
        with tf.GradientTape() as tape:
            g_loss = self.loss_fn(tf.zeros((batch, 1)), self.discriminator(self.generator(z)))
        grads = tape.gradient(g_loss, self.generator.trainable_weights)
        self.g_optimizer.apply_gradients(zip(grads, self.generator.trainable_weights))
        return {"d_loss": d_loss, "g_loss": g_loss}


def held_gan(d_rate=2e-4, g_rate=1e-4, steps=2, recurrent=False):
    """A trained HeldGAN (`steps` steps), its two optimizers at the given rates (or schedules)."""
    keras.utils.set_random_seed(0)
    features = keras.Input((6, 4)) if recurrent else keras.Input((8,))
    x = keras.layers.LSTM(8)(features) if recurrent else keras.layers.Dense(16, activation="relu")(features)
    discriminator = keras.Model(features, keras.layers.Dense(1)(x), name="discriminator")
    z = keras.Input((4,))
    out = keras.layers.Dense(24 if recurrent else 8)(keras.layers.Dense(16, activation="relu")(z))
    if recurrent:
        out = keras.layers.Reshape((6, 4))(out)
    generator = keras.Model(z, out, name="generator")
    gan = HeldGAN(discriminator, generator, 4)
    gan.compile(keras.optimizers.Adam(d_rate), keras.optimizers.Adam(g_rate),
                keras.losses.BinaryCrossentropy(from_logits=True))
    real = np.random.default_rng(0).random((8 * steps,) + ((6, 4) if recurrent else (8,))).astype("float32")
    gan.fit(real, epochs=1, batch_size=8, verbose=0)
    return gan
