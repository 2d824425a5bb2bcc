"""Delta transfer: an image edit becomes an audio edit (docs/methods.md §7).

``geometry``: pure arithmetic (decomposition onto prototypes, strength curves, payload);
``usecase``: the one route from a model file and two photos (or a description) to a rendered
song, shared by the ``delta-v2a transfer`` command and the workflow's examples job.
"""

from delta_v2a.transfer.geometry import (
    PAYLOAD_VERSION,
    ZERO_DELTA,
    Decomposition,
    StrengthCurve,
    build_payload,
    chain_order,
    decompose,
    explained_shares,
    kappa,
    null_share,
    recognise,
    refusal,
    solve_monotone,
    unit_prototypes,
)

__all__ = [
    "PAYLOAD_VERSION",
    "ZERO_DELTA",
    "Decomposition",
    "StrengthCurve",
    "build_payload",
    "chain_order",
    "decompose",
    "explained_shares",
    "kappa",
    "null_share",
    "recognise",
    "refusal",
    "solve_monotone",
    "unit_prototypes",
]
