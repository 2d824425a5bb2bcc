"""Phase 3 jobs, one module per rule of ``workflow/rules/phase3.smk``.

``windows`` (rule phase3_windows), ``dataset`` (phase3_dataset), ``strength``
(phase3_strength) and ``train`` (phase3) each rerun only when what they read changes; no
module imports another. The science they call is :mod:`delta_v2a.phase3` (the training
experiment: :mod:`delta_v2a.phase3.experiment`, its records: :mod:`delta_v2a.phase3.records`).
"""

from delta_v2a.jobs.phase3.dataset import run_dataset
from delta_v2a.jobs.phase3.strength import run_strength
from delta_v2a.jobs.phase3.train import run_train
from delta_v2a.jobs.phase3.windows import run_windows

__all__ = ["run_dataset", "run_strength", "run_train", "run_windows"]
