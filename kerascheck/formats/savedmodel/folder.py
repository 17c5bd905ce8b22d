"""What is in a SavedModel folder, checked before TensorFlow opens any of it.

TensorFlow's own loader trusts the folder: it follows symbolic links, opens
whatever `variables/` names and would block forever on a FIFO. Here every entry is
listed once (links are not followed while listing), each file is checked to be a
regular file inside the folder and of a size the limits allow, and only then are
paths handed to TensorFlow's protobuf parser and checkpoint reader.
"""
from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass, field

from kerascheck.errors import InputError
from kerascheck.formats.limits import MAX_ARCHIVE_MEMBERS, MAX_JSON_BYTES, human_size

MAX_GRAPH_BYTES = 1 << 30  # saved_model.pb; protobuf itself stops at 2 GiB
MAX_METADATA_BYTES = MAX_JSON_BYTES  # keras_metadata.pb holds JSON configs
MAX_INDEX_BYTES = 256 << 20  # variables.index: names, shapes and offsets only
MAX_DATA_BYTES = 64 << 30  # all variables.data-* shards together
MAX_SHARDS = 4096
MAX_FOLDER_DEPTH = 32

# Files TensorFlow (and tf.keras, and TensorFlow Serving's warm-up) write in a SavedModel.
KNOWN_FILES = {"saved_model.pb", "fingerprint.pb", "keras_metadata.pb", "debug/saved_model_debug_info.pb",
               "variables/variables.index"}
_SHARD = re.compile(r"variables/variables\.data-(\d{5})-of-(\d{5})")


@dataclass
class Entry:
    rel: str  # path inside the folder, with '/'
    size: int
    kind: str  # "file" or "dir"


@dataclass
class Inventory:
    root: str
    files: dict = field(default_factory=dict)  # rel -> Entry (regular files only)
    dirs: set = field(default_factory=set)
    shards: list = field(default_factory=list)  # rel paths of variables.data-*, in shard order
    data_bytes: int = 0

    def path(self, rel: str) -> str:
        return os.path.join(self.root, *rel.split("/"))

    def has(self, rel: str) -> bool:
        return rel in self.files

    def unexpected(self) -> list[str]:
        """Files TensorFlow does not write (assets/ and assets.extra/ hold the model's own files)."""
        return [rel for rel in sorted(self.files) if rel not in KNOWN_FILES and not _SHARD.fullmatch(rel)
                and not rel.startswith(("assets/", "assets.extra/"))]


def is_savedmodel(path: str) -> bool:
    return os.path.isdir(path) and os.path.lexists(os.path.join(path, "saved_model.pb"))


def inventory(root: str) -> Inventory:
    """Every file below `root`, checked: regular files inside the folder, sizes within the limits."""
    real_root = os.path.realpath(root)
    inv = Inventory(root=root)
    stack = [("", 0)]
    count = 0
    while stack:
        rel_dir, depth = stack.pop()
        if depth > MAX_FOLDER_DEPTH:
            raise InputError(f"nests folders deeper than {MAX_FOLDER_DEPTH} levels ({rel_dir}/...)")
        try:
            with os.scandir(inv.path(rel_dir) if rel_dir else root) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError as exc:
            raise InputError(f"folder {rel_dir or '.'} cannot be listed: {exc.strerror or exc}") from None
        for entry in entries:
            count += 1
            if count > MAX_ARCHIVE_MEMBERS:
                raise InputError(f"holds more than {MAX_ARCHIVE_MEMBERS} files and folders, above the limit")
            rel = f"{rel_dir}/{entry.name}" if rel_dir else entry.name
            st = _checked_stat(entry.path, rel, real_root)
            if stat.S_ISDIR(st.st_mode):
                if entry.is_symlink():
                    # A linked folder would be listed again from elsewhere (or forever, in a loop).
                    raise InputError(f"{rel} is a symbolic link to a folder, which kerascheck does not follow")
                inv.dirs.add(rel)
                stack.append((rel, depth + 1))
            else:
                inv.files[rel] = Entry(rel, st.st_size, "file")
    _check_variables(inv)
    return inv


def _checked_stat(path: str, rel: str, real_root: str) -> os.stat_result:
    try:
        st = os.stat(path)  # follows a link: what TensorFlow would open
    except OSError as exc:
        if os.path.islink(path):
            raise InputError(f"{rel} is a symbolic link to {os.readlink(path)!r}, which does not exist") from None
        raise InputError(f"{rel} cannot be read: {exc.strerror or exc}") from None
    if os.path.islink(path):
        target = os.path.realpath(path)
        if os.path.commonpath([target, real_root]) != real_root:
            raise InputError(f"{rel} is a symbolic link to {target}, outside the SavedModel folder; "
                             "kerascheck reads nothing outside the folder it was given")
    if not (stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode)):
        # A FIFO or device would block or stream forever once TensorFlow opens it.
        raise InputError(f"{rel} is not a regular file (a FIFO, socket or device), which kerascheck does not open")
    return st


def _check_variables(inv: Inventory) -> None:
    shards: dict[int, str] = {}
    totals = set()
    for rel, entry in inv.files.items():
        m = _SHARD.fullmatch(rel)
        if m:
            index, total = int(m.group(1)), int(m.group(2))
            if total == 0 or index >= total or total > MAX_SHARDS:
                raise InputError(f"{rel} is not a valid checkpoint shard name (shard {index} of {total})")
            shards[index] = rel
            totals.add(total)
            inv.data_bytes += entry.size
    if len(totals) > 1:
        raise InputError(f"variables/ mixes checkpoint shards of {sorted(totals)} parts")
    if totals:
        total = totals.pop()
        missing = [i for i in range(total) if i not in shards]
        if missing:
            raise InputError(f"variables/variables.data-{missing[0]:05d}-of-{total:05d} is missing "
                             f"({len(missing)} of {total} checkpoint shards; truncated copy?)")
        inv.shards = [shards[i] for i in range(total)]
    if inv.data_bytes > MAX_DATA_BYTES:
        raise InputError(f"variables/ holds {human_size(inv.data_bytes)}, above the limit of {human_size(MAX_DATA_BYTES)}")
    index = inv.files.get("variables/variables.index")
    if index is not None and index.size > MAX_INDEX_BYTES:
        raise InputError(f"variables/variables.index is {human_size(index.size)}, above the limit of "
                         f"{human_size(MAX_INDEX_BYTES)}")


def read_bytes(inv: Inventory, rel: str, limit: int) -> bytes:
    entry = inv.files.get(rel)
    if entry is None:
        raise InputError(f"has no {rel}")
    if entry.size > limit:
        raise InputError(f"{rel} is {human_size(entry.size)}, above the limit of {human_size(limit)}")
    try:
        with open(inv.path(rel), "rb") as fh:
            data = fh.read(limit + 1)  # the size may have changed since it was listed
    except OSError as exc:
        raise InputError(f"{rel} cannot be read: {exc.strerror or exc}") from None
    if len(data) > limit:
        raise InputError(f"{rel} grew beyond {human_size(limit)} while being read")
    if not data:
        raise InputError(f"{rel} is empty (0 bytes)")
    return data
