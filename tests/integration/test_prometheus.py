"""The shipped alert rules pass promtool's checks and unit tests, and both services' live
/metrics pass `promtool check metrics` with the names the rules use."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT
from tests.services import (
    Service,
    api_args,
    running_service,
    start_training,
    wait_for,
    wait_until_ended,
)

pytestmark = [pytest.mark.integration, pytest.mark.host_service]

RULES = REPO_ROOT / "deploy" / "prometheus"


def promtool() -> str:
    """promtool beside this Python (make install unpacks it there), else on PATH; a failure
    that says how to get it when it is missing."""
    beside = Path(sys.executable).parent / "promtool"
    found = str(beside) if beside.exists() else shutil.which("promtool")
    if found is None:
        pytest.fail(
            "promtool is missing: run make install (scripts/install-promtool.sh unpacks it from "
            "Debian's prometheus package into .venv/bin)"
        )
    return found


def _run(
    *args: str, stdin: str | None = None, cwd: Path = RULES
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [promtool(), *args], input=stdin, cwd=cwd, capture_output=True, text=True, timeout=120
    )


def test_the_alert_rules_are_valid_and_each_fires_and_stays_quiet_as_its_tests_say() -> None:
    checked = _run("check", "rules", "rules.yml")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS: 4 rules found" in checked.stdout
    tested = _run("test", "rules", "rules.test.yml")
    assert tested.returncode == 0, tested.stdout + tested.stderr
    # Every alert has a firing and a quiet case.
    text = (RULES / "rules.test.yml").read_text()
    for alert in (
        "KtrdrExecutorErrorRate",
        "KtrdrExecutorSlowerThanReference",
        "KtrdrCancelLatencyHigh",
        "KtrdrProgressIntervalHigh",
    ):
        assert text.count(f"alertname: {alert}") == 2, alert


def test_a_broken_threshold_fails_the_rule_tests(tmp_path: Path) -> None:
    # The rule tests can fail: an error-rate line moved to 5% no longer fires on 3.8%.
    rules = (RULES / "rules.yml").read_text().replace("> 0.01", "> 0.05")
    (tmp_path / "rules.yml").write_text(rules)
    shutil.copy(RULES / "rules.test.yml", tmp_path / "rules.test.yml")
    tested = _run("test", "rules", "rules.test.yml", cwd=tmp_path)
    assert tested.returncode != 0
    assert "KtrdrExecutorErrorRate" in tested.stdout + tested.stderr


def test_live_metrics_of_both_services_pass_promtool(
    host: Service, sample_data_dir: Path, tmp_path: Path
) -> None:
    args = api_args(tmp_path, host.url)
    args[args.index("--data-dir") + 1] = str(sample_data_dir)
    with running_service("api", args, tmp_path / "api.log") as api:
        local = start_training(api)
        remote = start_training(api, execution_mode="host")
        for operation_id in (local, remote):
            assert wait_until_ended(api, operation_id, timeout=180)["status"] == "completed"
        _check_metrics(api, host)


def _check_metrics(api: Service, host: Service) -> None:
    def counted(service: Service) -> str | None:
        text = service.get("/metrics").text
        return text if "ktrdr_training_runs_total{" in text else None

    for service, mode in ((api, 'mode="local"'), (host, 'mode="host"')):
        text = wait_for(lambda s=service: counted(s), 30, what="a counted run")  # type: ignore[misc]
        assert service.get("/metrics").headers["content-type"].startswith("text/plain")
        linted = _run("check", "metrics", stdin=text)
        assert linted.returncode == 0, linted.stdout + linted.stderr
        for name in (
            "ktrdr_training_duration_seconds_bucket",
            "ktrdr_training_step_duration_seconds_bucket",
            "ktrdr_training_progress_interval_seconds_count",
            "ktrdr_trainings_active",
            "ktrdr_build_info",
        ):
            assert name in text, name
        assert mode in text and 'status="completed"' in text
