"""DeepLabV3 image segmenter (KerasHub keras_hub/src/models/deeplab_v3/deeplab_v3_segmenter_test.py), a KerasHub segmentation task: ResNet encoder, atrous spatial pyramid pooling, softmax per pixel, masks resized by the preprocessor.

Upstream: https://github.com/keras-team/keras-hub/blob/71453d08f59edc90d276e999319fc51e61cbf82c/keras_hub/src/models/deeplab_v3/deeplab_v3_segmenter_test.py
(KerasHub master of 2026-08-21; keras-hub 0.32.0 installed; Apache-2.0).

Kept as written: the test's setUp: the ResNet image encoder (input_conv_filters=[64],
input_conv_kernel_sizes=[7], stackwise_num_filters=[64, 64, 64], stackwise_num_blocks=[2, 2, 2],
stackwise_num_strides=[1, 2, 2], block_type="basic_block", use_pre_activation=False),
`DeepLabV3Backbone(low_level_feature_key="P2", spatial_pyramid_pooling_key="P4",
dilation_rates=[6, 12, 18], upsampling_size=4)`, `DeepLabV3ImageConverter(image_size=(16, 16))`
in a `DeepLabV3ImageSegmenterPreprocessor(resize_output_mask=True)`,
`DeepLabV3ImageSegmenter(num_classes=2, activation="softmax")` and KerasHub's default compile,
which the task runs in its constructor (`ImageSegmenter.compile()`: Adam(5e-5),
CategoricalCrossentropy, CategoricalAccuracy); training on 96x96 images and one-hot 96x96x2
masks through the preprocessor (resized to 16x16, masks by nearest neighbour), as the test's
`task.fit(images, labels)` does.
Changed:
- the test's images (`np.ones((2, 96, 96, 3))`) and all-zero masks -> 64 synthetic 96x96x3
  images in [0, 1] (the converter has no scale, so the backbone takes pixels as given; the
  test's are ones) with smooth structure, and one-hot masks of 2 classes: class 1 on random
  cells of a 4x4 grid, drawn brighter in the image (so the mask can be learnt from the image;
  a 4x4 grid because with 16x16 inputs the decoder works at 4x4 (P2) and upsamples by 4, so
  finer masks could not be fitted); `fit` -> 8 steps of 8;
- saved with `task.save(out/model.keras)`;
- data.npz holds what the saved model's input takes and what its loss takes, the
  preprocessor's output for those pairs: x the images resized to 16x16, y the one-hot masks
  resized to 16x16x2.
"""
import os

import numpy as np
import keras
import keras_hub

RESNET_KWARGS = {
    "input_conv_filters": [64],
    "input_conv_kernel_sizes": [7],
    "stackwise_num_filters": [64, 64, 64],
    "stackwise_num_blocks": [2, 2, 2],
    "stackwise_num_strides": [1, 2, 2],
    "block_type": "basic_block",
    "use_pre_activation": False,
}


def make_task():
    image_encoder = keras_hub.models.ResNetBackbone(**RESNET_KWARGS)
    deeplab_backbone = keras_hub.models.DeepLabV3Backbone(
        image_encoder=image_encoder,
        low_level_feature_key="P2",
        spatial_pyramid_pooling_key="P4",
        dilation_rates=[6, 12, 18],
        upsampling_size=4,
    )
    image_converter = keras_hub.layers.DeepLabV3ImageConverter(image_size=(16, 16))
    preprocessor = keras_hub.models.DeepLabV3ImageSegmenterPreprocessor(
        image_converter=image_converter,
        resize_output_mask=True,
    )
    return keras_hub.models.DeepLabV3ImageSegmenter(
        backbone=deeplab_backbone, num_classes=2, activation="softmax", preprocessor=preprocessor
    )


def images_and_masks(rng, n):
    """Images in [0, 1] with blob-like class-1 regions (brighter) on a 4x4 grid, and their one-hot masks."""
    import lib

    coarse = rng.uniform(size=(n, 4, 4)) > 0.5
    region = np.repeat(np.repeat(coarse, 24, axis=1), 24, axis=2)
    images = 0.6 * lib.pixels(rng, n, (96, 96, 3), 0.0, 1.0, smooth=8) + 0.4 * region[..., None]
    masks = np.stack([~region, region], axis=-1).astype("float32")
    return images.astype("float32"), masks


def build(out):
    import lib

    rng = lib.setup()
    images, masks = images_and_masks(rng, 64)
    task = make_task()
    lib.fit_steps(task, images, masks, steps=8, batch_size=8)
    task.save(os.path.join(out, "model.keras"))
    x, y = task.preprocessor(images, masks)
    lib.save_data(out, x=np.asarray(x), y=np.asarray(y))
