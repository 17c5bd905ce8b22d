"""The safety limits every format reader shares, and the helpers that apply them.

Keras's own zip-bomb guard starts at 4 GiB, far too late for a linter that may be
pointed at anything; these limits are generous for real models and checked before
anything is allocated.
"""
from __future__ import annotations

import json
import struct
import zipfile
from typing import Any

from kerascheck.errors import InputError


# Limits. Keras's own zip-bomb guard starts at 4 GiB, far too late for a linter
# that may be pointed at anything; these are generous for real models.
MAX_JSON_BYTES = 64 << 20


MAX_JSON_DEPTH = 200


MAX_ARCHIVE_MEMBERS = 10_000


MAX_MEMBER_BYTES = 16 << 30  # declared uncompressed size of one member


MAX_COMPRESSION_RATIO = 200  # for members above 1 MiB


MAX_TENSOR_BYTES = 8 << 30


# HDF5 compression can legitimately shrink a tensor (an all-zero kernel shrinks a
# lot); beyond this ratio a declared shape is treated as a bomb.
MAX_TENSOR_EXPANSION = 1000


# What h5py, zipfile and json raise on corrupt structures they do not check themselves.
CORRUPT = (OSError, KeyError, ValueError, RuntimeError, TypeError, IndexError, AttributeError, EOFError,
            OverflowError, UnicodeError, struct.error, zipfile.BadZipFile, RecursionError)


def load_json(data: bytes, what: str) -> Any:
    if len(data) > MAX_JSON_BYTES:
        raise InputError(f"{what} is larger than {human_size(MAX_JSON_BYTES)}")
    if not data.strip():
        raise InputError(f"{what} is empty")

    def no_duplicates(pairs):
        obj = {}
        for key, value in pairs:
            if key in obj:
                raise ValueError(f"duplicate key {key!r}")
            obj[key] = value
        return obj

    try:
        text = data.decode("utf-8")
        value = json.loads(text, object_pairs_hook=no_duplicates)
    except UnicodeDecodeError:
        raise InputError(f"{what} is not UTF-8 text") from None
    except RecursionError:
        raise InputError(f"{what} nests deeper than {MAX_JSON_DEPTH} levels") from None
    except ValueError as exc:
        raise InputError(f"{what} is not valid JSON ({short_error(exc)})") from None
    if _depth(value) > MAX_JSON_DEPTH:
        raise InputError(f"{what} nests deeper than {MAX_JSON_DEPTH} levels")
    return value


def _depth(value: Any) -> int:
    """Nesting depth of dicts and lists, without recursion (scalars are not visited)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        node, d = stack.pop()
        if d > deepest:
            deepest = d
            if d > MAX_JSON_DEPTH:
                return d
        children = node.values() if isinstance(node, dict) else node
        stack.extend((v, d + 1) for v in children if isinstance(v, (dict, list)))
    return deepest if isinstance(value, (dict, list)) else 0


def human_size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if abs(n) < 1024 or unit == "PiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"


def short_error(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 160 else text[:157] + "..."

