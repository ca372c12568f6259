"""Walk-forward on bars with a planted signal, on a random walk, and on the sample year."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from ktrdr.cli.main import main
from ktrdr.config import load_strategy_config
from ktrdr.data.store import load_bars, write_bars
from ktrdr.evaluate.walk_forward import plan_folds, walk_forward
from ktrdr.store.model_artifact import ModelArtifact, state_dict_digest
from tests.conftest import STRATEGIES_DIR
from tests.e2e.synthetic import mean_reverting_bars

pytestmark = [pytest.mark.integration, pytest.mark.slow]

STRATEGY = STRATEGIES_DIR / "neuro_mean_reversion.yaml"
CONFIG = load_strategy_config(STRATEGY, {"training.epochs": 30})


@pytest.fixture(scope="module")
def planted_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("planted")
    # The learnability test's bars: the next return leans against the RSI (a planted, causal
    # signal), or, at strength 0, a random walk with constant volatility: nothing to learn.
    write_bars("MR", "1h", mean_reverting_bars("2019-01-01", "2020-12-31", seed=3), data_dir=folder)
    write_bars(
        "RW",
        "1h",
        mean_reverting_bars("2019-01-01", "2020-12-31", strength=0.0, seed=4),
        data_dir=folder,
    )
    return folder


FOLDS = plan_folds("2019-01-01", "2020-12-31", "6M", "3M", "3M")


def test_a_planted_signal_beats_the_baseline_in_most_folds(planted_store: Path) -> None:
    result = walk_forward(CONFIG, ["MR"], ["1h"], FOLDS, data_dir=str(planted_store))
    assert len(result["folds"]) == 6
    assert result["summary"]["share_beating_baseline"] >= 4 / 6, result["folds"]


def test_a_random_walk_does_not(planted_store: Path) -> None:
    result = walk_forward(CONFIG, ["RW"], ["1h"], FOLDS, data_dir=str(planted_store))
    assert result["summary"]["share_beating_baseline"] <= 1 / 6, result["folds"]


def test_a_fold_never_reads_past_its_training_window(planted_store: Path, tmp_path: Path) -> None:
    # Change every bar after the first fold's training window: its model must not change.
    fold = FOLDS[0]
    bars = load_bars("MR", "1h", data_dir=planted_store)
    changed = bars.copy()
    later = changed.index > fold.train_end + pd.Timedelta(days=1)
    changed.loc[later, ["open", "high", "low", "close"]] *= 1.5
    write_bars("MR", "1h", changed, data_dir=tmp_path)
    from ktrdr.evaluate.walk_forward import train_folds

    window_ends = fold.train_end + pd.Timedelta(days=1)
    digests, fingerprints, test_shares = [], [], []
    for store in (planted_store, tmp_path):
        [artifact] = train_folds(CONFIG, ["MR"], ["1h"], [fold], str(store), 1, 1, None).values()
        assert isinstance(artifact, ModelArtifact), artifact
        digests.append(state_dict_digest(artifact.state_dict))
        # A read past the window would land in the fold's own test share, which never moves
        # the weights: the bars read (their fingerprint) and every split's last row must show it.
        fingerprints.append(artifact.manifest["data_fingerprint"])
        test_shares.append(artifact.manifest["splits"]["test"])
        for split, symbols in artifact.manifest["splits"].items():
            last = pd.Timestamp(symbols["MR"]["end"])
            assert last < window_ends, f"{split} ends {last}, after the window ({window_ends})"
    assert digests[0] == digests[1]
    assert fingerprints[0] == fingerprints[1]
    assert test_shares[0] == test_shares[1]


def test_the_command_on_the_sample_year(
    sample_data_dir: Path, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    # capfd, not capsys: the folds train in worker processes, whose stderr is not sys.stderr.
    code = main(
        [
            "evaluate",
            str(STRATEGY),
            "--walk-forward",
            "--train",
            "6M",
            "--test",
            "2M",
            "--step",
            "2M",
            "--start",
            "2017-01-01",
            "--end",
            "2017-12-31",
            "--data-dir",
            str(sample_data_dir),
            "--output-dir",
            str(tmp_path / "wf"),
            "--set",
            "training.epochs=5",
            "--max-parallel",
            "2",
        ]
    )
    out, err = capfd.readouterr()
    assert code == 0 and "walk-forward folds" in out and "mean accuracy" in out
    # Each fold's inner test share (5% of its window) is never what judges it: no worker warns
    # about it. They all did, once per fold, before the run said so in its spec.
    assert "the test split" not in err, err
    [folder] = list((tmp_path / "wf").iterdir())
    document = json.loads((folder / "walkforward.json").read_text())
    assert [f["test_start"] for f in document["folds"]] == [
        "2017-07-01",
        "2017-09-01",
        "2017-11-01",
    ]
    assert all(f["error"] is None and f["test_rows"] > 300 for f in document["folds"])
    assert (folder / "walkforward.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def _evaluate(store: Path, output: Path, start: str) -> list[str]:
    return [
        "evaluate",
        str(STRATEGY),
        "--walk-forward",
        "--train",
        "4M",
        "--test",
        "2M",
        "--step",
        "4M",
        "--start",
        start,
        "--end",
        "2017-12-31",
        "--data-dir",
        str(store),
        "--output-dir",
        str(output),
        "--set",
        "training.epochs=3",
    ]


def test_a_fold_whose_test_period_has_no_bars_is_its_error_row_and_the_command_exits_1(
    eurusd_1h: pd.DataFrame, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The bars end with October: the second fold trains on July..October, then has nothing to
    # test on. Its error must be its row; the first fold's result stays, and the exit says so.
    store = tmp_path / "store"
    write_bars("EURUSD", "1h", eurusd_1h[eurusd_1h.index < "2017-11-01"], data_dir=store)
    code = main(_evaluate(store, tmp_path / "wf", "2017-03-01"))
    captured = capsys.readouterr()
    assert code == 1, captured.err
    assert "walk-forward folds" in captured.out and "mean accuracy" in captured.out
    assert "1 of 2 fold(s) failed (fold 2; fold 2: DataError" in " ".join(captured.err.split())
    [folder] = list((tmp_path / "wf").iterdir())
    document = json.loads((folder / "walkforward.json").read_text())
    first, second = document["folds"]
    assert first["error"] is None and first["test_rows"] > 300
    assert second["error"].startswith("DataError") and "2017-11" in second["error"]
    assert document["success"] is False and "1 of 2 fold(s)" in document["error"]["message"]
    assert document["summary"]["failed_folds"] == 1
    assert document["summary"]["mean_accuracy"] == first["accuracy"]
    assert (folder / "walkforward.png").exists()


def test_a_walk_forward_whose_every_fold_failed_exits_1_with_no_result(
    eurusd_1h: pd.DataFrame, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Bars from November only: no fold's training window holds any.
    store = tmp_path / "store"
    write_bars("EURUSD", "1h", eurusd_1h[eurusd_1h.index >= "2017-11-01"], data_dir=store)
    code = main([*_evaluate(store, tmp_path / "wf", "2017-03-01"), "--json"])
    captured = capsys.readouterr()
    assert code == 1, captured.err
    document = json.loads(captured.out)
    assert document["success"] is False
    assert document["error"]["message"].startswith("every fold failed (fold 1, 2;")
    assert all(fold["error"] for fold in document["folds"])
    assert document["summary"]["mean_accuracy"] is None
    folder = Path(document["folder"])
    assert json.loads((folder / "walkforward.json").read_text())["success"] is False
    assert not (folder / "walkforward.png").exists()
