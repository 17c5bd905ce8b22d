"""A bounded fuzz run over the reader and the static rules; bench/fuzz.py runs the long one.

The only outcomes allowed are a clean result or a one-line rejection (exit 2):
no exception escapes, no rule crashes.
"""
from hypothesis import HealthCheck, given, settings

from fuzzing import byte_mutations, check_bytes, config_mutations, hostile_mutations, weight_mutations

FUZZ = settings(max_examples=80, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@FUZZ
@given(byte_mutations())
def test_mutated_bytes(data):
    check_bytes(data, ".keras")


@FUZZ
@given(config_mutations())
def test_mutated_config(data):
    check_bytes(data, ".keras")


@FUZZ
@given(weight_mutations())
def test_mutated_weights(data):
    check_bytes(data, ".keras")


@FUZZ
@given(hostile_mutations())
def test_hostile_config_anywhere_is_flagged(data):
    """A payload anywhere in a config: an unsafe-code error (or a clean rejection), and it never runs."""
    payload, suffix = data
    outcome = check_bytes(payload, suffix, hostile=True)
    assert outcome in ("flagged", "rejected"), outcome
