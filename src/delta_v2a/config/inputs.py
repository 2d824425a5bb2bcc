"""The run's inputs before any job is planned: data roots (walked once, their inventory written
at parse time), local model folders and their pinned revisions, and the prepared inventory a
benchmark plans with. Each problem is one line naming the key."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from delta_v2a.config.schema import ConfigError
from delta_v2a.constants import MODALITIES


def data_root(config: Mapping[str, Any], modality: str) -> str:
    """The configured folder of one modality's media (``data.images`` or ``data.audio``: the
    key media.ROOT_KEYS names, the one place a modality's data key is written)."""
    from delta_v2a.media import ROOT_KEYS

    return config["data"][ROOT_KEYS[modality].removeprefix("data.")]


def check_data_roots(config: Mapping[str, Any]) -> dict[str, list]:
    """Walk each data root once; a missing or empty one stops the run before any job is planned.

    Returns the discovered media per modality (the manifest rule's inputs). Why here: without
    it, a wrong ``data.images`` still plans every job with exit 0 and fails only when the
    manifest job runs.
    """
    from delta_v2a.media import MODALITY_EXTENSIONS, ROOT_KEYS, discover

    media = {}
    for modality in MODALITIES:
        key, root = ROOT_KEYS[modality], data_root(config, modality)
        path = Path(root)
        if not path.is_dir():
            what = "is not a folder" if path.exists() else "does not exist"
            raise ConfigError(
                f"{key}: data root '{root}' {what}{relative_note(root)} (set {key} in your config)"
            )
        try:
            media[modality] = discover(root, modality)
        except OSError as err:  # an unreadable folder: discover's message names it
            raise ConfigError(f"{key}: {err.strerror or err}") from None
        if not media[modality]:
            exts = ",".join(e.lstrip(".") for e in MODALITY_EXTENSIONS[modality])
            raise ConfigError(
                f"{key}: data root '{root}' is empty: no {modality} files in "
                f"{root}/<category>/**/*.{{{exts}}}"
            )
    return media


def data_inventory(config: Mapping[str, Any], modality: str, files: list) -> str:
    """The inventory text of one modality's discovered files (content hashes, cached).

    Why here: the workflow writes it at parse time, where a file the user cannot read must stop
    the run with one line naming the file, not a Snakemake traceback.
    """
    from delta_v2a.inventory import cache_path, content_hashes, media_inventory
    from delta_v2a.media import ROOT_KEYS

    root = data_root(config, modality)
    try:
        states, _ = content_hashes([f.path for f in files], cache_path(root, modality))
    except OSError as err:
        raise ConfigError(f"{ROOT_KEYS[modality]}: {err.strerror or err}") from None
    return media_inventory(files, states)


def looks_like_local_path(name: str) -> bool:
    """A hub id is "name" or "org/name"; anything else path-shaped must be a local directory."""
    return (
        os.path.isabs(name)
        or name.startswith(("./", "../", "~", ".\\"))
        or name in (".", "..")
        or name.count("/") >= 2
    )


def local_revision(directory: str | Path) -> str | None:
    """The hub commit ``hf download --local-dir`` recorded for a folder's config.json, if any
    (huggingface_hub writes ``.cache/huggingface/download/<file>.metadata``: commit, etag, time).
    """
    meta = Path(directory).expanduser() / ".cache/huggingface/download/config.json.metadata"
    try:
        lines = meta.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return None
    return (lines[0].strip() or None) if lines else None


def check_models(config: Mapping[str, Any]) -> None:
    """A model that names a local directory must exist before anything runs, and hold the
    pinned ``models.revision`` when the download recorded one."""
    for modality in MODALITIES:
        name = config["models"][modality]
        pinned = (config["models"].get("revision") or {}).get(modality)
        found = local_revision(name) if looks_like_local_path(name) else None
        if pinned and found and found != pinned:
            raise ConfigError(
                f"models.revision.{modality}: the config pins {pinned} but '{name}' holds hub "
                f"commit {found} (recorded by hf download); download the pinned revision again "
                f"or change models.revision.{modality}"
            )
        if looks_like_local_path(name) and not Path(name).expanduser().is_dir():
            hint = (
                " (`make demo` or `python -m delta_v2a.tiny_models resources/models` writes the "
                "offline test models)"
                if "tiny" in name
                else ""
            )
            raise ConfigError(
                f"models.{modality}: local model directory '{name}' does not exist"
                f"{relative_note(name)}{hint}; `delta-v2a fetch-models --configfile CONFIG` "
                "fetches it (where there is network), or give a Hugging Face id or an existing "
                "directory"
            )


def relative_note(path: str) -> str:
    """For a relative path: where it was looked for. Relative data roots and model folders are
    read from the working directory (the folder Snakemake runs in: ``--directory``, else the
    one it was started in), the same rule for both; a path from the config file's folder would
    differ between `--configfile` overlays merged from several folders."""
    if Path(path).expanduser().is_absolute():
        return ""
    return f" (relative paths are read from the working directory {Path.cwd()})"


PLAN_INVENTORY_VARIABLE = "DELTA_V2A_PLAN_INVENTORY"


def plan_inventory(modality: str) -> str | None:
    """The prepared inventory benchmarks/extraction.py plans with, else None.

    Why: planning 10^6 files must not need 10^6 media files on disk. The benchmark sets
    ``$DELTA_V2A_PLAN_INVENTORY`` to a folder of ``<modality>.inventory.tsv`` files, which
    common.smk writes in place of the walk's inventory (of data roots holding one file each).
    A workflow run never sets it.
    """
    folder = os.environ.get(PLAN_INVENTORY_VARIABLE)
    return str(Path(folder) / f"{modality}.inventory.tsv") if folder else None
