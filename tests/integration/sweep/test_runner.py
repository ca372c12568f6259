"""Sweeps end to end on the sample bars: local processes and a local Ray give the runs that
sequential ``ktrdr train`` runs give, versions in run order; Ctrl-C and SIGTERM stop them
through the token; a failing run is reported while the others complete."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import ktrdr
from ktrdr.cli.main import main
from ktrdr.store.model_artifact import state_dict_digest
from ktrdr.store.model_storage import ModelStorage
from tests.conftest import STRATEGIES_DIR
from tests.integration.conftest import installed_ray
from tests.processes import default_signal_handlers

pytestmark = [pytest.mark.integration, pytest.mark.slow]

KTRDR = str(Path(sys.executable).parent / "ktrdr")
STRATEGY = STRATEGIES_DIR / "neuro_mean_reversion.yaml"
EIGHT = f"""
name: eight
strategy: {STRATEGY}
start: 2017-01-01
end: 2017-04-30
timeframe_sets: [[1h], [1h, 4h]]
grid:
  training.learning_rate: [0.001, 0.003]
  training.seed: [1, 2]
fixed: {{training.epochs: 3}}
save: all
max_parallel: 2
"""


def _digests(models: Path) -> dict[str, str]:
    storage = ModelStorage(models)
    return {
        info.model_id: state_dict_digest(storage.load(info.model_id).state_dict)
        for info in storage.list_models()
    }


def _strict_json(path: Path) -> Any:
    """The JSON document at ``path``; fails on NaN or Infinity, which JSON does not have."""

    def refuse(constant: str) -> Any:
        raise AssertionError(f"{path} holds {constant}, which is not JSON")

    return json.loads(path.read_text(), parse_constant=refuse)


def _sweep_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "sweep.yaml"
    path.write_text(text)
    return path


def _sweep_arguments(tmp_path: Path, text: str, data_dir: Path) -> list[str]:
    """``ktrdr sweep``'s arguments for the sweep ``text``, its models and summaries in tmp_path."""
    return [
        str(_sweep_file(tmp_path, text)),
        "--data-dir",
        str(data_dir),
        "--models-dir",
        str(tmp_path / "m"),
        "--output-dir",
        str(tmp_path / "out"),
    ]


