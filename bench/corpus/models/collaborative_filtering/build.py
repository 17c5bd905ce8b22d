"""Collaborative filtering on MovieLens (keras-io examples/structured_data/collaborative_filtering_movielens.py), a RecommenderNet subclass of user and movie embeddings whose tensordot sums over the batch.

Upstream: https://github.com/keras-team/keras-io/blob/ac7f64cb542cb0c76245ba77a55fe447dc562d01/examples/structured_data/collaborative_filtering_movielens.py
(keras-io master of 2024-01-10, the Keras 3 version; Apache-2.0, author Siddhartha Banerjee).

Kept as written: RecommenderNet (he_normal user/movie embeddings of size 50 with l2(1e-6),
per-user and per-movie bias embeddings, `ops.tensordot(user_vector, movie_vector, 2)`,
sigmoid of the sum), the sizes of ml-latest-small (610 users, 9,724 movies),
`compile(loss=keras.losses.BinaryCrossentropy(), optimizer=keras.optimizers.Adam(learning_rate=0.001))`,
and the data as fit() receives it: x of shape (N, 2) int64 = (encoded user, encoded movie),
y = rating normalised by (r - 0.5) / (5.0 - 0.5) into [0, 1], float64 as pandas leaves it.
Note (as written, not changed): `ops.tensordot(a, b, 2)` on two (batch, 50) tensors
contracts BOTH axes, so `dot_user_movie` is one scalar summed over the whole batch and
every example's score depends on the other examples in its batch.
Changed:
- ratings.csv (downloaded, read with pandas) -> 2,048 synthetic ratings: users and movies
  drawn with MovieLens-like popularity skew over the real id ranges, ratings 0.5..5.0 in
  half-stars from a user bias + movie bias + user-movie affinity (mean about 3.5);
- the example's module-level code runs inside build();
- `fit(batch_size=64, epochs=5, validation_data=...)` -> 8 steps of 64 (no validation);
- the example does not save, and as written it cannot: `model.save()` raises Keras 3.15's
  NotImplementedError ("Object RecommenderNet was created by passing non-serializable
  argument values in `__init__()`, and therefore the object must override `get_config()` in
  order to be serializable. Please implement `get_config()`."): its arguments are plain
  ints, but `keras.Model.__new__` calls `Operation.__new__(cls)` without the constructor
  arguments, so Keras records no automatic config for Model subclasses. No as-written file
  can exist. The saved class, SavableRecommenderNet, is the example's RecommenderNet plus
  the get_config that Keras asks for (the default from_config then rebuilds it), nothing
  else; it is saved as `model.keras`;
- data.npz holds the first 256 training pairs and normalised ratings.
"""
import numpy as np

import keras
from keras import layers
from keras import ops

EMBEDDING_SIZE = 50


class RecommenderNet(keras.Model):
    def __init__(self, num_users, num_movies, embedding_size, **kwargs):
        super().__init__(**kwargs)
        self.num_users = num_users
        self.num_movies = num_movies
        self.embedding_size = embedding_size
        self.user_embedding = layers.Embedding(
            num_users,
            embedding_size,
            embeddings_initializer="he_normal",
            embeddings_regularizer=keras.regularizers.l2(1e-6),
        )
        self.user_bias = layers.Embedding(num_users, 1)
        self.movie_embedding = layers.Embedding(
            num_movies,
            embedding_size,
            embeddings_initializer="he_normal",
            embeddings_regularizer=keras.regularizers.l2(1e-6),
        )
        self.movie_bias = layers.Embedding(num_movies, 1)

    def call(self, inputs):
        user_vector = self.user_embedding(inputs[:, 0])
        user_bias = self.user_bias(inputs[:, 0])
        movie_vector = self.movie_embedding(inputs[:, 1])
        movie_bias = self.movie_bias(inputs[:, 1])
        dot_user_movie = ops.tensordot(user_vector, movie_vector, 2)
        # Add all the components (including bias)
        x = dot_user_movie + user_bias + movie_bias
        # The sigmoid activation forces the rating to between 0 and 1
        return ops.nn.sigmoid(x)


class SavableRecommenderNet(RecommenderNet):
    """The example's RecommenderNet plus the get_config Keras needs to rebuild it from a file (not in the example)."""

    def get_config(self):
        return {**super().get_config(), "num_users": self.num_users, "num_movies": self.num_movies,
                "embedding_size": self.embedding_size}


def synthetic_ratings(rng, n, num_users, num_movies):
    """(user, movie) index pairs with popularity skew and half-star ratings 0.5..5.0."""
    user_pop = 1.0 / np.arange(1, num_users + 1) ** 0.6
    movie_pop = 1.0 / np.arange(1, num_movies + 1) ** 0.9
    users = rng.choice(num_users, size=n, p=user_pop / user_pop.sum())
    movies = rng.choice(num_movies, size=n, p=movie_pop / movie_pop.sum())
    user_taste = rng.standard_normal((num_users, 4))
    movie_kind = rng.standard_normal((num_movies, 4))
    user_bias = rng.normal(0.0, 0.4, num_users)
    movie_bias = rng.normal(0.0, 0.5, num_movies)
    raw = 3.5 + user_bias[users] + movie_bias[movies] + 0.3 * np.sum(user_taste[users] * movie_kind[movies], 1)
    rating = np.clip(np.round(raw * 2) / 2, 0.5, 5.0).astype(np.float32)
    x = np.stack([users, movies], axis=1).astype("int64")
    return x, rating


def build(out):
    import os

    import lib

    rng = lib.setup()
    num_users, num_movies = 610, 9724  # ml-latest-small
    x, rating = synthetic_ratings(rng, 2048, num_users, num_movies)
    min_rating, max_rating = 0.5, 5.0
    # Normalize the targets between 0 and 1 (pandas .apply leaves them float64).
    y = ((rating - min_rating) / (max_rating - min_rating)).astype("float64")

    model = SavableRecommenderNet(num_users, num_movies, EMBEDDING_SIZE)
    model.compile(
        loss=keras.losses.BinaryCrossentropy(),
        optimizer=keras.optimizers.Adam(learning_rate=0.001),
    )
    model.fit(x=x[:512], y=y[:512], batch_size=64, epochs=1, verbose=0)
    model.save(os.path.join(out, "model.keras"))
    lib.save_data(out, x=x[:256], y=y[:256])
