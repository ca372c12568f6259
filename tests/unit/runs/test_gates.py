"""The rollout's gates over ledger rows: PASS when healthy, FAIL for each fault, INCONCLUSIVE
with too few runs, and the same verdict on the same rows every time."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ktrdr.errors import StrategyConfigError
from ktrdr.runs.gates import (
    EXIT_CODES,
    duration_ratio,
    evaluate_gates,
    load_thresholds,
    path_figures,
    shadow_figures,
    training_seconds,
)

pytestmark = pytest.mark.unit

THRESHOLDS = load_thresholds()


def ledger(
    runs: int = 40,
    *,
    failing_every: int = 0,
    slower: float = 1.0,
    cancel_delay_s: float = 0.0,
    seed: int = 0,
) -> list[dict[str, Any]]:
    """Rows as a rehearsal writes them: each key trained on both paths (a shadow's match),
    durations about 10 s, one run in eight cancelled; the faults go into the executor's rows."""
    rng = np.random.default_rng(seed)
    rows = []
    for index in range(runs):
        for path in ("training_executor", "strategy_trainer"):
            executor = path == "training_executor"
            status = "completed"
            if executor and failing_every and index % failing_every == 0:
                status = "failed"
            elif index % 8 == 7:
                status = "cancelled"
            rows.append(
                {
                    "run_key": f"k{index}",
                    "execution_path": path,
                    "status": status,
                    "duration_s": 10.0 * (slower if executor else 1.0) * rng.uniform(0.95, 1.05),
                    "cancel_latency_s": (
                        0.02 + (cancel_delay_s if executor else 0.0)
                        if status == "cancelled"
                        else None
                    ),
                    "progress_interval_p50_s": 0.3,
                    "test_accuracy": 0.5 if status == "completed" else None,
                }
            )
        primary, shadow = rows[-2], rows[-1]
        if primary["status"] == "completed" and shadow["status"] == "completed":
            shadow.update(shadow_of=f"run{index}", shadow="match")
    return rows


def verdicts(rows: list[dict[str, Any]], stage: str = "canary") -> dict[str, str]:
    report = evaluate_gates(rows, stage, THRESHOLDS)
    return {"overall": report.verdict, **{g.name: g.verdict for g in report.gates}}


def test_a_healthy_rollout_passes_every_gate() -> None:
    result = verdicts(ledger())
    assert set(result.values()) == {"PASS"}, result
    assert EXIT_CODES["PASS"] == 0


@pytest.mark.parametrize(
    ("fault", "gate"),
    [
        ({"failing_every": 5}, "executor error rate"),
        ({"slower": 1.2}, "duration ratio (median)"),
        ({"cancel_delay_s": 0.3}, "executor cancellation latency p95 (s)"),
    ],
    ids=["errors", "20%-slower", "300ms-cancel"],
)
def test_each_injected_fault_fails_its_gate(fault: dict[str, Any], gate: str) -> None:
    result = verdicts(ledger(**fault))
    assert result["overall"] == "FAIL" and result[gate] == "FAIL", result
    assert EXIT_CODES["FAIL"] == 1


def test_too_few_runs_are_inconclusive_not_a_pass() -> None:
    result = verdicts(ledger(runs=5))
    assert result["overall"] == "INCONCLUSIVE" and result["runs on each path"] == "INCONCLUSIVE"
    assert EXIT_CODES["INCONCLUSIVE"] == 3
    # A later stage needs more runs than the canary.
    assert verdicts(ledger(runs=40), "full")["overall"] == "INCONCLUSIVE"
    # Failures fail however few the runs.
    assert verdicts(ledger(runs=5, failing_every=2))["overall"] == "FAIL"


def test_the_same_rows_give_the_same_verdict_every_time() -> None:
    rows = ledger(slower=1.08, seed=3)
    first = evaluate_gates(rows, "expanded", THRESHOLDS).to_dict()
    for _ in range(3):
        assert evaluate_gates(rows, "expanded", THRESHOLDS).to_dict() == first
    ratio, interval = duration_ratio([10.0, 10.2, 9.9], [10.0, 10.1, 10.0])
    assert (
        ratio == pytest.approx(10.0 / 10.0)
        and interval == duration_ratio([10.0, 10.2, 9.9], [10.0, 10.1, 10.0])[1]
    )


def test_figures_by_hand() -> None:
    rows = ledger(runs=8, failing_every=4)
    executor = path_figures(rows)["training_executor"]
    # Keys 0 and 4 failed, 7 was cancelled: 2 failed of the 7 that ended otherwise.
    assert (executor["runs"], executor["failed"], executor["cancelled"]) == (8, 2, 1)
    assert executor["error_rate"] == pytest.approx(2 / 7)


def test_thresholds_can_be_overridden_and_bad_ones_are_named(tmp_path: Path) -> None:
    given = tmp_path / "gates.yaml"
    given.write_text("max_duration_ratio: 1.3\nmin_runs: {canary: 3}\n")
    thresholds = load_thresholds(given)
    assert thresholds["max_duration_ratio"] == 1.3 and thresholds["min_runs"]["canary"] == 3
    assert thresholds["min_runs"]["full"] == THRESHOLDS["min_runs"]["full"]
    assert evaluate_gates(ledger(slower=1.2), "canary", thresholds).verdict == "PASS"
    for text, fragment in (
        ("max_speed: 2\n", "'max_speed' is not a gate threshold"),
        ("max_duration_ratio: -1\n", "max_duration_ratio must be a number >= 0"),
        ("min_runs: {canary: 0}\n", "min_runs maps stages"),
        ("- a list\n", "must be a mapping"),
    ):
        given.write_text(text)
        with pytest.raises(StrategyConfigError, match=fragment):
            load_thresholds(given)
    with pytest.raises(StrategyConfigError, match="stage 'beta'"):
        evaluate_gates([], "beta", THRESHOLDS)


def test_shadows_gate_the_rollout_one_mismatch_fails_and_none_compared_is_inconclusive() -> None:
    rows = ledger()
    gate = "shadow runs that differ from their primary"
    assert verdicts(rows)[gate] == "PASS"
    unshadowed = [{**row, "shadow": None, "shadow_of": None} for row in rows]
    result = verdicts(unshadowed)
    assert result[gate] == "INCONCLUSIVE" and result["overall"] == "INCONCLUSIVE"
    one = next(row for row in rows if row.get("shadow") == "match")
    one.update(shadow="mismatch", shadow_difference="test_metrics.accuracy: 0.5 != 0.49")
    report = evaluate_gates(rows, "canary", THRESHOLDS)
    (shadows,) = [g for g in report.gates if g.name == gate]
    assert (report.verdict, shadows.verdict, shadows.figure) == ("FAIL", "FAIL", 1.0)
    assert "test_metrics.accuracy: 0.5 != 0.49" in shadows.detail
    assert shadow_figures(rows)["mismatched"] == 1


def test_the_duration_ratio_is_of_training_time_not_of_waiting_for_a_worker() -> None:
    rows = ledger()
    for row in rows:
        # Each run's steps took its whole duration, but every executor run also waited 5 s for
        # a worker that was still loading: not the path's doing.
        row["step_seconds"] = {"1": row["duration_s"] * 0.25, "7": row["duration_s"] * 0.75}
        if row["execution_path"] == "training_executor":
            row["duration_s"] += 5.0
            # and saved its model, which its reference shadow does not
            row["step_seconds"]["10"] = 4.0
    assert training_seconds(rows[0]) == pytest.approx(rows[1]["duration_s"], rel=0.1)
    assert verdicts(rows)["duration ratio (median)"] == "PASS"
    assert training_seconds({"duration_s": 3.0, "step_seconds": None}) == 3.0
    assert training_seconds({"duration_s": 3.0, "step_seconds": {"1": "x"}}) == 3.0


def test_durations_compare_runs_of_one_execution_mode() -> None:
    rows = ledger()
    # As many executor runs again went to the host, whose runs take three times as long.
    host = [
        {**row, "execution_mode": "host", "duration_s": row["duration_s"] * 3, "run_key": "h"}
        for row in rows
        if row["execution_path"] == "training_executor"
    ]
    local = [{**row, "execution_mode": "local"} for row in rows]
    assert verdicts(local + host)["duration ratio (median)"] == "PASS"
