"""Convolutional autoencoder for image denoising (keras-io examples/vision/autoencoder.py), a Functional conv/deconv autoencoder with a sigmoid output and binary cross-entropy on pixel targets.

Upstream: https://github.com/keras-team/keras-io/blob/ac7f64cb542cb0c76245ba77a55fe447dc562d01/examples/vision/autoencoder.py
(keras-io master of 2024-01-10; Apache-2.0, author Santiago L. Valdarrama).

Kept as written: preprocess and noise (noise_factor 0.4, clipped to [0, 1]); the autoencoder at
full size (two Conv2D+MaxPooling, two strided Conv2DTranspose, a 1-channel sigmoid Conv2D);
`compile(optimizer="adam", loss="binary_crossentropy")`; both trainings in order: clean -> clean,
then noisy -> clean, the second being the denoiser that is saved.
Changed:
- MNIST -> 256 synthetic 28x28 "digits" (dark background, a few bright strokes) as uint8 in
  [0, 255], run through the example's preprocess (float32 / 255) and noise;
- `fit(epochs=50, batch_size=128, validation_data=...)` and `fit(epochs=100, ...)` -> 8 steps of
  32 each, no validation;
- the example's module-level model code is in make_autoencoder(); saved as `model.keras` (the
  example does not save); data.npz holds the last fit's data: x the noisy images (float64, as
  noise() returns them), y the clean (float32).
"""
import numpy as np
from keras import layers
from keras.models import Model


def preprocess(array):
    """Normalizes the supplied array and reshapes it."""
    array = array.astype("float32") / 255.0
    array = np.reshape(array, (len(array), 28, 28, 1))
    return array


def noise(array):
    """Adds random noise to each image in the supplied array."""

    noise_factor = 0.4
    noisy_array = array + noise_factor * np.random.normal(
        loc=0.0, scale=1.0, size=array.shape
    )

    return np.clip(noisy_array, 0.0, 1.0)


def make_autoencoder():
    input = layers.Input(shape=(28, 28, 1))

    # Encoder
    x = layers.Conv2D(32, (3, 3), activation="relu", padding="same")(input)
    x = layers.MaxPooling2D((2, 2), padding="same")(x)
    x = layers.Conv2D(32, (3, 3), activation="relu", padding="same")(x)
    x = layers.MaxPooling2D((2, 2), padding="same")(x)

    # Decoder
    x = layers.Conv2DTranspose(32, (3, 3), strides=2, activation="relu", padding="same")(x)
    x = layers.Conv2DTranspose(32, (3, 3), strides=2, activation="relu", padding="same")(x)
    x = layers.Conv2D(1, (3, 3), activation="sigmoid", padding="same")(x)

    # Autoencoder
    autoencoder = Model(input, x)
    autoencoder.compile(optimizer="adam", loss="binary_crossentropy")
    return autoencoder


def synthetic_digits(rng, n):
    """uint8 (n, 28, 28) images like MNIST's: black background, 2-4 bright strokes in the middle."""
    img = np.zeros((n, 28, 28), "float32")
    for i in range(n):
        for _ in range(rng.integers(2, 5)):
            if rng.random() < 0.5:  # vertical stroke
                c, r0 = rng.integers(6, 22), rng.integers(4, 12)
                img[i, r0:r0 + rng.integers(8, 16), c:c + 3] = rng.uniform(200, 255)
            else:  # horizontal stroke
                r, c0 = rng.integers(6, 22), rng.integers(4, 12)
                img[i, r:r + 3, c0:c0 + rng.integers(8, 14)] = rng.uniform(200, 255)
    return img.round().astype("uint8")


def build(out):
    import os

    import lib

    rng = lib.setup()
    train_data = preprocess(synthetic_digits(rng, 256))
    noisy_train_data = noise(train_data)
    autoencoder = make_autoencoder()
    lib.fit_steps(autoencoder, train_data, train_data, steps=8, batch_size=32, shuffle=True)
    lib.fit_steps(autoencoder, noisy_train_data, train_data, steps=8, batch_size=32, shuffle=True)
    autoencoder.save(os.path.join(out, "model.keras"))
    lib.save_data(out, x=noisy_train_data, y=train_data)  # x float64, as noise() returns it
