"""``ktrdr strategies``: list and validate strategy files."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from ktrdr import settings
from ktrdr.cli.output import emit_json, one_line, stdout
from ktrdr.config import load_strategy
from ktrdr.config.features import feature_names
from ktrdr.config.yaml_safety import describe_yaml_error, load_yaml
from ktrdr.errors import KtrdrError, StrategyConfigError
from ktrdr.indicators.registry import REGISTRY
from ktrdr.messages import shorten

app = typer.Typer(help="List and validate strategy files.", no_args_is_help=True)


def parse_overrides(pairs: list[str] | None) -> dict[str, Any]:
    """``key=value`` pairs into a dotted-key mapping; values are read as YAML scalars."""
    import yaml

    overrides: dict[str, Any] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise StrategyConfigError(
                f"--set {shorten(pair)!r}: expected KEY=VALUE, e.g. training.epochs=5"
            )
        try:
            overrides[key.strip()] = load_yaml(value)
        except yaml.YAMLError as exc:
            raise StrategyConfigError(
                f"--set {shorten(pair)!r}: the value is {describe_yaml_error(exc)}"
            ) from None
        except ValueError as exc:  # YamlRefused, or an integer of thousands of digits
            raise StrategyConfigError(
                f"--set {shorten(pair)!r}: value is not acceptable YAML ({shorten(exc)})"
            ) from None
    return overrides


@app.command("list")
def list_(
    directory: Annotated[
        Path | None,
        typer.Option(
            "--dir", help="Strategy folder (default: $KTRDR_STRATEGIES_DIR, else ./strategies)."
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON document.")] = False,
) -> None:
    """List the strategy files in a folder and whether each is valid."""
    folder = settings.strategies_dir(directory)
    rows: list[dict[str, Any]] = []
    for path in sorted([*folder.glob("*.yaml"), *folder.glob("*.yml")]):
        try:
            config = load_strategy(path)
            rows.append(
                {
                    "file": str(path),
                    "name": config.name,
                    "valid": True,
                    "error": None,
                    "symbols": config.training_data.symbols,
                    "timeframes": config.training_data.timeframes,
                }
            )
        except KtrdrError as exc:
            rows.append(
                {
                    "file": str(path),
                    "name": path.stem,
                    "valid": False,
                    "error": one_line(str(exc)),
                    "symbols": [],
                    "timeframes": [],
                }
            )
    if as_json:
        emit_json(rows)
        return
    if not rows:
        stdout.print(f"No strategy files in {folder}")
        return
    table = Table(title=f"Strategies in {folder}")
    for column in ("name", "symbols", "timeframes", "status", "file"):
        table.add_column(column)
    for row in rows:
        status = Text("valid") if row["valid"] else Text(f"invalid: {row['error']}", style="red")
        table.add_row(
            row["name"], ",".join(row["symbols"]), ",".join(row["timeframes"]), status, row["file"]
        )
    stdout.print(table)


@app.command("validate")
def validate(
    files: Annotated[list[Path], typer.Argument(help="Strategy YAML file(s).")],
    overrides: Annotated[
        list[str] | None,
        typer.Option("--set", help="Override a key, e.g. --set training.epochs=5 (repeatable)."),
    ] = None,
    preview: Annotated[
        bool,
        typer.Option(
            "--preview",
            help="Also load the bars and show label shares and split sizes (no training).",
        ),
    ] = False,
    start: Annotated[str | None, typer.Option(help="First day, for --preview.")] = None,
    end: Annotated[str | None, typer.Option(help="Last day, inclusive, for --preview.")] = None,
    symbols: Annotated[
        str | None, typer.Option(help="Comma-separated symbols for --preview (default: file's).")
    ] = None,
    timeframes: Annotated[
        str | None, typer.Option(help="Comma-separated timeframes for --preview.")
    ] = None,
    data_dir: Annotated[
        Path | None,
        typer.Option("--data-dir", help="Bar store for --preview (default: $KTRDR_DATA_DIR)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON document.")] = False,
) -> None:
    """Validate strategy files; exit 2 on the first invalid one, naming the key path.

    With --preview --start --end, also run the data steps (no training) and show what the run
    would train and test on: split sizes, label shares and warnings about degenerate splits.
    """
    if preview and (start is None or end is None):
        raise StrategyConfigError("--preview needs --start and --end (YYYY-MM-DD)")
    parsed = parse_overrides(overrides)
    documents = []
    for file in files:
        config = load_strategy(file, parsed)
        warmups = {}
        for indicator in config.indicators:
            params = dict(indicator.model_extra or {})
            warmups[indicator.name] = REGISTRY[indicator.type].warmup_bars(params)
        fuzzy_sets = sum(len(sets) for sets in config.fuzzy_sets.values())
        features = len(feature_names(config.model_dump(), config.training_data.timeframes))
        documents.append(
            {
                "file": str(file),
                "name": config.name,
                "valid": True,
                "symbols": config.training_data.symbols,
                "timeframes": config.training_data.timeframes,
                "indicators": warmups,
                "fuzzy_sets": fuzzy_sets,
                "features": features,
            }
        )
        if not as_json:
            labels = config.training.labels
            stdout.print(
                Text("valid", style="green"),
                f"{file}: {config.name} · "
                f"{','.join(config.training_data.symbols)} "
                f"{','.join(config.training_data.timeframes)}"
                f" · {len(config.indicators)} indicators (warm-up "
                f"{', '.join(f'{k} {v}' for k, v in warmups.items())} bars) · {fuzzy_sets} fuzzy "
                f"sets, {features} features · labels zigzag {labels.zigzag_threshold:g}/"
                f"{labels.label_lookahead} bars",
            )
        if preview:
            from ktrdr.training.preview import preview_training_data

            assert start is not None and end is not None
            report = preview_training_data(
                config.model_dump(),
                _split_names(symbols) or config.training_data.symbols,
                _split_names(timeframes) or config.training_data.timeframes,
                start,
                end,
                data_dir,
            )
            documents[-1]["preview"] = report
            if not as_json:
                _print_preview(report)
    if as_json:
        emit_json(documents if len(documents) != 1 else documents[0])


def _split_names(value: str | None) -> list[str] | None:
    names = [part.strip() for part in (value or "").split(",") if part.strip()]
    return names or None


def _print_preview(report: dict[str, Any]) -> None:
    table = Table(
        title=f"Preview: {','.join(report['symbols'])} {','.join(report['timeframes'])}, "
        f"{report['features']} features"
    )
    for column in ("split", "first bar", "last bar", "rows", "BUY", "HOLD", "SELL"):
        table.add_column(column, justify="right")
    for name, info in report["splits"].items():
        counts, shares = info["class_counts"], info["class_shares"]
        table.add_row(
            name,
            info["start"],
            info["end"],
            str(info["rows"]),
            *(f"{counts[c]} ({shares[c]:.0%})" for c in ("BUY", "HOLD", "SELL")),
        )
    stdout.print(table)
    # The warnings themselves went to stderr as the split was made (as in a training run).
    if report["warnings"]:
        stdout.print(f"{len(report['warnings'])} warning(s) about these splits: see above.")
    else:
        stdout.print("No warnings: every split has all three classes in usable numbers.")
