"""DCGAN by overriding train_step (keras-io examples/generative/dcgan_overriding_train_step.py), a GAN subclass with no call(), compile(d_optimizer, g_optimizer, loss_fn) and its own train_step.

Upstream: https://github.com/keras-team/keras-io/blob/ac7f64cb542cb0c76245ba77a55fe447dc562d01/examples/generative/dcgan_overriding_train_step.py
(keras-io master of 2024-01-10, the Keras 3 version; Apache-2.0, author fchollet).

Kept as written: the discriminator (Conv2D 64/128/128, kernel 4, stride 2, LeakyReLU(0.2),
Flatten, Dropout(0.2), Dense(1, sigmoid)), the generator's layout (Dense -> Reshape ->
three Conv2DTranspose(kernel 4, stride 2) with LeakyReLU(0.2) -> Conv2D(3, 5, sigmoid)),
latent_dim 128, the GAN class (SeedGenerator(1337), its compile(d_optimizer, g_optimizer,
loss_fn) with the d_loss/g_loss Mean metrics, its train_step: fake images labelled 1 and
real 0, label noise 0.05 * uniform, generator trained towards label 0), both Adam(1e-4) and
BinaryCrossentropy(), images rescaled to [0, 1] as the example's `dataset.map(lambda x:
x / 255.0)` does.
Changed:
- CelebA faces at 64x64 (downloaded with gdown) -> 256 synthetic 32x32 RGB images in [0, 1]
  with blob structure; so the discriminator's Input is (32, 32, 3) and the generator starts
  from Dense(4 * 4 * 128) -> Reshape((4, 4, 128)) (three stride-2 upsamplings to 32x32);
- generator widths 128/256/512 -> 32/64/128 (the original's last Conv2DTranspose(512) at
  full resolution alone costs ~2 GFLOP per image; too slow for a CPU check);
- the example's module-level code runs inside build(); GANMonitor (writes PNGs) is not used;
- `fit(dataset, epochs=1)` over CelebA -> 8 steps of 32;
- the example does not save, and as written it cannot: `gan.save()` raises Keras's
  NotImplementedError (see GAN_SAVE_ERROR below). The saved class, SavableGAN, is the
  example's GAN plus the get_config/from_config that Keras asks for, nothing else; it is
  saved as `model.keras`;
- data.npz holds x only (the GAN trains on unlabelled images).
"""
import keras
import tensorflow as tf

from keras import layers
from keras import ops

latent_dim = 128


def make_discriminator():
    return keras.Sequential(
        [
            keras.Input(shape=(32, 32, 3)),
            layers.Conv2D(64, kernel_size=4, strides=2, padding="same"),
            layers.LeakyReLU(negative_slope=0.2),
            layers.Conv2D(128, kernel_size=4, strides=2, padding="same"),
            layers.LeakyReLU(negative_slope=0.2),
            layers.Conv2D(128, kernel_size=4, strides=2, padding="same"),
            layers.LeakyReLU(negative_slope=0.2),
            layers.Flatten(),
            layers.Dropout(0.2),
            layers.Dense(1, activation="sigmoid"),
        ],
        name="discriminator",
    )


def make_generator():
    return keras.Sequential(
        [
            keras.Input(shape=(latent_dim,)),
            layers.Dense(4 * 4 * 128),
            layers.Reshape((4, 4, 128)),
            layers.Conv2DTranspose(32, kernel_size=4, strides=2, padding="same"),
            layers.LeakyReLU(negative_slope=0.2),
            layers.Conv2DTranspose(64, kernel_size=4, strides=2, padding="same"),
            layers.LeakyReLU(negative_slope=0.2),
            layers.Conv2DTranspose(128, kernel_size=4, strides=2, padding="same"),
            layers.LeakyReLU(negative_slope=0.2),
            layers.Conv2D(3, kernel_size=5, padding="same", activation="sigmoid"),
        ],
        name="generator",
    )