@contextlib.contextmanager
def _logged_process(
    command: list[str], log: Path, **environment: str
) -> Iterator[subprocess.Popen[Any]]:
    """``command`` with stdout and stderr in ``log``, the default signal handlers and one torch
    thread; killed and reaped on the way out if it is still running."""
    with log.open("w") as output:
        process = subprocess.Popen(
            command,
            stdout=output,
            stderr=subprocess.STDOUT,
            env={**os.environ, "KTRDR_TORCH_THREADS": "1", **environment},
            cwd=Path(__file__).resolve().parents[3],
            preexec_fn=default_signal_handlers,
        )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def _wait_for(
    condition: Any, process: subprocess.Popen[Any], log: Path, timeout_s: float = 180
) -> None:
    """Wait until ``condition()``; fails with the log if the process ends or time runs out."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert process.poll() is None, log.read_text()
        assert time.monotonic() < deadline, log.read_text()
        time.sleep(0.05)


def test_eight_runs_locally_and_on_ray_equal_sequential_trainings(
    sample_data_dir: Path,
    tmp_path: Path,
    ray_local: None,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = _sweep_file(tmp_path, EIGHT)
    local = ktrdr.sweep(
        path, models_dir=tmp_path / "local", data_dir=sample_data_dir, output_dir=tmp_path / "out"
    )
    on_ray = ktrdr.sweep(
        path,
        ray_address="auto",
        models_dir=tmp_path / "ray",
        data_dir=sample_data_dir,
        output_dir=tmp_path / "out",
    )
    assert (local.folder.name, on_ray.folder.name) == ("eight_1", "eight_2")
    by_run = {r["run_id"]: r for r in local.runs.to_dict("records")}
    assert all(r["status"] == "completed" for r in by_run.values())
    # Versions follow run order whichever run finished first, numbered per symbol and timeframe
    # set: r001-r004 are 1h, r005-r008 1h-4h.
    assert [by_run[f"r00{i}"]["model_id"].rsplit("/", 1)[1] for i in range(1, 9)] == [
        *(f"EURUSD_1h_v{i}" for i in range(1, 5)),
        *(f"EURUSD_1h-4h_v{i}" for i in range(1, 5)),
    ]
    ray_rows = {r["run_id"]: r for r in on_ray.runs.to_dict("records")}
    local_digests, ray_digests = _digests(tmp_path / "local"), _digests(tmp_path / "ray")
    for run_id, row in by_run.items():
        assert ray_rows[run_id]["test_accuracy"] == row["test_accuracy"]
        assert ray_rows[run_id]["val_loss"] == row["val_loss"]
        assert ray_digests[ray_rows[run_id]["model_id"]] == local_digests[row["model_id"]]

    # The same runs as sequential ktrdr train commands.
    for run_id in sorted(by_run):
        row = by_run[run_id]
        models = tmp_path / f"seq-{run_id}"
        sets = [f"--set={k}={json.dumps(v)}" for k, v in row["overrides"].items()]
        code = main(
            [
                "train",
                str(STRATEGY),
                "--start",
                "2017-01-01",
                "--end",
                "2017-04-30",
                "--timeframes",
                row["timeframes"],
                "--data-dir",
                str(sample_data_dir),
                "--models-dir",
                str(models),
                "--json",
                *sets,
            ]
        )
        assert code == 0
        [digest] = _digests(models).values()
        assert digest == local_digests[row["model_id"]]

    # Each sweep member records its overrides, so listings tell them apart.
    capsys.readouterr()
    assert main(["models", "list", "--models-dir", str(tmp_path / "local"), "--json"]) == 0
    listed = {m["model_id"]: m for m in json.loads(capsys.readouterr().out)}
    assert listed[by_run["r005"]["model_id"]]["overrides"] == by_run["r005"]["overrides"]
    assert listed[by_run["r005"]["model_id"]]["sweep"] == {"name": "eight_1", "run_id": "r005"}
    manifest = ModelStorage(tmp_path / "local").load(by_run["r003"]["model_id"]).manifest
    assert manifest["overrides"] == by_run["r003"]["overrides"]
    assert manifest["sweep"] == {"name": "eight_1", "run_id": "r003"}
    summary = json.loads((local.folder / "summary.json").read_text())
    assert summary["best_run_id"] == local.best_run_id and len(summary["runs"]) == 8
    header = (local.folder / "summary.csv").read_text().splitlines()[0]
    assert header.startswith("run_id,status,symbols,timeframes,grid,overrides,seed")


SLOW_FIRST = f"""
name: slow_first
strategy: {STRATEGY}
start: 2017-01-01
end: 2017-02-28
grid: {{training.epochs: [60, 1]}}
fixed: {{training.early_stopping: null}}
save: all
max_parallel: 2
"""


def test_versions_follow_run_order_when_the_later_run_finishes_first(
    sample_data_dir: Path, tmp_path: Path
) -> None:
    finished: list[str] = []

    def record(states: list[Any]) -> None:
        finished.extend(
            s.run.run_id for s in states if s.status == "completed" and s.run.run_id not in finished
        )

    result = ktrdr.sweep(
        _sweep_file(tmp_path, SLOW_FIRST),
        models_dir=tmp_path / "m",
        data_dir=sample_data_dir,
        output_dir=tmp_path / "out",
        on_update=record,
    )
    # r001 trains 60 epochs, r002 one, side by side: r002 is done first.
    assert finished == ["r002", "r001"], finished
    rows = {r["run_id"]: r for r in result.runs.to_dict("records")}
    assert rows["r001"]["model_id"].endswith("_v1") and rows["r002"]["model_id"].endswith("_v2")
    saved = {i.model_id: i.version for i in ModelStorage(tmp_path / "m").list_models()}
    assert saved == {rows["r001"]["model_id"]: 1, rows["r002"]["model_id"]: 2}

    # Ranked on validation, by each run's edge over its own baseline; the oracle reads the
    # validation class counts and accuracy from each saved version, not from the sweep.
    assert result.best_by == "val_edge"
    storage = ModelStorage(tmp_path / "m")
    for row in rows.values():
        artifact = storage.load(row["model_id"])
        counts = artifact.manifest["class_counts"]["validation"]["all"]
        share = max(counts.values()) / sum(counts.values())
        best_val = artifact.metrics["training_metrics"]["best_val_accuracy"]
        assert row["val_baseline_accuracy"] == pytest.approx(share)
        assert row["val_edge"] == pytest.approx(best_val - share)
        test = artifact.metrics["test_metrics"]
        assert row["test_edge"] == pytest.approx(
            test["accuracy"]
            - max(test["baseline_accuracy"], test["test_majority_baseline_accuracy"])
        )
    ranked = list(result.runs["val_edge"])
    assert ranked == sorted(ranked, reverse=True)
    chosen = result.summary["chosen"]
    first = result.runs.iloc[0]
    assert chosen["run_id"] == result.best_run_id == first["run_id"]
    assert chosen["value"] == pytest.approx(first["val_edge"])
    assert chosen["test_verdict"]["accuracy"] == pytest.approx(first["test_accuracy"])
    assert chosen["test_verdict"]["test_majority_baseline"] == pytest.approx(
        first["test_majority_baseline_accuracy"]
    )


def test_a_failing_run_is_reported_while_the_others_complete(
    sample_data_dir: Path, tmp_path: Path
) -> None:
    path = _sweep_file(
        tmp_path,
        f"name: partial\nstrategy: {STRATEGY}\nstart: 2017-01-01\nend: 2017-03-31\n"
        "symbol_sets: [[EURUSD], [NOPE]]\nfixed: {training.epochs: 2}\nsave: all\n",
    )
    result = ktrdr.sweep(
        path, models_dir=tmp_path / "m", data_dir=sample_data_dir, output_dir=tmp_path / "out"
    )
    rows = {r["run_id"]: r for r in result.runs.to_dict("records")}
    assert rows["r001"]["status"] == "completed" and rows["r001"]["model_id"]
    assert rows["r002"]["status"] == "failed"
    assert "NOPE_1h.csv does not exist" in rows["r002"]["error"]
    assert len(ModelStorage(tmp_path / "m").list_models()) == 1


def test_a_sweep_with_a_failed_run_exits_1_naming_it_after_its_summary(
    sample_data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _sweep_file(
        tmp_path,
        f"name: partial\nstrategy: {STRATEGY}\nstart: 2017-01-01\nend: 2017-03-31\n"
        "symbol_sets: [[EURUSD], [NOPE]]\nfixed: {training.epochs: 2}\nsave: all\n",
    )
    where = ["--models-dir", str(tmp_path / "m"), "--data-dir", str(sample_data_dir)]
    code = main(["sweep", str(path), *where, "--output-dir", str(tmp_path / "out")])
    out, err = capsys.readouterr()
    assert code == 1, err
    assert "summary:" in out  # the ranked table and the summary's place come first
    flat = " ".join(out.split())
    assert "ranked by val_edge on validation" in flat and "val edge" in flat
    assert "chosen: r001 by val_edge" in flat and "on the test split, after the choice" in flat
    last = err.strip().splitlines()[-1]
    assert last.startswith("Error: 1 of 2 run(s) failed (r002; r002: "), err
    assert "NOPE_1h.csv does not exist" in last and "summary.json" in last
    code = main(["sweep", str(path), *where, "--output-dir", str(tmp_path / "out"), "--json"])
    out, err = capsys.readouterr()
    assert code == 1, err
    document = json.loads(out)  # exactly one document: the summary, marked failed
    assert document["success"] is False and document["error"]["type"] == "TrainingError"
    assert {run["status"] for run in document["runs"]} == {"completed", "failed"}
    assert len(ModelStorage(tmp_path / "m").list_models()) == 2  # the completed runs' models


LONG = f"""
name: long
strategy: {STRATEGY}
start: 2017-01-01
end: 2017-12-31
grid: {{training.seed: [1, 2, 3, 4]}}
fixed: {{training.epochs: 3000, training.early_stopping: null}}
save: all
max_parallel: 2
"""


@pytest.mark.parametrize(
    ("backend", "sent", "code"),
    [
        ("local", signal.SIGINT, 130),
        ("local", signal.SIGTERM, 143),
        ("ray", signal.SIGINT, 130),
        ("ray", signal.SIGTERM, 143),
    ],
)
@pytest.mark.timeout(600)  # a fresh local Ray on a loaded machine: see the wait below
def test_an_interrupted_sweep_stops_its_runs_through_the_token(
    sample_data_dir: Path, tmp_path: Path, backend: str, sent: signal.Signals, code: int
) -> None:
    if backend == "ray":
        installed_ray()
    command = [KTRDR, "sweep", *_sweep_arguments(tmp_path, LONG, sample_data_dir)]
    if backend == "ray":
        command += ["--ray-address", "local"]
    log = tmp_path / "sweep.log"
    with _logged_process(command, log, RAY_num_cpus="2") as process:
        # Both slots have reached the training step (a fresh Ray worker may spend many
        # seconds on the steps before it: 143 s measured with two CPU hogs beside it).
        _wait_for(lambda: log.read_text().count(" step 7/12: ") >= 2, process, log, 420)
        process.send_signal(sent)
        process.wait(timeout=30)
    text = log.read_text()
    assert process.returncode == code, text
    assert "nothing was saved" in text
    summary = json.loads(next((tmp_path / "out").glob("long_*/summary.json")).read_text())
    statuses = {r["run_id"]: r["status"] for r in summary["runs"]}
    assert statuses == {
        "r001": "cancelled",
        "r002": "cancelled",
        "r003": "cancelled",
        "r004": "cancelled",
    }, statuses
    errors = {r["run_id"]: r["error"] for r in summary["runs"]}
    # The running ones stopped inside training (step 7, in an epoch or just before the first)
    # through the token; the others never started.
    in_training = ("during epoch", "during step 7")
    assert all(any(w in errors[r] for w in in_training) for r in ("r001", "r002")), errors
    assert all("during" not in (errors[r] or "") for r in ("r003", "r004")), errors
    assert not (tmp_path / "m").exists() or not list((tmp_path / "m").rglob("manifest.json"))


HALF = f"""
name: half
strategy: {STRATEGY}
start: 2017-01-01
end: 2017-03-31
grid:
  training.epochs: [2, 3000]
  training.seed: [1, 2]
