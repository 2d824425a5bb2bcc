"""Typed, versioned files passed between phases (docs/methods.md §10).

Each JSON file that one phase writes and another reads is a frozen dataclass deriving from
:class:`JsonArtifact`: one place says what the file holds and which format version a reader
expects. The file carries ``artifact`` (its kind) and ``format_version`` beside the dataclass's
fields, so a file of another kind, of another version or with missing fields is refused with one
line that names it and says what to do, never read by key and misunderstood. Subclasses live in
the modules of the phase that writes them (``artifacts/<phase>.py``).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, ClassVar, Self

from delta_v2a.storage import StoreError, read_json, write_json


class ArtifactError(StoreError):
    """An artifact on disk is of another kind or version, or lacks fields; names the file."""


@dataclasses.dataclass(frozen=True)
class JsonArtifact:
    """Base of every typed JSON artifact: ``write`` and ``read`` with a kind and a version.

    Why frozen: an artifact read back is a record of what a finished job wrote; a reader that
    wants another value builds a new one (``dataclasses.replace``) rather than editing it.
    """

    KIND: ClassVar[str] = ""
    VERSION: ClassVar[int] = 1

    def to_json(self) -> dict[str, Any]:
        """The fields as JSON values; override where a field needs conversion."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Self:
        """Build from the file's fields; override where a field needs conversion."""
        return cls(**{f.name: data[f.name] for f in dataclasses.fields(cls) if f.name in data})

    def write(self, path: str | Path) -> None:
        write_json(path, {"artifact": self.KIND, "format_version": self.VERSION, **self.to_json()})

    @classmethod
    def read(cls, path: str | Path) -> Self:
        data = read_json(path)
        return cls.parse(data, path)

    @classmethod
    def parse(cls, data: Any, path: str | Path) -> Self:
        """Check kind, version and fields of an already-loaded document; one-line errors."""
        if not isinstance(data, dict) or data.get("artifact") != cls.KIND:
            kind = data.get("artifact") if isinstance(data, dict) else type(data).__name__
            raise ArtifactError(
                f"{path}: not a {cls.KIND} file (it holds {kind!r}); delete it and rerun"
            )
        version = data.get("format_version")
        if version != cls.VERSION:
            raise ArtifactError(
                f"{path}: {cls.KIND} format {version}, this version of delta-v2a reads format "
                f"{cls.VERSION}; delete it and rerun, or use the version that wrote it"
            )
        required = [
            f.name
            for f in dataclasses.fields(cls)
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        ]
        missing = [name for name in required if name not in data]
        if missing:
            raise ArtifactError(f"{path}: {cls.KIND} lacks {missing}; delete it and rerun")
        try:
            return cls.from_json(data)
        except (TypeError, ValueError, KeyError) as err:
            raise ArtifactError(
                f"{path}: {cls.KIND} is malformed ({err}); delete it and rerun"
            ) from err
