"""Speaker Recognition (keras-io examples/audio/speaker_recognition_using_cnn.py), a 1D residual CNN on FFT magnitudes of 1-second audio, saved by ModelCheckpoint.

Upstream: https://github.com/keras-team/keras-io/blob/ac7f64cb542cb0c76245ba77a55fe447dc562d01/examples/audio/speaker_recognition_using_cnn.py
(keras-io master of 2024-01-10, the Keras 3 version; Apache-2.0, author Fadi Badine).

Kept as written: the constants (SAMPLING_RATE=16000, SCALE=0.5, BATCH_SIZE=128, VALID_SPLIT,
SHUFFLE_SEED), `add_noise` and `audio_to_fft` (the model's input is the magnitude of the first
half of the FFT of 1 s of audio, shape (8000, 1), unnormalised, computed outside the model),
`residual_block` and `build_model((SAMPLING_RATE // 2, 1), 5)` (3,088,597 parameters, unshrunk),
`compile(optimizer="Adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])`, the
callbacks EarlyStopping(patience=10, restore_best_weights=True) and ModelCheckpoint("model.keras",
monitor="val_accuracy", save_best_only=True): the saved model is the file the checkpoint writes,
`model.keras`, as in the example.
Changed:
- the example's module-level code runs inside build(); the wav files are not read
  (`paths_and_labels_to_dataset`/`path_to_audio` are kept but unused);
- the Kaggle speaker-recognition dataset (5 speakers x 1,500 one-second 16 kHz wavs, plus 6
  background-noise files cut into 354 one-second noise samples) -> synthetic audio in the same
  form: 5 speakers, each a voice with its own pitch (100-220 Hz), harmonics shaped by its own
  formants and syllable-like amplitude envelopes, in [-1, 1] as decode_wav gives it; 40 noise
  samples (brown-ish noise plus hum); 256 training clips get noise added by the example's
  add_noise and go through audio_to_fft; 64 validation clips only audio_to_fft, as in the example;
- EPOCHS 1 (already the example's value; "for a real training run, use EPOCHS = 100") with 8
  steps of 32 (the example: 94 steps of 128); validation batches of 32 as in the example;
- data.npz holds the 256 training FFTs (after noise) and their labels (int32, shape (n,)).
"""
import os

os.environ["KERAS_BACKEND"] = "tensorflow"

import numpy as np
import tensorflow as tf
import keras

DATASET_ROOT = "16000_pcm_speeches"

# The folders in which we will put the audio samples and the noise samples
AUDIO_SUBFOLDER = "audio"
NOISE_SUBFOLDER = "noise"

DATASET_AUDIO_PATH = os.path.join(DATASET_ROOT, AUDIO_SUBFOLDER)
DATASET_NOISE_PATH = os.path.join(DATASET_ROOT, NOISE_SUBFOLDER)

# Percentage of samples to use for validation
VALID_SPLIT = 0.1

# Seed to use when shuffling the dataset and the noise
SHUFFLE_SEED = 43

# The sampling rate to use.
# This is the one used in all the audio samples.
# We will resample all the noise to this sampling rate.
# This will also be the output size of the audio wave samples
# (since all samples are of 1 second long)
SAMPLING_RATE = 16000

# The factor to multiply the noise with according to:
#   noisy_sample = sample + noise * prop * scale
#      where prop = sample_amplitude / noise_amplitude
SCALE = 0.5

BATCH_SIZE = 128
EPOCHS = 1  # For a real training run, use EPOCHS = 100


def paths_and_labels_to_dataset(audio_paths, labels):
    """Constructs a dataset of audios and labels."""
    path_ds = tf.data.Dataset.from_tensor_slices(audio_paths)
    audio_ds = path_ds.map(
        lambda x: path_to_audio(x), num_parallel_calls=tf.data.AUTOTUNE
    )
    label_ds = tf.data.Dataset.from_tensor_slices(labels)
    return tf.data.Dataset.zip((audio_ds, label_ds))


def path_to_audio(path):
    """Reads and decodes an audio file."""
    audio = tf.io.read_file(path)
    audio, _ = tf.audio.decode_wav(audio, 1, SAMPLING_RATE)
    return audio


def add_noise(audio, noises=None, scale=0.5):
    if noises is not None:
        # Create a random tensor of the same size as audio ranging from
        # 0 to the number of noise stream samples that we have.
        tf_rnd = tf.random.uniform(
            (tf.shape(audio)[0],), 0, noises.shape[0], dtype=tf.int32
        )
        noise = tf.gather(noises, tf_rnd, axis=0)

        # Get the amplitude proportion between the audio and the noise
        prop = tf.math.reduce_max(audio, axis=1) / tf.math.reduce_max(noise, axis=1)
        prop = tf.repeat(tf.expand_dims(prop, axis=1), tf.shape(audio)[1], axis=1)

        # Adding the rescaled noise to audio
        audio = audio + noise * prop * scale

    return audio


