"""Reading the validated workflow config: effect parameters and every start-up check that a
schema cannot express.

The JSON schema (workflow/schemas/config.schema.yaml) checks types and ranges; what a schema
cannot express (known effect names, every intensity present, monotone levels, Nyquist) is
checked here, before any job runs, with messages that name the config key.
"""

from __future__ import annotations

import contextlib
import copy
import difflib
import os
import string
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from delta_v2a.constants import SAMPLE_RATE
from delta_v2a.effects import REGISTRY, check_levels

MODALITIES = ("image", "audio")
AUDIO_RATE_FOR_CHECKS = SAMPLE_RATE  # the loader resamples every file to CLAP's rate


#: What :func:`schema_defaults` gives for a key the schema has no default for.
NO_DEFAULT = object()


class ConfigError(ValueError):
    """A config value the schema could not reject; the message names the key."""


class SharedWordWarning(UserWarning):
    """An image-side and an audio-side synonym list share a content word (docs/methods.md §5):
    sim3 then partly measures spelling, not meaning."""


def schema_defaults(schema: Mapping[str, Any]) -> Any:
    """The config the schema's ``default`` values make on their own (docs: config/README.md).

    Why here: the schema is the one owner of every default; config/config.yaml is only an
    overlay of what a user usually changes. An object's default is its own ``default`` merged
    with the defaults of its properties, so nested defaults need no repetition. A key without
    a default is absent (``NO_DEFAULT``); a ``default: null`` is a default of None.
    """
    props = schema.get("properties")
    if props is None:
        return copy.deepcopy(schema["default"]) if "default" in schema else NO_DEFAULT
    base = schema.get("default", NO_DEFAULT)
    out = copy.deepcopy(base) if isinstance(base, Mapping) else {}
    for key, sub in props.items():
        value = schema_defaults(sub)
        if value is not NO_DEFAULT:
            out[key] = merge(value, out[key]) if key in out else value
    return out if out or base is not NO_DEFAULT else NO_DEFAULT


def merge(base: Any, overlay: Any) -> Any:
    """Overlay ``overlay`` on ``base`` as Snakemake merges config files: mappings merge key by
    key, anything else (lists included) replaces."""
    if isinstance(base, Mapping) and isinstance(overlay, Mapping):
        out = dict(base)
        for key, value in overlay.items():
            out[key] = merge(base[key], value) if key in base else copy.deepcopy(value)
        return out
    return copy.deepcopy(overlay)


def with_defaults(config: Mapping[str, Any], schema: Mapping[str, Any]) -> dict[str, Any]:
    """``config`` (the merged config files) on top of the schema's defaults.

    Why not ``snakemake.utils.validate(config, schema, set_default=True)``: it sets an object's
    default only where the whole key is absent, so a config giving one nested key (say
    ``effects.image.blur.levels.low``) loses the rest of that object's defaults and is refused
    (checked with snakemake 9.27.1); here defaults merge under the config key by key.
    """
    defaults = schema_defaults(schema)
    return merge({} if defaults is NO_DEFAULT else defaults, config)


def load_config(schema_path: str | Path, *config_paths: str | Path) -> dict[str, Any]:
    """What the workflow sees for these config files (tests, benchmarks, scripts): the schema's
    defaults under the files, merged in order."""
    import yaml

    schema = yaml.safe_load(Path(schema_path).read_text(encoding="utf-8"))
    config: dict[str, Any] = {}
    for path in config_paths:
        config = merge(config, yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {})
    return with_defaults(config, schema)


def check_keys(config: Mapping[str, Any], schema: Mapping[str, Any], prefix: str = "") -> None:
    """Reject unknown keys with the closest valid one, before the schema validator runs.

    Why: Snakemake's ``validate()`` reports an unknown key by printing the whole schema and the
    whole config (hundreds of lines); a typo deserves one line and a "did you mean". Only objects
    the schema closes (``additionalProperties: false``) are checked, recursively.
    """
    props = schema.get("properties")
    if not isinstance(config, Mapping) or props is None:
        return
    if schema.get("additionalProperties", True) is False:
        for key in config:
            if key not in props:
                where = f"{prefix}{key}"
                close = difflib.get_close_matches(str(key), list(props), n=1, cutoff=0.6)
                hint = f"; did you mean '{prefix}{close[0]}'?" if close else ""
                raise ConfigError(
                    f"{where}: unknown config key{hint} (valid here: {', '.join(sorted(props))}; "
                    "see config/README.md)"
                )
    for key, sub in props.items():
        if key in config and isinstance(sub, Mapping):
            check_keys(config[key], sub, f"{prefix}{key}.")


