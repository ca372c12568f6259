"""Trainings in worker processes, with a progress channel and a cancellation channel.

The one way the services (and sweeps) run a training: ``RunPool.start_run(spec,
on_progress)`` returns a ``RunHandle``. A training that crashes or is killed never takes the
serving process with it; cancellation goes through the library's token first and kills the
process only after a grace period; a bounded number of runs execute at once and the rest wait as
``pending``.
"""

from ktrdr.runs.pool import RunHandle, RunOutcome, RunPool

__all__ = ["RunHandle", "RunOutcome", "RunPool"]
