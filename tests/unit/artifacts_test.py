"""The typed-artifact base: a round trip, and one-line refusals of foreign or damaged files."""

import dataclasses
import json

import pytest

from delta_v2a.artifacts import ArtifactError, JsonArtifact
from delta_v2a.storage import StoreError


@dataclasses.dataclass(frozen=True)
class _Thing(JsonArtifact):
    KIND = "thing"
    VERSION = 2
    name: str
    values: list
    note: str = ""


def test_round_trip_keeps_every_field(tmp_path):
    path = tmp_path / "thing.json"
    _Thing("a", [1, 2.5]).write(path)
    assert json.loads(path.read_text())["format_version"] == 2
    assert _Thing.read(path) == _Thing("a", [1, 2.5], "")


@pytest.mark.parametrize(
    ("document", "words"),
    [
        ({"artifact": "other", "format_version": 2, "name": "a", "values": []}, "not a thing"),
        ({"artifact": "thing", "format_version": 1, "name": "a", "values": []}, "format 1"),
        ({"artifact": "thing", "format_version": 2, "name": "a"}, "lacks ['values']"),
        ([1, 2], "not a thing"),
    ],
)
def test_foreign_files_are_refused_by_name(tmp_path, document, words):
    path = tmp_path / "thing.json"
    path.write_text(json.dumps(document))
    with pytest.raises(ArtifactError) as err:
        _Thing.read(path)
    message = str(err.value)
    assert str(path) in message and words in message and "\n" not in message
    assert isinstance(err.value, StoreError)  # jobs already end with one line on StoreError


def test_truncated_file_is_refused_by_name(tmp_path):
    path = tmp_path / "thing.json"
    path.write_text('{"artifact": "thing", "format_')
    with pytest.raises(StoreError, match="not valid JSON"):
        _Thing.read(path)
