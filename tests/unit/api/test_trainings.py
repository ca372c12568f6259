"""TrainingService in this process: one local operation from request to saved model (the run on
InProcessBackend, so every check it makes can be counted), and the host results it refuses."""

from __future__ import annotations

import itertools
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ktrdr.api import trainings
from ktrdr.api.database import OperationStore
from ktrdr.api.schemas import HostResult, StartTrainingRequest
from ktrdr.api.trainings import RequestError, TrainingService
from ktrdr.config import loader
from ktrdr.data import validation
from ktrdr.runs import InProcessBackend
from ktrdr.runs.execution_mode import ExecutionModeSelector
from ktrdr.runs.host_backend import LOST_CONTACT
from ktrdr.runs.transfer import encode_artifact
from ktrdr.store.model_storage import ModelStorage
from ktrdr.store.received import seal
from tests.conftest import STRATEGIES_DIR
from tests.unit.store.test_model_storage import artifact
from tests.unit.training.test_run_spec import _count_calls

pytestmark = pytest.mark.unit


def _service(tmp_path: Path, data_dir: Path, pool: Any, **fields: Any) -> TrainingService:
    """A local-mode service over a SQLite store in ``tmp_path``; the host is never reached."""
    return TrainingService(
        store=OperationStore(f"sqlite:///{tmp_path / 'ops.db'}"),
        pool=pool,
        storage=ModelStorage(tmp_path / "models"),
        strategies_dir=STRATEGIES_DIR,
        data_dir=data_dir,
        selector=ExecutionModeSelector("local", "http://127.0.0.1:9", token="t"),
        callback_url="http://127.0.0.1:9/api/v1/trainings/results",
        token="t",
        **fields,
    )


def _body(**fields: Any) -> StartTrainingRequest:
    """Two months of EURUSD 1h with the shipped strategy, unless ``fields`` say otherwise."""
    request: dict[str, Any] = {
        "strategy_name": "neuro_mean_reversion",
        "symbols": ["EURUSD"],
        "timeframes": ["1h"],
        "start_date": "2017-01-01",
        "end_date": "2017-02-28",
    }
    request.update(fields)
    if "strategy_yaml" in fields:
        request.pop("strategy_name")
    return StartTrainingRequest(**request)


def _long_body() -> StartTrainingRequest:
    """A year and 500 epochs on one thread: a run that is still training when a test acts on it."""
    return _body(
        end_date="2017-12-31",
        overrides={"training.epochs": 500, "training.early_stopping": None},
        threads=1,
    )


@pytest.fixture
def service(tmp_path: Path, sample_data_dir: Path) -> Iterator[TrainingService]:
    service = _service(tmp_path, sample_data_dir, InProcessBackend())
    store = service.store
    try:
        yield service
    finally:
        service.shutdown()
        store.close()


