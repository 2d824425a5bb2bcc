# ruff: noqa: F401  (this module re-exports the package's public names)
"""Phase 1: which image effect corresponds to which audio effect? (pure math, no I/O;
docs/methods.md §5). The modules: ``anchors`` (prototypes, text anchors, cosines, centring,
shared words), ``foils`` (the foil vocabulary and its draws), ``nulls`` (the concept-level foil
nulls), ``resampling`` (bootstrap, label permutations), ``labels`` (corrections, the pair rule
and the discovery_labels.json record), ``discovery`` (the whole analysis). Importers use the
names re-exported here."""

from delta_v2a import metrics
from delta_v2a.phase1.anchors import (
    CLIP_REASON,
    SIM3_REASON,
    STOPWORDS,
    TEXT_BRIDGES,
    Anchors,
    AnchorSpec,
    EmbedTexts,
    Prototypes,
    anchor_of,
    batched_cosine_matrix,
    batched_rowwise_cosine,
    center,
    center_finite,
    combine,
    content_words,
    cosine_matrix,
    masked_anchors,
    prototypes,
    readable,
    rowwise_cosine,
    shared_words,
    text_anchors,
    without_shared,
)
from delta_v2a.phase1.discovery import (
    SHARED_WORDS,
    Inputs,
    Options,
    Side,
    _sim3_observed,
    discover,
    seed_stability,
)
from delta_v2a.phase1.foils import (
    FOILS_FILE,
    Draws,
    FoilBank,
    Foils,
    coherence_band,
    concept_draws,
    embed_foils,
    foil_bank,
    foil_spec,
    list_coherence,
    load_foils,
    parse_foils,
    set_coherence,
)
from delta_v2a.phase1.labels import (
    COMPONENTS,
    CORRECTIONS,
    RunRecord,
    adjust,
    best_matches,
    bridge_pvalue,
    bridge_value,
    cell_rows,
    choose_significant,
    discovery_labels,
    intersection_union,
    sim3_label,
)
from delta_v2a.phase1.nulls import (
    Band,
    ConceptNull,
    concept_pvalue,
    foil_anchor_null,
    foil_sim3_null,
    matched_draws,
    pvalues,
)
from delta_v2a.phase1.resampling import (
    FileSums,
    basic_interval,
    bootstrap_sim,
    file_permutation_sim,
    file_sums,
    label_permutation_sim,
    percentile_interval,
    perm_pvalue,
    regroup,
    standardise,
    strata_permutations,
    synonym_shuffle_sim3,
    usable_units,
)
