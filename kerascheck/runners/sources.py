"""Where models come from: local paths, or fsspec URLs (s3://, gs://, file://, memory://, ...).

A URL is listed where it lives; each model is then copied by the process that dispatches its
check into a private temporary folder, byte for byte with a size limit, and checked there like a
local file: nothing in it runs while it is copied, and reports name the URL, never the copy.
fsspec is imported only when a URL is given.
"""
from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import os
import re
import shutil
import tempfile
import time
from typing import Callable, Iterable, Iterator

from kerascheck.errors import InputError
from kerascheck.engine import ModelResult
from kerascheck.formats.limits import human_size

MODEL_SUFFIXES = (".keras", ".h5", ".hdf5")
SAVED_MODEL_MARK = "saved_model.pb"

# A copy larger than this is refused before a byte is written: no real Keras model comes near it,
# and the local readers' own limits (members, tensors) apply to what is copied.
MAX_FETCH_BYTES = 64 << 30
# Room left on the temporary disk after a copy.
FREE_MARGIN_BYTES = 1 << 30
CHUNK = 8 << 20

_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*://")


def is_url(path: str) -> bool:
    return bool(_URL.match(path))


def expand_paths(paths: Iterable[str]) -> list[str]:
    """Models to check, in a stable order: folders (local or remote) are searched recursively.

    A SavedModel folder (one with saved_model.pb) is one model: kept as one entry, not searched.
    """
    out: list[str] = []
    for path in paths:
        if is_url(path):
            out.extend(list_url(path))
        elif os.path.isdir(path) and not os.path.exists(os.path.join(path, SAVED_MODEL_MARK)):
            for root, dirs, files in os.walk(path):
                dirs.sort()
                saved = [d for d in dirs if os.path.exists(os.path.join(root, d, SAVED_MODEL_MARK))]
                out.extend(os.path.join(root, d) for d in saved)
                dirs[:] = [d for d in dirs if d not in saved and not d.startswith(".")]
                out.extend(os.path.join(root, f) for f in sorted(files) if f.lower().endswith(MODEL_SUFFIXES))
        else:
            out.append(path)
    return out


def filesystem(url: str):
    """(fsspec filesystem, path inside it) for a URL; one clear error when it cannot be opened."""
    try:
        import fsspec
    except ImportError:
        raise InputError(f"{url}: reading URLs needs fsspec (pip install fsspec, plus s3fs or gcsfs for "
                         "s3:// and gs://)") from None
    try:
        return fsspec.core.url_to_fs(url)
    except (ImportError, ValueError) as exc:
        raise InputError(f"{url}: cannot open this URL ({' '.join(str(exc).split())[:200]})") from None


def list_url(url: str) -> list[str]:
    """The models under a URL, as URLs; the URL itself when it names one file or SavedModel folder.

    A URL that cannot be listed is returned as it is: its check then fails with the reason, and
    the run goes on with the other paths.
    """
    try:
        fs, root = filesystem(url)
        if not fs.isdir(root):
            return [url]
        if fs.exists(_join(root, SAVED_MODEL_MARK)):
            return [url]
        found = sorted(fs.find(root, withdirs=False))
    except Exception:  # fsspec missing, the filesystem's own errors (no bucket, no credentials): said on the check
        return [url]
    saved = sorted({p.rsplit("/", 1)[0] for p in found if p.rsplit("/", 1)[-1] == SAVED_MODEL_MARK})
    out = []
    for path in found:
        if any(path.startswith(s + "/") for s in saved) or _hidden(path, root):
            continue
        if any(p in (".", "..") for p in path.split("/")):
            continue  # a key that would name a place outside its folder once copied
        if path.lower().endswith(MODEL_SUFFIXES):
            out.append(path)
    base = root.rstrip("/")
    rels = [p[len(base) + 1:] for p in out + saved if p.startswith(base + "/")]
    saved_rels = {p[len(base) + 1:] for p in saved}
    # The order a local folder gives (os.walk, top down): a folder's SavedModels, then its files,
    # then its subfolders by name; named under the URL as the user spelled it.
    rels.sort(key=lambda rel: _walk_order(rel, rel in saved_rels))
    return [url.rstrip("/") + "/" + rel for rel in rels]


