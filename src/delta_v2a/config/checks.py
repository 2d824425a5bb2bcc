"""Every start-up check a schema cannot express (known effect names, every intensity present,
monotone levels, Nyquist, Phase 1 templates and shared words, Phase 3 descriptions), each with
a message that names the config key."""

from __future__ import annotations

import string
import warnings
from collections.abc import Mapping
from typing import Any

from delta_v2a.config.schema import ConfigError, effect_names
from delta_v2a.constants import MODALITIES, SAMPLE_RATE
from delta_v2a.effects import REGISTRY, check_levels

AUDIO_RATE_FOR_CHECKS = SAMPLE_RATE  # the loader resamples every file to CLAP's rate


class SharedWordWarning(UserWarning):
    """An image-side and an audio-side synonym list share a content word (docs/methods.md §5):
    sim3 then partly measures spelling, not meaning."""


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