def check_data_roots(config: Mapping[str, Any]) -> dict[str, list]:
    """Walk each data root once; a missing or empty one stops the run before any job is planned.

    Returns the discovered media per modality (the manifest rule's inputs). Why here: without
    it, a wrong ``data.images`` still plans every job with exit 0 and fails only when the
    manifest job runs.
    """
    from delta_v2a.media import MODALITY_EXTENSIONS, ROOT_KEYS, discover

    roots = {"image": config["data"]["images"], "audio": config["data"]["audio"]}
    media = {}
    for modality in MODALITIES:
        key, root = ROOT_KEYS[modality], roots[modality]
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

    root = config["data"]["images" if modality == "image" else "audio"]
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


def effect_names(config: Mapping[str, Any], modality: str) -> list[str]:
    """The effects to run: ``run_effects.<modality>`` (a list, so an overlay replaces it),
    else every effect defined under ``effects.<modality>``."""
    chosen = config.get("run_effects", {}).get(modality)
    return list(chosen) if chosen else list(config["effects"][modality])


def effect_params(
    config: Mapping[str, Any], modality: str, effect: str, intensity: str
) -> dict[str, float]:
    """Physical parameters of one variant: the effect's fixed values, then the level's."""
    spec = config["effects"][modality][effect]
    return {**spec.get("fixed", {}), **spec["levels"][intensity]}


@contextlib.contextmanager
def one_line_refusal(stream: Any = None) -> Iterator[None]:
    """Around the workflow's parse-time checks: a ConfigError ends the run with its message as
    one "Error: ..." line and exit status 1. Why: Snakemake prints an exception raised while
    the Snakefile is parsed with the Python frames it passed through; a refusal is a line a
    person reads (docs/methods.md §8), not a traceback."""
    import sys

    try:
        yield
    except ConfigError as err:
        print(f"Error: {err}", file=stream or sys.stderr)
        raise SystemExit(1) from None


def check_config_for_console(config: Mapping[str, Any], stream: Any = None) -> None:
    """:func:`check_config` as the workflow runs it: a SharedWordWarning becomes one line on
    stderr ("Warning: ..."), not Python's two (file:line and the source line); other
    warnings pass through as they were."""
    import sys

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", SharedWordWarning)
        check_config(config)
    for w in caught:
        if issubclass(w.category, SharedWordWarning):
            print(f"Warning: {w.message}", file=stream or sys.stderr)
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)


def check_config(config: Mapping[str, Any]) -> None:
    """Reject what the schema cannot: unknown effects, missing intensities, non-monotone or
    out-of-range levels. Raises ConfigError naming the key.

    Levels of intensities not listed in ``intensities`` are not run and not checked: config
    overlays merge, so a run of fewer intensities cannot delete the defaults' extra levels.
    """
    order = list(config["intensities"])
    for modality in MODALITIES:
        known = REGISTRY[modality]
        defined = config["effects"][modality]
        for name in defined:  # a typo is an error even where that effect is not run
            if name not in known:
                raise ConfigError(
                    f"effects.{modality}.{name}: unknown {modality} effect {name!r}; allowed: "
                    f"{sorted(known)}"
                )
        for name in effect_names(config, modality):
            if name not in defined:
                raise ConfigError(
                    f"run_effects.{modality}: {name!r} has no parameters under "
                    f"effects.{modality}; defined: {sorted(defined)}"
                )
        for name in effect_names(config, modality):
            spec = defined[name]
            key = f"effects.{modality}.{name}"
            levels = spec["levels"]
            missing = [i for i in order if i not in levels]
            if missing:
                raise ConfigError(
                    f"{key}.levels: no level for intensities {missing}; every effect needs one "
                    f"level per entry of 'intensities' {order}"
                )
            allowed_fixed = set(known[name].fixed_defaults)
            bad_fixed = sorted(set(spec.get("fixed", {})) - allowed_fixed)
            if bad_fixed:
                raise ConfigError(
                    f"{key}.fixed: unknown parameter(s) {bad_fixed}; allowed: "
                    f"{sorted(allowed_fixed)}"
                )
            merged = {i: {**spec.get("fixed", {}), **levels[i]} for i in order}
            try:
                check_levels(
                    modality,
                    name,
                    merged,
                    order,
                    sr=AUDIO_RATE_FOR_CHECKS if modality == "audio" else None,
                )
            except ValueError as err:
                raise ConfigError(str(err)) from err
    check_phase1(config)
    check_phase3(config)


