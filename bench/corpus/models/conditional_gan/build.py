"""Conditional GAN (keras-io examples/generative/conditional_gan.py), a ConditionalGAN subclass with no call(), compile(d_optimizer, g_optimizer, loss_fn), and a train_step fed (images, one-hot labels).

Upstream: https://github.com/keras-team/keras-io/blob/ac7f64cb542cb0c76245ba77a55fe447dc562d01/examples/generative/conditional_gan.py
(keras-io master of 2024-01-10, the Keras 3 version; Apache-2.0, author Sayak Paul).

Kept as written: the constants (batch_size 64, num_classes 10, image_size 28, latent_dim
128), the discriminator (input 28x28x11, Conv2D 64/128 stride 2 with LeakyReLU(0.2),
GlobalMaxPooling2D, Dense(1) logits), the generator (input 138, Dense(7*7*138), two
Conv2DTranspose(128, 4, stride 2), Conv2D(1, 7, sigmoid)), the ConditionalGAN class
(SeedGenerator(1337), loss trackers, compile(d_optimizer, g_optimizer, loss_fn),
train_step), both Adam(3e-4) and BinaryCrossentropy(from_logits=True), and the data as
fit() receives it: a Dataset of (images in [0, 1] of shape (28, 28, 1), one-hot labels of
10), shuffled and batched by 64.
Changed:
- MNIST (downloaded; 70,000 digits) -> 512 synthetic 28x28x1 digits in [0, 1] whose class
  is visible in them, with their one-hot labels;
- the example's module-level code runs inside build(); the interpolation/GIF code after
  training is not run;
- `fit(dataset, epochs=20)` -> 8 steps of 64 (one epoch of the 512);
- the example does not save, and as written it cannot: `cond_gan.save()` raises Keras's
  NotImplementedError (CGAN_SAVE_ERROR below). The saved class, SavableConditionalGAN, is
  the example's ConditionalGAN plus the get_config/from_config that Keras asks for, nothing
  else; it is saved as `model.keras`;
- data.npz holds the first 256 images as x and their one-hot labels as y, the (x, y) pairs
  the example's fit() receives.
"""
import keras

from keras import layers
from keras import ops
import tensorflow as tf
import numpy as np

batch_size = 64
num_channels = 1
num_classes = 10
image_size = 28
latent_dim = 128

generator_in_channels = latent_dim + num_classes
discriminator_in_channels = num_channels + num_classes


def make_discriminator():
    # Create the discriminator.
    discriminator = keras.Sequential(
        [
            keras.layers.InputLayer((28, 28, discriminator_in_channels)),
            layers.Conv2D(64, (3, 3), strides=(2, 2), padding="same"),
            layers.LeakyReLU(negative_slope=0.2),
            layers.Conv2D(128, (3, 3), strides=(2, 2), padding="same"),
            layers.LeakyReLU(negative_slope=0.2),
            layers.GlobalMaxPooling2D(),
            layers.Dense(1),
        ],
        name="discriminator",
    )
    return discriminator


def make_generator():
    # Create the generator.
    generator = keras.Sequential(
        [
            keras.layers.InputLayer((generator_in_channels,)),
            # We want to generate 128 + num_classes coefficients to reshape into a
            # 7x7x(128 + num_classes) map.
            layers.Dense(7 * 7 * generator_in_channels),
            layers.LeakyReLU(negative_slope=0.2),
            layers.Reshape((7, 7, generator_in_channels)),
            layers.Conv2DTranspose(128, (4, 4), strides=(2, 2), padding="same"),
            layers.LeakyReLU(negative_slope=0.2),
            layers.Conv2DTranspose(128, (4, 4), strides=(2, 2), padding="same"),
            layers.LeakyReLU(negative_slope=0.2),
            layers.Conv2D(1, (7, 7), padding="same", activation="sigmoid"),
        ],
        name="generator",
    )
    return generator