fixed: {{training.early_stopping: null}}
save: all
max_parallel: 2
"""


def test_a_cancelled_save_all_sweep_saves_and_counts_only_its_completed_runs(
    sample_data_dir: Path, tmp_path: Path
) -> None:
    """r001 and r002 (2 epochs) complete; r003 and r004 (3000 epochs) are stopped in training:
    the two completed runs are saved, and the message counts what the store holds."""
    command = [KTRDR, "sweep", *_sweep_arguments(tmp_path, HALF, sample_data_dir)]
    log = tmp_path / "sweep.log"
    with _logged_process(command, log) as process:
        both_training = ("r003 step 7/12: ", "r004 step 7/12: ")
        _wait_for(lambda: all(w in log.read_text() for w in both_training), process, log)
        process.send_signal(signal.SIGINT)
        process.wait(timeout=60)
    text = log.read_text()
    assert process.returncode == 130, text
    saved = sorted(ModelStorage(tmp_path / "m").list_models(), key=lambda i: i.version)
    assert [i.version for i in saved] == [1, 2], text
    assert "saved 2 completed run(s)" in text.splitlines()[-1], text
    summary = _strict_json(next((tmp_path / "out").glob("half_*/summary.json")))
    rows = {r["run_id"]: r for r in summary["runs"]}
    assert {k: r["status"] for k, r in rows.items()} == {
        "r001": "completed",
        "r002": "completed",
        "r003": "cancelled",
        "r004": "cancelled",
    }
    # Run order gives the versions, and each summary row names the model the store holds.
    assert [rows[r]["model_id"] for r in ("r001", "r002")] == [i.model_id for i in saved]
    assert rows["r003"]["model_id"] is None and rows["r004"]["model_id"] is None


_SWEEP_WITH_A_HELD_SAVE = """
import sys, time
from pathlib import Path
from ktrdr.cli.main import main
from ktrdr.store.model_storage import ModelStorage

