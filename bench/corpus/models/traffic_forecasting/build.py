"""Traffic forecasting using graph neural networks and LSTM (keras-io examples/timeseries/timeseries_traffic_forecasting.py), GraphConv and LSTMGC custom layers (graph convolution over road stations, then an LSTM per station), RMSprop at 2e-4.

Upstream: https://github.com/keras-team/keras-io/blob/ac7f64cb542cb0c76245ba77a55fe447dc562d01/examples/timeseries/timeseries_traffic_forecasting.py
(keras-io master of 2024-01-10, the Keras 3 version; Apache-2.0, author Arash Khodadadi).

Kept as written: sample_routes (26 roads), `preprocess` (train/val split 0.5/0.2, standardised
with the training part's per-road mean and std), `create_tf_dataset` (inputs (batch, 12, 26, 1),
targets (batch, 3, 26): train_dataset uses its default multi_horizon=True), batch_size=64,
`compute_adjacency_matrix` with sigma2=0.1, epsilon=0.5, GraphInfo, GraphConv, LSTMGC (GraphConv
-> LSTM(64, activation="relu") -> Dense(3) per node), in_feat=1, out_feat=10, lstm_units=64,
input_sequence_length=12, forecast_horizon=3, graph_conv_params (mean aggregation, concat,
no activation), the model (`Input((12, 26, 1))` -> LSTMGC), `compile(optimizer=
keras.optimizers.RMSprop(learning_rate=0.0002), loss=keras.losses.MeanSquaredError())`.
Changed:
- the example's module-level code runs inside build(); pandas is not installed here (the
  example reads the two CSVs with pandas and converts them to numpy at once);
- PeMSD7 (speeds of 228 stations every 5 minutes on 44 weekdays; distances between them in
  metres) -> synthetic data of the same form for the 228 stations: stations at random along a
  few freeways in a 30 km square (distances in metres, so that the example's threshold keeps
  roughly its real number of edges among the 26 sampled roads), speeds in mph for 10 weekdays
  (2,880 rows): ~65 mph free flow with morning and evening rush-hour slowdowns that spread to
  nearby stations, and noise; then sub-sampled, split, standardised and windowed by the
  example's code;
- `fit(train_dataset, validation_data=val_dataset, epochs=20, callbacks=[EarlyStopping(
  patience=10)])` -> 8 steps of 64 training windows (no validation); data.npz holds 256 of the
  example's training windows, evenly spaced, x (256, 12, 26, 1) and y (256, 3, 26) float64;
- the example does not save, and as written it cannot: `model.save()` raises Keras's
  NotImplementedError ("Object LSTMGC was created by passing non-serializable argument values in
  `__init__()`, and therefore the object must override `get_config()` in order to be
  serializable. Please implement `get_config()`."; the GraphInfo argument), so no as-written
  file can exist. The saved layer, SavableLSTMGC, is the example's LSTMGC plus the
  get_config/from_config Keras asks for (the graph stored as its edge lists), nothing else;
  saved as `model.keras`.
"""
import os

os.environ["KERAS_BACKEND"] = "tensorflow"

import numpy as np
import typing
import tensorflow as tf
import keras
from keras import layers
from keras import ops

sample_routes = [
    0,
    1,
    4,
    7,
    8,
    11,
    15,
    108,
    109,
    114,
    115,
    118,
    120,
    123,
    124,
    126,
    127,
    129,
    130,
    132,
    133,
    136,
    139,
    144,
    147,
    216,
]

train_size, val_size = 0.5, 0.2


def preprocess(data_array: np.ndarray, train_size: float, val_size: float):
    """Splits data into train/val/test sets and normalizes the data.

    Args:
        data_array: ndarray of shape `(num_time_steps, num_routes)`
        train_size: A float value between 0.0 and 1.0 that represent the proportion of the dataset
            to include in the train split.
        val_size: A float value between 0.0 and 1.0 that represent the proportion of the dataset
            to include in the validation split.

    Returns:
        `train_array`, `val_array`, `test_array`
    """

    num_time_steps = data_array.shape[0]
    num_train, num_val = (
        int(num_time_steps * train_size),
        int(num_time_steps * val_size),
    )
    train_array = data_array[:num_train]
    mean, std = train_array.mean(axis=0), train_array.std(axis=0)

    train_array = (train_array - mean) / std
    val_array = (data_array[num_train : (num_train + num_val)] - mean) / std
    test_array = (data_array[(num_train + num_val) :] - mean) / std

    return train_array, val_array, test_array