def _wait_ended(service: TrainingService, operation_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 120
    while True:
        operation = service.store.get(operation_id)
        assert operation is not None
        if operation["status"] in ("completed", "failed", "cancelled"):
            return operation
        assert time.monotonic() < deadline, operation
        time.sleep(0.05)


@pytest.mark.parametrize("flag", ["true", "false"])
def test_one_local_operation_checks_its_strategy_and_request_once(
    service: TrainingService, monkeypatch: pytest.MonkeyPatch, flag: str
) -> None:
    monkeypatch.setenv("USE_TRAINING_EXECUTOR", flag)
    strategy_checks = _count_calls(monkeypatch, loader, "load_strategy")
    name_checks = _count_calls(monkeypatch, validation, "check_names")
    body = _body(overrides={"training.epochs": 1}, threads=1)
    started = service.start(body)
    operation = _wait_ended(service, started["operation_id"])
    assert operation["status"] == "completed", operation
    path = "training_executor" if flag == "true" else "strategy_trainer"
    assert operation["result"]["metadata"]["execution_path"] == path
    # The request became one checked RunSpec; nothing below it checked the strategy or the
    # names again (symbols and timeframes: one check each).
    assert (strategy_checks[0], name_checks[0]) == (1, 2)
    assert ModelStorage(service.storage.root).load(operation["model_id"])


def test_host_results_for_unknown_or_local_operations_are_refused(
    service: TrainingService,
) -> None:
    payload = HostResult(
        session_id="nope",
        status="completed",
        result={},
        artifact=encode_artifact(seal(artifact().to_bytes())).model_dump(),
    )
    with pytest.raises(RequestError) as refused:
        service.receive(payload)
    assert refused.value.status_code == 404
    assert list(ModelStorage(service.storage.root).list_models()) == []


def test_a_run_that_cannot_start_fails_its_operation_without_locking_the_service(
    tmp_path: Path, sample_data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ktrdr.runs import RunPool
    from ktrdr.runs.pool import _Worker

    def no_process(*args: Any) -> Any:
        raise OSError("Resource temporarily unavailable")

    monkeypatch.setattr(_Worker, "spawn", classmethod(no_process))
    service = _service(tmp_path, sample_data_dir, RunPool(1, warm=False))
    store = service.store
    answers: dict[str, Any] = {}
    body = _body()
    thread = threading.Thread(target=lambda: answers.update(service.start(body)), daemon=True)
    thread.start()
    thread.join(30)
    try:
        assert not thread.is_alive(), "start() deadlocked on a run that could not start"
        operation = service.store.get(answers["operation_id"])
        assert operation is not None and operation["status"] == "failed"
        assert "could not start" in operation["error"]
        with pytest.raises(RequestError) as ended:  # the service still answers
            service.cancel(answers["operation_id"])
        assert ended.value.status_code == 409
    finally:
        service.shutdown()
        store.close()


STRATEGY_TEXT = (STRATEGIES_DIR / "neuro_mean_reversion.yaml").read_text()
DEEP = "a: " + "[" * 5000 + "]" * 5000
LETTERS = "abcdefghijklmnopqrstu"
BOMB = "a: &a [x, x]\n" + "".join(
    f"{c}: &{c} [*{p}, *{p}]\n" for p, c in itertools.pairwise(LETTERS)
)  # 2**21 values once every alias is expanded


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (BOMB, "strategy_yaml: expands to more than 50000 values"),
        (DEEP, "strategy_yaml: nested deeper than"),
        ("name: a\nname: b\n", "strategy_yaml: duplicate key 'name' at line 2"),
        ("name: [unclosed\n", "strategy_yaml: invalid YAML at line"),
        ("training: {epochs: " + "9" * 5000 + "}\n", "strategy_yaml: a value cannot be read"),
        ("- just\n- a list\n", "strategy_yaml: expected a YAML mapping"),
        ("# only a comment\n", "strategy_yaml: the file is empty"),
        # Valid YAML the schema refuses names the field too, not a "<dict>".
        (STRATEGY_TEXT.replace("epochs:", "epochz:", 1), "strategy_yaml: training.epochz"),
    ],
)
def test_hostile_strategy_text_over_http_is_refused_as_the_same_file_would_be(
    service: TrainingService, text: str, message: str
) -> None:
    body = _body(strategy_yaml=text)
    with pytest.raises(RequestError) as refused:
        service.start(body)
    assert refused.value.status_code == 422 and message in str(refused.value)
    assert service.store.list() == []  # nothing was queued


def test_a_named_strategy_file_that_is_not_utf8_is_a_clear_refusal(
    tmp_path: Path, service: TrainingService
) -> None:
    strategies = tmp_path / "strategies"
    strategies.mkdir()
    (strategies / "latin.yaml").write_bytes("name: caf\xe9\n".encode("latin-1"))
    service.strategies_dir = strategies
    body = _body(strategy_name="latin")
    with pytest.raises(RequestError) as refused:
        service.start(body)
    assert refused.value.status_code == 422 and "not UTF-8 text" in str(refused.value)


@pytest.mark.parametrize(("symbol", "message"), [("..", "symbol"), ("NOPE", "no bars for NOPE 1h")])
def test_a_symbol_that_cannot_be_trained_here_is_refused_before_it_queues(
    service: TrainingService, symbol: str, message: str
) -> None:
    body = _body(symbols=[symbol])
    with pytest.raises(RequestError) as refused:
        service.start(body)
    assert refused.value.status_code == 422 and message in str(refused.value)
    assert service.store.list() == []


