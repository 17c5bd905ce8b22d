"""SegFormer image segmenter (KerasHub keras_hub/src/models/segformer/segformer_image_segmenter_test.py), a KerasHub segmentation task: Mix Transformer encoder with stochastic depth, all-MLP decoder, logits resized to the input.

Upstream: https://github.com/keras-team/keras-hub/blob/71453d08f59edc90d276e999319fc51e61cbf82c/keras_hub/src/models/segformer/segformer_image_segmenter_test.py
(KerasHub master of 2026-08-21; keras-hub 0.32.0 installed; Apache-2.0). The brief named it
segformer_image_segmenter_tests.py; the file is segformer_image_segmenter_test.py.

Kept as written: the test's setUp: `MiTBackbone(layerwise_depths=[2, 2], image_shape=(32, 32, 3),
hidden_dims=[32, 64], num_layers=2, layerwise_num_heads=[1, 2], layerwise_sr_ratios=[8, 4],
max_drop_path_rate=0.1, layerwise_patch_sizes=[7, 3], layerwise_strides=[4, 2])`,
`SegFormerBackbone(projection_filters=256)`, `SegFormerImageSegmenterPreprocessor()` (no image
converter: images pass as given), `SegFormerImageSegmenter(num_classes=4)` and KerasHub's default
compile, which the task runs in its constructor (`ImageSegmenter.compile()`: Adam(5e-5),
CategoricalCrossentropy(from_logits=True), CategoricalAccuracy); fit on (images, one-hot
masks) through the preprocessor, as the test's `task.fit(input_data, label_data)` does.
Changed:
- the test's data (`np.ones((2, 32, 32, 3))` images and all-ones (2, 32, 32, 4) "masks") ->
  64 synthetic 32x32x3 images in [0, 1] (the preprocessor has no converter, so the encoder takes
  pixels as given; the test's are ones) and one-hot masks of 4 classes on a 4x4 grid of 8x8
  cells, each class drawn in the image with its own colour (so the mask can be learnt from the
  image; the decoder works at stride 4 and upsamples, so cells of 8x8 can be fitted);
  `fit` -> 8 steps of 8;
- saved with `task.save(out/model.keras)`; data.npz holds x (the images, which the
  preprocessor passes unchanged) and y (the one-hot masks).
"""
import os

import numpy as np
import keras
import keras_hub

COLOURS = np.array([[0.1, 0.1, 0.1], [0.8, 0.2, 0.2], [0.2, 0.8, 0.2], [0.2, 0.2, 0.8]], dtype="float32")


def make_task():
    image_encoder = keras_hub.models.MiTBackbone(
        layerwise_depths=[2, 2],
        image_shape=(32, 32, 3),
        hidden_dims=[32, 64],
        num_layers=2,
        layerwise_num_heads=[1, 2],
        layerwise_sr_ratios=[8, 4],
        max_drop_path_rate=0.1,
        layerwise_patch_sizes=[7, 3],
        layerwise_strides=[4, 2],
    )
    projection_filters = 256
    preprocessor = keras_hub.models.SegFormerImageSegmenterPreprocessor()
    backbone = keras_hub.models.SegFormerBackbone(image_encoder=image_encoder, projection_filters=projection_filters)
    return keras_hub.models.SegFormerImageSegmenter(backbone=backbone, num_classes=4, preprocessor=preprocessor)


def images_and_masks(rng, n):
    import lib

    classes = np.repeat(np.repeat(rng.integers(0, 4, size=(n, 4, 4)), 8, axis=1), 8, axis=2)
    images = 0.3 * lib.pixels(rng, n, (32, 32, 3), 0.0, 1.0, smooth=4) + 0.7 * COLOURS[classes]
    masks = np.eye(4, dtype="float32")[classes]
    return images.astype("float32"), masks


def build(out):
    import lib

    rng = lib.setup()
    images, masks = images_and_masks(rng, 64)
    task = make_task()
    lib.fit_steps(task, images, masks, steps=8, batch_size=8)
    task.save(os.path.join(out, "model.keras"))
    lib.save_data(out, x=images, y=masks)
