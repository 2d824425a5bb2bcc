# ruff: noqa: F401  (this module re-exports the package's public names)
"""Typed settings of every job, built once from the validated config (README: Layout).

Why one package: each decision the config makes (which model, which batch size, which alpha)
has one owner here (one module per phase:
``models``, ``extract``, ``phase0``, ``split``, ``phase1``, ``phase3``, ``transfer``; ``params``
the plumbing), and every job receives a frozen object instead of unpacking the config
dict again. The rule files call the ``*_settings`` builders in ``common.smk`` and hand the
result to the job as plain data (:func:`to_params`), because Snakemake reruns a job when a
``params`` value's ``repr`` changes only for builtin types; inside the job
:func:`from_params` rebuilds the same frozen object. Nothing here has a default: defaults live
in the schema alone (workflow/schemas/config.schema.yaml).
"""

from delta_v2a.settings.extract import (
    DEFAULT_DECODE_BUDGET_MIB,
    DeltasSettings,
    EmbedGroupSettings,
    EmbedSettings,
    ExtractSettings,
    HealthSettings,
    ManifestSettings,
    decode_budget_mib,
    decode_mem_mb,
    deltas_settings,
    embed_group_settings,
    embed_settings,
    extract_settings,
    health_settings,
    manifest_settings,
)
from delta_v2a.settings.models import (
    BatchSizes,
    ModelSpec,
    batch_sizes,
    cache_dir,
    model_spec,
)
from delta_v2a.settings.params import (
    from_params,
    to_params,
)
from delta_v2a.settings.phase0 import (
    LinearitySettings,
    SensitivitySettings,
    linearity_settings,
    sensitivity_settings,
)
from delta_v2a.settings.phase1 import (
    TEXT_BATCH_SIZE,
    Phase1Settings,
    phase1_settings,
)
from delta_v2a.settings.phase3 import (
    Architecture,
    DatasetSettings,
    PairRule,
    Phase3Settings,
    StrengthSettings,
    ValidationSettings,
    WindowsSettings,
    dataset_settings,
    pair_rule,
    phase3_settings,
    strength_settings,
    training_seeds,
    windows_settings,
)
from delta_v2a.settings.split import (
    SplitSettings,
    split_settings,
)
from delta_v2a.settings.transfer import (
    N_TRANSFER_EXAMPLES,
    ExamplesSettings,
    examples_settings,
)