marker, go = Path(sys.argv[1]), Path(sys.argv[2])
real_save = ModelStorage.save_model

def held_save(self, artifact):
    # The first save tells the test it has begun, then waits to be let go: the test's
    # interrupts land while the sweep is saving.
    if not marker.exists():
        marker.write_text("saving")
        while not go.exists():
            time.sleep(0.01)
    return real_save(self, artifact)

ModelStorage.save_model = held_save
sys.exit(main(["sweep", *sys.argv[3:]]))
"""


def test_a_second_ctrl_c_while_the_sweep_saves_waits_for_the_save(
    sample_data_dir: Path, tmp_path: Path
) -> None:
    marker, go, log = tmp_path / "saving", tmp_path / "go", tmp_path / "sweep.log"
    arguments = _sweep_arguments(tmp_path, TWO.replace("{save}", "all"), sample_data_dir)
    command = [sys.executable, "-c", _SWEEP_WITH_A_HELD_SAVE, str(marker), str(go), *arguments]
    with _logged_process(command, log) as process:
        _wait_for(marker.exists, process, log)
        process.send_signal(signal.SIGINT)
        _wait_for(lambda: "Cancelling the sweep" in log.read_text(), process, log)
        process.send_signal(signal.SIGINT)
        _wait_for(lambda: "waiting for it to finish" in log.read_text(), process, log)
        go.write_text("go")
        process.wait(timeout=120)
    text = log.read_text()
    assert process.returncode == 130, text
    assert "saved 2 completed run(s)" in text.splitlines()[-1], text
    assert [i.version for i in ModelStorage(tmp_path / "m").list_models()] == [1, 2]
    summary = _strict_json(next((tmp_path / "out").glob("two_*/summary.json")))
    assert [r["status"] for r in summary["runs"]] == ["completed", "completed"]


def test_a_second_ctrl_c_before_the_save_quits_at_once_and_writes_nothing(
    sample_data_dir: Path, tmp_path: Path
) -> None:
    log = tmp_path / "sweep.log"
    command = [KTRDR, "sweep", *_sweep_arguments(tmp_path, LONG, sample_data_dir)]
    with _logged_process(command, log) as process:
        _wait_for(lambda: " step 7/12: " in log.read_text(), process, log)
        process.send_signal(signal.SIGINT)
        _wait_for(lambda: "Cancelling the sweep" in log.read_text(), process, log)
        process.send_signal(signal.SIGINT)
        process.wait(timeout=60)
    text = log.read_text()
    assert process.returncode == 130, text
    assert text.splitlines()[-1].startswith("Error: Cancelled by Ctrl-C"), text
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").rglob("summary.json"))
    assert not (tmp_path / "m").exists() or not list((tmp_path / "m").rglob("manifest.json"))


TWO = f"""
name: two
strategy: {STRATEGY}
start: 2017-01-01
end: 2017-03-31
grid:
  training.seed: [1, 2]