def create_tf_dataset(
    data_array: np.ndarray,
    input_sequence_length: int,
    forecast_horizon: int,
    batch_size: int = 128,
    shuffle=True,
    multi_horizon=True,
):
    """Creates tensorflow dataset from numpy array.

    This function creates a dataset where each element is a tuple `(inputs, targets)`.
    `inputs` is a Tensor
    of shape `(batch_size, input_sequence_length, num_routes, 1)` containing
    the `input_sequence_length` past values of the timeseries for each node.
    `targets` is a Tensor of shape `(batch_size, forecast_horizon, num_routes)`
    containing the `forecast_horizon`
    future values of the timeseries for each node.

    Args:
        data_array: np.ndarray with shape `(num_time_steps, num_routes)`
        input_sequence_length: Length of the input sequence (in number of timesteps).
        forecast_horizon: If `multi_horizon=True`, the target will be the values of the timeseries for 1 to
            `forecast_horizon` timesteps ahead. If `multi_horizon=False`, the target will be the value of the
            timeseries `forecast_horizon` steps ahead (only one value).
        batch_size: Number of timeseries samples in each batch.
        shuffle: Whether to shuffle output samples, or instead draw them in chronological order.
        multi_horizon: See `forecast_horizon`.

    Returns:
        A tf.data.Dataset instance.
    """

    inputs = keras.utils.timeseries_dataset_from_array(
        np.expand_dims(data_array[:-forecast_horizon], axis=-1),
        None,
        sequence_length=input_sequence_length,
        shuffle=False,
        batch_size=batch_size,
    )

    target_offset = (
        input_sequence_length
        if multi_horizon
        else input_sequence_length + forecast_horizon - 1
    )
    target_seq_length = forecast_horizon if multi_horizon else 1
    targets = keras.utils.timeseries_dataset_from_array(
        data_array[target_offset:],
        None,
        sequence_length=target_seq_length,
        shuffle=False,
        batch_size=batch_size,
    )

    dataset = tf.data.Dataset.zip((inputs, targets))
    if shuffle:
        dataset = dataset.shuffle(100)

    return dataset.prefetch(16).cache()


def compute_adjacency_matrix(
    route_distances: np.ndarray, sigma2: float, epsilon: float
):
    """Computes the adjacency matrix from distances matrix.

    It uses the formula in https://github.com/VeritasYin/STGCN_IJCAI-18#data-preprocessing to
    compute an adjacency matrix from the distance matrix.
    The implementation follows that paper.

    Args:
        route_distances: np.ndarray of shape `(num_routes, num_routes)`. Entry `i,j` of this array is the
            distance between roads `i,j`.
        sigma2: Determines the width of the Gaussian kernel applied to the square distances matrix.
        epsilon: A threshold specifying if there is an edge between two nodes. Specifically, `A[i,j]=1`
            if `np.exp(-w2[i,j] / sigma2) >= epsilon` and `A[i,j]=0` otherwise, where `A` is the adjacency
            matrix and `w2=route_distances * route_distances`

    Returns:
        A boolean graph adjacency matrix.
    """
    num_routes = route_distances.shape[0]
    route_distances = route_distances / 10000.0
    w2, w_mask = (
        route_distances * route_distances,
        np.ones([num_routes, num_routes]) - np.identity(num_routes),
    )
    return (np.exp(-w2 / sigma2) >= epsilon) * w_mask


class GraphInfo:
    def __init__(self, edges: typing.Tuple[list, list], num_nodes: int):
        self.edges = edges
        self.num_nodes = num_nodes