def audio_to_fft(audio):
    # Since tf.signal.fft applies FFT on the innermost dimension,
    # we need to squeeze the dimensions and then expand them again
    # after FFT
    audio = tf.squeeze(audio, axis=-1)
    fft = tf.signal.fft(
        tf.cast(tf.complex(real=audio, imag=tf.zeros_like(audio)), tf.complex64)
    )
    fft = tf.expand_dims(fft, axis=-1)

    # Return the absolute value of the first half of the FFT
    # which represents the positive frequencies
    return tf.math.abs(fft[:, : (audio.shape[1] // 2), :])


def residual_block(x, filters, conv_num=3, activation="relu"):
    # Shortcut
    s = keras.layers.Conv1D(filters, 1, padding="same")(x)
    for i in range(conv_num - 1):
        x = keras.layers.Conv1D(filters, 3, padding="same")(x)
        x = keras.layers.Activation(activation)(x)
    x = keras.layers.Conv1D(filters, 3, padding="same")(x)
    x = keras.layers.Add()([x, s])
    x = keras.layers.Activation(activation)(x)
    return keras.layers.MaxPool1D(pool_size=2, strides=2)(x)


def build_model(input_shape, num_classes):
    inputs = keras.layers.Input(shape=input_shape, name="input")

    x = residual_block(inputs, 16, 2)
    x = residual_block(x, 32, 2)
    x = residual_block(x, 64, 3)
    x = residual_block(x, 128, 3)
    x = residual_block(x, 128, 3)

    x = keras.layers.AveragePooling1D(pool_size=3, strides=3)(x)
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dense(256, activation="relu")(x)
    x = keras.layers.Dense(128, activation="relu")(x)

    outputs = keras.layers.Dense(num_classes, activation="softmax", name="output")(x)

    return keras.models.Model(inputs=inputs, outputs=outputs)


def build(out):
    import lib

    rng = lib.setup()
    num_speakers = 5
    t = np.arange(SAMPLING_RATE) / SAMPLING_RATE

    def voice(speaker_rng):
        return {"f0": speaker_rng.uniform(100, 220), "formants": speaker_rng.uniform([300, 900, 2200], [800, 1800, 3200]),
                "rate": speaker_rng.uniform(3, 6)}

    voices = [voice(np.random.default_rng(100 + s)) for s in range(num_speakers)]

    def utterance(v):
        f0 = v["f0"] * (1 + 0.05 * np.sin(2 * np.pi * rng.uniform(0.5, 2) * t))  # intonation
        phase = 2 * np.pi * np.cumsum(f0) / SAMPLING_RATE
        wave = np.zeros_like(t)
        for h in range(1, 25):
            gain = sum(np.exp(-((h * v["f0"] - f) / 150.0) ** 2) for f in v["formants"]) + 0.05 / h
            wave += gain * np.sin(h * phase + rng.uniform(0, 2 * np.pi))
        envelope = np.clip(np.sin(2 * np.pi * v["rate"] * t + rng.uniform(0, 2 * np.pi)), 0, None) ** 0.5
        wave = wave * envelope + 0.01 * rng.standard_normal(t.shape)
        return (0.7 * wave / np.abs(wave).max()).astype("float32")[:, None]  # (16000, 1) in [-1, 1]

    def background():
        brown = np.cumsum(rng.standard_normal(SAMPLING_RATE))
        brown = brown - np.convolve(brown, np.ones(400) / 400, "same")
        hum = 0.3 * np.sin(2 * np.pi * rng.choice([50, 60]) * t)
        noise = brown / np.abs(brown).max() + hum
        return (0.5 * noise / np.abs(noise).max()).astype("float32")[:, None]

    train_labels = rng.integers(0, num_speakers, size=256)
    valid_labels = rng.integers(0, num_speakers, size=64)
    train_audio = np.stack([utterance(voices[c]) for c in train_labels])
    valid_audio = np.stack([utterance(voices[c]) for c in valid_labels])
    noises = tf.constant(np.stack([background() for _ in range(40)]))

    train_ds = tf.data.Dataset.from_tensor_slices((train_audio, train_labels.astype("int32")))
    train_ds = train_ds.shuffle(buffer_size=BATCH_SIZE * 8, seed=SHUFFLE_SEED).batch(32)
    valid_ds = tf.data.Dataset.from_tensor_slices((valid_audio, valid_labels.astype("int32")))
    valid_ds = valid_ds.shuffle(buffer_size=32 * 8, seed=SHUFFLE_SEED).batch(32)
    # Add noise to the training set
    train_ds = train_ds.map(
        lambda x, y: (add_noise(x, noises, scale=SCALE), y),
        num_parallel_calls=tf.data.AUTOTUNE,
    )
    # Transform audio wave to the frequency domain using `audio_to_fft`
    train_ds = train_ds.map(
        lambda x, y: (audio_to_fft(x), y), num_parallel_calls=tf.data.AUTOTUNE
    )
    valid_ds = valid_ds.map(
        lambda x, y: (audio_to_fft(x), y), num_parallel_calls=tf.data.AUTOTUNE
    )
    train_ds = train_ds.cache()  # the same noisy FFTs for training and for data.npz

    model = build_model((SAMPLING_RATE // 2, 1), num_speakers)
    # Compile the model using Adam's default learning rate
    model.compile(
        optimizer="Adam",
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    model_save_filename = os.path.join(out, "model.keras")
    earlystopping_cb = keras.callbacks.EarlyStopping(patience=10, restore_best_weights=True)
    mdlcheckpoint_cb = keras.callbacks.ModelCheckpoint(
        model_save_filename, monitor="val_accuracy", save_best_only=True
    )
    history = model.fit(
        train_ds,
        epochs=EPOCHS,
        validation_data=valid_ds,
        callbacks=[earlystopping_cb, mdlcheckpoint_cb],
        verbose=0,
    )
    xs, ys = zip(*[(x.numpy(), y.numpy()) for x, y in train_ds])
    lib.save_data(out, x=np.concatenate(xs), y=np.concatenate(ys))
