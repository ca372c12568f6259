"""``ktrdr models`` and ``ktrdr predict``: inspect saved models and predict with them."""

from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path
from typing import Annotated, Any

import typer
from rich import box
from rich.table import Table
from rich.text import Text

from ktrdr.cli.options import JsonOption, ModelsDirOption
from ktrdr.cli.output import emit_json, minute, stderr, stdout
from ktrdr.errors import DataError
from ktrdr.training.verdict import listing_fields, stored_verdict, summary_line

app = typer.Typer(help="List and inspect saved models.", no_args_is_help=True)


def _pct(value: Any) -> str:
    return f"{value:.1%}" if isinstance(value, int | float) else "-"


@app.command("list")
def list_(
    strategy: Annotated[str | None, typer.Argument(help="Only this strategy.")] = None,
    models_dir: ModelsDirOption = None,
    as_json: JsonOption = False,
) -> None:
    """List saved model versions with their test accuracy, both baselines, p and verdict."""
    from ktrdr.store.model_storage import ModelStorage

    infos = ModelStorage(models_dir).list_models(strategy)
    verdicts = [stored_verdict(i.test_metrics) if i.error is None else None for i in infos]
    if as_json:
        emit_json(
            [
                {
                    "model_id": i.model_id,
                    "path": str(i.path),
                    "strategy": i.strategy,
                    "version": i.version,
                    "symbols": i.symbols,
                    "timeframes": i.timeframes,
                    "created_at": i.created_at,
                    "test_accuracy": i.test_accuracy,
                    "baseline_accuracy": i.baseline_accuracy,
                    **listing_fields(v),
                    "latest": i.is_latest,
                    "set_latest": i.is_set_latest,
                    "error": i.error,
                    "overrides": i.overrides,
                    "sweep": i.sweep,
                }
                for i, v in zip(infos, verdicts, strict=True)
            ]
        )
        return
    if not infos:
        stdout.print("No saved models; train one with 'ktrdr train'.")
        return
    columns = (
        "model id",
        "symbols",
        "timeframes",
        "test acc.",
        "train majority",
        "test majority",
        "p",
        "verdict",
        "seed",
        "created",
        "latest",
        "overrides",
    )
    rows = [
        (
            i.model_id,
            ",".join(i.symbols),
            ",".join(i.timeframes),
            _pct(i.test_accuracy),
            _pct(i.baseline_accuracy),
            "-" if v is None else _pct(v["test_majority_baseline"]),
            "-" if v is None else f"{v['p_value']:.3g}",
            "-" if v is None else v["label"],
            "" if i.seed is None else str(i.seed),
            i.created_at[:19],
            _latest_mark(i),
            _overrides(i.overrides, i.sweep),
        )
        if i.error is None
        else (i.model_id, "", "", "", "", "", "", i.error, "", "", _latest_mark(i), "")
        for i, v in zip(infos, verdicts, strict=True)
    ]
    if not stdout.is_terminal:
        # Piped or redirected: whole ids, one tab-separated line per version, for other tools.
        # Written directly: Rich would expand the tabs into spaces.
        sys.stdout.write("".join("\t".join(line) + "\n" for line in [columns, *rows]))
        return
    # In a terminal, 80 columns: the symbols and timeframes are in the id, which is never cut;
    # the verdict, the date, the seed and the overrides go on a second line under it, where they
    # may wrap.
    table = Table(
        title="Saved models: test accuracy, majority baselines (training, test), p",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
    )
    table.add_column(
        "model (* newest of its set)", overflow="fold", min_width=max(len(r[0]) + 2 for r in rows)
    )
    for column in ("acc.", "train", "test", "p"):
        table.add_column(column, no_wrap=True, justify="right")
    for row in rows:
        seed = f"seed {row[8]}" if row[8] else ""
        details = " · ".join(part for part in (row[7], row[9][:10], seed, row[11]) if part)
        cell = Text(row[0] + (" *" if row[10] else ""))
        if details:
            cell.append("\n  " + details, style="dim")
        table.add_row(cell, row[3], row[4], row[5], row[6])
    stdout.print(table)


