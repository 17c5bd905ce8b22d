"""RetinaNet object detector (KerasHub keras_hub/src/models/retinanet/retinanet_object_detector_test.py), a KerasHub detection task: ResNet + FPN, two outputs, a compute_loss that encodes boxes and labels against anchors.

Upstream: https://github.com/keras-team/keras-hub/blob/71453d08f59edc90d276e999319fc51e61cbf82c/keras_hub/src/models/retinanet/retinanet_object_detector_test.py
(KerasHub master of 2026-08-21; keras-hub 0.32.0 installed; Apache-2.0).

Kept as written: the test's setUp: the ResNet image encoder (input_conv_filters=[64],
input_conv_kernel_sizes=[7], stackwise_num_filters=[64, 64, 64], stackwise_num_blocks=[2, 2, 2],
stackwise_num_strides=[1, 2, 2], image_shape=(None, None, 3), block_type="bottleneck_block",
use_pre_activation=False), `RetinaNetBackbone(min_level=3, max_level=4, use_p5=False)`,
`AnchorGenerator(bounding_box_format="yxyx", min_level=3, max_level=4, num_scales=3,
aspect_ratios=[0.5, 1.0, 2.0], anchor_size=4)`, `RetinaNetLabelEncoder(bounding_box_format="yxyx")`,
`RetinaNetImageConverter(bounding_box_format="yxyx", scale=1 / 255.0)` in a
`RetinaNetObjectDetectorPreprocessor`, `RetinaNetObjectDetector(num_classes=10,
bounding_box_format="yxyx")` with its default heads, and KerasHub's default compile, which the
task runs in its constructor (`ObjectDetector.compile()`: Adam(5e-5), Huber(reduction="sum") on
"bbox_regression", BinaryFocalCrossentropy(from_logits=True, reduction="sum") on "cls_logits");
training on raw 0..255 images and {"boxes", "labels"} through the preprocessor, as the test's
`task.fit(images, labels)` does (the task's compute_loss encodes them against the anchors).
Changed:
- image_size (512, 512) -> (128, 128) in the image converter, for CPU time (the heads keep
  their 256 filters and 4 conv layers);
- the test's one random image and its two boxes (one of them with y1 > y2) -> 32 synthetic
  160x160 images in 0..255 with 1 to 3 brighter rectangles, their yxyx boxes in pixels and
  labels in [0, 10), padded to 3 boxes per image with label -1 (Keras's padding for dense
  bounding boxes); the converter resizes images and boxes to 128x128; `fit` -> 8 steps of 4;
- saved with `task.save(out/model.keras)`;
- data.npz holds what the saved model's input takes, the preprocessor's images (x, scaled to
  [0, 1] and resized to 128x128), and what the task's loss takes, the boxes and labels after
  the preprocessor (y_boxes, y_labels: the keys of the dict fit() passes to compute_loss; the
  model's outputs are named bbox_regression and cls_logits, so kerascheck has to know that
  this task's y is not per output).
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
    "image_shape": (None, None, 3),
    "block_type": "bottleneck_block",
    "use_pre_activation": False,
}
SIZE = 160  # the synthetic images; the converter resizes them to 128x128


def make_task():
    image_encoder = keras_hub.models.ResNetBackbone(**RESNET_KWARGS)
    feature_extractor = keras_hub.models.RetinaNetBackbone(
        image_encoder=image_encoder, min_level=3, max_level=4, use_p5=False
    )
    anchor_generator = keras_hub.layers.AnchorGenerator(
        bounding_box_format="yxyx",
        min_level=3,
        max_level=4,
        num_scales=3,
        aspect_ratios=[0.5, 1.0, 2.0],
        anchor_size=4,
    )
    from keras_hub.src.models.retinanet.retinanet_label_encoder import RetinaNetLabelEncoder

    label_encoder = RetinaNetLabelEncoder(bounding_box_format="yxyx", anchor_generator=anchor_generator)
    image_converter = keras_hub.layers.RetinaNetImageConverter(
        bounding_box_format="yxyx", scale=1 / 255.0, image_size=(128, 128)  # test: (512, 512)
    )
    preprocessor = keras_hub.models.RetinaNetObjectDetectorPreprocessor(image_converter=image_converter)
    return keras_hub.models.RetinaNetObjectDetector(
        backbone=feature_extractor,
        anchor_generator=anchor_generator,
        label_encoder=label_encoder,
        num_classes=10,
        bounding_box_format="yxyx",
        preprocessor=preprocessor,
    )


def images_and_boxes(rng, n, max_boxes=3):
    import lib

    images = lib.pixels(rng, n, (SIZE, SIZE, 3), 0.0, 160.0, smooth=8)
    boxes = np.zeros((n, max_boxes, 4), dtype="float32")
    labels = -np.ones((n, max_boxes), dtype="int32")
    for i in range(n):
        for j in range(int(rng.integers(1, max_boxes + 1))):
            h, w = rng.integers(24, 80, size=2)
            y1, x1 = rng.integers(0, SIZE - h), rng.integers(0, SIZE - w)
            boxes[i, j] = [y1, x1, y1 + h, x1 + w]
            labels[i, j] = rng.integers(0, 10)
            images[i, y1:y1 + h, x1:x1 + w] += 60.0 + 9.0 * labels[i, j]
    return np.clip(images, 0.0, 255.0), {"boxes": boxes, "labels": labels}


def build(out):
    import lib

    rng = lib.setup()
    images, targets = images_and_boxes(rng, 32)
    task = make_task()
    lib.fit_steps(task, images, targets, steps=8, batch_size=4)
    task.save(os.path.join(out, "model.keras"))
    x, y = task.preprocessor(images, targets)
    lib.save_data(out, x=np.asarray(x), **{"y_" + k: np.asarray(v) for k, v in y.items()})
