"""What every corpus build script shares: a fixed seed, data shaped like the example's, saving.

A build script (bench/corpus/models/<name>/build.py) keeps the example's code as its
authors wrote it and adds one function, `build(out)`, that makes the model, trains it a
few steps on synthetic data shaped and scaled like the example's data, saves it the way
the example does, and writes the `data.npz` that `kerascheck --data` takes. Everything
else in the script is the example's own code, at module level, so that kerascheck can
import the script with `--custom-objects` and find the example's classes.
"""
from __future__ import annotations

import os

import numpy as np

SEED = 1337  # the keras-io examples' favourite seed; any fixed value would do


def setup(seed: int = SEED) -> np.random.Generator:
    """Seed Python, NumPy and the backend; return a NumPy generator for the synthetic data."""
    import keras

    keras.utils.set_random_seed(seed)
    return np.random.default_rng(seed)


def save_data(out: str, **arrays) -> str:
    """data.npz with the arrays as `--data` reads them (x, y, x_<input name>, y_<output name>)."""
    for key in arrays:
        if not (key in ("x", "y") or key.startswith(("x_", "y_"))):
            raise ValueError(f"--data arrays are named x, y, x_<input> or y_<output>, not {key!r}")
    path = os.path.join(out, "data.npz")
    np.savez(path, **{k: np.asarray(v) for k, v in arrays.items()})
    return path


# Synthetic data, shaped and scaled like the examples' real data -------------------------


def pixels(rng, n: int, shape: tuple, low: float = 0.0, high: float = 255.0, smooth: int = 4) -> np.ndarray:
    """Images with spatial structure (blocky noise upsampled), in [low, high], float32.

    Independent noise per pixel has no edges or blobs for convolutions to find;
    upsampled coarse noise looks more like a photo to a conv net at the same cost.
    """
    h, w = shape[0], shape[1]
    rest = tuple(shape[2:])
    ch, cw = max(1, -(-h // smooth)), max(1, -(-w // smooth))
    coarse = rng.uniform(0.0, 1.0, size=(n, ch, cw) + rest)
    full = np.repeat(np.repeat(coarse, smooth, axis=1), smooth, axis=2)[:, :h, :w]
    full = 0.7 * full + 0.3 * rng.uniform(0.0, 1.0, size=full.shape)
    return (low + (high - low) * full).astype("float32")


def strokes(rng, n: int, shape: tuple = (28, 28, 1), ink: float = 0.19) -> np.ndarray:
    """Digit-like images in [0, 1]: a dark background with a few thick bright strokes (MNIST has
    about 19% ink), float32. Uniform noise at mean 0.5 is nothing like MNIST to a VAE's loss."""
    h, w = shape[0], shape[1]
    out = np.zeros((n, h, w), dtype=np.float32)
    yy, xx = np.mgrid[0:h, 0:w]
    for i in range(n):
        for _ in range(rng.integers(2, 5)):
            (y0, x0), (y1, x1) = rng.uniform(0.2, 0.8, (2, 2)) * (h, w)
            t = np.clip(((yy - y0) * (y1 - y0) + (xx - x0) * (x1 - x0)) /
                        max((y1 - y0) ** 2 + (x1 - x0) ** 2, 1e-6), 0, 1)
            dist = np.hypot(yy - (y0 + t * (y1 - y0)), xx - (x0 + t * (x1 - x0)))
            out[i] = np.maximum(out[i], np.clip(1.5 - dist * (0.75 / max(ink * 6, 0.5)), 0, 1))
    return out.reshape((n,) + tuple(shape))


def class_images(rng, n: int, shape: tuple, classes: int, low: float = 0.0, high: float = 255.0):
    """Images whose label is visible in them (a class-dependent brightness pattern), and the labels.

    Random labels on random images can only be memorised, never learnt; a weak signal
    keeps the few training steps of a build close to what real data does.
    """
    y = rng.integers(0, classes, size=n)
    x = pixels(rng, n, shape, 0.0, 1.0)
    h = shape[0]
    band = max(1, h // max(classes, 1))
    for i, c in enumerate(y):
        x[i, (c * band) % h:(c * band) % h + band] += 0.5
    x = np.clip(x / 1.5, 0.0, 1.0)
    return (low + (high - low) * x).astype("float32"), y


def token_ids(rng, n: int, length: int, vocab: int, low: int = 1, pad_share: float = 0.0) -> np.ndarray:
    """Token ids in [low, vocab), with trailing padding (id 0) on about `pad_share` of each row."""
    ids = rng.integers(low, vocab, size=(n, length))
    if pad_share > 0:
        lengths = np.maximum(1, (length * (1 - rng.uniform(0, 2 * pad_share, size=n))).astype(int))
        for i, k in enumerate(lengths):
            ids[i, min(k, length):] = 0
    return ids.astype("int64")


def series(rng, n: int, steps: int, features: int = 1, scale: float = 1.0, offset: float = 0.0) -> np.ndarray:
    """Smooth random walks (float32), like sensor readings: (n, steps, features)."""
    walk = np.cumsum(rng.standard_normal((n, steps, features)) * 0.1, axis=1)
    season = np.sin(np.linspace(0, 4 * np.pi, steps))[None, :, None] * rng.uniform(0.5, 1.5, (n, 1, features))
    return (offset + scale * (walk + season)).astype("float32")


def fit_steps(model, x, y=None, steps: int = 8, batch_size: int = 16, **kwargs):
    """model.fit for about `steps` steps, silently: the build only needs trained weights and optimizer state."""
    first = next(iter(x.values())) if isinstance(x, dict) else (x[0] if isinstance(x, (list, tuple)) else x)
    epochs = max(1, -(-steps * batch_size // len(first)))
    return model.fit(x, y, batch_size=batch_size, epochs=epochs, verbose=0, **kwargs)