def _latest_mark(info: Any) -> str:
    """ "*" on the newest version of each symbol set (what ``--symbol`` takes for ``latest``),
    "latest" added on the strategy's newest of any set."""
    marks = ["*"] if info.is_set_latest else []
    if info.is_latest:
        marks.append("latest")
    return " ".join(marks)


@app.command("plot")
def plot(
    path: Annotated[str, typer.Argument(help="Version folder or id (strategy/version).")],
    models_dir: ModelsDirOption = None,
) -> None:
    """Draw a version's pictures again (curves, confusion matrix, importance) from its metrics."""
    from ktrdr.store.model_storage import ModelStorage

    for picture in ModelStorage(models_dir).plot(path):
        stdout.print(str(picture))


def _overrides(overrides: dict[str, Any] | None, sweep: dict[str, str] | None) -> str:
    text = " ".join(f"{k}={json.dumps(v)}" for k, v in (overrides or {}).items())
    if sweep:
        text = f"[sweep {sweep.get('name')} {sweep.get('run_id')}] {text}".strip()
    return text


@app.command("show")
def show(
    path: Annotated[str, typer.Argument(help="Version folder or id (strategy/version).")],
    models_dir: ModelsDirOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show one version's manifest summary, split boundaries and test metrics."""
    from ktrdr.store.layout import PICTURE_FILES
    from ktrdr.store.model_storage import ModelStorage, content_digest

    storage = ModelStorage(models_dir)
    resolved = storage.resolve(path)
    artifact = storage.load(resolved)
    manifest, metrics = artifact.manifest, artifact.metrics
    if as_json:
        emit_json(
            {
                "path": str(resolved),
                "content_digest": content_digest(resolved),
                "manifest": manifest,
                "metrics": metrics,
            }
        )
        return
    test = metrics.get("test_metrics", {})
    stdout.print(Text(f"{manifest.get('model_id', resolved.name)}", style="bold"), f" ({resolved})")
    stdout.print(f"content digest {content_digest(resolved)}", markup=False)
    stdout.print(
        f"strategy {manifest['strategy']} · symbols {', '.join(manifest['symbols'])} · "
        f"timeframes {', '.join(manifest['timeframes'])} · "
        f"{len(manifest['feature_names'])} features · seed {manifest['seed']}"
    )
    stdout.print(f"architecture {json.dumps(manifest['architecture'])}")
    listed = json.loads((resolved / "manifest.json").read_text()).get("files", {})
    pictures = [name for name in PICTURE_FILES if name in listed]
    if pictures:
        stdout.print("pictures " + " ".join(str(resolved / name) for name in pictures))
    else:
        stdout.print(f"no pictures yet; draw them with 'ktrdr models plot {path}'")
    if manifest.get("overrides") or manifest.get("sweep"):
        stdout.print(f"overrides {_overrides(manifest.get('overrides'), manifest.get('sweep'))}")
    stdout.print(
        f"warm-up {manifest['warmup_bars']} bars; stable history "
        f"{manifest['stable_history_bars']} bars"
    )
    # Whole at 80 columns: bar times to the minute, in UTC as stored.
    table = Table(title="Splits", box=box.SIMPLE_HEAD, pad_edge=False)
    for column in ("split", "symbol", "first bar (UTC)", "last bar (UTC)"):
        table.add_column(column, no_wrap=column != "symbol", overflow="fold")
    table.add_column("rows", justify="right", no_wrap=True)
    splits = manifest.get("splits", {})
    # Chronological: train, validation, test (the manifest keeps them in key order).
    for split in sorted(splits, key=lambda name: _SPLIT_ORDER.get(name, len(_SPLIT_ORDER))):
        for symbol, bounds in splits[split].items():
            table.add_row(
                split,
                symbol,
                minute(bounds["start"]),
                minute(bounds["end"]),
                str(bounds["rows"]),
            )
    stdout.print(table)
    verdict = stored_verdict(test)
    if verdict is not None:
        stdout.print(
            f"test {summary_line(verdict)} · macro F1 {test.get('f1_score', 0):.3f} · "
            f"loss {test.get('loss', 0):.4f}"
        )
        for sentence in verdict["sentences"]:
            stdout.print(sentence)


_SPLIT_ORDER = {"train": 0, "validation": 1, "test": 2}


def predict(
    path: Annotated[str, typer.Argument(help="Version folder or id (strategy/version).")],
    symbol: Annotated[str, typer.Option("--symbol", "-s", help="Symbol to predict.")],
    start: Annotated[str, typer.Option(help="First day to predict (YYYY-MM-DD).")],
    end: Annotated[str, typer.Option(help="Last day to predict, inclusive (YYYY-MM-DD).")],
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Write all predictions to this CSV file."),
    ] = None,
    data_dir: Annotated[
        Path | None,
        typer.Option("--data-dir", help="Bar store (default: $KTRDR_DATA_DIR, else ./data)."),
    ] = None,
    models_dir: ModelsDirOption = None,
    rows: Annotated[int, typer.Option(help="Predictions shown on screen.", min=0)] = 10,
    threads: Annotated[
        int | None,
        typer.Option("--threads", min=1, help="Torch's thread count (default: chosen)."),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Predict BUY/HOLD/SELL for a symbol's stored bars with a saved model.

    Loads each of the model's timeframes from the store with enough history before --start for
    indicator values that match training, and reports predictions from --start to --end.
    """
    from ktrdr.data.store import load_bars
    from ktrdr.data.validation import check_date_range
    from ktrdr.inference.trained_model import TrainedModel
    from ktrdr.store.model_storage import ModelStorage

    storage = ModelStorage(models_dir)
    # "strategy/latest" is the newest version trained on this symbol, never another set's.
    resolved = storage.resolve(path, symbol=symbol)
    model = TrainedModel(storage.load(resolved), path=resolved, threads=threads)
    first, stop = check_date_range(start, end)
    max_gap = model.strategy_config["training_data"].get("max_gap")
    frames = {
        tf: load_bars(
            symbol,
            tf,
            start,
            end,
            data_dir=data_dir,
            history_bars=model.stable_history_bars[tf],
            max_gap=max_gap,
        )
        for tf in model.timeframes
    }
    bars = frames if len(frames) > 1 else frames[model.base_timeframe]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        predictions = model.predict(bars, start=first, symbol=symbol)
    for warning in caught:
        stderr.print(f"Warning: {warning.message}", markup=False)
    predictions = predictions[predictions.index < stop]
    if output is not None:
        try:
            output.parent.mkdir(parents=True, exist_ok=True)
            predictions.to_csv(output, index_label="timestamp")
        except OSError as exc:
            raise DataError(
                f"cannot write predictions to {output} ({exc.strerror or exc}); choose a "
                "writable --output path"
            ) from exc
    counts = predictions["class"].astype(str).value_counts().to_dict()
    if as_json:
        emit_json(
            {
                "success": True,
                "model": str(resolved),
                "symbol": symbol,
                "rows": len(predictions),
                "class_counts": counts,
                "output": str(output) if output else None,
                "predictions": json.loads(
                    predictions.assign(**{"class": predictions["class"].astype(str)})
                    .rename_axis("timestamp")
                    .reset_index()
                    .to_json(orient="records", date_format="iso")
                )
                if output is None
                else None,
            }
        )
        return
    stdout.print(
        f"{len(predictions)} predictions for {symbol} {start} .. {end} with "
        f"{resolved.name}: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
    )
    if rows and len(predictions):
        table = Table()
        for column in ("timestamp", "class", "prob_buy", "prob_hold", "prob_sell"):
            table.add_column(column, justify="right")
        for stamp, row in predictions.tail(rows).iterrows():
            table.add_row(
                str(stamp),
                str(row["class"]),
                f"{row['prob_buy']:.3f}",
                f"{row['prob_hold']:.3f}",
                f"{row['prob_sell']:.3f}",
            )
        stdout.print(table)
    if output is not None:
        stdout.print(f"wrote {output}")