class GAN(keras.Model):
    def __init__(self, discriminator, generator, latent_dim):
        super().__init__()
        self.discriminator = discriminator
        self.generator = generator
        self.latent_dim = latent_dim
        self.seed_generator = keras.random.SeedGenerator(1337)

    def compile(self, d_optimizer, g_optimizer, loss_fn):
        super().compile()
        self.d_optimizer = d_optimizer
        self.g_optimizer = g_optimizer
        self.loss_fn = loss_fn
        self.d_loss_metric = keras.metrics.Mean(name="d_loss")
        self.g_loss_metric = keras.metrics.Mean(name="g_loss")

    @property
    def metrics(self):
        return [self.d_loss_metric, self.g_loss_metric]

    def train_step(self, real_images):
        # Sample random points in the latent space
        batch_size = ops.shape(real_images)[0]
        random_latent_vectors = keras.random.normal(
            shape=(batch_size, self.latent_dim), seed=self.seed_generator
        )

        # Decode them to fake images
        generated_images = self.generator(random_latent_vectors)

        # Combine them with real images
        combined_images = ops.concatenate([generated_images, real_images], axis=0)

        # Assemble labels discriminating real from fake images
        labels = ops.concatenate(
            [ops.ones((batch_size, 1)), ops.zeros((batch_size, 1))], axis=0
        )
        # Add random noise to the labels - important trick!
        labels += 0.05 * tf.random.uniform(tf.shape(labels))

        # Train the discriminator
        with tf.GradientTape() as tape:
            predictions = self.discriminator(combined_images)
            d_loss = self.loss_fn(labels, predictions)
        grads = tape.gradient(d_loss, self.discriminator.trainable_weights)
        self.d_optimizer.apply_gradients(
            zip(grads, self.discriminator.trainable_weights)
        )

        # Sample random points in the latent space
        random_latent_vectors = keras.random.normal(
            shape=(batch_size, self.latent_dim), seed=self.seed_generator
        )

        # Assemble labels that say "all real images"
        misleading_labels = ops.zeros((batch_size, 1))

        # Train the generator (note that we should *not* update the weights
        # of the discriminator)!
        with tf.GradientTape() as tape:
            predictions = self.discriminator(self.generator(random_latent_vectors))
            g_loss = self.loss_fn(misleading_labels, predictions)
        grads = tape.gradient(g_loss, self.generator.trainable_weights)
        self.g_optimizer.apply_gradients(zip(grads, self.generator.trainable_weights))

        # Update metrics
        self.d_loss_metric.update_state(d_loss)
        self.g_loss_metric.update_state(g_loss)
        return {
            "d_loss": self.d_loss_metric.result(),
            "g_loss": self.g_loss_metric.result(),
        }


# What `gan.save()` raises on the example's GAN as written (Keras 3.15):
GAN_SAVE_ERROR = (
    "NotImplementedError: Object GAN was created by passing non-serializable argument values in "
    "`__init__()`, and therefore the object must override `get_config()` in order to be serializable. "
    "Please implement `get_config()`."
)


class SavableGAN(GAN):
    """The example's GAN plus the two methods Keras needs to rebuild it from a file (not in the example).

    GAN.__init__ takes no **kwargs, so the config holds only its three arguments.
    """

    def get_config(self):
        return {"discriminator": keras.saving.serialize_keras_object(self.discriminator),
                "generator": keras.saving.serialize_keras_object(self.generator),
                "latent_dim": self.latent_dim}

    @classmethod
    def from_config(cls, config):
        return cls(keras.saving.deserialize_keras_object(config["discriminator"]),
                   keras.saving.deserialize_keras_object(config["generator"]),
                   config["latent_dim"])


def build(out):
    import os

    import lib

    rng = lib.setup()
    faces = lib.pixels(rng, 256, (32, 32, 3), 0.0, 1.0)
    gan = SavableGAN(discriminator=make_discriminator(), generator=make_generator(), latent_dim=latent_dim)
    gan.compile(
        d_optimizer=keras.optimizers.Adam(learning_rate=0.0001),
        g_optimizer=keras.optimizers.Adam(learning_rate=0.0001),
        loss_fn=keras.losses.BinaryCrossentropy(),
    )
    lib.fit_steps(gan, faces, steps=8, batch_size=32)
    gan.save(os.path.join(out, "model.keras"))
    lib.save_data(out, x=faces)
