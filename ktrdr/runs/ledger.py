"""The runs ledger: one row per training, written where the training was started.

Every entry point records its runs here: ``ktrdr train`` and ``ktrdr.train_strategy`` (local or
on the host), the backend API (local or host operations), sweeps and walk-forward folds. The rows
live in the operations database (``ktrdr.database``: SQLite at ``{data dir}/ktrdr.db`` unless
``KTRDR_DATABASE_URL`` says otherwise), in the table ``training_runs``; ``KTRDR_LEDGER=off``
turns it off. A row says which path trained (executor or reference), where (mode, backend), how
it ended, how long each step took, how quickly a cancel was obeyed, how often progress came,
what memory and threads it used and how the model did: what the rollout's gates are computed
from.

Writing a row never fails a training: a database that cannot be opened or written (locked,
missing, read-only) is a logged warning, and that row is lost. A row must cost a sample-year run
under 1%: importing SQLAlchemy alone costs a ``ktrdr train`` about 7% (measured: 3.43 s against
3.66 s), so rows go into a SQLite file through the standard library's ``sqlite3``, into the
same table SQLAlchemy would create; other databases, and every reader, go through SQLAlchemy.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import sqlite3
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import closing, contextmanager
from dataclasses import replace
from typing import Any, Protocol

from ktrdr import settings
from ktrdr.async_infrastructure.cancellation import CancellationToken
from ktrdr.async_infrastructure.progress import GenericProgressManager
from ktrdr.training.rollout import RolloutSettings, execution_path_for, spec_rollout_key
from ktrdr.training.run_spec import RunSpec

logger = logging.getLogger(__name__)

TABLE = "training_runs"
# A ledger write waits this long for another process's lock; beyond it the row is given up.
BUSY_TIMEOUT_S = 2.0
# How often a run in this process is read for its progress: a worker's watcher's pace.
FOLLOW_INTERVAL_S = 0.25

# The columns of a row, in order, with their SQL type (name, kind, size).
COLUMNS: tuple[tuple[str, str, int], ...] = (
    ("run_id", "text", 64),
    ("operation_id", "text", 64),
    # sha256 of the rollout's run key (strategy, data, seed, overrides): the same run on both
    # paths has the same key, so their accuracies can be matched.
    ("run_key", "text", 16),
    ("strategy", "text", 200),
    ("symbols", "text", 400),
    ("timeframes", "text", 100),
    ("execution_path", "text", 32),
    ("execution_mode", "text", 8),
    ("backend", "text", 16),
    ("status", "text", 16),
    ("error_type", "text", 64),
    ("error", "long", 0),
    ("started_at", "float", 0),
    ("ended_at", "float", 0),
    ("duration_s", "float", 0),
    ("step_seconds", "json", 0),
    ("cancel_latency_s", "float", 0),
    ("progress_interval_p50_s", "float", 0),
    ("progress_interval_p95_s", "float", 0),
    ("peak_rss_bytes", "int", 0),
    ("device", "text", 32),
    ("threads", "int", 0),
    ("weights_digest", "text", 64),
    ("test_accuracy", "float", 0),
    ("better_baseline", "float", 0),
    # A shadow run's row: the primary's run id, match/mismatch/failed/cancelled, and the
    # first field that differed.
    ("shadow_of", "text", 64),
    ("shadow", "text", 16),
    ("shadow_difference", "long", 0),
)
_NAMES = frozenset(name for name, _, _ in COLUMNS)
_JSON = frozenset(name for name, kind, _ in COLUMNS if kind == "json")
_INDEXED = frozenset({"run_id", "ended_at", "execution_path", "status"})


class RunObserver(Protocol):
    """Hears every run a ``RunRecorder`` follows in this process (the services' metrics)."""

    def run_started(self, path: str | None) -> None: ...

    def run_ended(
        self, row: Mapping[str, Any], started_path: str | None, intervals: Sequence[float]
    ) -> None: ...


_observers: list[RunObserver] = []


def observe_runs(observer: RunObserver) -> None:
    """Tell ``observer`` of every run followed in this process from now on (once per
    observer). A command that trains once and exits installs none, and loads nothing for it."""
    if observer not in _observers:
        _observers.append(observer)


class RunLedger:
    """Rows of ``training_runs`` in the database at ``url``: ``record`` one, ``rows`` to read.

    The table is created on first use (``prepare``, which a recorder starts in the
    background). ``record`` never raises for the database's own failures: each is a warning.
    """

    def __init__(self, url: str, *, busy_timeout_s: float = BUSY_TIMEOUT_S) -> None:
        self.url = url
        self.busy_timeout_s = busy_timeout_s
        self._lock = threading.Lock()
        self._engine: Any = None
        self._table: Any = None
        self._failure: str | None = None
        # A SQLite file (sqlite:///PATH) is written through sqlite3, without SQLAlchemy.
        self._sqlite_file = url[len("sqlite:///") :] if url.startswith("sqlite:///") else None
        self._sqlite_ready = False

    def prepare(self) -> bool:
        """Open the database and create the table if need be; False (and why, logged once)
        when it cannot be."""
        with self._lock:
            return self._prepare_sqlite() if self._sqlite_file else self._prepare()

    def _connect(self) -> sqlite3.Connection:
        assert self._sqlite_file is not None
        connection = sqlite3.connect(self._sqlite_file, timeout=self.busy_timeout_s)
        connection.execute(f"PRAGMA busy_timeout={int(self.busy_timeout_s * 1000)}")
        return connection

    def _prepare_sqlite(self) -> bool:
        if self._sqlite_ready:
            return True
        if self._failure is not None:
            return False
        kinds = {"float": "FLOAT", "int": "INTEGER", "long": "TEXT", "json": "TEXT"}
        columns = ", ".join(
            f"{name} {f'VARCHAR({size})' if kind == 'text' else kinds[kind]}"
            for name, kind, size in COLUMNS
        )
        try:
            with closing(self._connect()) as connection:
                connection.execute("PRAGMA journal_mode=WAL")  # as the operations store's
                connection.execute(
                    f"CREATE TABLE IF NOT EXISTS {TABLE} (id INTEGER NOT NULL, {columns}, "
                    "PRIMARY KEY (id))"
                )
                # A table made by an older ktrdr lacks the columns added since: added empty.
                present = {row[1] for row in connection.execute(f"PRAGMA table_info({TABLE})")}
                for name, kind, size in COLUMNS:
                    if name not in present:
                        sql_type = f"VARCHAR({size})" if kind == "text" else kinds[kind]
                        connection.execute(f"ALTER TABLE {TABLE} ADD COLUMN {name} {sql_type}")
                for name in sorted(_INDEXED):
                    connection.execute(
                        f"CREATE INDEX IF NOT EXISTS ix_{TABLE}_{name} ON {TABLE} ({name})"
                    )
                connection.commit()
        except (sqlite3.Error, OSError) as exc:
            return self._unusable(exc)
        self._sqlite_ready = True
        return True

    def _unusable(self, exc: BaseException) -> bool:
        self._failure = _first_line(exc)
        logger.warning(
            "the runs ledger at %s cannot be used (%s); trainings go on unrecorded. Check "
            "the database (KTRDR_DATABASE_URL), or set KTRDR_LEDGER=off",
            _shown(self.url),
            self._failure,
        )
        return False

    def _prepare(self) -> bool:
        if self._engine is not None:
            return True
        if self._failure is not None:
            return False
        try:
            from sqlalchemy import Column, Float, Integer, MetaData, String, Table, Text

            from ktrdr.database import open_engine

            kinds: dict[str, Any] = {
                "float": Float,
                "int": Integer,
                "long": Text,
                "json": Text,
            }
            metadata = MetaData()
            table = Table(
                TABLE,
                metadata,
                Column("id", Integer, primary_key=True, autoincrement=True),
                *(
                    Column(
                        name,
                        String(size) if kind == "text" else kinds[kind](),
                        index=name in _INDEXED,
                    )
                    for name, kind, size in COLUMNS
                ),
            )
            engine = open_engine(self.url, self.busy_timeout_s)
            metadata.create_all(engine)
            _add_missing_columns(engine, table)
        except Exception as exc:  # any failure of the database: the training goes on
            return self._unusable(exc)
        self._engine, self._table = engine, table
        return True

    def record(self, row: Mapping[str, Any]) -> bool:
        """Insert one row, in one transaction; True once written, False when the database
        failed (logged). Raises ValueError for a key that is not a column (a bug of ours)."""
        unknown = set(row) - _NAMES
        if unknown:
            raise ValueError(f"not ledger columns: {', '.join(sorted(unknown))}")
        values = {
            key: json.dumps(value) if key in _JSON and value is not None else value
            for key, value in row.items()
        }
        with self._lock:
            if not (self._prepare_sqlite() if self._sqlite_file else self._prepare()):
                return False
            try:
                if self._sqlite_file:
                    names = ", ".join(values)
                    marks = ", ".join("?" for _ in values)
                    with closing(self._connect()) as connection:
                        connection.execute(
                            f"INSERT INTO {TABLE} ({names}) VALUES ({marks})", list(values.values())
                        )
                        connection.commit()
                else:
                    with self._engine.begin() as connection:
                        connection.execute(self._table.insert().values(**values))
            except Exception as exc:  # locked, read-only, full: the training goes on
                logger.warning(
                    "the runs ledger at %s could not record run %s (%s); the run itself is "
                    "unaffected",
                    _shown(self.url),
                    row.get("run_id"),
                    _first_line(exc),
                )
                return False
        return True

    def rows(self, since: float | None = None) -> list[dict[str, Any]]:
        """Every row that ended at or after ``since`` (a Unix time), oldest first, its JSON
        read (a field that cannot be is None). Raises the database's errors: a reader wants to
        know; an unusable database raises RuntimeError with why."""
        from sqlalchemy import select

        with self._lock:
            if not self._prepare():
                raise RuntimeError(f"the runs ledger at {_shown(self.url)}: {self._failure}")
            query = select(self._table).order_by(self._table.c.id)
            if since is not None:
                query = query.where(self._table.c.ended_at >= since)
            with self._engine.connect() as connection:
                fetched = [dict(r._mapping) for r in connection.execute(query)]
        for row in fetched:
            for key in _JSON:
                row[key] = _read_json(row.get(key))
        return fetched

    def close(self) -> None:
        with self._lock:
            if self._engine is not None:
                self._engine.dispose()
                self._engine = None


def open_ledger(data_dir: str | None = None, url: str | None = None) -> RunLedger | None:
    """The ledger in the operations database of ``data_dir`` (or at ``url``), None when
    ``KTRDR_LEDGER`` is off or the data folder cannot be made (logged). Raises
    StrategyConfigError for a ``KTRDR_LEDGER`` that is neither on nor off."""
    if not settings.ledger_enabled():
        return None
    from ktrdr.database import database_url

    try:
        return RunLedger(database_url(url, data_dir))
    except OSError as exc:
        logger.warning("the runs ledger is off for this run: %s", exc)
        return None


class RunRecorder:
    """Follows one run from where it was started to its row in the ledger.

    Built when the run starts (the database is readied on a background thread meanwhile);
    ``progress`` hears each snapshot, ``cancel_requested`` the first request to stop,
    ``finish`` the end: it builds the row and records it, once. Thread-safe.
    """

    def __init__(
        self,
        ledger: RunLedger | None,
        spec: RunSpec,
        *,
        mode: str,
        backend: str,
        operation_id: str | None = None,
        shadow_of: str | None = None,
    ) -> None:
        self.ledger = ledger
        self.shadow_of = shadow_of
        self.spec = spec
        self.mode = mode
        self.backend = backend
        self.operation_id = operation_id
        self.started_at = time.time()
        self._started = time.monotonic()
        self._lock = threading.Lock()
        self._last: float | None = None
        self._intervals: list[float] = []
        self._step_starts: dict[int, float] = {}
        self._cancel_at: float | None = None
        self._done = False
        self._ready: threading.Thread | None = None
        for observer in list(_observers):
            observer.run_started(spec.execution_path)
        if ledger is not None:
            self._ready = threading.Thread(
                target=ledger.prepare, daemon=True, name="ktrdr-ledger-open"
            )
            self._ready.start()

    def progress(self, snapshot: Mapping[str, Any] | None, *, report: bool = True) -> None:
        """One progress report: the interval since the last (unless ``report`` is off: the
        last snapshot read at the end is not a report), and the steps' start times."""
        if not snapshot:
            return
        now = time.monotonic()
        with self._lock:
            if report:
                if self._last is not None:
                    self._intervals.append(now - self._last)
                self._last = now
            starts = snapshot.get("step_starts")
            if isinstance(starts, Mapping):
                for key, value in starts.items():
                    if str(key).isdigit() and _finite(value) is not None:
                        self._step_starts[int(key)] = float(value)

    def cancel_requested(self, at: float | None = None) -> None:
        """The first request to stop the run, at ``at`` (``time.monotonic()``; now by
        default); later ones change nothing."""
        with self._lock:
            if self._cancel_at is None:
                self._cancel_at = time.monotonic() if at is None else at

    def finish(
        self,
        status: str,
        *,
        result: Mapping[str, Any] | None = None,
        error_type: str | None = None,
        error: str | None = None,
        peak_rss_bytes: int | None = None,
        shadow: str | None = None,
        shadow_difference: str | None = None,
    ) -> dict[str, Any] | None:
        """Record the run's row and return it; None for a second call (nothing recorded).
        A shadow's recorder also records its verdict and the first differing field."""
        ended = time.monotonic()
        with self._lock:
            if self._done:
                return None
            self._done = True
            starts = dict(self._step_starts)
            intervals = list(self._intervals)
            cancel_at = self._cancel_at
        ended_at = self.started_at + (ended - self._started)
        metadata = _section(result, "metadata")
        test = _section(result, "test_metrics")
        verdict = _section(test, "verdict")
        path = metadata.get("execution_path") or self.spec.execution_path
        row: dict[str, Any] = {
            "run_id": self.spec.run_id,
            "operation_id": self.operation_id,
            "run_key": run_key_digest(self.spec),
            "strategy": self.spec.name,
            "symbols": ",".join(self.spec.symbols),
            "timeframes": ",".join(self.spec.timeframes),
            "execution_path": path,
            "execution_mode": self.mode,
            "backend": self.backend,
            "status": status,
            "error_type": error_type,
            "error": None if error is None else str(error)[:2000],
            "started_at": self.started_at,
            "ended_at": ended_at,
            "duration_s": ended - self._started,
            "step_seconds": step_seconds(starts, ended_at) or None,
            "cancel_latency_s": None if cancel_at is None else max(0.0, ended - cancel_at),
            "progress_interval_p50_s": quantile(intervals, 0.5),
            "progress_interval_p95_s": quantile(intervals, 0.95),
            "peak_rss_bytes": peak_rss_bytes,
            "device": _text(metadata.get("device")),
            "threads": _whole(metadata.get("torch_threads")) or self.spec.threads,
            "weights_digest": _text(metadata.get("weights_digest")),
            "test_accuracy": _finite(test.get("accuracy")),
            "better_baseline": _finite(verdict.get("better_baseline")),
            "shadow_of": self.shadow_of,
            "shadow": shadow,
            "shadow_difference": None if shadow_difference is None else shadow_difference[:2000],
        }
        for observer in list(_observers):
            observer.run_ended(row, self.spec.execution_path, intervals)
        if self.ledger is not None:
            if self._ready is not None:
                self._ready.join()
            self.ledger.record(row)
        return row

    @contextmanager
    def following(
        self, manager: GenericProgressManager, token: CancellationToken | None = None
    ) -> Iterator[None]:
        """While the block runs in this process, read ``manager`` every ``FOLLOW_INTERVAL_S``
        as a worker's watcher does (a changed snapshot is a report) and note when ``token``
        is cancelled; the last snapshot is read when the block ends."""
        stop = threading.Event()

        def watch() -> None:
            last: Any = None
            while not stop.wait(FOLLOW_INTERVAL_S):
                snapshot = manager.snapshot()
                if snapshot.updated_at != last:
                    self.progress(snapshot.to_dict())
                    last = snapshot.updated_at

        watcher = threading.Thread(target=watch, daemon=True, name="ktrdr-ledger-follow")
        watcher.start()
        try:
            yield
        finally:
            stop.set()
            watcher.join()
            self.progress(manager.snapshot().to_dict(), report=False)
            at = getattr(token, "cancelled_at", None)
            if at is not None:
                self.cancel_requested(at)


def with_chosen_path(spec: RunSpec, rollout: RolloutSettings | None = None) -> RunSpec:
    """``spec`` with the path the flag or the rollout (``rollout``, else the environment's)
    chooses here, where it starts: the starter knows (and records) it whatever becomes of the
    run, and a worker or the host trains on it."""
    if spec.execution_path is not None:
        return spec
    return replace(spec, execution_path=execution_path_for(spec, rollout))


def _add_missing_columns(engine: Any, table: Any) -> None:
    """Columns added since an older ktrdr made the table, added empty (the same upgrade as
    the SQLite writer's)."""
    from sqlalchemy import inspect, text

    present = {column["name"] for column in inspect(engine).get_columns(TABLE)}
    missing = [column for column in table.columns if column.name not in present]
    if not missing:
        return
    with engine.begin() as connection:
        for column in missing:
            kind = column.type.compile(dialect=engine.dialect)
            connection.execute(text(f"ALTER TABLE {TABLE} ADD COLUMN {column.name} {kind}"))


def run_key_digest(spec: RunSpec) -> str:
    """The first 16 hex digits of the sha256 of ``spec``'s rollout key."""
    return hashlib.sha256(spec_rollout_key(spec).encode()).hexdigest()[:16]


def step_seconds(starts: Mapping[int, float], ended_at: float) -> dict[str, float]:
    """Seconds of each started step: from its start to the next one's (the last to
    ``ended_at``), keyed by step number as text."""
    ordered = sorted(starts.items())
    seconds: dict[str, float] = {}
    for index, (number, start) in enumerate(ordered):
        end = ordered[index + 1][1] if index + 1 < len(ordered) else ended_at
        seconds[str(number)] = round(max(0.0, end - start), 6)
    return seconds


def quantile(values: Sequence[float], share: float) -> float | None:
    """The ``share`` quantile of ``values`` (linear between neighbours), None for none."""
    if not values:
        return None
    ordered = sorted(values)
    position = share * (len(ordered) - 1)
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def _section(document: Mapping[str, Any] | None, key: str) -> Mapping[str, Any]:
    """``document[key]`` when it is a mapping (a result from elsewhere is not trusted), else
    an empty one."""
    value = None if document is None else document.get(key)
    return value if isinstance(value, Mapping) else {}


def _finite(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _whole(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _text(value: Any) -> str | None:
    return value[:64] if isinstance(value, str) else None


def _read_json(value: Any) -> Any:
    if value is None:
        return None
    try:
        return json.loads(value)
    except (TypeError, ValueError):
        return None


def _first_line(exc: BaseException) -> str:
    return str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__


def _shown(url: str) -> str:
    """The URL without a password."""
    head, at, tail = url.rpartition("@")
    if not at or "://" not in head:
        return url
    scheme, _, credentials = head.partition("://")
    user = credentials.split(":", 1)[0]
    return f"{scheme}://{user}:***@{tail}"
