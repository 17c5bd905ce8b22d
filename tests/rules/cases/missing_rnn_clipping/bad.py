import keras
from keras import layers

from helpers import Expect, bad


def lstm_adam(tmp, fmt):
    m = keras.Sequential([keras.Input((10, 4)), layers.LSTM(8, name="lstm"), layers.Dense(1)])
    m.compile(optimizer=keras.optimizers.Adam(1e-3), loss="mse")
    return m


def bidirectional_gru_in_nested_model(tmp, fmt):
    inner_in = keras.Input((10, 4))
    inner = keras.Model(inner_in, layers.Bidirectional(layers.GRU(4), name="bidi")(inner_in), name="encoder")
    outer_in = keras.Input((10, 4))
    m = keras.Model(outer_in, layers.Dense(1)(inner(outer_in)))
    m.compile(optimizer=keras.optimizers.SGD(0.01), loss="mse")
    return m


def rnn_with_cell_in_time_distributed(tmp, fmt):
    inp = keras.Input((3, 5, 2))
    x = layers.TimeDistributed(layers.RNN(layers.SimpleRNNCell(4)), name="td")(inp)
    m = keras.Model(inp, layers.Dense(1)(layers.Flatten()(x)))
    m.compile(optimizer="rmsprop", loss="mse")
    return m


def lstm_adam_high_rate(tmp, fmt):
    m = keras.Sequential([keras.Input((10, 4)), layers.LSTM(8, name="lstm"), layers.Dense(1)])
    m.compile(optimizer=keras.optimizers.Adam(1e-2), loss="mse")
    return m


def uncompiled_lstm(tmp, fmt):
    return keras.Sequential([keras.Input((10, 4)), layers.LSTM(8, name="lstm"), layers.Dense(1)])


def gan_lstm_with_its_own_optimizers(tmp, fmt):
    from held_optimizers import held_gan

    return held_gan(recurrent=True)


CASES = [
    # Probes that saw no spike at an ordinary rate: a precaution (info), and it says so.
    bad("lstm_adam", lstm_adam,
        Expect("lstm", "info", r"LSTM layer 'lstm' is trained by Adam without gradient clipping: .* are all "
                               r"unset\. The probes saw no gradient spike in 100 steps on synthetic data",
               {"recurrent_class": "LSTM", "optimizer": "Adam", "spike_share": 0.0}),
        formats=("keras", "h5")),
    bad("lstm_adam_high_rate", lstm_adam_high_rate,
        Expect("lstm", "warning", r"LSTM layer 'lstm' is trained by Adam without gradient clipping: .*The rate 0\.01 "
                                  r"is high for Adam \(above 0\.003\)", {"rate_high": True})),
    bad("bidirectional_gru_in_nested_model", bidirectional_gru_in_nested_model,
        Expect("encoder/bidi", "info", r"Bidirectional layer 'encoder/bidi' \(wrapping GRU .*SGD",
               {"recurrent_class": "GRU"}),
        formats=("keras", "h5")),
    bad("rnn_with_cell_in_time_distributed", rnn_with_cell_in_time_distributed,
        Expect("td", "info", r"TimeDistributed layer 'td' \(wrapping RNN .*RMSprop")),
    bad("uncompiled_lstm", uncompiled_lstm,
        Expect("lstm", "info", r"no saved optimizer", {"optimizer": None})),
    # The compiled RMSprop never stepped; Keras keeps no settings of the two Adams that did.
    bad("gan_lstm_with_its_own_optimizers", gan_lstm_with_its_own_optimizers,
        skipped=r"the optimizers that trained this model \(d_optimizer, g_optimizer\) are held by the model"),
]
