"""The rollout's figures and gates, computed from runs-ledger rows (pure: no database here).

``path_figures`` summarises each path over a window (runs, failures, durations, cancellation
latency, progress interval); ``evaluate_gates`` answers PASS, FAIL or INCONCLUSIVE for a stage
(canary, expanded, full, cleanup) against the thresholds (``gate_thresholds.yaml`` by default),
with each gate's figure and threshold. The same rows always give the same verdict: the one
random element, the bootstrap of the duration ratio's interval, has a fixed seed.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from ktrdr.async_infrastructure.status import TERMINAL
from ktrdr.errors import StrategyConfigError
from ktrdr.training.run_spec import EXECUTION_PATH, EXECUTION_PATHS, REFERENCE_PATH

STAGES = ("canary", "expanded", "full", "cleanup")
DEFAULT_THRESHOLDS = Path(__file__).with_name("gate_thresholds.yaml")
PASS, FAIL, INCONCLUSIVE = "PASS", "FAIL", "INCONCLUSIVE"
# Exit codes of ``ktrdr rollout gate``.
EXIT_CODES = {PASS: 0, FAIL: 1, INCONCLUSIVE: 3}
_BOOTSTRAP = 2000
_SEED = 20241203


@dataclass(frozen=True)
class Gate:
    """One gate: its name, verdict, the figure measured and the threshold it was held to."""

    name: str
    verdict: str
    figure: float | None
    threshold: float
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "verdict": self.verdict,
            "figure": self.figure,
            "threshold": self.threshold,
            "detail": self.detail,
        }


@dataclass(frozen=True)
class GateReport:
    stage: str
    verdict: str
    gates: list[Gate] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "stage": self.stage,
            "verdict": self.verdict,
            "gates": [gate.to_dict() for gate in self.gates],
        }


def load_thresholds(path: str | Path | None = None) -> dict[str, Any]:
    """The default thresholds, with those of ``path`` (a YAML mapping) over them. Raises
    StrategyConfigError naming the file and key for an unknown key or a value that is not a
    finite number >= 0 (``min_runs``: a whole number per stage)."""
    thresholds = yaml.safe_load(DEFAULT_THRESHOLDS.read_text())
    if path is None:
        return thresholds
    source = Path(path)
    try:
        given = yaml.safe_load(source.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise StrategyConfigError(f"{source}: cannot read the gate thresholds ({exc})") from exc
    if not isinstance(given, Mapping):
        raise StrategyConfigError(f"{source}: the gate thresholds must be a mapping of keys")
    for key, value in given.items():
        if key not in thresholds:
            known = ", ".join(sorted(thresholds))
            raise StrategyConfigError(f"{source}: {key!r} is not a gate threshold; use {known}")
        if key == "min_runs":
            if not isinstance(value, Mapping) or not all(
                stage in STAGES and isinstance(n, int) and not isinstance(n, bool) and n >= 1
                for stage, n in value.items()
            ):
                raise StrategyConfigError(
                    f"{source}: min_runs maps stages ({', '.join(STAGES)}) to whole numbers >= 1"
                )
            thresholds["min_runs"] = {**thresholds["min_runs"], **value}
            continue
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not (math.isfinite(value) and value >= 0)
        ):
            raise StrategyConfigError(f"{source}: {key} must be a number >= 0, not {value!r}")
        thresholds[key] = float(value)
    return thresholds


def path_figures(rows: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per path: runs, failed, cancelled, error_rate (failed over completed and failed),
    median training time of completed runs (``training_seconds``, of the runs of one execution
    mode: ``_timed_mode``), p95 cancellation latency, median progress interval."""
    figures: dict[str, dict[str, Any]] = {}
    timed = _timed_mode(rows)
    for path in EXECUTION_PATHS:
        mine = [r for r in rows if r.get("execution_path") == path]
        # A cancelled run neither succeeded nor failed: the error rate is over the others.
        ended = [r for r in mine if r.get("status") in TERMINAL and r.get("status") != "cancelled"]
        failed = sum(r.get("status") == "failed" for r in mine)
        durations = [
            seconds
            for r in mine
            if r.get("status") == "completed"
            and str(r.get("execution_mode")) == timed
            and (seconds := training_seconds(r)) is not None
        ]
        latencies = [
            float(r["cancel_latency_s"])
            for r in mine
            if _number(r.get("cancel_latency_s")) is not None
        ]
        intervals = [
            float(r["progress_interval_p50_s"])
            for r in mine
            if _number(r.get("progress_interval_p50_s")) is not None
        ]
        figures[path] = {
            "runs": len(mine),
            "failed": failed,
            "cancelled": sum(r.get("status") == "cancelled" for r in mine),
            "error_rate": failed / len(ended) if ended else None,
            "median_duration_s": statistics.median(durations) if durations else None,
            "durations": durations,
            "cancel_latency_p95_s": _quantile(latencies, 0.95),
            "progress_interval_s": statistics.median(intervals) if intervals else None,
        }
    return figures


