"""Project configuration: `[tool.kerascheck]` in pyproject.toml or `[kerascheck]` in setup.cfg.

The nearest directory (from the working directory upwards) that has either
section wins, pyproject.toml first, as with other Python linters. Command-line
flags override it.
"""
from __future__ import annotations

import configparser
import os
from typing import Any

from kerascheck.errors import UsageError

KEYS = {"select": list, "ignore": list, "fail-on": str, "format": str, "output": str, "static": bool,
        "custom-objects": list, "budget": str, "device": str, "seed": str, "jobs": str, "timeout": str,
        "max-memory": str, "html": str, "scheduler": str, "cache": str}


def find_config(start: str | None = None) -> tuple[dict[str, Any], str | None]:
    directory = os.path.abspath(start or os.getcwd())
    while True:
        pyproject = os.path.join(directory, "pyproject.toml")
        if os.path.isfile(pyproject):
            section = _from_pyproject(pyproject)
            if section is not None:
                return _normalise(section, f"[tool.kerascheck] in {pyproject}"), pyproject
        setup_cfg = os.path.join(directory, "setup.cfg")
        if os.path.isfile(setup_cfg):
            section = _from_setup_cfg(setup_cfg)
            if section is not None:
                return _normalise(section, f"[kerascheck] in {setup_cfg}"), setup_cfg
        parent = os.path.dirname(directory)
        if parent == directory:
            return {}, None
        directory = parent


def _from_pyproject(path: str):
    import tomllib

    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise UsageError(f"cannot read {path}: {exc}") from None
    section = data.get("tool", {}).get("kerascheck")
    if section is not None and not isinstance(section, dict):
        raise UsageError(f"[tool.kerascheck] in {path} must be a table")
    return section


def _from_setup_cfg(path: str):
    parser = configparser.ConfigParser()
    try:
        parser.read(path, encoding="utf-8")
    except (OSError, configparser.Error) as exc:
        raise UsageError(f"cannot read {path}: {' '.join(str(exc).split())}") from None
    if not parser.has_section("kerascheck"):
        return None
    return dict(parser.items("kerascheck"))


def _normalise(section: dict, where: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for raw_key, value in section.items():
        key = raw_key.replace("_", "-")
        if key not in KEYS:
            raise UsageError(f"unknown key {raw_key!r} in {where} (known: {', '.join(sorted(KEYS))})")
        kind = KEYS[key]
        if kind is list:
            if isinstance(value, str):
                value = [v.strip() for v in value.replace("\n", ",").split(",") if v.strip()]
            elif not (isinstance(value, list) and all(isinstance(v, str) for v in value)):
                raise UsageError(f"{key} in {where} must be a list of rule names or codes")
        elif kind is bool:
            if isinstance(value, str):
                if value.strip().lower() not in ("true", "false", "yes", "no", "1", "0", "on", "off"):
                    raise UsageError(f"{key} in {where} must be true or false")
                value = value.strip().lower() in ("true", "yes", "1", "on")
            elif not isinstance(value, bool):
                raise UsageError(f"{key} in {where} must be true or false")
        elif not isinstance(value, str):
            raise UsageError(f"{key} in {where} must be a string")
        else:
            value = value.strip()
        out[key] = value
    return out
