"""The permanent bad-input matrix: every bad input a user can give, through the real CLI.

Each case asserts the exit code, that stderr ends in one "Error: ..." line that names the problem,
that stdout is empty (or one JSON document with --json), and that nothing was written: the bar
store and the model store are byte-for-byte what they were. docs/errors.md lists every case id;
a test below keeps the two in step. Hypothesis fuzzing at the end feeds random CSV files and
strategy documents to the loaders and checks that only ktrdr's own errors escape.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ktrdr import train_strategy
from ktrdr.cli.main import main
from ktrdr.config import load_strategy_config
from ktrdr.data.importer import import_csv
from ktrdr.errors import DataError, KtrdrError, StrategyConfigError
from ktrdr.store.model_storage import ModelStorage
from tests.conftest import REPO_ROOT, STRATEGIES_DIR
from tests.training_helpers import train_without_saving

pytestmark = pytest.mark.integration

REAL = STRATEGIES_DIR / "neuro_mean_reversion.yaml"
HEADER = "timestamp,open,high,low,close,volume\n"
BAR = "2024-01-01T00:00,1,2,0.5,1.5,1\n"


def snapshot(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` (lock files aside) with the sha256 of its bytes."""
    if not folder.exists():
        return {}
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        if p.is_file()
        else "link"
        if p.is_symlink()
        else "dir"
        for p in sorted(folder.rglob("*"))
        if ".locks" not in p.parts
    }


def run_cli(capsys: pytest.CaptureFixture[str], args: list[str]) -> tuple[int, str, str]:
    code = main(args)
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_error_line(err: str, fragment: str) -> None:
    lines = err.strip().splitlines()
    assert lines, "nothing on stderr"
    assert lines[-1].startswith("Error: "), lines[-1]
    # A fragment is a plain substring of the message, or else a regular expression.
    assert fragment in lines[-1] or re.search(fragment, lines[-1]), (fragment, lines[-1])
    assert len(lines[-1]) < 700, "an error line must stay short"


# --- data import ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ImportCase:
    id: str
    content: str | bytes
    args: tuple[str, ...]
    fragment: str