fixed: {{training.epochs: 2}}
save: {{save}}
max_parallel: 2
"""


@pytest.mark.parametrize(("save", "tampered"), [("all", ("r002",)), ("best", ("r001", "r002"))])
def test_a_model_altered_on_its_way_back_is_refused_and_names_its_run(
    sample_data_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    save: str,
    tampered: tuple[str, ...],
) -> None:
    from dataclasses import replace

    from ktrdr.sweep import runner

    real_run_all = runner.run_all

    def altering(*args: Any, **kwargs: Any) -> dict[str, Any]:
        # The bytes change between the worker and the driver; the sha256 stays as sent.
        outcomes = real_run_all(*args, **kwargs)
        for run_id in tampered:
            sealed = outcomes[run_id].artifact
            assert sealed is not None
            data = bytes([sealed.data[0] ^ 0xFF]) + sealed.data[1:]
            outcomes[run_id] = replace(outcomes[run_id], artifact=replace(sealed, data=data))
        return outcomes

    monkeypatch.setattr(runner, "run_all", altering)
    result = ktrdr.sweep(
        _sweep_file(tmp_path, TWO.replace("{save}", save)),
        models_dir=tmp_path / "m",
        data_dir=sample_data_dir,
        output_dir=tmp_path / "out",
    )
    rows = {r["run_id"]: r for r in result.runs.to_dict("records")}
    for run_id in tampered:
        assert rows[run_id]["status"] == "failed"
        assert not isinstance(rows[run_id]["model_id"], str)  # none (NaN in the frame)
        assert f"run {run_id}: its model was refused on receipt" in rows[run_id]["error"]
        assert "sha256 does not match" in rows[run_id]["error"]
        assert f"run {run_id}: its model was refused" in caplog.text
    saved = ModelStorage(tmp_path / "m").list_models() if (tmp_path / "m").exists() else []
    if len(tampered) == len(rows):  # every model was altered: nothing at all is saved
        assert saved == [] and result.best_run_id is None
    else:
        assert [m.model_id for m in saved] == [rows["r001"]["model_id"]]
        assert rows["r001"]["status"] == "completed"
    summary = json.loads((result.folder / "summary.json").read_text())
    assert {r["run_id"]: r["status"] for r in summary["runs"]} == {
        run_id: ("failed" if run_id in tampered else "completed") for run_id in rows
    }


def test_a_sweep_that_could_not_save_refuses_before_training(
    sample_data_dir: Path, tmp_path: Path
) -> None:
    from ktrdr.errors import ModelStorageError

    models = tmp_path / "models-is-a-file"
    models.write_text("not a folder")
    started = time.monotonic()
    with pytest.raises(ModelStorageError, match="is a file, not a folder"):
        ktrdr.sweep(
            _sweep_file(tmp_path, TWO.replace("{save}", "all")),
            models_dir=models,
            data_dir=sample_data_dir,
            output_dir=tmp_path / "out",
        )
    assert not (tmp_path / "out").exists()  # no run started, no summary of nothing
    assert time.monotonic() - started < 60


def test_a_failed_save_keeps_the_other_models_and_every_runs_summary(
    sample_data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ktrdr.errors import ModelStorageError
    from ktrdr.store.model_storage import ModelStorage as Storage

    real_save = Storage.save_model

    def disk_full_for_r002(self: Any, artifact: Any) -> Any:
        if artifact.manifest.get("sweep", {}).get("run_id") == "r002":
            raise ModelStorageError("cannot write: No space left on device")
        return real_save(self, artifact)

    monkeypatch.setattr(Storage, "save_model", disk_full_for_r002)
    with pytest.raises(ModelStorageError, match=r"the model\(s\) of r002 could not be saved"):
        ktrdr.sweep(
            _sweep_file(tmp_path, TWO.replace("{save}", "all")),
            models_dir=tmp_path / "m",
            data_dir=sample_data_dir,
            output_dir=tmp_path / "out",
        )
    [summary_file] = (tmp_path / "out").glob("two_*/summary.json")
    rows = {r["run_id"]: r for r in json.loads(summary_file.read_text())["runs"]}
    assert rows["r001"]["status"] == "completed" and isinstance(rows["r001"]["model_id"], str)
    assert rows["r002"]["status"] == "completed" and not isinstance(rows["r002"]["model_id"], str)
    assert "No space left on device" in rows["r002"]["error"]
    assert [m.model_id for m in ModelStorage(tmp_path / "m").list_models()] == [
        rows["r001"]["model_id"]
    ]
