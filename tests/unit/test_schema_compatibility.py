"""Every schema change must be BACKWARD compatible: the new (reader) schema reads data written with the
previous committed version. The previous version is the most recent commit whose file content differs from
the current one (so an uncommitted edit is checked against HEAD, a committed one against its predecessor)."""

from __future__ import annotations

import io
import json
import subprocess

import fastavro
import pytest

from edream.avro_samples import sample_value
from edream.avro_schemas import all_contracts, parse_avro
from edream.paths import REPO_ROOT


def _git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=REPO_ROOT, capture_output=True, text=True, check=True).stdout


def _previous_version(rel: str, current: str) -> str | None:
    for commit in _git("log", "--format=%H", "--", rel).split():
        try:
            old = _git("show", f"{commit}:{rel}")
        except subprocess.CalledProcessError:
            continue
        if json.loads(old) != json.loads(current):
            return old
    return None


def backward_compatible(old_raw: dict, new_raw: dict) -> None:
    """Raise if data written with ``old_raw`` cannot be read with ``new_raw``."""
    for seed in range(3):
        rec = sample_value(old_raw, seed=seed)
        buf = io.BytesIO()
        fastavro.schemaless_writer(buf, parse_avro(old_raw), rec)
        buf.seek(0)
        fastavro.schemaless_reader(buf, parse_avro(old_raw), parse_avro(new_raw))


def _in_git() -> bool:
    try:
        _git("rev-parse", "HEAD")
        return True
    except (subprocess.CalledProcessError, FileNotFoundError):
        return False


@pytest.mark.skipif(not _in_git(), reason="needs the git history of avro/")
@pytest.mark.parametrize("name", sorted(all_contracts()))
def test_schema_is_backward_compatible_with_previous_version(name):
    c = all_contracts()[name]
    old = _previous_version(f"avro/{c.path.name}", c.path.read_text())
    if old is None:
        return  # first version of this contract
    backward_compatible(json.loads(old), c.raw)


def test_the_check_catches_an_incompatible_change():
    old = {"type": "record", "name": "X", "fields": [{"name": "a", "type": "long"}]}
    added_without_default = {
        "type": "record",
        "name": "X",
        "fields": [{"name": "a", "type": "long"}, {"name": "b", "type": "string"}],
    }
    added_with_default = {
        "type": "record",
        "name": "X",
        "fields": [{"name": "a", "type": "long"}, {"name": "b", "type": "string", "default": ""}],
    }
    backward_compatible(old, added_with_default)
    with pytest.raises(Exception):  # noqa: B017 - fastavro's schema resolution error
        backward_compatible(old, added_without_default)