IMPORT_CASES = [
    ImportCase(
        "high-below-low",
        "timestamp,open,high,low,close,volume\n2024-01-01T00:00,1,0.5,2,1.5,1\n",
        (),
        "high below low",
    ),
    ImportCase("empty-file", "", (), "the file is empty"),
    ImportCase(
        "no-timestamp-column", "open,high,low,close\n1,2,0.5,1.5\n", (), "no timestamp column"
    ),
    ImportCase(
        "unparseable-timestamp",
        "timestamp,open,high,low,close,volume\nlast tuesday,1,2,0.5,1.5,1\n",
        (),
        "unparseable timestamp(s), first 'last tuesday' at line 2",
    ),
    ImportCase(
        "conflicting-duplicates",
        "timestamp,open,high,low,close,volume\n2024-01-01T00:00,1,2,0.5,1.5,1\n2024-01-01T00:00,1,2,0.5,1.7,1\n",
        (),
        "share a timestamp but differ",
    ),
    ImportCase(
        "zero-price",
        "timestamp,open,high,low,close,volume\n2024-01-01T00:00,0,2,0.5,1.5,1\n",
        (),
        "non-positive prices: 1 row(s) at line 2",
    ),
    ImportCase(
        "negative-low",
        "timestamp,open,high,low,close,volume\n2024-01-01T00:00,1,2,-0.5,1.5,1\n",
        (),
        "non-positive prices",
    ),
    ImportCase(
        "negative-volume",
        "timestamp,open,high,low,close,volume\n2024-01-01T00:00,1,2,0.5,1.5,-1\n",
        (),
        "negative volume: 1 row(s) at line 2",
    ),
    ImportCase(
        "inf-high",
        "timestamp,open,high,low,close,volume\n2024-01-01T00:00,1,2,0.5,1.5,1\n2024-01-01T01:00,1,inf,0.5,1.5,1\n",
        (),
        "missing or infinite values: 1 row(s) at line 3",
    ),
    ImportCase(
        "overflow-high",
        "timestamp,open,high,low,close,volume\n2024-01-01T00:00,1,2,0.5,1.5,1\n2024-01-01T01:00,1,1e400,0.5,1.5,1\n",
        (),
        "missing or infinite values: 1 row(s) at line 3",
    ),
    ImportCase(
        "minus-inf-volume",
        "timestamp,open,high,low,close,volume\n2024-01-01T00:00,1,2,0.5,1.5,-inf\n",
        (),
        "missing or infinite values: 1 row(s) at line 2",
    ),
    ImportCase(
        "spacing-mismatch",
        "timestamp,open,high,low,close,volume\n2024-01-01T00:00,1,2,0.5,1.5,1\n2024-01-01T01:00,1,2,0.5,1.5,1\n2024-01-01T02:00,1,2,0.5,1.5,1\n",
        ("--timeframe", "4h"),
        "median bar spacing is 0 days 01:00:00",
    ),
    ImportCase(
        "unknown-timeframe",
        "timestamp,open,high,low,close,volume\n2024-01-01T00:00,1,2,0.5,1.5,1\n",
        ("--timeframe", "3h"),
        "unknown timeframe '3h'",
    ),
    ImportCase(
        "path-trick-symbol",
        "timestamp,open,high,low,close,volume\n2024-01-01T00:00,1,2,0.5,1.5,1\n",
        ("--symbol", "../x"),
        "invalid symbol '../x'",
    ),
    ImportCase("nul-bytes", b"\x00" * 200_000, (), "holds NUL bytes"),
    ImportCase("no-line-break", "a" * 70_000, (), "no line break in the first 64 KiB"),
    ImportCase("header-only", HEADER, (), "a header but no rows"),
    ImportCase(
        "blank-lines-keep-line-numbers",
        HEADER + "\n" + BAR + "\n\n2024-01-01T01:00,1,2,0.5,oops,1\n",
        (),
        r"column 'close' has 1 non-numeric value\(s\) \(line 6\)",
    ),
    ImportCase(
        "year-0001", HEADER + "0001-01-01T00:00,1,2,0.5,1.5,1\n", (), "at line 2 lies outside"
    ),
    ImportCase(
        "year-9999", HEADER + "9999-12-31T23:00,1,2,0.5,1.5,1\n", (), "at line 2 lies outside"
    ),
    ImportCase(
        "mixed-epoch-units",
        HEADER + "1500000000,1,2,0.5,1.5,1\n1500003600000,1,2,0.5,1.5,1\n",
        (),
        "mix seconds and milliseconds",
    ),
    ImportCase("unknown-time-zone", HEADER + BAR, ("--tz", "Mars/Olympus"), "Mars/Olympus"),
    ImportCase(
        "nonexistent-local-time",
        HEADER + "2024-03-10T02:30,1,2,0.5,1.5,1\n",
        ("--tz", "America/New_York"),
        "cannot read naive timestamps",
    ),
    ImportCase(
        "huge-cell", HEADER + "2024-01-01T00:00,1,2,0.5," + "9" * 5000 + "x,1\n", (), "non-numeric"
    ),
]