def template_fields(template: str) -> set[str]:
    """Placeholder names in a ``str.format`` template ("A {synonym} photo" -> {"synonym"})."""
    return {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}


#: The placeholder naming an item's context in Phase 1 text templates, per modality.
ANCHOR_CONTEXT = {"image": "category", "audio": "genre"}


def check_phase1(config: Mapping[str, Any]) -> None:
    """Every configured effect needs a synonym list; templates may use only {synonym} and the
    modality's context placeholder ({category} for images, {genre} for audio)."""
    p1 = config.get("phase1", {})
    old = {"clap": "audio", "clip": "image"}.get(p1.get("text_bridge"))
    if old:
        raise ConfigError(
            f"phase1.text_bridge: {p1['text_bridge']!r} is now {old!r} (text towers are named "
            "by modality: audio, image or both)"
        )
    for modality in MODALITIES:
        synonyms = p1.get("synonyms", {}).get(modality, {})
        missing = [e for e in effect_names(config, modality) if not synonyms.get(e)]
        if missing:
            keys = ", ".join(f"phase1.synonyms.{modality}.{e}" for e in missing)
            raise ConfigError(
                f"{keys}: no synonym list; every configured effect needs at least one synonym "
                "(config/config.yaml has defaults)"
            )
        templates = p1.get("templates", {}).get(modality)
        if templates is None:
            continue
        ctx = ANCHOR_CONTEXT[modality]
        for kind, required, allowed in (
            ("effect", {"synonym"}, {"synonym", ctx}),
            ("neutral", set(), {ctx}),
        ):
            key = f"phase1.templates.{modality}.{kind}"
            try:
                fields = template_fields(templates[kind])
            except ValueError as err:
                raise ConfigError(f"{key}: not a valid template ({err})") from err
            if not required <= fields or not fields <= allowed:
                need = "must contain {synonym} and " if required else ""
                raise ConfigError(
                    f"{key}: {templates[kind]!r} {need}may contain only "
                    f"{', '.join('{' + f + '}' for f in sorted(allowed))}; found "
                    f"{sorted(fields)}"
                )
    check_shared_words(config)


def check_shared_words(config: Mapping[str, Any]) -> None:
    """Name every content word that an image-side and an audio-side synonym share (of the
    effects that run): a SharedWordWarning with ``phase1.shared_words: warn``, a ConfigError
    with ``error``; with ``drop`` (the default) Phase 1 removes them from both lists, which the
    job logs and discovery_labels.json records."""
    from delta_v2a.phase1 import shared_words

    p1 = config.get("phase1", {})
    syn = {
        m: {e: p1.get("synonyms", {}).get(m, {}).get(e, []) for e in effect_names(config, m)}
        for m in MODALITIES
    }
    shared = shared_words(syn["image"], syn["audio"])
    if not shared:
        return
    mode = p1["shared_words"]  # the schema's default is merged in before any check
    if mode == "error":
        detail = "; ".join(f"{w!r} in {', '.join(where)}" for w, where in shared.items())
        raise ConfigError(
            f"phase1.synonyms: image and audio synonym lists share word(s) {sorted(shared)} "
            f"({detail}); sim3 rewards shared spelling; phase1.shared_words: drop (the "
            "default) removes them from both lists, warn keeps them and reports both"
        )
    if mode == "warn":
        # One short line: the words and the key (discovery_labels.json says where each is).
        warnings.warn(
            f"phase1.synonyms: image and audio share {', '.join(map(repr, sorted(shared)))}; "
            "also reported without them (sim3_no_shared); phase1.shared_words: drop removes "
            "them and this line",
            SharedWordWarning,
            stacklevel=2,
        )