class ConditionalGAN(keras.Model):
    def __init__(self, discriminator, generator, latent_dim):
        super().__init__()
        self.discriminator = discriminator
        self.generator = generator
        self.latent_dim = latent_dim
        self.seed_generator = keras.random.SeedGenerator(1337)
        self.gen_loss_tracker = keras.metrics.Mean(name="generator_loss")
        self.disc_loss_tracker = keras.metrics.Mean(name="discriminator_loss")

    @property
    def metrics(self):
        return [self.gen_loss_tracker, self.disc_loss_tracker]

    def compile(self, d_optimizer, g_optimizer, loss_fn):
        super().compile()
        self.d_optimizer = d_optimizer
        self.g_optimizer = g_optimizer
        self.loss_fn = loss_fn

    def train_step(self, data):
        # Unpack the data.
        real_images, one_hot_labels = data

        # Add dummy dimensions to the labels so that they can be concatenated with
        # the images. This is for the discriminator.
        image_one_hot_labels = one_hot_labels[:, :, None, None]
        image_one_hot_labels = ops.repeat(
            image_one_hot_labels, repeats=[image_size * image_size]
        )
        image_one_hot_labels = ops.reshape(
            image_one_hot_labels, (-1, image_size, image_size, num_classes)
        )

        # Sample random points in the latent space and concatenate the labels.
        # This is for the generator.
        batch_size = ops.shape(real_images)[0]
        random_latent_vectors = keras.random.normal(
            shape=(batch_size, self.latent_dim), seed=self.seed_generator
        )
        random_vector_labels = ops.concatenate(
            [random_latent_vectors, one_hot_labels], axis=1
        )

        # Decode the noise (guided by labels) to fake images.
        generated_images = self.generator(random_vector_labels)

        # Combine them with real images. Note that we are concatenating the labels
        # with these images here.
        fake_image_and_labels = ops.concatenate(
            [generated_images, image_one_hot_labels], -1
        )
        real_image_and_labels = ops.concatenate([real_images, image_one_hot_labels], -1)
        combined_images = ops.concatenate(
            [fake_image_and_labels, real_image_and_labels], axis=0
        )

        # Assemble labels discriminating real from fake images.
        labels = ops.concatenate(
            [ops.ones((batch_size, 1)), ops.zeros((batch_size, 1))], axis=0
        )

        # Train the discriminator.
        with tf.GradientTape() as tape:
            predictions = self.discriminator(combined_images)
            d_loss = self.loss_fn(labels, predictions)
        grads = tape.gradient(d_loss, self.discriminator.trainable_weights)
        self.d_optimizer.apply_gradients(
            zip(grads, self.discriminator.trainable_weights)
        )

        # Sample random points in the latent space.
        random_latent_vectors = keras.random.normal(
            shape=(batch_size, self.latent_dim), seed=self.seed_generator
        )
        random_vector_labels = ops.concatenate(
            [random_latent_vectors, one_hot_labels], axis=1
        )

        # Assemble labels that say "all real images".
        misleading_labels = ops.zeros((batch_size, 1))

        # Train the generator (note that we should *not* update the weights
        # of the discriminator)!
        with tf.GradientTape() as tape:
            fake_images = self.generator(random_vector_labels)
            fake_image_and_labels = ops.concatenate(
                [fake_images, image_one_hot_labels], -1
            )
            predictions = self.discriminator(fake_image_and_labels)
            g_loss = self.loss_fn(misleading_labels, predictions)
        grads = tape.gradient(g_loss, self.generator.trainable_weights)
        self.g_optimizer.apply_gradients(zip(grads, self.generator.trainable_weights))

        # Monitor loss.
        self.gen_loss_tracker.update_state(g_loss)
        self.disc_loss_tracker.update_state(d_loss)
        return {
            "g_loss": self.gen_loss_tracker.result(),
            "d_loss": self.disc_loss_tracker.result(),
        }


# What `cond_gan.save()` raises on the example's ConditionalGAN as written (Keras 3.15):
CGAN_SAVE_ERROR = (
    "NotImplementedError: Object ConditionalGAN was created by passing non-serializable argument values "
    "in `__init__()`, and therefore the object must override `get_config()` in order to be serializable. "
    "Please implement `get_config()`."
)


class SavableConditionalGAN(ConditionalGAN):
    """The example's ConditionalGAN plus the two methods Keras needs to rebuild it from a file (not in the example).

    ConditionalGAN.__init__ takes no **kwargs, so the config holds only its three arguments.
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
    all_digits, labels = lib.class_images(rng, 512, (28, 28, 1), num_classes, 0.0, 1.0)
    all_labels = keras.utils.to_categorical(labels, 10)

    # Create tf.data.Dataset.
    dataset = tf.data.Dataset.from_tensor_slices((all_digits, all_labels))
    dataset = dataset.shuffle(buffer_size=1024).batch(batch_size)

    cond_gan = SavableConditionalGAN(
        discriminator=make_discriminator(), generator=make_generator(), latent_dim=latent_dim
    )
    cond_gan.compile(
        d_optimizer=keras.optimizers.Adam(learning_rate=0.0003),
        g_optimizer=keras.optimizers.Adam(learning_rate=0.0003),
        loss_fn=keras.losses.BinaryCrossentropy(from_logits=True),
    )
    cond_gan.fit(dataset, epochs=1, verbose=0)
    cond_gan.save(os.path.join(out, "model.keras"))
    lib.save_data(out, x=all_digits[:256], y=all_labels[:256])