@pytest.mark.parametrize("case", IMPORT_CASES, ids=lambda c: c.id)
def test_bad_imports(case: ImportCase, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = tmp_path / "bad.csv"
    if isinstance(case.content, bytes):
        source.write_bytes(case.content)
    else:
        source.write_text(case.content)
    store = tmp_path / "store"
    options = {"--symbol": "X", "--timeframe": "1h"}
    options.update(dict(zip(case.args[::2], case.args[1::2], strict=True)))
    flat = [item for pair in options.items() for item in pair]
    for as_json in (False, True):
        args = ["data", "import", str(source), *flat, "--data-dir", str(store)]
        code, out, err = run_cli(capsys, args + (["--json"] if as_json else []))
        assert code == 2
        assert_one_error_line(err, case.fragment)
        if as_json:
            assert json.loads(out)["error"]["type"] == "DataError"
        else:
            assert out == ""
        assert not store.exists()


# --- the bar store: what an import would break --------------------------------------------


HOURLY = HEADER + "".join(f"2024-01-01T{h:02d}:00,1,2,0.5,1.5,1\n" for h in range(6))


def _distinct_hours(shift: int) -> str:
    """A day of hourly bars with distinct prices, stamped ``shift`` hours later."""
    return HEADER + "".join(
        f"2024-01-02T{h + shift:02d}:00,{1 + h / 100},{2 + h / 100},0.5,{1.5 + h / 100},1\n"
        for h in range(18)
    )


def _store_with_bars(
    store: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path, content: str = HOURLY
) -> None:
    good = tmp_path / "good.csv"
    good.write_text(content)
    assert (
        run_cli(
            capsys, ["data", "import", str(good), "-s", "X", "-t", "1h", "--data-dir", str(store)]
        )[0]
        == 0
    )


STORE_CASES = [
    (
        "conflict-without-replace",
        HOURLY,
        HEADER + "2024-01-01T03:00,1,2,0.5,1.7,1\n",
        (),
        r"1 bar\(s\) already in .* have different values",
    ),
    (
        "conflict-in-a-dry-run",
        HOURLY,
        HEADER + "2024-01-01T03:00,1,2,0.5,1.7,1\n",
        ("--dry-run",),
        r"1 bar\(s\) already in .* have different values",
    ),
    (
        # Two 2-row imports, each too short to judge its spacing, would together make a "1h"
        # file of daily bars.
        "merged-spacing",
        HEADER + "2024-01-01T00:00,1,2,0.5,1.5,1\n2024-01-02T00:00,1,2,0.5,1.5,1\n",
        HEADER + "2024-01-03T00:00,1,2,0.5,1.5,1\n2024-01-04T00:00,1,2,0.5,1.5,1\n",
        (),
        "merged with the new bars: median bar spacing is 1 days",
    ),
    (
        # Hourly bars that open at half past (a broker on India's clock) beside bars that open
        # on the hour: each file is hourly, together they would interleave.
        "alignment-clash",
        HOURLY,
        HEADER + "".join(f"2024-01-01T{h:02d}:30,1.1,2,0.5,1.5,1\n" for h in range(6)),
        (),
        r"the stored 1h bars open 0:00 past each UTC 1h boundary and the new ones 0:30: the "
        r"same timeframe cut at other times.*--replace",
    ),
    (
        # The same bars again, read in another zone than the first time.
        "shifted-reimport",
        _distinct_hours(0),
        _distinct_hours(5),
        (),
        r"the new bars are the bars already in .* moved by \+5 hour\(s\): the store holds "
        r"them stamped in another time zone.*--replace",
    ),
]


@pytest.mark.parametrize(
    ("case_id", "stored", "content", "args", "fragment"),
    STORE_CASES,
    ids=[c[0] for c in STORE_CASES],
)
def test_imports_that_would_break_the_store(
    case_id: str,
    stored: str,
    content: str,
    args: tuple[str, ...],
    fragment: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    store = tmp_path / "store"
    _store_with_bars(store, capsys, tmp_path, stored)
    before = snapshot(store)
    source = tmp_path / "more.csv"
    source.write_text(content)
    code, out, err = run_cli(
        capsys,
        ["data", "import", str(source), "-s", "X", "-t", "1h", "--data-dir", str(store), *args],
    )
    assert code == 2 and out == ""
    assert_one_error_line(err, fragment)
    assert snapshot(store) == before


def test_os_errors_name_the_path_and_what_was_being_done(
    tmp_path: Path, saved_model: Path, sample_data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    not_a_folder = tmp_path / "plain-file"
    not_a_folder.write_text("x")
    source = tmp_path / "bars.csv"
    source.write_text(HOURLY)
    code, out, err = run_cli(
        capsys,
        ["data", "import", str(source), "-s", "X", "-t", "1h", "--data-dir", str(not_a_folder)],
    )
    assert code == 2 and out == ""
    assert_one_error_line(err, f"cannot write the bar store at {not_a_folder}")
    version = _copy_store(saved_model, tmp_path)
    output = not_a_folder / "predictions.csv"
    dates = ["--start", "2017-04-03", "--end", "2017-04-04"]
    where = ["--output", str(output), "--data-dir", str(sample_data_dir)]
    code, out, err = run_cli(capsys, ["predict", str(version), "-s", "EURUSD", *dates, *where])
    assert code == 2 and out == ""
    assert_one_error_line(err, f"cannot write predictions to {output}")


def test_a_corrupt_store_file_names_its_line_and_hides_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = tmp_path / "store"
    _store_with_bars(store, capsys, tmp_path)
    (store / "BAD_1h.csv").write_text(HEADER + BAR + "2024-01-01T01:00,1,2,0.5,abc,1\n")
    before = snapshot(store)
    code, out, err = run_cli(capsys, ["data", "show", "BAD", "1h", "--data-dir", str(store)])
    assert code == 2 and out == ""
    assert_one_error_line(err, r"BAD_1h\.csv, line 3: close is 'abc'")
    code, out, err = run_cli(capsys, ["data", "list", "--data-dir", str(store), "--json"])
    assert code == 0
    listed = {e["symbol"]: e for e in json.loads(out)}
    assert listed["BAD"]["error"] and listed["X"]["bars"] == 6
    assert snapshot(store) == before


# --- strategy files and overrides ----------------------------------------------------------


def _alias_bomb() -> str:
    lines = ["a0: &a0 [1, 2, 3, 4, 5, 6, 7, 8, 9]"]
    for level in range(1, 9):
        refs = ", ".join([f"*a{level - 1}"] * 9)
        lines.append(f"a{level}: &a{level} [{refs}]")
    return "\n".join(lines) + "\n"


def _real_with(change: Callable[[dict[str, Any]], None]) -> str:
    raw = yaml.safe_load(REAL.read_text())
    change(raw)
    return yaml.safe_dump(raw)


@dataclass(frozen=True)
class StrategyCase:
    id: str
    content: str | None  # None: the strategy is the real file
    args: tuple[str, ...]
    fragment: str
    code: int = 2


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(raw: dict[str, Any]) -> None:
        node: Any = raw
        parts = path.split(".")
        for part in parts[:-1]:
            node = node[int(part)] if isinstance(node, list) else node[part]
        if isinstance(node, list):
            node[int(parts[-1])] = value
        else:
            node[parts[-1]] = value

    return change


STRATEGY_CASES = [
    StrategyCase("alias-bomb", _alias_bomb(), (), "expands to more than"),
    StrategyCase(
        "deep-nesting", "a: " + "[" * 3000 + "]" * 3000 + "\n", (), "nested deeper than 32"
    ),
    StrategyCase("duplicate-key", REAL.read_text() + "\nname: again\n", (), "duplicate key 'name'"),
    StrategyCase("invalid-yaml", "name: [unclosed\n", (), "invalid YAML at line"),
    StrategyCase(
        "python-tag",
        "name: x\nmodel: !!python/object:os.system {}\n",
        (),
        "invalid YAML at line 2, column 8: could not determine a constructor",
    ),
    StrategyCase(
        "override-python-tag",
        None,
        ("--set", "training.epochs=!!python/object:os.system {}"),
        "the value is invalid YAML at line 1, column 1: could not determine a constructor",
    ),
    StrategyCase("not-a-mapping", "- just\n- a list\n", (), "expected a YAML mapping"),
    StrategyCase("empty-strategy-file", "", (), "the file is empty"),
    StrategyCase("too-large", "# " + "x" * 1_100_000 + "\n", (), "larger than 1000000 bytes"),
    StrategyCase(
        "unknown-key", _real_with(_set("training.epoch", 3)), (), r"training\.epoch: unknown key"
    ),
    StrategyCase(
        "nan-learning-rate",
        _real_with(_set("training.learning_rate", float("nan"))),
        (),
        r"training\.learning_rate: must be a finite number",
    ),
    StrategyCase(
        "inf-fuzzy-parameter",
        _real_with(_set("fuzzy_sets.rsi.oversold.parameters", [0, 0, float("inf"), 35])),
        (),
        r"parameters\[2\]: must be a finite number",
    ),
    StrategyCase(
        "nan-class-weight",
        _real_with(_set("training.class_weights", [1.0, float("nan"), 1.0])),
        (),
        "must be a finite number",
    ),
    StrategyCase(
        "huge-indicator-type",
        _real_with(_set("indicators.0.type", "x" * 100_000)),
        (),
        r"indicators\[0\]\.type: unknown indicator type 'x",
    ),
    StrategyCase(
        "fast-not-below-slow",
        _real_with(_set("indicators.1.fast_period", 30)),
        (),
        r"indicators\[1\]\.fast_period: must be < slow_period",
    ),
    StrategyCase("bool-epochs", None, ("--set", "training.epochs=true"), r"training\.epochs"),
    StrategyCase("string-epochs", None, ("--set", "training.epochs='5'"), r"training\.epochs"),
    StrategyCase("nan-override", None, ("--set", "training.weight_decay=.nan"), "finite number"),
    StrategyCase(
        "deep-override-key", None, ("--set", ".".join(["x"] * 100) + "=1"), "at most 32 parts"
    ),
    StrategyCase(
        "deep-override-value",
        None,
        ("--set", "training.epochs=" + "[" * 500 + "]" * 500),
        "nested deeper",
    ),
    StrategyCase(
        "override-without-value", None, ("--set", "training.epochs"), "expected KEY=VALUE"
    ),
    StrategyCase("override-bad-index", None, ("--set", "indicators.9.period=3"), "is not an index"),
    StrategyCase(
        "override-superscript-index", None, ("--set", "indicators.\u00b9.period=3"), "not an index"
    ),
    StrategyCase(
        "override-5000-digits",
        None,
        ("--set", "training.epochs=" + "9" * 5000),
        "value is not acceptable YAML",
    ),
    StrategyCase(
        "file-5000-digits",
        REAL.read_text().replace("epochs: 100", "epochs: " + "9" * 5000),
        (),
        "a value cannot be read",
    ),
    StrategyCase(
        "65-hidden-layers",
        None,
        ("--set", "model.architecture.hidden_layers=[" + ", ".join(["2"] * 65) + "]"),
        r"model\.architecture\.hidden_layers",
    ),
    StrategyCase(
        "preview-without-dates", None, ("--preview",), "--preview needs --start and --end"
    ),
]


@pytest.mark.parametrize("case", STRATEGY_CASES, ids=lambda c: c.id)
def test_bad_strategies(
    case: StrategyCase, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = REAL
    if case.content is not None:
        path = tmp_path / "strategy.yaml"
        path.write_text(case.content)
    before = snapshot(tmp_path)
    code, out, err = run_cli(capsys, ["strategies", "validate", str(path), *case.args])
    assert code == case.code and out == ""
    assert_one_error_line(err, case.fragment)
    assert snapshot(tmp_path) == before


def test_a_folder_or_missing_file_as_strategy(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run_cli(capsys, ["strategies", "validate", str(tmp_path)])
    assert code == 2 and "is a folder" in err
    code, _, err = run_cli(capsys, ["strategies", "validate", str(tmp_path / "nope.yaml")])
    assert code == 2 and "strategy file not found" in err


def test_strategies_list_survives_a_bomb(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "bomb.yaml").write_text(_alias_bomb())
    (tmp_path / "good.yaml").write_text(REAL.read_text())
    code, out, _ = run_cli(capsys, ["strategies", "list", "--dir", str(tmp_path), "--json"])
    assert code == 0
    rows = {r["name"]: r for r in json.loads(out)}
    assert rows["bomb"]["valid"] is False and "expands to more than" in rows["bomb"]["error"]
    assert rows["neuro_mean_reversion"]["valid"] is True


# --- training ------------------------------------------------------------------------------


TRAIN_CASES = [
    (
        "no-bars-in-range",
        ["--start", "2019-01-01", "--end", "2019-02-01"],
        "no EURUSD 1h bars from 2019-01-01",
        2,
    ),
    ("unknown-override-key", ["--set", "training.epoch=3"], r"training\.epoch: unknown key", 2),
    ("unknown-timeframe-option", ["--timeframes", "2h"], "unknown timeframe '2h'", 2),
    (
        "end-before-start",
        ["--start", "2017-03-31", "--end", "2017-01-01"],
        "is before start_date",
        2,
    ),
    ("not-a-date", ["--start", "yesterday", "--end", "2017-03-31"], "is not a date", 2),
    ("empty-symbols", ["--symbols", ","], "--symbols is empty", 2),
    ("models-path-is-a-file", ["--models-dir", "{tmp}/models-file"], "is a file, not a folder", 1),
    ("latest-is-a-folder", ["--models-dir", "{tmp}/models-latest"], "latest is a real folder", 1),
    (
        "version-name-too-long",
        ["--symbols", ",".join(f"S{i:03d}.LONGNAME" for i in range(20))],
        "file name limit",
        1,
    ),
]


@pytest.mark.parametrize(
    ("case_id", "args", "fragment", "code"), TRAIN_CASES, ids=[c[0] for c in TRAIN_CASES]
)
def test_bad_trainings(
    case_id: str,
    args: list[str],
    fragment: str,
    code: int,
    sample_data_dir: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    (tmp_path / "models-file").write_text("not a folder")
    (tmp_path / "models-latest" / "neuro_mean_reversion" / "latest").mkdir(parents=True)
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    if "--start" not in args:
        args = ["--start", "2017-01-01", "--end", "2017-03-31", *args]
    if "--models-dir" not in args:
        args = [*args, "--models-dir", str(tmp_path / "models")]
    before = snapshot(tmp_path), snapshot(sample_data_dir)
    got, out, err = run_cli(
        capsys,
        ["train", str(REAL), *args, "--epochs", "1", "--data-dir", str(sample_data_dir), "--json"],
    )
    assert got == code
    assert_one_error_line(err, fragment)
    assert json.loads(out)["success"] is False
    assert (snapshot(tmp_path), snapshot(sample_data_dir)) == before


# --- saved models --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory: pytest.TempPathFactory, _sample_store_template: Path) -> Path:
    config = load_strategy_config(REAL, {"training.epochs": 1})
    run = train_without_saving(
        config, ["EURUSD"], ["1h"], "2017-01-01", "2017-03-31", _sample_store_template
    )
    return ModelStorage(tmp_path_factory.mktemp("models")).save_model(run.artifact).path


def _copy_store(saved: Path, tmp_path: Path) -> Path:
    import shutil

    models = tmp_path / "models"
    shutil.copytree(saved.parent.parent, models, symlinks=True)
    return models / saved.parent.name / saved.name


def _edit(manifest: Callable[[dict[str, Any]], None]) -> Callable[[Path], None]:
    def change(version: Path) -> None:
        path = version / "manifest.json"
        document = json.loads(path.read_text())
        manifest(document)
        path.write_text(json.dumps(document))

    return change


@dataclass(frozen=True)
class ModelCase:
    id: str
    damage: Callable[[Path], None]
    fragment: str
    ref: str = "version"  # "version": the folder; "latest": strategy/latest


MODEL_CASES = [
    ModelCase(
        "scaler-dropped-from-files",
        _edit(lambda m: m["files"].pop("scaler.json")),
        "missing scaler.json",
    ),
    ModelCase(
        "hidden-layers-inflated",
        _edit(lambda m: m["architecture"].update(hidden_layers=[100_000, 100_000])),
        "over the 50,000,000 ktrdr trains",
    ),
    ModelCase(
        "hidden-layers-changed",
        _edit(lambda m: m["architecture"].update(hidden_layers=[7])),
        "weight shapes",
    ),
    ModelCase(
        "feature-order-changed",
        _edit(lambda m: m["feature_names"].reverse()),
        "describe different features",
    ),
    ModelCase(
        "future-format", _edit(lambda m: m.update(format_version=99)), "newer than this ktrdr reads"
    ),
    ModelCase(
        "manifest-not-json", lambda v: (v / "manifest.json").write_text("{"), "unreadable JSON"
    ),
    ModelCase(
        "manifest-missing",
        lambda v: (v / "manifest.json").unlink(),
        "without manifest.json|no manifest.json",
    ),
    ModelCase(
        "weights-tampered",
        lambda v: (v / "model.pt").write_bytes(b"x" * 100),
        r"model\.pt: sha256 does not match",
    ),
    ModelCase(
        "latest-leads-outside",
        lambda v: (v.parent / "latest").unlink() or (v.parent / "latest").symlink_to("/etc"),
        "refusing to follow it out of the model store",
        ref="latest",
    ),
]


@pytest.mark.parametrize("case", MODEL_CASES, ids=lambda c: c.id)
@pytest.mark.parametrize("command", ["show", "predict"])
def test_damaged_models_are_refused(
    case: ModelCase,
    command: str,
    saved_model: Path,
    tmp_path: Path,
    sample_data_dir: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    version = _copy_store(saved_model, tmp_path)
    case.damage(version)
    ref = str(version) if case.ref == "version" else f"{version.parent.name}/latest"
    before = snapshot(tmp_path)
    common = ["--models-dir", str(tmp_path / "models")]
    if command == "show":
        args = ["models", "show", ref, *common]
    else:
        args = ["predict", ref, "-s", "EURUSD", "--start", "2017-04-03", "--end", "2017-04-04"]
        args += [*common, "--data-dir", str(sample_data_dir)]
    code, out, err = run_cli(capsys, args)
    assert code == 1 and out == ""
    assert_one_error_line(err, case.fragment)
    assert snapshot(tmp_path) == before


def test_a_damaged_version_does_not_break_the_listing(
    saved_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    version = _copy_store(saved_model, tmp_path)
    (version / "manifest.json").write_text("[1, 2]")
    (version.parent / "EURUSD_1h_v50").mkdir()
    code, out, _ = run_cli(
        capsys, ["models", "list", "--models-dir", str(tmp_path / "models"), "--json"]
    )
    assert code == 0
    [listed] = json.loads(out)  # the empty v50 is not a version
    assert listed["model_id"].endswith(version.name) and "unreadable" in listed["error"]


def test_a_path_with_markup_is_printed_as_it_is(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "data[/]x [bold]"  # "data[" holding "]x [bold]"
    folder.mkdir(parents=True)
    source = folder / "bars.csv"
    source.write_text(HEADER + "".join(f"2024-01-01T{h:02d}:00,1,2,0.5,1.5,1\n" for h in range(4)))
    code, out, err = run_cli(
        capsys,
        ["data", "import", str(source), "-s", "X", "-t", "1h", "--data-dir", str(folder / "store")],
    )
    assert code == 0, err
    assert str(source) in out and str(folder / "store" / "X_1h.csv") in out


# --- the Python API ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"symbols": "EURUSD"}, r"symbols must be a list such as \['EURUSD'\], not str"),
        ({"timeframes": "1h"}, r"timeframes must be a list"),
        ({"start_date": 20170101}, "start_date=20170101 is a int, not a date"),
        ({"end_date": 2017.5}, "is a float, not a date"),
        ({"symbols": ["EURUSD", 5]}, "symbols must hold strings"),
    ],
)
def test_python_api_rejects_what_it_would_misread(
    kwargs: dict[str, Any], fragment: str, sample_data_dir: Path, tmp_path: Path
) -> None:
    call: dict[str, Any] = {
        "symbols": ["EURUSD"],
        "timeframes": ["1h"],
        "start_date": "2017-01-01",
        "end_date": "2017-03-31",
        "strategy_config": str(REAL),
        "data_dir": sample_data_dir,
        "models_dir": tmp_path / "models",
    }
    call.update(kwargs)
    with pytest.raises(DataError, match=fragment):
        train_strategy(**call)
    assert not (tmp_path / "models").exists()


# --- fuzzing ---------------------------------------------------------------------------------

_CELLS = st.one_of(
    st.sampled_from(["", "nan", "inf", "-inf", "1e400", "0", "-1", "abc", "1.5", "2", "0.5"]),
    st.text(alphabet="0123456789.-eE:T ", max_size=12),
)
_STAMPS = st.one_of(
    st.sampled_from(["2024-01-01T00:00", "0001-01-01", "9999-12-31T23:00", "1500000000", "x"]),
    st.text(max_size=20),
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    header=st.sampled_from([HEADER, "", "open;high;low;close\n", "Date,Time,O,H,L,C,V\n"]),
    rows=st.lists(st.tuples(_STAMPS, _CELLS, _CELLS, _CELLS, _CELLS, _CELLS), max_size=8),
    junk=st.binary(max_size=40),
)
def test_fuzzed_csv_imports_raise_only_ktrdr_errors_and_write_nothing_on_failure(
    tmp_path: Path, header: str, rows: list[tuple[str, ...]], junk: bytes
) -> None:
    source = tmp_path / "fuzz.csv"
    body = header + "".join(",".join(row) + "\n" for row in rows)
    source.write_bytes(body.encode("utf-8", "surrogatepass") + junk)
    store = tmp_path / f"store-{hashlib.sha256(source.read_bytes()).hexdigest()[:12]}"
    try:
        import_csv(source, "X", "1h", data_dir=store)
    except KtrdrError:
        assert not (store / "X_1h.csv").exists()


_YAML_VALUES = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-(10**6), 10**6),
        st.floats(allow_nan=True, allow_infinity=True),
        st.text(max_size=10),
    ),
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
_REAL_RAW = yaml.safe_load(REAL.read_text())


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, inner in value.items():
            found += _paths(inner, (*prefix, key))
    elif isinstance(value, list):
        for index, inner in enumerate(value):
            found += _paths(inner, (*prefix, index))
    return found


_REAL_PATHS = _paths(_REAL_RAW)


@settings(max_examples=150, deadline=None)
@given(path=st.sampled_from(_REAL_PATHS), value=_YAML_VALUES)
def test_fuzzed_strategies_raise_only_strategy_config_errors(
    path: tuple[Any, ...], value: Any
) -> None:
    raw = copy.deepcopy(_REAL_RAW)
    node: Any = raw
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value
    try:
        load_strategy_config(raw)
    except StrategyConfigError as exc:
        assert len(str(exc)) < 2000


@settings(max_examples=100, deadline=None)
@given(text=st.text(max_size=300))
def test_fuzzed_yaml_text_raises_only_strategy_config_errors(
    tmp_path_factory: Any, text: str
) -> None:
    path = tmp_path_factory.mktemp("fuzz") / "s.yaml"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    with contextlib.suppress(StrategyConfigError):
        load_strategy_config(path)


# --- the list in docs/errors.md --------------------------------------------------------------

ALL_CASE_IDS = (
    [c.id for c in IMPORT_CASES]
    + [c[0] for c in STORE_CASES]
    + [c.id for c in STRATEGY_CASES]
    + [c[0] for c in TRAIN_CASES]
    + [c.id for c in MODEL_CASES]
)


def test_docs_list_every_case() -> None:
    text = (REPO_ROOT / "docs" / "errors.md").read_text()
    missing = [case for case in ALL_CASE_IDS if f"`{case}`" not in text]
    assert not missing, f"docs/errors.md lacks {missing}"
    assert len(ALL_CASE_IDS) == len(set(ALL_CASE_IDS))


@pytest.mark.parametrize("command", ["train", "validate"])
def test_a_strategy_path_too_long_for_the_system_is_exit_2(
    command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A 300-character name was "unexpected error: OSError(36, ...)" with exit 1."""
    path = str(tmp_path / ("s" * 300 + ".yaml"))
    train = ["train", path, "--start", "2017-01-01", "--end", "2017-03-01", "--data-dir", path]
    args = train if command == "train" else ["strategies", "validate", path]
    code, out, err = run_cli(capsys, args)
    assert code == 2 and out == ""
    assert_one_error_line(err, "cannot be read (File name too long)")
