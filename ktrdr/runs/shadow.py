"""Shadow runs: a sampled run trains again on the other execution path, and the two must agree.

Once a sampled primary run has completed, its shadow trains the same spec on the other path
with ``save=False`` on the same backend (a worker, never the caller's thread), and its ledger
row says whether it matched the primary (``shadow``: match, mismatch, failed or cancelled, with
the first differing field in ``shadow_difference`` and the primary's run id in ``shadow_of``).
The caller has the primary's result already; a shadow that fails, or cannot even start, is a
row and a log line, never the primary's failure.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from ktrdr.runs.backend import RunBackend, RunHandle
from ktrdr.runs.ledger import RunLedger, RunRecorder
from ktrdr.training.path_comparison import first_difference
from ktrdr.training.rollout import other_path, shadow_sampled
from ktrdr.training.run_spec import RunSpec

logger = logging.getLogger(__name__)

MATCH, MISMATCH = "match", "mismatch"


def shadow_spec(primary: RunSpec) -> RunSpec:
    """The shadow of ``primary`` (whose path is chosen): the same run on the other path, saved
    nowhere, under a run id of its own."""
    assert primary.execution_path is not None, "a shadow needs the primary's chosen path"
    return replace(
        primary,
        execution_path=other_path(primary.execution_path),
        save=False,
        run_id=uuid.uuid4().hex,
    )


def start_shadow(
    backend: RunBackend,
    primary: RunSpec,
    primary_result: Mapping[str, Any],
    *,
    percent: int,
    ledger: RunLedger | None,
    operation_id: str | None = None,
) -> RunHandle | None:
    """Start the shadow of the completed ``primary`` on ``backend`` when the run is in the
    ``percent``% sample; its row is recorded when it ends. The handle, or None when the run is
    not sampled or the shadow could not start (logged)."""
    if not shadow_sampled(primary, percent):
        return None
    shadow = shadow_spec(primary)
    mode, where = backend.placement
    recorder = RunRecorder(
        ledger,
        shadow,
        mode=mode,
        backend=where,
        operation_id=operation_id,
        shadow_of=primary.run_id,
    )
    expected = dict(primary_result)

    def progressed(_handle: RunHandle, snapshot: dict[str, Any]) -> None:
        recorder.progress(snapshot)

    def finished(handle: RunHandle) -> None:
        outcome = handle.outcome()
        assert outcome is not None
        recorder.progress(handle.snapshot(), report=False)
        difference: str | None = None
        if outcome.status == "completed" and outcome.result is not None:
            difference = first_difference(expected, outcome.result)
            verdict = MATCH if difference is None else MISMATCH
        else:
            verdict = outcome.status
        if verdict == MISMATCH:
            logger.warning(
                "shadow run %s of run %s on the %s path differs: %s",
                shadow.run_id,
                primary.run_id,
                shadow.execution_path,
                difference,
            )
        elif verdict != MATCH:
            logger.warning(
                "shadow run %s of run %s on the %s path %s: %s",
                shadow.run_id,
                primary.run_id,
                shadow.execution_path,
                outcome.status,
                outcome.error,
            )
        recorder.finish(
            outcome.status,
            result=outcome.result,
            error_type=outcome.error_type,
            error=outcome.error,
            peak_rss_bytes=outcome.peak_rss_bytes,
            shadow=verdict,
            shadow_difference=difference,
        )

    try:
        return backend.start(shadow, on_progress=progressed, on_finish=finished)
    except Exception as exc:  # a shadow never fails its primary, nor whoever started it
        logger.warning("the shadow of run %s could not start: %s", primary.run_id, exc)
        recorder.finish("failed", error_type=type(exc).__name__, error=str(exc), shadow="failed")
        return None
