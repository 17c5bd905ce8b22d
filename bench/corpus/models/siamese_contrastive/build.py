"""Image similarity estimation using a Siamese Network with a contrastive loss (keras-io examples/vision/siamese_contrastive.py), two inputs through one shared tower, a Lambda Euclidean distance and a custom contrastive loss closure.

Upstream: https://github.com/keras-team/keras-io/blob/ac7f64cb542cb0c76245ba77a55fe447dc562d01/examples/vision/siamese_contrastive.py
(keras-io master of 2024-01-10, the Keras 3 version; Apache-2.0, author Mehdi).

Kept as written, at full size: epochs/batch_size/margin; make_pairs (label 0 for a matching pair,
1 for a non-matching one); euclidean_distance; the embedding network (BatchNormalization first:
the pixels are never divided by 255), the shared towers, the Lambda(euclidean_distance,
output_shape=(1,)) merge, BatchNormalization and the sigmoid Dense(1); the loss(margin) factory
with its contrastive_loss closure; `siamese.compile(loss=loss(margin=margin), optimizer="RMSprop",
metrics=["accuracy"])`; the data as fit() receives it: [x_train_1, x_train_2], each (n, 28, 28)
float32 pixels in [0, 255] (no channel axis: Keras adds it for the (28, 28, 1) inputs), and
float32 labels 0/1.
Changed:
- MNIST -> 128 synthetic 28x28 digits with a visible class signal, paired by make_pairs into
  256 pairs;
- the example's module-level model code is in make_siamese();
- `fit([x_train_1, x_train_2], labels_train, validation_data=..., batch_size=16, epochs=10)` ->
  8 steps of 16, no validation;
- the example does not save. Saved as written it cannot be reloaded: Keras saves the loss by the
  name of the closure loss(margin) returns, 'contrastive_loss', which no module defines, so
  keras.saving.load_model raises "TypeError: Could not locate function 'contrastive_loss'"
  (even with every name of the example in custom_objects; compile=False loads it). That file is
  `as_written.keras`. `model.keras` is the same model compiled with savable_contrastive_loss,
  a module-level function that returns the example's loss(margin=margin)(y_true, y_pred), so
  that Keras can find the loss by name; nothing else differs (the Lambda's function,
  euclidean_distance, is saved by name and found in this file);
- data.npz holds x_<input name> for the two inputs and y.
"""
import random

import numpy as np
import keras
from keras import ops

epochs = 10
batch_size = 16
margin = 1  # Margin for contrastive loss.


def make_pairs(x, y):
    """Creates a tuple containing image pairs with corresponding label.

    Arguments:
        x: List containing images, each index in this list corresponds to one image.
        y: List containing labels, each label with datatype of `int`.

    Returns:
        Tuple containing two numpy arrays as (pairs_of_samples, labels),
        where pairs_of_samples' shape is (2len(x), 2,n_features_dims) and
        labels are a binary array of shape (2len(x)).
    """

    num_classes = max(y) + 1
    digit_indices = [np.where(y == i)[0] for i in range(num_classes)]

    pairs = []
    labels = []

    for idx1 in range(len(x)):
        # add a matching example
        x1 = x[idx1]
        label1 = y[idx1]
        idx2 = random.choice(digit_indices[label1])
        x2 = x[idx2]

        pairs += [[x1, x2]]
        labels += [0]

        # add a non-matching example
        label2 = random.randint(0, num_classes - 1)
        while label2 == label1:
            label2 = random.randint(0, num_classes - 1)

        idx2 = random.choice(digit_indices[label2])
        x2 = x[idx2]

        pairs += [[x1, x2]]
        labels += [1]

    return np.array(pairs), np.array(labels).astype("float32")



def euclidean_distance(vects):
    """Find the Euclidean distance between two vectors.

    Arguments:
        vects: List containing two tensors of same length.

    Returns:
        Tensor containing euclidean distance
        (as floating point value) between vectors.
    """

    x, y = vects
    sum_square = ops.sum(ops.square(x - y), axis=1, keepdims=True)
    return ops.sqrt(ops.maximum(sum_square, keras.backend.epsilon()))


