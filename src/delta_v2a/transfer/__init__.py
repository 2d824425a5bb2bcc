"""Delta transfer: an image edit becomes an audio edit (docs/methods.md §7).

``geometry``: pure arithmetic (decomposition onto prototypes, strength curves, payload);
``usecase``: the one route from a model file and two photos (or a description) to a rendered
song, shared by the ``delta-v2a transfer`` command and the workflow's examples job. The
package re-exports ``geometry``'s names, so ``from delta_v2a import transfer as tr; tr.kappa``
reads as the arithmetic it is.
"""

from delta_v2a.transfer import geometry
from delta_v2a.transfer.geometry import *  # noqa: F403 (the names are geometry.__all__)

__all__ = list(geometry.__all__)