def test_starts_beyond_the_waiting_bound_are_refused_with_503(
    tmp_path: Path, sample_data_dir: Path
) -> None:
    """One slot, one run in it, two waiting: the fourth start is refused, nothing recorded."""
    service = _service(tmp_path, sample_data_dir, InProcessBackend(), max_pending=2)
    store = service.store
    body = _long_body()
    try:
        started = [service.start(body)["operation_id"] for _ in range(3)]
        with pytest.raises(RequestError) as busy:
            service.start(body)
        assert busy.value.status_code == 503 and "training(s) already wait" in str(busy.value)
        assert len(service.store.list()) == 3
        for operation_id in started:
            service.cancel(operation_id)
        for operation_id in started:
            assert _wait_ended(service, operation_id)["status"] == "cancelled"
        service.start(body)  # room again once they ended
    finally:
        service.shutdown()
        store.close()


def _host_operation(service: TrainingService, **fields: Any) -> str:
    """A host operation of the test artifact's strategy, recorded as a start would."""
    operation_id = uuid.uuid4().hex
    service.store.create(
        operation_id=operation_id,
        kind="training",
        status=fields.pop("status", "running"),
        execution_mode="host",
        strategy="demo",
        request={"strategy": "demo", "symbols": ["EURUSD"], "timeframes": ["1h"]},
        **fields,
    )
    return operation_id


def _host_result(operation_id: str) -> HostResult:
    return HostResult(
        session_id=operation_id,
        status="completed",
        result={"model_id": "x", "metadata": {}},
        artifact=encode_artifact(seal(artifact().to_bytes())).model_dump(),
    )


def test_a_host_result_that_comes_after_contact_was_lost_is_still_saved(
    service: TrainingService,
) -> None:
    lost = _host_operation(
        service, status="failed", error=f"{LOST_CONTACT} for 30 s (connection refused); ..."
    )
    saved = service.receive(_host_result(lost))
    operation = service.store.get(lost)
    assert operation is not None and operation["status"] == "completed"
    assert operation["error"] is None and operation["model_id"] == saved["model_id"]
    assert ModelStorage(service.storage.root).load(saved["model_id"])
    # An operation that failed for any other reason takes no late model.
    refused = _host_operation(service, status="failed", error="the host's model was refused")
    with pytest.raises(RequestError) as ended:
        service.receive(_host_result(refused))
    assert ended.value.status_code == 409
    assert len(ModelStorage(service.storage.root).list_models()) == 1


def test_a_cancel_that_arrives_while_a_host_model_is_saved_waits_and_is_refused(
    service: TrainingService, monkeypatch: pytest.MonkeyPatch
) -> None:
    saving, release = threading.Event(), threading.Event()
    real_save = trainings.save_received

    def slow_save(*args: Any, **kwargs: Any) -> Any:
        saving.set()
        assert release.wait(30)
        return real_save(*args, **kwargs)

    monkeypatch.setattr(trainings, "save_received", slow_save)
    operation_id = _host_operation(service)
    answers: dict[str, Any] = {}

    def cancel() -> None:
        try:
            answers["cancel"] = service.cancel(operation_id)
        except RequestError as exc:
            answers["cancel"] = exc.status_code

    receiving = threading.Thread(target=service.receive, args=(_host_result(operation_id),))
    receiving.start()
    assert saving.wait(30)
    cancelling = threading.Thread(target=cancel)
    cancelling.start()
    release.set()
    receiving.join(30)
    cancelling.join(30)
    # The save went through whole, and the cancel found the operation completed.
    assert answers["cancel"] == 409
    operation = service.store.get(operation_id)
    assert operation is not None and operation["status"] == "completed"
    assert ModelStorage(service.storage.root).load(operation["model_id"])


def test_a_stopping_backend_records_its_runs_as_stopped_not_as_cancelled(
    tmp_path: Path, sample_data_dir: Path
) -> None:
    service = _service(tmp_path, sample_data_dir, InProcessBackend())
    store = service.store
    body = _long_body()
    try:
        running = service.start(body)["operation_id"]
        cancelled = service.start(body)["operation_id"]
        service.cancel(cancelled)  # asked for by a user: stays a cancel
        deadline = time.monotonic() + 60
        while (store.get(running) or {}).get("status") != "running":
            assert time.monotonic() < deadline, store.get(running)
            time.sleep(0.05)
        service.shutdown()
        assert _wait_ended(service, running)["status"] == "failed"
        assert store.get(running)["error"] == trainings.STOPPED_WHILE_RUNNING  # type: ignore[index]
        assert _wait_ended(service, cancelled)["status"] == "cancelled"
    finally:
        service.shutdown()
        store.close()
