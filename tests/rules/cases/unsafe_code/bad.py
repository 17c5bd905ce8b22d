import os

import keras
from keras import layers

from helpers import Expect, bad, layer_config, rewrite_archive


@keras.saving.register_keras_serializable(package="kctests")
class Scale(layers.Layer):
    def __init__(self, factor=2.0, **kwargs):
        super().__init__(**kwargs)
        self.factor = factor
        self.inner = layers.Dense(4)

    def call(self, x):
        return self.inner(x) * self.factor

    def get_config(self):
        return {**super().get_config(), "factor": self.factor}


def _base():
    inp = keras.Input((4,), name="x")
    m = keras.Model(inp, layers.Dense(2, name="dense")(inp))
    m.compile(optimizer="adam", loss="mse")
    return m


def _crafted(tmp, name, edit=None, extra=None):
    src = os.path.join(str(tmp), f"{name}_src.keras")
    _base().save(src)
    return rewrite_archive(src, os.path.join(str(tmp), f"{name}.keras"), config=edit, extra=extra)


def lambda_layer(tmp, fmt):
    inp = keras.Input((4,))
    m = keras.Model(inp, layers.Dense(1)(layers.Lambda(lambda t: t * 3.0, name="triple")(inp)))
    m.compile(optimizer="adam", loss="mse")
    return m


def custom_class(tmp, fmt):
    inp = keras.Input((4,))
    m = keras.Model(inp, Scale(name="scale")(inp))
    m.compile(optimizer="adam", loss="mse")
    return m


def os_system_activation(tmp, fmt):
    def edit(cfg):
        layer_config(cfg, "dense")["config"]["activation"] = {
            "module": "os", "class_name": "function", "config": "system", "registered_name": "function"}
    return _crafted(tmp, "os_system", edit)


def tfsm_layer(tmp, fmt):
    def edit(cfg):
        entry = layer_config(cfg, "dense")
        entry["class_name"] = "TFSMLayer"
        entry["config"] = {"name": "dense", "filepath": "/tmp/attacker_saved_model", "call_endpoint": "serve"}
    return _crafted(tmp, "tfsm", edit)


def lookup_vocabulary_path(tmp, fmt):
    def edit(cfg):
        entry = layer_config(cfg, "dense")
        entry["class_name"] = "StringLookup"
        entry["config"] = {"name": "dense", "vocabulary": "/etc/passwd"}
    return _crafted(tmp, "lookup", edit)


def unexpected_member(tmp, fmt):
    return _crafted(tmp, "extra_member", extra={"payload.py": b"open('/tmp/kc-marker', 'w')\n"})


CASES = [
    bad("lambda_layer", lambda_layer,
        Expect("triple", "error", r"Lambda layer 'triple' carries \d+ bytes of marshalled Python bytecode",
               {"bytecode_bytes": (50, 5000)}),
        formats=("keras", "h5")),
    bad("custom_class", custom_class,
        Expect("scale", "info", r"custom class 'Scale' \(module 'kc_case_\d+', registered as 'kctests>Scale'\)")),
    bad("os_system_activation", os_system_activation,
        Expect("dense", "error", r"names os\.system.*CVE-2025-1550", {"module": "os", "name": "system"})),
    bad("tfsm_layer", tfsm_layer,
        Expect("dense", "error", r"TFSMLayer.*attacker_saved_model.*CVE-2026-1462")),
    bad("lookup_vocabulary_path", lookup_vocabulary_path,
        Expect("dense", "warning", r"reads its vocabulary from '/etc/passwd'.*CVE-2025-12058")),
    bad("unexpected_member", unexpected_member,
        Expect(None, "warning", r"unexpected archive member 'payload\.py'")),
]