# Steps a run's training time leaves out: saving (a shadow saves nothing, and both paths save
# through the same store) and what follows the result (a host's model travelling back).
_UNTIMED_STEPS = frozenset({"10", "12"})


def training_seconds(row: Mapping[str, Any]) -> float | None:
    """How long a run trained: the seconds of its steps but saving and completing, else its
    whole duration. The steps leave out what is not the path's doing: waiting for a free worker
    or one still loading, a save that a shadow skips, a host's transfer."""
    steps = row.get("step_seconds")
    if isinstance(steps, Mapping) and steps:
        values = [_number(value) for key, value in steps.items() if key not in _UNTIMED_STEPS]
        if values and all(value is not None for value in values):
            return float(sum(value for value in values if value is not None))
    return _number(row.get("duration_s"))


def _timed_mode(rows: Sequence[Mapping[str, Any]]) -> str | None:
    """The execution mode whose completed runs the durations compare: the one with the most
    such runs on the path that has fewer (a host's runs train on other hardware)."""
    counts: dict[str, dict[str, int]] = {}
    for row in rows:
        if row.get("status") == "completed":
            mode = str(row.get("execution_mode"))
            per_path = counts.setdefault(mode, {})
            path = str(row.get("execution_path"))
            per_path[path] = per_path.get(path, 0) + 1
    ranked = sorted(
        counts.items(),
        key=lambda item: (min(item[1].get(path, 0) for path in EXECUTION_PATHS), item[0]),
    )
    return ranked[-1][0] if ranked else None


def duration_ratio(
    executor: Sequence[float], reference: Sequence[float]
) -> tuple[float | None, tuple[float, float] | None]:
    """The executor's median duration over the reference path's, and its 95% bootstrap
    interval (seeded: the same durations give the same interval); None without durations."""
    if not executor or not reference:
        return None, None
    ratio = statistics.median(executor) / statistics.median(reference)
    rng = np.random.default_rng(_SEED)
    mine, theirs = np.asarray(executor, float), np.asarray(reference, float)
    draws = np.median(rng.choice(mine, (_BOOTSTRAP, len(mine))), axis=1) / np.median(
        rng.choice(theirs, (_BOOTSTRAP, len(theirs))), axis=1
    )
    low, high = np.quantile(draws, [0.025, 0.975])
    return ratio, (float(low), float(high))


def accuracy_difference(rows: Sequence[Mapping[str, Any]]) -> tuple[float | None, int]:
    """Mean (executor - reference) test accuracy over the run keys both paths completed, and
    how many keys were matched."""
    by_key: dict[str, dict[str, list[float]]] = {}
    for row in rows:
        accuracy = _number(row.get("test_accuracy"))
        if row.get("status") != "completed" or accuracy is None or not row.get("run_key"):
            continue
        by_key.setdefault(str(row["run_key"]), {}).setdefault(
            str(row.get("execution_path")), []
        ).append(accuracy)
    differences = [
        statistics.mean(paths[EXECUTION_PATH]) - statistics.mean(paths[REFERENCE_PATH])
        for paths in by_key.values()
        if EXECUTION_PATH in paths and REFERENCE_PATH in paths
    ]
    return (statistics.mean(differences) if differences else None), len(differences)


