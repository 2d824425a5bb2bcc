"""What a discovered file is, how its name is shown, and the errors decoding raises."""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path

ROOT_KEYS = {"image": "data.images", "audio": "data.audio"}
_HASH_CHUNK = 1 << 20


@dataclass(frozen=True)
class MediaFile:
    """One discovered input file."""

    path: str  # as found (relative to cwd if root was relative), POSIX string
    category: str  # first folder under the root
    modality: str  # "image" | "audio"
    sha256: str | None = None  # the vetted bytes' hash, once in a manifest (None: not vetted)

    @property
    def shown(self) -> str:
        """The path as one line of UTF-8 text (:func:`shown_path`), for logs and TSV files."""
        return shown_path(self.path)


def shown_path(path: str) -> str:
    r"""A file-system name as one line of UTF-8 text that reads back to the exact name.

    Why: names are data (docs/methods.md §2.1). Linux allows any byte but "/" and NUL, so a name
    may hold a newline, a tab or bytes that are not UTF-8, none of which a TSV field or a log
    line can carry as they are. The name's bytes are decoded as UTF-8 with three escapes: a
    backslash as ``\\``, a control byte (tab, newline, ...) and a byte that is not UTF-8 as
    ``\xNN``. Every other character (quotes, braces, emoji, a leading dash) is itself, so most
    names are shown unchanged; :func:`path_from_shown` inverts it exactly.
    """
    raw = os.fsencode(path).replace(b"\\", b"\\\\")
    text = raw.decode("utf-8", "backslashreplace")
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


_CONTROL = re.compile("[\x00-\x1f\x7f]")
_ESCAPE = re.compile(rb"\\(\\|x[0-9a-f]{2}|)")


def path_from_shown(text: str) -> str:
    """The exact name :func:`shown_path` wrote as ``text`` (ValueError for any other text)."""

    def byte(m: re.Match[bytes]) -> bytes:
        code = m.group(1)
        if not code:
            raise ValueError(f"{text!r} is not a file name this version wrote (lone backslash)")
        return b"\\" if code == b"\\" else bytes([int(code[1:], 16)])

    if _CONTROL.search(text):
        raise ValueError(f"{text!r} holds a control character; not a name this version wrote")
    return os.fsdecode(_ESCAPE.sub(byte, text.encode("utf-8", "surrogateescape")))


class BadMediaError(ValueError):
    """A file that cannot be used, with a reason a human can act on."""

    def __init__(self, path: str | Path, reason: str) -> None:
        self.path = Path(path).as_posix() if isinstance(path, Path) else str(path)
        self.reason = reason
        super().__init__(f"{shown_path(self.path)}: {reason}")

    def __reduce__(self) -> tuple[type[BadMediaError], tuple[str, str]]:
        # Survives pickling (process pools) with both fields intact.
        return (type(self), (self.path, self.reason))


class FileChangedError(RuntimeError):
    """A file's bytes are not the ones vetted (edited, replaced or still being written).

    Not a bad file: the manifest is stale, so the job stops instead of caching an embedding of
    other bytes under the vetted file's content hash.
    """

    def __init__(self, path: str, expected: str, actual: str) -> None:
        self.path, self.expected, self.actual = path, expected, actual
        super().__init__(
            f"{shown_path(path)}: file changed while the workflow ran (vetted sha256 "
            f"{expected[:12]}…, now {actual[:12]}…); rerun the workflow once the folder is no "
            "longer being written (Snakemake re-vets changed files)"
        )

    def __reduce__(self) -> tuple[type[FileChangedError], tuple[str, str, str]]:
        return (type(self), (self.path, self.expected, self.actual))


def _checked_file(path: str | Path) -> str:
    """Return ``path`` as a string; missing files raise OSError, empty ones BadMediaError."""
    path_s = str(path)
    if os.stat(path_s).st_size == 0:
        raise BadMediaError(path_s, "empty file (0 bytes)")
    return path_s


def content_hash(path: str | Path) -> str:
    """SHA-256 hex digest of the file's bytes, streamed, for content-addressed caches."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _expect(path: str, expected: str | None, actual: str) -> str:
    if expected is not None and expected != actual:
        raise FileChangedError(path, expected, actual)
    return actual
