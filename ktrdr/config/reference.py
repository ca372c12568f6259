"""The strategy reference, generated from the indicator registry and the pydantic schema.

``render_reference()`` is the text of ``docs/strategy-reference.md``;
``python scripts/generate-strategy-reference.py`` writes it, and a test fails when the committed
file differs, so the reference cannot drift from the code.
"""

from __future__ import annotations

import types
import typing
from typing import Any

from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from ktrdr.config import schema
from ktrdr.indicators.registry import REGISTRY, IndicatorSpec

# (section heading, model, key path shown in the table)
_SECTIONS: tuple[tuple[str, type[BaseModel], str], ...] = (
    ("Top level", schema.StrategyConfig, ""),
    ("training_data", schema.TrainingDataConfig, "training_data."),
    ("A fuzzy set (fuzzy_sets.COLUMN.SET)", schema.MembershipConfig, "fuzzy_sets.COLUMN.SET."),
    ("model", schema.ModelConfig, "model."),
    ("model.architecture", schema.ArchitectureConfig, "model.architecture."),
    ("model.features", schema.FeaturesConfig, "model.features."),
    ("training", schema.TrainingConfig, "training."),
    ("training.labels", schema.LabelsConfig, "training.labels."),
    ("training.data_split", schema.DataSplitConfig, "training.data_split."),
    ("training.early_stopping", schema.EarlyStoppingConfig, "training.early_stopping."),
    (
        "training.feature_importance",
        schema.FeatureImportanceConfig,
        "training.feature_importance.",
    ),
    ("training.lr_scheduler: plateau", schema.PlateauScheduler, "training.lr_scheduler."),
    ("training.lr_scheduler: cosine", schema.CosineScheduler, "training.lr_scheduler."),
    ("training.lr_scheduler: step", schema.StepScheduler, "training.lr_scheduler."),
)

_HEADER = """# Strategy reference

Generated from the code by `python scripts/generate-strategy-reference.py`; do not edit by
hand (`tests/unit/config/test_reference.py` fails when this file and the code differ).
`ktrdr indicators list` prints the indicator table in a terminal, and
`ktrdr strategies validate FILE` checks a strategy against all of it.

## Overrides (`--set`, sweeps, Python)

`--set key=value` (and a sweep's `grid` and `fixed`, and the `overrides` mapping in Python)
takes dotted key paths into the strategy: `training.epochs=5`,
`training.early_stopping.patience=3`, `indicators.0.period=21` (list items by index, from 0).
Values are read as YAML: `5` is an integer, `0.001` a float, `null` removes an optional
section, `[1h, 4h]` a list.

A dotted key changes one value and keeps the rest of its section. A mapping given as the value
replaces the whole section at that key: `training.early_stopping={patience: 3}` leaves
`monitor` and `min_delta` at their defaults, whatever the file said. In Python the same holds:
`{"training.early_stopping.patience": 3}` merges, `{"training.early_stopping": {...}}` replaces.
"""


def render_reference() -> str:
    """The whole reference as Markdown."""
    parts = [_HEADER, _indicators(), _shapes()]
    parts.append("## Strategy keys\n")
    for title, model, prefix in _SECTIONS:
        parts.append(_section(title, model, prefix))
    return "\n".join(parts).rstrip() + "\n"


def indicator_rows() -> list[dict[str, str]]:
    """One row per indicator type: type, parameters, outputs, stable history, description."""
    rows = []
    for spec in sorted(REGISTRY.values(), key=lambda s: s.type):
        defaults = {p.name: p.default for p in spec.params}
        rows.append(
            {
                "type": spec.type,
                "parameters": _parameters(spec),
                "outputs": ", ".join(spec.output_columns("NAME")),
                "history": str(spec.stable_history_bars(defaults)),
                "description": spec.description,
            }
        )
    return rows


def _parameters(spec: IndicatorSpec) -> str:
    items = [
        f"`{p.name}` {p.kind.__name__} = {p.default} ({_bound(p.minimum)}..{_bound(p.maximum)})"
        for p in spec.params
    ]
    if spec.takes_source:
        items.append("`source` = close (open, high, low, close, volume)")
    if spec.takes_normalize:
        items.append("`normalize` = none (none, close)")
    return "; ".join(items) or "-"


def _bound(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def _indicators() -> str:
    lines = [
        "## Indicators",
        "",
        "An indicator is `{name: NAME, type: TYPE, ...parameters}` in `indicators`; its output",
        "columns are named after NAME. Stable history is the number of bars, at the default",
        "parameters, after which a value no longer depends on where the data started.",
        "",
        "| type | parameters (default, range) | output columns | stable history | what it is |",
        "|---|---|---|---:|---|",
    ]
    for row in indicator_rows():
        lines.append(
            f"| `{row['type']}` | {row['parameters']} | {row['outputs']} | {row['history']} "
            f"| {row['description']} |"
        )
    return "\n".join(lines) + "\n"


def _shapes() -> str:
    lines = [
        "## Fuzzy shapes",
        "",
        "A fuzzy set is `{type: SHAPE, parameters: [...]}` under `fuzzy_sets.COLUMN.SET`, where",
        "COLUMN is an indicator output column. Its membership (0 to 1) is the feature",
        "`COLUMN_SET`, with `COLUMN_SET_lag_K` copies for K up to",
        "`model.features.lookback_periods` and a `TIMEFRAME_` prefix on every feature when the",
        "strategy has several timeframes.",
        "",
        "| shape | parameters | rule |",
        "|---|---|---|",
    ]
    for shape, (parameters, rule) in schema.MEMBERSHIP_SHAPES.items():
        lines.append(f"| `{shape}` | `{parameters}` | {rule} |")
    return "\n".join(lines) + "\n"


def _section(title: str, model: type[BaseModel], prefix: str) -> str:
    lines = [f"### {title}", "", "| key | type | default | constraints |", "|---|---|---|---|"]
    for name, field in model.model_fields.items():
        lines.append(
            f"| `{prefix}{name}` | {_type(field.annotation)} | {_default(field)} | "
            f"{_constraints(field)} |"
        )
    return "\n".join(lines) + "\n"


def _type(annotation: Any) -> str:
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Literal:
        return " \\| ".join(f"`{a}`" for a in args)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type(a) for a in args)
    if origin is typing.Annotated:
        return _type(args[0])
    if origin in (list, dict):
        return f"{origin.__name__}[{', '.join(_type(a) for a in args)}]"
    if annotation is type(None):
        return "null"
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return "section"
    return getattr(annotation, "__name__", str(annotation))


def _default(field: FieldInfo) -> str:
    if field.is_required():
        return "required"
    value = field.default
    if value is PydanticUndefined and field.default_factory is not None:
        value = field.default_factory()  # type: ignore[call-arg]
    if isinstance(value, BaseModel):
        return "(section defaults)"
    return f"`{value!r}`" if value is not None else "`null`"


def _constraints(field: FieldInfo) -> str:
    found = []
    for item in field.metadata:
        for key in ("gt", "ge", "lt", "le", "min_length", "max_length", "pattern"):
            value = getattr(item, key, None)
            if value is not None:
                symbol = {"gt": ">", "ge": ">=", "lt": "<", "le": "<="}.get(key, key)
                found.append(
                    f"{symbol} {value}" if key in ("gt", "ge", "lt", "le") else f"{key} {value}"
                )
    return ", ".join(found).replace("|", "\\|") or "-"
