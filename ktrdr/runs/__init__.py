"""Where trainings run: one backend protocol, its placements, and mode selection.

``RunBackend.start(spec, on_progress, on_finish)`` returns a ``RunHandle`` (``status()``,
``snapshot()``, ``cancel(grace_s)``, ``wait()``, ``outcome()``) on every backend: this process
(``InProcessBackend``), worker processes (``RunPool``), Ray tasks (``ktrdr.runs.ray_backend``)
and the training host (``ktrdr.runs.host_backend``). ``run_all`` follows a batch to its end. A
training that crashes or is killed in a worker never takes the serving process with it;
cancellation goes through the library's token first and kills only after a grace period.
"""

from ktrdr.runs.backend import RunBackend, RunHandle, RunOutcome, run_all
from ktrdr.runs.in_process import InProcessBackend
from ktrdr.runs.pool import RunPool

__all__ = ["InProcessBackend", "RunBackend", "RunHandle", "RunOutcome", "RunPool", "run_all"]