def _walk_order(rel: str, saved: bool) -> tuple:
    *folders, name = rel.split("/")
    return tuple((1, f) for f in folders) + ((0, 0 if saved else 1, name),)


def _hidden(path: str, root: str) -> bool:
    rel = path[len(root):].strip("/") if path.startswith(root) else path
    return any(part.startswith(".") for part in rel.split("/")[:-1])


def _join(root: str, name: str) -> str:
    return root.rstrip("/") + "/" + name


def identity(url: str) -> str | None:
    """What the storage says about a model without reading it (size and modification time, a
    bucket's ETag): the cache's way to know it is unchanged; None when the storage cannot say."""
    if not is_url(url):
        try:
            if not os.path.isdir(url):
                return _stat_identity(url)
            parts = []
            for root, dirs, files in os.walk(url):
                dirs.sort()
                parts.extend(f"{os.path.relpath(os.path.join(root, f), url)}:{_stat_identity(os.path.join(root, f))}"
                             for f in sorted(files))
            return hashlib.sha256("\n".join(parts).encode()).hexdigest()
        except OSError:
            return None
    try:
        fs, path = filesystem(url)
        members = sorted(fs.find(path, withdirs=False)) if fs.isdir(path) else [path]
        parts = []
        for member in members:
            info = fs.info(member) or {}
            strong = {k: str(info[k]) for k in sorted(info) if k.lower().replace("_", "") in STRONG_FIELDS}
            if not strong:
                return None  # a name and a size alone do not vouch for the bytes
            parts.append(f"{member}:{info.get('size')}:{sorted(strong.items())}")
        return hashlib.sha256("\n".join(parts).encode()).hexdigest()
    except Exception:
        return None


# What a storage says that changes when an object's bytes do (S3, GCS, Azure, HTTP, local, memory).
STRONG_FIELDS = {"etag", "md5", "md5hash", "contentmd5", "crc32c", "generation", "versionid", "lastmodified",
                 "mtime", "updated", "created", "modified"}
# A file modified less than this long ago may be modified again within the clock's resolution
# without its time changing (git's "racy" case): its stat does not vouch for it yet.
RACY_SECONDS = 2.0


def _stat_identity(path: str) -> str:
    st = os.stat(path)
    if time.time() - st.st_mtime < RACY_SECONDS:
        raise OSError("modified too recently to be known by its stat")
    # ctime too: a tool can set a file's mtime back, never its ctime.
    return f"{st.st_size}:{st.st_mtime_ns}:{st.st_ctime_ns}:{st.st_ino}:{st.st_dev}"


@contextlib.contextmanager
def local_copy(url: str) -> Iterator[tuple[str, str]]:
    """(path of a private local copy, sha256 of its bytes) for the life of the block.

    The copy sits in a fresh folder only this user can read, keeps the file's name (the format is
    told by it) and is removed afterwards. Too large for the limit or for the free disk: InputError.
    """
    fs, path = filesystem(url)
    folder = tempfile.mkdtemp(prefix="kerascheck-fetch-")  # mode 0700
    try:
        name = path.rstrip("/").rsplit("/", 1)[-1]
        if name in ("", ".", "..") or os.sep in name:
            name = "model"
        target = os.path.join(folder, name)
        try:
            if fs.isdir(path):
                digest = _copy_folder(fs, path, target, url)
            elif fs.exists(path):
                digest = _copy_file(fs, path, target, url, hashlib.sha256(), 0)[0].hexdigest()
            else:
                raise InputError("no such file or folder")
        except InputError as exc:
            raise InputError(f"cannot fetch it: {exc}") from None
        except Exception as exc:  # network, permissions, the storage's own errors
            detail = " ".join(str(exc).split())[:200]
            raise InputError(f"cannot fetch it: {type(exc).__name__}: {detail}") from None
        yield target, digest
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _copy_folder(fs, path: str, target: str, url: str) -> str:
    digest, total = hashlib.sha256(), 0
    for member in sorted(fs.find(path, withdirs=False)):
        rel = member[len(path.rstrip("/")) + 1:]
        parts = rel.split("/")
        if not rel or any(p in ("", ".", "..") or os.sep in p for p in parts):
            continue  # never written outside the copy's folder
        local = os.path.join(target, *parts)
        if not os.path.realpath(local).startswith(os.path.realpath(target) + os.sep):
            continue
        os.makedirs(os.path.dirname(local), exist_ok=True)
        digest.update(rel.encode() + b"\0")
        digest, total = _copy_file(fs, member, local, url, digest, total)
    return digest.hexdigest()