def make_siamese():
    input = keras.layers.Input((28, 28, 1))
    x = keras.layers.BatchNormalization()(input)
    x = keras.layers.Conv2D(4, (5, 5), activation="tanh")(x)
    x = keras.layers.AveragePooling2D(pool_size=(2, 2))(x)
    x = keras.layers.Conv2D(16, (5, 5), activation="tanh")(x)
    x = keras.layers.AveragePooling2D(pool_size=(2, 2))(x)
    x = keras.layers.Flatten()(x)

    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.Dense(10, activation="tanh")(x)
    embedding_network = keras.Model(input, x)

    input_1 = keras.layers.Input((28, 28, 1))
    input_2 = keras.layers.Input((28, 28, 1))

    # As mentioned above, Siamese Network share weights between
    # tower networks (sister networks). To allow this, we will use
    # same embedding network for both tower networks.
    tower_1 = embedding_network(input_1)
    tower_2 = embedding_network(input_2)

    merge_layer = keras.layers.Lambda(euclidean_distance, output_shape=(1,))(
        [tower_1, tower_2]
    )
    normal_layer = keras.layers.BatchNormalization()(merge_layer)
    output_layer = keras.layers.Dense(1, activation="sigmoid")(normal_layer)
    siamese = keras.Model(inputs=[input_1, input_2], outputs=output_layer)
    return siamese


def loss(margin=1):
    """Provides 'contrastive_loss' an enclosing scope with variable 'margin'.

    Arguments:
        margin: Integer, defines the baseline for distance for which pairs
                should be classified as dissimilar. - (default is 1).

    Returns:
        'contrastive_loss' function with data ('margin') attached.
    """

    # Contrastive loss = mean( (1-true_value) * square(prediction) +
    #                         true_value * square( max(margin-prediction, 0) ))
    def contrastive_loss(y_true, y_pred):
        """Calculates the contrastive loss.

        Arguments:
            y_true: List of labels, each label is of type float32.
            y_pred: List of predictions of same length as of y_true,
                    each label is of type float32.

        Returns:
            A tensor containing contrastive loss as floating point value.
        """

        square_pred = ops.square(y_pred)
        margin_square = ops.square(ops.maximum(margin - (y_pred), 0))
        return ops.mean((1 - y_true) * square_pred + (y_true) * margin_square)

    return contrastive_loss


"""
## Compile the model with the contrastive loss
"""


def savable_contrastive_loss(y_true, y_pred):
    """The example's loss(margin=margin) under a module-level name Keras can find when it loads the file (not in the example)."""
    return loss(margin=margin)(y_true, y_pred)


def build(out):
    import os

    import lib

    rng = lib.setup()
    x_train, y_train = lib.class_images(rng, 128, (28, 28), 10, 0.0, 255.0)
    pairs_train, labels_train = make_pairs(x_train, y_train)
    x_train_1 = pairs_train[:, 0]  # x_train_1.shape is (256, 28, 28)
    x_train_2 = pairs_train[:, 1]
    for name, contrastive in (("as_written", loss(margin=margin)), ("model", savable_contrastive_loss)):
        keras.backend.clear_session()  # the same layer names in both files
        lib.setup()
        siamese = make_siamese()
        siamese.compile(loss=contrastive, optimizer="RMSprop", metrics=["accuracy"])
        siamese.fit(
            [x_train_1, x_train_2],
            labels_train,
            batch_size=batch_size,
            epochs=1,
            steps_per_epoch=8,
            verbose=0,
        )
        siamese.save(os.path.join(out, name + ".keras"))
    names = [entry[0] for entry in siamese.get_config()["input_layers"]]  # the InputLayers' names
    lib.save_data(out, **{"x_" + names[0]: x_train_1, "x_" + names[1]: x_train_2, "y": labels_train})