class GraphConv(layers.Layer):
    def __init__(
        self,
        in_feat,
        out_feat,
        graph_info: GraphInfo,
        aggregation_type="mean",
        combination_type="concat",
        activation: typing.Optional[str] = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.in_feat = in_feat
        self.out_feat = out_feat
        self.graph_info = graph_info
        self.aggregation_type = aggregation_type
        self.combination_type = combination_type
        self.weight = self.add_weight(
            initializer=keras.initializers.GlorotUniform(),
            shape=(in_feat, out_feat),
            dtype="float32",
            trainable=True,
        )
        self.activation = layers.Activation(activation)

    def aggregate(self, neighbour_representations):
        aggregation_func = {
            "sum": tf.math.unsorted_segment_sum,
            "mean": tf.math.unsorted_segment_mean,
            "max": tf.math.unsorted_segment_max,
        }.get(self.aggregation_type)

        if aggregation_func:
            return aggregation_func(
                neighbour_representations,
                self.graph_info.edges[0],
                num_segments=self.graph_info.num_nodes,
            )

        raise ValueError(f"Invalid aggregation type: {self.aggregation_type}")

    def compute_nodes_representation(self, features):
        """Computes each node's representation.

        The nodes' representations are obtained by multiplying the features tensor with
        `self.weight`. Note that
        `self.weight` has shape `(in_feat, out_feat)`.

        Args:
            features: Tensor of shape `(num_nodes, batch_size, input_seq_len, in_feat)`

        Returns:
            A tensor of shape `(num_nodes, batch_size, input_seq_len, out_feat)`
        """
        return ops.matmul(features, self.weight)

    def compute_aggregated_messages(self, features):
        neighbour_representations = tf.gather(features, self.graph_info.edges[1])
        aggregated_messages = self.aggregate(neighbour_representations)
        return ops.matmul(aggregated_messages, self.weight)

    def update(self, nodes_representation, aggregated_messages):
        if self.combination_type == "concat":
            h = ops.concatenate([nodes_representation, aggregated_messages], axis=-1)
        elif self.combination_type == "add":
            h = nodes_representation + aggregated_messages
        else:
            raise ValueError(f"Invalid combination type: {self.combination_type}.")
        return self.activation(h)

    def call(self, features):
        """Forward pass.

        Args:
            features: tensor of shape `(num_nodes, batch_size, input_seq_len, in_feat)`

        Returns:
            A tensor of shape `(num_nodes, batch_size, input_seq_len, out_feat)`
        """
        nodes_representation = self.compute_nodes_representation(features)
        aggregated_messages = self.compute_aggregated_messages(features)
        return self.update(nodes_representation, aggregated_messages)


class LSTMGC(layers.Layer):
    """Layer comprising a convolution layer followed by LSTM and dense layers."""

    def __init__(
        self,
        in_feat,
        out_feat,
        lstm_units: int,
        input_seq_len: int,
        output_seq_len: int,
        graph_info: GraphInfo,
        graph_conv_params: typing.Optional[dict] = None,
        **kwargs,
    ):
        super().__init__(**kwargs)

        # graph conv layer
        if graph_conv_params is None:
            graph_conv_params = {
                "aggregation_type": "mean",
                "combination_type": "concat",
                "activation": None,
            }
        self.graph_conv = GraphConv(in_feat, out_feat, graph_info, **graph_conv_params)

        self.lstm = layers.LSTM(lstm_units, activation="relu")
        self.dense = layers.Dense(output_seq_len)

        self.input_seq_len, self.output_seq_len = input_seq_len, output_seq_len

    def call(self, inputs):
        """Forward pass.

        Args:
            inputs: tensor of shape `(batch_size, input_seq_len, num_nodes, in_feat)`

        Returns:
            A tensor of shape `(batch_size, output_seq_len, num_nodes)`.
        """

        # convert shape to  (num_nodes, batch_size, input_seq_len, in_feat)
        inputs = ops.transpose(inputs, [2, 0, 1, 3])

        gcn_out = self.graph_conv(
            inputs
        )  # gcn_out has shape: (num_nodes, batch_size, input_seq_len, out_feat)
        shape = ops.shape(gcn_out)
        num_nodes, batch_size, input_seq_len, out_feat = (
            shape[0],
            shape[1],
            shape[2],
            shape[3],
        )

        # LSTM takes only 3D tensors as input
        gcn_out = ops.reshape(
            gcn_out, (batch_size * num_nodes, input_seq_len, out_feat)
        )
        lstm_out = self.lstm(
            gcn_out
        )  # lstm_out has shape: (batch_size * num_nodes, lstm_units)

        dense_output = self.dense(
            lstm_out
        )  # dense_output has shape: (batch_size * num_nodes, output_seq_len)
        output = ops.reshape(dense_output, (num_nodes, batch_size, self.output_seq_len))
        return ops.transpose(
            output, [1, 2, 0]
        )  # returns Tensor of shape (batch_size, output_seq_len, num_nodes)


in_feat = 1
batch_size = 64
epochs = 20
input_sequence_length = 12
forecast_horizon = 3
multi_horizon = False
out_feat = 10
lstm_units = 64
graph_conv_params = {
    "aggregation_type": "mean",
    "combination_type": "concat",
    "activation": None,
}
sigma2 = 0.1
epsilon = 0.5


class SavableLSTMGC(LSTMGC):
    """The example's LSTMGC plus the get_config/from_config Keras needs to save it (not in the example)."""

    def __init__(self, in_feat, out_feat, lstm_units, input_seq_len, output_seq_len, graph_info,
                 graph_conv_params=None, **kwargs):
        super().__init__(in_feat, out_feat, lstm_units, input_seq_len, output_seq_len, graph_info,
                         graph_conv_params, **kwargs)
        self.init_args = dict(in_feat=in_feat, out_feat=out_feat, lstm_units=lstm_units,
                              input_seq_len=input_seq_len, output_seq_len=output_seq_len,
                              graph_conv_params=graph_conv_params)

    def get_config(self):
        return {**super().get_config(), **self.init_args,
                "graph_info": {"edges": [list(e) for e in self.graph_conv.graph_info.edges],
                               "num_nodes": self.graph_conv.graph_info.num_nodes}}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        info = config.pop("graph_info")
        return cls(graph_info=GraphInfo(edges=tuple(info["edges"]), num_nodes=info["num_nodes"]), **config)


def make_model(graph, lstmgc_class=LSTMGC):
    st_gcn = lstmgc_class(
        in_feat,
        out_feat,
        lstm_units,
        input_sequence_length,
        forecast_horizon,
        graph,
        graph_conv_params,
    )
    inputs = layers.Input((input_sequence_length, graph.num_nodes, in_feat))
    outputs = st_gcn(inputs)

    model = keras.models.Model(inputs, outputs)
    model.compile(
        optimizer=keras.optimizers.RMSprop(learning_rate=0.0002),
        loss=keras.losses.MeanSquaredError(),
    )
    return model


def build(out):
    import lib

    rng = lib.setup()

    # PeMSD7_W_228.csv and PeMSD7_V_228.csv, synthetic: 228 stations on 6 freeways; the 26 roads
    # the example samples lie close together (it picked them as neighbours of road 0).
    stations = 228
    road = rng.integers(0, 6, size=stations)
    along = rng.uniform(0, 25000, size=stations)
    sampled = np.isin(np.arange(stations), sample_routes)
    road[sampled] = rng.integers(0, 2, size=sampled.sum())
    along[sampled] = rng.uniform(0, 10000, size=sampled.sum())
    starts = np.concatenate([[[10000, 10000], [10000, 10000]], rng.uniform(0, 30000, size=(4, 2))])
    headings = rng.uniform(0, np.pi, size=6)
    xy = starts[road] + along[:, None] * np.stack([np.cos(headings[road]), np.sin(headings[road])], axis=1)
    route_distances = np.round(np.sqrt(((xy[:, None] - xy[None]) ** 2).sum(-1)))  # metres
    rows = 288 * 10
    minutes = (np.arange(rows) % 288) * 5
    rush = np.exp(-(((minutes - 8 * 60) / 50.0) ** 2)) + 0.8 * np.exp(-(((minutes - 17.5 * 60) / 60.0) ** 2))
    severity = rng.uniform(5, 30, size=stations)
    lag = (along / 25000.0 * 30).astype(int)  # the jam reaches stations further along later
    speeds_array = np.stack([65 - severity[s] * np.roll(rush, lag[s]) for s in range(stations)], axis=1)
    speeds_array += np.cumsum(rng.normal(0, 0.3, size=(rows, stations)), axis=0) % 3 + rng.normal(0, 1.5, (rows, stations))
    speeds_array = np.round(np.clip(speeds_array, 3, 80), 1)

    # The example's preprocessing.
    route_distances = route_distances[np.ix_(sample_routes, sample_routes)]
    speeds_array = speeds_array[:, sample_routes]
    train_array, val_array, test_array = preprocess(speeds_array, train_size, val_size)
    train_dataset = create_tf_dataset(train_array, input_sequence_length, forecast_horizon, batch_size,
                                      shuffle=False)
    windows = [(x.numpy(), y.numpy()) for x, y in train_dataset]
    x_all = np.concatenate([w[0] for w in windows])
    y_all = np.concatenate([w[1] for w in windows])
    pick = np.linspace(0, len(x_all) - 1, 256).astype(int)
    x_train, y_train = x_all[pick], y_all[pick]

    adjacency_matrix = compute_adjacency_matrix(route_distances, sigma2, epsilon)
    node_indices, neighbor_indices = np.where(adjacency_matrix == 1)
    graph = GraphInfo(
        edges=(node_indices.tolist(), neighbor_indices.tolist()),
        num_nodes=adjacency_matrix.shape[0],
    )
    print(f"number of nodes: {graph.num_nodes}, number of edges: {len(graph.edges[0])}")

    model = make_model(graph, SavableLSTMGC)
    lib.fit_steps(model, x_train, y_train, steps=8, batch_size=batch_size)
    model.save(os.path.join(out, "model.keras"))
    lib.save_data(out, x=x_train, y=y_train)