def shadow_figures(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The shadow runs among ``rows``: how many, how many matched their primary, mismatched
    (with the first mismatch's differing field) or did not finish (failed or cancelled)."""
    shadows = [r for r in rows if r.get("shadow")]
    mismatches = [r for r in shadows if r.get("shadow") == "mismatch"]
    return {
        "shadows": len(shadows),
        "matched": sum(r.get("shadow") == "match" for r in shadows),
        "mismatched": len(mismatches),
        "unfinished": sum(r.get("shadow") not in ("match", "mismatch") for r in shadows),
        "first_difference": mismatches[0].get("shadow_difference") if mismatches else None,
    }


def evaluate_gates(
    rows: Sequence[Mapping[str, Any]], stage: str, thresholds: Mapping[str, Any]
) -> GateReport:
    """The stage's verdict over ``rows``: FAIL when any gate fails, else INCONCLUSIVE when any
    gate cannot be told (too few runs on a path, no matched runs), else PASS."""
    if stage not in STAGES:
        raise StrategyConfigError(f"stage {stage!r}: use one of {', '.join(STAGES)}")
    figures = path_figures(rows)
    executor, reference = figures[EXECUTION_PATH], figures[REFERENCE_PATH]
    needed = int(thresholds["min_runs"][stage])
    gates: list[Gate] = []
    enough = executor["runs"] >= needed and reference["runs"] >= needed
    gates.append(
        Gate(
            "runs on each path",
            PASS if enough else INCONCLUSIVE,
            float(min(executor["runs"], reference["runs"])),
            float(needed),
            f"executor {executor['runs']}, reference {reference['runs']}",
        )
    )
    gates.append(_error_gate(executor, reference, thresholds, enough))
    gates.append(_duration_gate(executor, reference, thresholds, enough))
    latency = executor["cancel_latency_p95_s"]
    gates.append(
        _upper(
            "executor cancellation latency p95 (s)",
            latency,
            thresholds["max_cancel_latency_p95_s"],
            "no cancelled executor run" if latency is None else "",
        )
    )
    interval = executor["progress_interval_s"]
    gates.append(
        _upper(
            "executor progress interval, median (s)",
            interval,
            thresholds["max_progress_interval_s"],
            "no progress intervals" if interval is None else "",
        )
    )
    difference, matched = accuracy_difference(rows)
    gates.append(
        _upper(
            "accuracy difference on matched runs (abs)",
            None if difference is None else abs(difference),
            thresholds["max_accuracy_difference"],
            f"{matched} matched run key(s)",
        )
    )
    gates.append(_shadow_gate(shadow_figures(rows), thresholds))
    verdicts = {gate.verdict for gate in gates}
    verdict = FAIL if FAIL in verdicts else INCONCLUSIVE if INCONCLUSIVE in verdicts else PASS
    return GateReport(stage, verdict, gates)


def _error_gate(
    executor: Mapping[str, Any],
    reference: Mapping[str, Any],
    thresholds: Mapping[str, Any],
    enough: bool,
) -> Gate:
    rate, theirs = executor["error_rate"], reference["error_rate"]
    limit = float(thresholds["max_error_rate"])
    if rate is None:
        return Gate("executor error rate", INCONCLUSIVE, None, limit, "no ended executor run")
    if theirs is not None:
        limit = max(limit, theirs + float(thresholds["max_error_rate_excess"]))
    # Failures count however few the runs (one in five is not noise); a pass needs enough runs.
    verdict = FAIL if rate > limit else PASS if enough else INCONCLUSIVE
    detail = "" if theirs is None else f"reference {theirs:.1%}"
    return Gate("executor error rate", verdict, rate, limit, detail)


def _duration_gate(
    executor: Mapping[str, Any],
    reference: Mapping[str, Any],
    thresholds: Mapping[str, Any],
    enough: bool,
) -> Gate:
    limit = float(thresholds["max_duration_ratio"])
    ratio, interval = duration_ratio(executor["durations"], reference["durations"])
    if ratio is None or interval is None:
        return Gate("duration ratio (median)", INCONCLUSIVE, None, limit, "no completed runs")
    low, high = interval
    detail = f"95% interval {low:.3f}-{high:.3f}"
    if low > limit:
        return Gate("duration ratio (median)", FAIL, ratio, limit, detail)
    verdict = PASS if high <= limit and enough else INCONCLUSIVE
    return Gate("duration ratio (median)", verdict, ratio, limit, detail)


def _shadow_gate(shadows: Mapping[str, Any], thresholds: Mapping[str, Any]) -> Gate:
    # Any mismatch fails however few shadows ran: the two paths promise identical models.
    compared = shadows["matched"] + shadows["mismatched"]
    limit = float(thresholds["max_shadow_mismatches"])
    name = "shadow runs that differ from their primary"
    if compared == 0:
        return Gate(name, INCONCLUSIVE, None, limit, "no shadow run compared")
    detail = f"{compared} compared"
    if shadows["first_difference"]:
        detail += f"; first: {shadows['first_difference']}"
    verdict = FAIL if shadows["mismatched"] > limit else PASS
    return Gate(name, verdict, float(shadows["mismatched"]), limit, detail)


def _upper(name: str, figure: float | None, limit: float, detail: str) -> Gate:
    if figure is None:
        return Gate(name, INCONCLUSIVE, None, float(limit), detail)
    return Gate(name, PASS if figure <= limit else FAIL, figure, float(limit), detail)


def _quantile(values: Sequence[float], share: float) -> float | None:
    if not values:
        return None
    return float(np.quantile(np.asarray(values, float), share))


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None