def _copy_file(fs, path: str, local: str, url: str, digest, total: int):
    size = (fs.info(path) or {}).get("size")
    if size is not None:
        _room_for(total + int(size), os.path.dirname(local))
    with fs.open(path, "rb") as src, open(local, "wb") as dst:
        while True:
            chunk = src.read(CHUNK)
            if not chunk:
                break
            total += len(chunk)
            if total > MAX_FETCH_BYTES:  # the storage said less than it sent
                raise InputError(f"larger than {human_size(MAX_FETCH_BYTES)}, the most kerascheck copies")
            digest.update(chunk)
            dst.write(chunk)
    return digest, total


def _room_for(size: int, folder: str) -> None:
    if size > MAX_FETCH_BYTES:
        raise InputError(f"it is {human_size(size)}, larger than {human_size(MAX_FETCH_BYTES)}, the most "
                         "kerascheck copies")
    free = shutil.disk_usage(folder).free
    if size > free - FREE_MARGIN_BYTES:
        raise InputError(f"it is {human_size(size)} and the temporary folder has {human_size(free)} free")


def sha256_of(path: str) -> str:
    """sha256 of a local model: the file's bytes, or a SavedModel folder's names and bytes in order
    (the same digest `local_copy` gives for the same folder fetched)."""
    if not os.path.isdir(path):
        return _digest_file(path, hashlib.sha256()).hexdigest()
    digest = hashlib.sha256()
    members = []
    for root, dirs, files in os.walk(path):
        dirs.sort()
        members.extend(os.path.join(root, f) for f in files)
    for member in sorted(members, key=lambda m: os.path.relpath(m, path).replace(os.sep, "/")):
        digest.update(os.path.relpath(member, path).replace(os.sep, "/").encode() + b"\0")
        _digest_file(member, digest)
    return digest.hexdigest()


def _digest_file(path: str, digest):
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
    return digest


def check_source(source: str, check: Callable[[str], ModelResult]) -> ModelResult:
    """`check(path)` on a local path, or on a private copy of a URL: the result then names the URL
    and carries the sha256 of the bytes checked; a copy that cannot be made is the file's error."""
    if not is_url(source):
        return check(source)
    try:
        with local_copy(source) as (local, digest):
            result = rename_result(check(local), local, source)
            result.sha256 = digest
            return result
    except InputError as exc:  # the storage's trouble, not the model's
        return ModelResult.unchecked(source, str(exc))


def rename_result(result, checked: str, shown: str):
    """The result of checking `checked` as the report shows it, under `shown` (the URL a copy came
    from, the path a cached result is reused at): its path and every text that quoted the other
    (messages, evidence such as a finding's source file, skip reasons, notes)."""
    result.path = shown
    if checked != shown:
        result.findings = [dataclasses.replace(f, message=_renamed(f.message, checked, shown),
                                               fix=_renamed(f.fix, checked, shown),
                                               evidence=_renamed(f.evidence, checked, shown))
                           for f in result.findings]
        result.errors = _renamed(result.errors, checked, shown)
        result.skipped = _renamed(result.skipped, checked, shown)
        result.notes = _renamed(result.notes, checked, shown)
    return result


def _renamed(value, old: str, new: str):
    if isinstance(value, str):
        if os.path.isabs(old) or is_url(old):
            return value.replace(old, new)
        # A relative path ("." or "m.keras") is also an ordinary piece of text: only a value that is
        # the path, or a path inside it, is renamed.
        if value == old:
            return new
        return new + value[len(old):] if value.startswith(old.rstrip("/") + "/") else value
    if isinstance(value, dict):
        return {k: _renamed(v, old, new) for k, v in value.items()}
    if isinstance(value, list):
        return [_renamed(v, old, new) for v in value]
    if isinstance(value, tuple):
        return tuple(_renamed(v, old, new) for v in value)
    return value
