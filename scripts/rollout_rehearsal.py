"""The rollout rehearsal: the backend and the training host on loopback, a few dozen short
trainings at 10%, 50% and 100% with every run shadowed, and ``ktrdr rollout gate`` at each
stage; then one canary per fault injected into the executor (one run in five fails, runs take
20% longer, cancels are obeyed 300 ms late), each of which the gate must FAIL, and a rollback
to 0% that must send every new run to the reference path without a restart.

Usage: scripts/rollout-rehearsal.sh [--runs N] [--epochs N] [--out DIR]
                                    [--faults errors,slow,late-cancel] [--results FILE]

The faults are the rehearsal's own: the backend and the host are started from this file, whose
top level patches ``TrainingExecutor`` when ``KTRDR_REHEARSAL_FAULT_FILE`` is set, and every
worker process they spawn imports this file again (multiprocessing's spawn re-runs the main
module), so the patch reaches the trainings. The file names the fault in force; nothing in the
package knows of it. Exit status: 0 when every verdict is the one expected, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

FAULT_VARIABLE = "KTRDR_REHEARSAL_FAULT_FILE"
FAULTS = ("errors", "slow", "late-cancel")
LATE_CANCEL_S = 0.3
SLOWER = 0.2


def _fault_now(fault_file: Path) -> str:
    try:
        return fault_file.read_text().strip()
    except OSError:
        return "none"


def _install_faults(fault_file: Path) -> None:
    """Make ``TrainingExecutor`` in this process obey the fault that ``fault_file`` names when
    each run starts: ``errors`` (step 7 raises in every fifth executor run), ``slow`` (before
    saving, the run sleeps a fifth of its time so far) or ``late-cancel`` (a cancel is seen
    300 ms late)."""
    from contextlib import contextmanager as managed

    from ktrdr.training import executor as module

    executor = module.TrainingExecutor
    original_run, original_step = executor.run, executor._step

    def run(self: Any, spec: Any) -> Any:
        fault = _fault_now(fault_file)
        # The first executor run of the stage fails, then every fifth.
        self._rehearsal_fails = fault == "errors" and _count_run(fault_file) % 5 == 1
        if fault == "late-cancel" and self.cancellation_token is not None:
            self.cancellation_token = _Late(self.cancellation_token)
        self._rehearsal_slow = fault == "slow"
        self._rehearsal_started = time.monotonic()
        return original_run(self, spec)

    @managed
    def step(self: Any, number: int) -> Iterator[None]:
        if number == 10 and getattr(self, "_rehearsal_slow", False):
            # Before step 10 starts, so in step 9's time (the gate times steps 1-9 and 11).
            time.sleep(SLOWER * (time.monotonic() - self._rehearsal_started))
        with original_step(self, number):
            if number == 7 and getattr(self, "_rehearsal_fails", False):
                raise RuntimeError("the rehearsal's injected fault")
            yield

    executor.run = run  # type: ignore[method-assign]
    executor._step = step  # type: ignore[method-assign]


def _count_run(fault_file: Path) -> int:
    """This executor run's number (1, 2, ...) among all the rehearsal's processes: a counter
    beside the fault file, under its lock, so exactly one run in five fails."""
    from ktrdr.fileio import exclusive_lock

    counter = fault_file.with_name("executor-runs")
    with exclusive_lock(fault_file.with_name("executor-runs.lock")):
        count = int(counter.read_text() or 0) + 1 if counter.exists() else 1
        counter.write_text(str(count))
    return count


class _Late:
    """A cancellation token that reports a cancel only ``LATE_CANCEL_S`` after it came."""

    def __init__(self, token: Any) -> None:
        self._token = token

    def is_cancelled(self) -> bool:
        at = getattr(self._token, "cancelled_at", None)
        return bool(self._token.is_cancelled()) and (
            at is None or time.monotonic() >= at + LATE_CANCEL_S
        )

    def __getattr__(self, name: str) -> Any:
        return getattr(self._token, name)


if os.environ.get(FAULT_VARIABLE):
    _install_faults(Path(os.environ[FAULT_VARIABLE]))


# --- the rehearsal ---------------------------------------------------------------------------

KTRDR = str(Path(sys.executable).parent / "ktrdr")
STAGES = (("canary", 10), ("expanded", 50), ("full", 100))
_START_LINE = re.compile(r"on http://(127\.0\.0\.1:\d+)")
REQUEST = {
    "strategy_name": "neuro_mean_reversion",
    "symbols": ["EURUSD"],
    "timeframes": ["1h"],
    "start_date": "2017-01-01",
    "end_date": "2017-03-31",
}
# Epochs of a rehearsal's trainings: enough that training, not start-up, is most of a run, so
# that the duration ratio of a few dozen runs is measured, not drowned in the scheduler's noise
# (measured on two cores: 3 epochs train for 0.2 s, give or take a third, and the gate could
# only say INCONCLUSIVE; 40 train for 0.52 to 0.83 s, median 0.57).
EPOCHS = 40
LONG = {"training.epochs": 2000, "training.early_stopping.patience": 2000}


@contextmanager
def _service(kind: str, args: list[str], log: Path, env: dict[str, str]) -> Iterator[str]:
    """``ktrdr serve KIND`` started from this file (so its workers get the faults), bound to
    a free loopback port it names in its start line; its URL until the block ends."""
    import httpx

    with log.open("ab") as output:
        process = subprocess.Popen(
            [
                sys.executable,
                __file__,
                "serve",
                kind,
                "--port",
                "0",
                "--log-level",
                "warning",
                *args,
            ],
            stdout=output,
            stderr=subprocess.STDOUT,
            env=env,
        )
    try:
        deadline, url = time.monotonic() + 120, ""
        while not url:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"ktrdr serve {kind} did not start:\n{log.read_text()[-2000:]}")
            named = _START_LINE.search(log.read_text())
            if named:
                candidate = f"http://{named.group(1)}"
                try:
                    if httpx.get(f"{candidate}/health", timeout=2).is_success:
                        url = candidate
                except httpx.HTTPError:
                    pass
            time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


class Rehearsal:
    def __init__(self, api: str, data: Path, folder: Path, runs: int, epochs: int) -> None:
        import httpx

        self.http = httpx.Client(base_url=f"{api}/api/v1", timeout=30)
        self.data, self.folder, self.runs = data, folder, runs
        self.short = {"training.epochs": epochs, "training.early_stopping.patience": epochs}
        self.thresholds = folder / "thresholds.yaml"
        # A rehearsal has minutes, not the weeks of traffic the plan's counts assume.
        needed = max(3, runs // 2)
        self.thresholds.write_text(
            "min_runs:\n"
            + "".join(
                f"  {stage}: {needed}\n" for stage in ("canary", "expanded", "full", "cleanup")
            )
        )
        self.seed = 1000
        self.results: list[tuple[str, str, str, str]] = []
        self.failed_gates: list[list[str]] = []

    def configure(self, **settings: Any) -> None:
        answer = self.http.put("/trainings/config", json=settings)
        answer.raise_for_status()

    def seed_on(self, overrides: dict[str, Any], percent: int, executor: bool) -> int:
        """The next seed whose run key the rollout at ``percent`` sends to the executor (or
        not): the rehearsal cancels a run on each path, whatever the stage's share."""
        from ktrdr.training.rollout import rollout_bucket, spec_rollout_key
        from ktrdr.training.run_spec import build_run_spec

        strategy = Path(__file__).resolve().parents[1] / "strategies" / "neuro_mean_reversion.yaml"
        for _ in range(1000):
            self.seed += 1
            spec = build_run_spec(
                strategy,
                REQUEST["symbols"],
                REQUEST["timeframes"],
                REQUEST["start_date"],
                REQUEST["end_date"],
                overrides={**overrides, "training.seed": self.seed},
                data_dir=self.data,
            )
            if (rollout_bucket(spec_rollout_key(spec)) < percent) == executor:
                return self.seed
        raise RuntimeError("no seed found for the path wanted")

    def train(
        self, *, cancel: bool = False, host: bool = False, seed: int | None = None
    ) -> dict[str, Any]:
        if seed is None:
            self.seed += 1
            seed = self.seed
        body = {
            **REQUEST,
            "overrides": {**(LONG if cancel else self.short), "training.seed": seed},
            "execution_mode": "host" if host else "local",
        }
        started = self.http.post("/trainings/start", json=body)
        started.raise_for_status()
        operation_id = started.json()["operation_id"]
        if cancel:
            self._wait(
                operation_id, lambda op: (op.get("progress") or {}).get("step_number", 0) >= 7
            )
            self.http.delete(f"/operations/{operation_id}")
        return self._wait(
            operation_id, lambda op: op["status"] in ("completed", "failed", "cancelled")
        )

    def _wait(self, operation_id: str, done: Any, timeout: float = 300) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            operation = self.http.get(f"/operations/{operation_id}").json()
            if done(operation) or operation["status"] in ("completed", "failed", "cancelled"):
                return dict(operation)
            time.sleep(0.1)
        raise RuntimeError(f"operation {operation_id} did not get there in {timeout} s")

    def wait_for_shadows(self, since: float, primaries: list[str]) -> None:
        from ktrdr.runs.ledger import RunLedger

        ledger = RunLedger(f"sqlite:///{self.data / 'ktrdr.db'}")
        deadline = time.monotonic() + 300
        try:
            while time.monotonic() < deadline:
                shadowed = {r["shadow_of"] for r in ledger.rows(since=since) if r["shadow_of"]}
                if set(primaries) <= shadowed:
                    return
                time.sleep(0.2)
        finally:
            ledger.close()
        raise RuntimeError("the shadows did not all end within 300 s")

    def stage(self, stage: str, percent: int, fault: str, expected: str) -> None:
        (self.folder / "executor-runs").unlink(missing_ok=True)  # each stage counts anew
        (self.folder / "fault").write_text(fault)
        self.configure(rollout_percent=percent, shadow_percent=100)
        since = time.time()
        shadowed = []
        for index in range(self.runs):
            # Every fourth run is cancelled while it trains, on each path in turn (where the
            # stage sends runs to both); one in six goes to the host.
            cancel = index % 4 == 3
            seed = None
            if cancel:
                executor = percent == 100 or (index // 4) % 2 == 0
                seed = self.seed_on(LONG, percent, executor)
            operation = self.train(cancel=cancel, host=index % 6 == 2 and not cancel, seed=seed)
            if operation["status"] == "completed" and operation["execution_mode"] == "local":
                shadowed.append(operation["operation_id"])
        self.wait_for_shadows(since, shadowed)
        window = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(since - 1))
        command = [
            KTRDR,
            "rollout",
            "gate",
            "--stage",
            stage,
            "--since",
            window,
            "--data-dir",
            str(self.data),
            "--thresholds",
            str(self.thresholds),
        ]
        print(f"\n=== {stage} at {percent}%, fault: {fault} (expected {expected})", flush=True)
        subprocess.run(
            [KTRDR, "rollout", "status", "--since", window, "--data-dir", str(self.data)],
            check=False,
        )
        gate = subprocess.run([*command, "--json"], capture_output=True, text=True, check=False)
        subprocess.run(command, check=False)
        report = json.loads(gate.stdout)
        verdict = report["verdict"]
        failed = [g["name"] for g in report["gates"] if g["verdict"] == "FAIL"]
        self.results.append((f"{stage} {percent}%", fault, expected, verdict))
        self.failed_gates.append(failed)

    def rollback(self) -> None:
        (self.folder / "fault").write_text("none")
        self.configure(rollout_percent=0)
        paths = []
        for _ in range(max(3, self.runs // 3)):
            operation = self.train()
            paths.append((operation.get("result") or {}).get("metadata", {}).get("execution_path"))
        verdict = "PASS" if set(paths) == {"strategy_trainer"} else "FAIL"
        print(f"\n=== rollback to 0%: new runs on {sorted(set(map(str, paths)))}", flush=True)
        self.results.append(("rollback 0%", "none", "PASS", verdict))
        self.failed_gates.append(
            [] if verdict == "PASS" else ["every new run on the reference path"]
        )


def rehearse(
    runs: int,
    folder: Path,
    faults: list[str],
    results: Path | None = None,
    epochs: int = EPOCHS,
) -> int:
    from ktrdr.data.sample import write_sample_data

    data, models = folder / "data", folder / "models"
    write_sample_data(data)
    fault_file = folder / "fault"
    fault_file.write_text("none")
    env = {
        **os.environ,
        FAULT_VARIABLE: str(fault_file),
        "KTRDR_TORCH_THREADS": "1",
        "KTRDR_LEDGER": "on",
    }
    for variable in ("USE_TRAINING_EXECUTOR", "TRAINING_EXECUTOR_EXCLUDE"):
        env.pop(variable, None)
    strategies = Path(__file__).resolve().parents[1] / "strategies"
    host_args = ["--data-dir", str(data)]
    with _service("host", host_args, folder / "host.log", env) as host:
        api_args = [
            "--data-dir",
            str(data),
            "--models-dir",
            str(models),
            "--strategies-dir",
            str(strategies),
            "--host-url",
            host,
            "--max-running",
            "1",
        ]
        with _service("api", api_args, folder / "api.log", env) as api:
            rehearsal = Rehearsal(api, data, folder, runs, epochs)
            for stage, percent in STAGES:
                rehearsal.stage(stage, percent, "none", "PASS")
            for fault in faults:
                rehearsal.stage("canary", 10, fault, "FAIL")
            rehearsal.rollback()
    print("\nstage             fault         expected  verdict")
    failures = 0
    for stage, fault, expected, verdict in rehearsal.results:
        failures += verdict != expected
        mark = "ok" if verdict == expected else "UNEXPECTED"
        print(f"{stage:<17} {fault:<13} {expected:<9} {verdict:<12} {mark}")
    print(f"\nledger: {data / 'ktrdr.db'}")
    if results is not None:
        rows = [
            {
                "stage": stage,
                "fault": fault,
                "expected": expected,
                "verdict": verdict,
                "failed_gates": failed,
            }
            for (stage, fault, expected, verdict), failed in zip(
                rehearsal.results, rehearsal.failed_gates, strict=True
            )
        ]
        results.write_text(json.dumps(rows, indent=2) + "\n")
    return 1 if failures else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=16, help="trainings per stage (default 16)")
    parser.add_argument(
        "--epochs", type=int, default=EPOCHS, help=f"epochs a training (default {EPOCHS})"
    )
    parser.add_argument("--out", type=Path, help="keep the rehearsal's folder here")
    parser.add_argument("--faults", default=",".join(FAULTS), help="faults to inject, or none")
    parser.add_argument("--results", type=Path, help="write each stage's verdict here (JSON)")
    options = parser.parse_args(argv)
    faults = [f for f in options.faults.split(",") if f and f != "none"]
    unknown = set(faults) - set(FAULTS)
    if unknown or options.runs < 4 or options.epochs < 1:
        parser.error(f"--faults takes {', '.join(FAULTS)}; --runs at least 4; --epochs at least 1")
    if options.out is not None:
        options.out.mkdir(parents=True, exist_ok=True)
        folder = options.out.resolve()
        return rehearse(options.runs, folder, faults, options.results, options.epochs)
    with tempfile.TemporaryDirectory(prefix="ktrdr-rehearsal-") as scratch:
        return rehearse(options.runs, Path(scratch), faults, options.results, options.epochs)


if __name__ == "__main__":
    if sys.argv[1:2] == ["serve"]:
        from ktrdr.cli.main import main as ktrdr

        sys.exit(ktrdr(sys.argv[1:]))
    sys.exit(main())