def check_phase3(config: Mapping[str, Any]) -> None:
    """Description templates for every image effect (only ``{level}`` in them, more than
    ``heldout_templates`` + ``validation_templates`` of them), split shares that leave
    training files, and attention heads that divide the model width."""
    p3 = config["phase3"]
    missing = [e for e in effect_names(config, "image") if e not in p3["descriptions"]]
    if missing:
        raise ConfigError(
            f"phase3.descriptions: no template for image effect(s) {missing}; add e.g. "
            f"'{missing[0]}: \"a {{level}} ... photo\"' (config/config.yaml has defaults)"
        )
    for effect, templates in p3["descriptions"].items():
        templates = [templates] if isinstance(templates, str) else list(templates)
        for template in templates:
            if set("{}") & set(template.replace("{level}", "")):
                raise ConfigError(
                    f"phase3.descriptions.{effect}: {template!r} may contain only {{level}}"
                )
        held = p3["heldout_templates"] + p3["validation_templates"]
        if effect in effect_names(config, "image") and len(templates) <= held:
            raise ConfigError(
                f"phase3.descriptions.{effect}: {len(templates)} template(s), but "
                f"phase3.heldout_templates = {p3['heldout_templates']} are held out for test "
                f"and phase3.validation_templates = {p3['validation_templates']} for apply's "
                "gate: list at least one more template, or lower them"
            )
    split = p3["split"]
    if split["val"] + split["test"] >= 1.0:
        raise ConfigError(
            f"phase3.split: val ({split['val']}) + test ({split['test']}) must leave files "
            "to train on (sum < 1)"
        )
    model = p3["model"]
    if model["d_model"] % model["heads"]:
        raise ConfigError(
            f"phase3.model.d_model ({model['d_model']}) must be divisible by "
            f"phase3.model.heads ({model['heads']})"
        )


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


#: Phase 3's training job needs test files from at least this many audio files: the shuffled-
#: audio baseline and the intervals over test files need two (jobs/phase3/train.py).
MIN_TEST_FILES_TO_RUN = 2


def check_data_size(
    config: Mapping[str, Any], n_audio: int, stage: str = "phase3"
) -> tuple[str | None, str | None]:
    """(refusal, warning) for ``n_audio`` discovered audio files before ``stage`` ("split": the
    split Phases 1 and 3 read; "phase3": its training and verdict), from the split's own rule
    (delta_v2a.phase3.dataset.split_counts, fractions ``phase3.split``) and the verdict's size
    (``phase3.min_test_files``). Why: too few songs otherwise fail at the last job (hours later
    with real models) or give an INCONCLUSIVE verdict nobody was told to expect.

    Refusal: the split or Phase 3's training cannot run at all. Warning: it runs, but the test
    split is smaller than a verdict needs. Each names the numbers and how many songs to add
    (counted from the discovered files; files that fail vetting count less).
    """
    from delta_v2a.phase3.dataset import split_counts

    if n_audio < 3:
        return (
            f"data.audio: {n_audio} audio file(s): the split that Phases 1 and 3 read needs at "
            "least 3 (train, val, test); Phase 0 (the `sensitivity` and `linearity` targets) "
            "runs with fewer",
            None,
        )
    if stage == "split":
        return None, None
    fractions = config["phase3"]["split"]
    need = int(config["phase3"]["min_test_files"])

    def test_files(n: int) -> int:
        return split_counts(n, fractions)["test"]

    def songs_for(k: int) -> int:
        n = n_audio
        while test_files(n) < k:
            n += 1
        return n

    have = test_files(n_audio)
    gives = (
        f"{n_audio} audio file(s) give {have} test file(s) (split {fractions['val']:g} val / "
        f"{fractions['test']:g} test by file)"
    )
    verdict = songs_for(need)
    if have < MIN_TEST_FILES_TO_RUN:
        run = songs_for(MIN_TEST_FILES_TO_RUN)
        return (
            f"data.audio: too little audio for Phase 3: {gives}; its training needs "
            f"{MIN_TEST_FILES_TO_RUN} test files ({run} songs: add {run - n_audio}) and a verdict "
            f"needs {need} (phase3.min_test_files: {verdict} songs, add {verdict - n_audio}); "
            "Phase 0 and 1 alone run with fewer (e.g. the `phase1` target)",
            None,
        )
    if have < need:
        return None, (
            f"data.audio: {gives}; a Phase 3 verdict needs {need} (phase3.min_test_files), so it "
            f"will say INCONCLUSIVE: add {verdict - n_audio} song(s) ({verdict} in all) for one"
        )
    return None, None
