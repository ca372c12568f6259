from __future__ import annotations

import copy
import os
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from ktrdr.config import load_strategy, load_strategy_config
from ktrdr.errors import StrategyConfigError
from tests.conftest import STRATEGIES_DIR, raised_within

pytestmark = pytest.mark.unit

REAL = STRATEGIES_DIR / "neuro_mean_reversion.yaml"


@pytest.fixture
def raw() -> dict[str, Any]:
    return yaml.safe_load(REAL.read_text())


@pytest.mark.parametrize("path", sorted(STRATEGIES_DIR.glob("*.yaml")), ids=lambda p: p.stem)
def test_every_shipped_strategy_is_valid(path: Path) -> None:
    config = load_strategy_config(path)
    assert config["name"] == path.stem


def test_resolved_config_fills_defaults_and_is_stable(raw: dict[str, Any]) -> None:
    raw["indicators"][0] = {"name": "rsi", "type": "rsi"}
    config = load_strategy_config(raw)
    assert config["indicators"][0] == {
        "name": "rsi",
        "type": "rsi",
        "period": 14,
        "source": "close",
    }
    assert config["training"]["feature_importance"] == {"repeats": 5}
    # A resolved config re-validates to itself (StrategyTrainer re-validates dicts).
    assert load_strategy_config(config) == config


def test_overrides_are_applied_before_validation_and_kept(raw: dict[str, Any]) -> None:
    config = load_strategy_config(
        raw, {"training.epochs": 5, "training.batch_size": 64, "indicators.0.period": 10}
    )
    assert config["training"]["epochs"] == 5
    assert config["training"]["batch_size"] == 64
    assert config["indicators"][0]["period"] == 10
    with pytest.raises(StrategyConfigError, match=r"<dict>: training.epochs: .*greater than or"):
        load_strategy_config(raw, {"training.epochs": 0})
    with pytest.raises(StrategyConfigError, match=r"indicators\.9 is not an index"):
        load_strategy_config(raw, {"indicators.9.period": 3})


def test_input_dict_is_not_modified(raw: dict[str, Any]) -> None:
    before = copy.deepcopy(raw)
    load_strategy_config(raw, {"training.epochs": 3})
    assert raw == before


def test_older_layout_with_model_training_is_normalised(raw: dict[str, Any]) -> None:
    old = copy.deepcopy(raw)
    old["model"]["training"] = old.pop("training")
    with pytest.warns(DeprecationWarning, match="model.training are deprecated"):
        config = load_strategy_config(old, {"training.epochs": 7})
    assert config["training"]["epochs"] == 7
    assert "training" not in config["model"]
    both = copy.deepcopy(old)
    both["training"] = raw["training"]
    with pytest.raises(StrategyConfigError, match="both present"):
        load_strategy_config(both)


def _set(raw: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    node: Any = raw
    parts = path.split(".")
    for part in parts[:-1]:
        node = node[int(part)] if isinstance(node, list) else node[part]
    last = parts[-1]
    if value is _DELETE:
        del node[last]
    elif isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value
    return raw


_DELETE = object()

VIOLATIONS = [
    ("name", "bad name!", r"name: String should match pattern"),
    ("name", _DELETE, r"name: required key is missing"),
    ("surprise", 1, r"surprise: unknown key; valid keys here: name, description"),
    ("training.epoch", 5, r"training.epoch: unknown key; valid keys here: epochs"),
    ("training.epochs", -1, r"training.epochs: Input should be greater than or equal to 1"),
    ("training.optimizer", "adamax", r"training.optimizer: Input should be 'adam'"),
    (
        "training.data_split.train",
        0.8,
        r"training.data_split: train \+ validation \+ test must be 1",
    ),
    ("training.data_split.test", 0.0, r"training.data_split.test: Input should be greater than 0"),
    ("training.labels.label_lookahead", 0, r"training.labels.label_lookahead"),
    ("training.labels.source", "triple_barrier", r"training.labels.source"),
    ("training.class_weights", [1, 1], r"training.class_weights"),
    (
        "training.early_stopping.monitor",
        "val_los",
        r"training.early_stopping.monitor: Input should be 'val_loss' or 'val_accuracy'",
    ),
    ("training.lr_scheduler", {"type": "exponential"}, r"training.lr_scheduler"),
    ("training_data.timeframes", ["2h"], r"training_data.timeframes: unknown timeframe '2h'"),
    ("training_data.symbols", ["../etc"], r"training_data.symbols\[0\]"),
    ("training_data.symbols", [], r"training_data.symbols"),
    ("indicators.0.type", "rsx", r"indicators\[0\].type: unknown indicator type 'rsx'; use one of"),
    (
        "indicators.0.perod",
        14,
        r"indicators\[0\].perod: not a parameter of rsi \(it takes period, source\)",
    ),
    ("indicators.0.period", -3, r"indicators\[0\].period: must be between 2 and"),
    ("indicators.0.period", 14.5, r"indicators\[0\].period: must be a whole number"),
    ("indicators.0.source", "vwap", r"indicators\[0\].source: must be one of open"),
    ("indicators.0.normalize", "close", r"indicators\[0\].normalize: not a parameter of rsi"),
    ("indicators.1.fast_period", 30, r"indicators\[1\].fast_period: must be < slow_period"),
    (
        "indicators.1.name",
        "rsi",
        r"indicators\[1\].name: 'rsi' is already the name of indicators\[0\]",
    ),
    (
        "fuzzy_sets.rsi.neutral.parameters",
        [70, 50, 30],
        r"fuzzy_sets.rsi.neutral: triangular parameters must satisfy a <= b <= c",
    ),
    ("fuzzy_sets.rsi.neutral.parameters", [1, 2], r"triangular takes 3 parameters"),
    (
        "fuzzy_sets.rsi.neutral",
        {"type": "gaussian", "parameters": [50, 0]},
        r"gaussian sigma must be > 0",
    ),
    (
        "fuzzy_sets.rsi.neutral",
        {"type": "sigmoid", "parameters": [1, 2]},
        r"fuzzy_sets.rsi.neutral.type",
    ),
    (
        "fuzzy_sets.macd_histo",
        {"x": {"type": "triangular", "parameters": [1, 2, 3]}},
        r"fuzzy_sets.macd_histo: no indicator produces column .macd_histo.; columns are rsi",
    ),
    ("model.architecture.activation", "swish", r"model.architecture.activation"),
    ("model.architecture.dropout", 1.0, r"model.architecture.dropout: Input should be less than 1"),
    ("model.architecture.hidden_layers", [], r"model.architecture.hidden_layers"),
    ("model.features.lookback_periods", -1, r"model.features.lookback_periods"),
    ("model.type", "lstm", r"model.type: Input should be 'mlp'"),
]


@pytest.mark.parametrize(("path", "value", "message"), VIOLATIONS, ids=[v[0] for v in VIOLATIONS])
def test_each_schema_violation_names_file_and_key(
    raw: dict[str, Any], tmp_path: Path, path: str, value: Any, message: str
) -> None:
    file = tmp_path / "strategy.yaml"
    file.write_text(yaml.safe_dump(_set(raw, path, value)))
    with pytest.raises(StrategyConfigError, match=f"^{file}: .*{message}"):
        load_strategy_config(file)


def test_an_unused_indicator_is_an_error(raw: dict[str, Any]) -> None:
    raw["indicators"].append({"name": "atr", "type": "atr", "period": 14})
    with pytest.raises(
        StrategyConfigError,
        match=r"indicators\[2\]: 'atr' is computed but no "
        "fuzzy set uses",
    ):
        load_strategy_config(raw)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "the file is empty"),
        ("- a\n- b\n", "expected a YAML mapping .* got list"),
        ("just text", "expected a YAML mapping .* got str"),
        ("name: [unclosed\n", "invalid YAML at line 2"),
        # Said as the line and the problem, never as PyYAML's repr ("ConstructorError(None,...").
        (
            "name: x\nmodel: !!python/object:os.system {}\n",
            r"s.yaml: invalid YAML at line 2, column 8: could not determine a constructor for "
            r"the tag 'tag:yaml.org,2002:python/object:os.system'$",
        ),
        ("name: x\n? [a, b]\n: 1\n", r"invalid YAML at line 2, column 3: found unhashable key$"),
    ],
)
def test_files_that_are_not_strategies(tmp_path: Path, content: str, message: str) -> None:
    file = tmp_path / "s.yaml"
    file.write_text(content)
    with pytest.raises(StrategyConfigError, match=message):
        load_strategy_config(file)


def test_missing_and_huge_files(tmp_path: Path) -> None:
    with pytest.raises(StrategyConfigError, match="strategy file not found"):
        load_strategy_config(tmp_path / "nope.yaml")
    huge = tmp_path / "huge.yaml"
    huge.write_text("a: " + "x" * 1_100_000)
    with pytest.raises(StrategyConfigError, match="larger than"):
        load_strategy_config(huge)


def test_typed_model_is_available() -> None:
    config = load_strategy(REAL)
    assert config.training.labels.label_lookahead == 24
    assert config.model.architecture.hidden_layers == [50, 25]


@pytest.mark.parametrize(
    ("key", "value", "path"),
    [
        ("training.learning_rate", float("nan"), "training.learning_rate"),
        ("training.weight_decay", float("inf"), "training.weight_decay"),
        ("training.class_weights", [1.0, float("nan"), 1.0], "training.class_weights[1]"),
        (
            "training.early_stopping",
            {"min_delta": float("nan")},
            "training.early_stopping.min_delta",
        ),
        ("training.labels.zigzag_threshold", float("nan"), "training.labels.zigzag_threshold"),
        ("fuzzy_sets.rsi.oversold.parameters", [0, 0, float("nan"), 35], "parameters[2]"),
    ],
)
def test_non_finite_numbers_fail_validation_with_their_key(
    raw: dict[str, Any], key: str, value: Any, path: str
) -> None:
    with pytest.raises(StrategyConfigError, match="must be a finite number") as caught:
        load_strategy_config(raw, overrides={key: value})
    assert path in str(caught.value)


def test_a_non_finite_indicator_parameter_names_its_key(raw: dict[str, Any]) -> None:
    raw["indicators"][0]["period"] = float("nan")
    with pytest.raises(StrategyConfigError, match=r"indicators\[0\]\.period: must be a finite"):
        load_strategy_config(raw)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("training.epochs", True),
        ("training.batch_size", False),
        ("training.learning_rate", "nan"),
        ("training.epochs", "5"),
        ("model.architecture.hidden_layers", [8, True]),
        ("model.features.include_price_context", 1),
    ],
)
def test_booleans_are_not_numbers_and_strings_are_not_either(
    raw: dict[str, Any], key: str, value: Any
) -> None:
    with pytest.raises(StrategyConfigError, match=key.split(".")[-1]):
        load_strategy_config(raw, overrides={key: value})


def test_hostile_yaml_costs_little(tmp_path: Path) -> None:
    # Nine levels of nine aliases: 2 KB that expand to 387 million values.
    lines = ["a0: &a0 [1, 2, 3, 4, 5, 6, 7, 8, 9]"]
    for level in range(1, 9):
        refs = ", ".join([f"*a{level - 1}"] * 9)
        lines.append(f"a{level}: &a{level} [{refs}]")
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text("\n".join(lines) + "\nname: x\n")
    with pytest.raises(StrategyConfigError, match="expands to more than"):
        load_strategy_config(bomb)
    deep = tmp_path / "deep.yaml"
    deep.write_text("a: " + "[" * 5000 + "]" * 5000 + "\n")
    with pytest.raises(StrategyConfigError, match="nested deeper than 32 levels"):
        load_strategy_config(deep)
    duplicate = tmp_path / "duplicate.yaml"
    duplicate.write_text(REAL.read_text() + "\nname: other\n")
    with pytest.raises(StrategyConfigError, match=r"duplicate key 'name' at line \d+"):
        load_strategy_config(duplicate)
    with pytest.raises(StrategyConfigError, match="is a folder"):
        load_strategy_config(tmp_path)
    nested: dict[str, Any] = {}
    node = nested
    for _ in range(10_000):
        node["x"] = {}
        node = node["x"]
    with pytest.raises(StrategyConfigError, match="nested deeper"):
        load_strategy_config(nested)
    with pytest.raises(StrategyConfigError, match="at most 32 parts"):
        load_strategy_config(REAL, overrides={".".join(["x"] * 5000): 1})


def test_messages_never_print_a_huge_value(raw: dict[str, Any]) -> None:
    raw["indicators"][0]["period"] = [list(range(10_000))] * 4
    raw["indicators"][0]["type"] = "rsi"
    with pytest.raises(StrategyConfigError) as caught:
        load_strategy_config(raw)
    assert len(str(caught.value)) < 600 and "indicators[0].period" in str(caught.value)
    raw = yaml.safe_load(REAL.read_text())
    raw["indicators"][0]["type"] = "x" * 1_000_000
    with pytest.raises(StrategyConfigError, match="unknown indicator type") as caught:
        load_strategy_config(raw)
    assert len(str(caught.value)) < 600


@pytest.mark.parametrize("kind", ["fifo", "device"])
def test_a_strategy_path_that_is_no_regular_file_is_refused_unread(
    tmp_path: Path, kind: str
) -> None:
    if kind == "fifo":
        path = tmp_path / "strategy.yaml"
        os.mkfifo(path)  # no writer: opening it for reading would wait forever
    else:
        path = Path("/dev/zero")  # endless: reading it all would exhaust memory
    error = raised_within(10, lambda: load_strategy_config(path))
    assert isinstance(error, StrategyConfigError), error
    assert f"{path}: not a regular file" in str(error)


def test_a_path_the_system_cannot_open_is_said_in_words(tmp_path: Path) -> None:
    """A 300-character file name was "unexpected error: OSError(36, ...)" with exit 1."""
    with pytest.raises(StrategyConfigError, match=r": cannot be read \(File name too long\)$"):
        load_strategy_config(tmp_path / ("s" * 300 + ".yaml"))
    (tmp_path / "loop.yaml").symlink_to(tmp_path / "loop.yaml")
    with pytest.raises(StrategyConfigError, match=r"loop.yaml: cannot be read \(Too many levels"):
        load_strategy_config(tmp_path / "loop.yaml")
    with pytest.raises(StrategyConfigError, match=r": is a folder; give a strategy YAML file$"):
        load_strategy_config(tmp_path)


def test_a_network_deeper_than_a_saved_model_may_be_is_refused_before_training() -> None:
    """65 hidden layers once validated, trained and saved, and then the model did not load."""
    from ktrdr.neural.limits import MAX_HIDDEN_LAYERS

    path = STRATEGIES_DIR / "neuro_mean_reversion.yaml"
    deepest = {"model.architecture.hidden_layers": [2] * MAX_HIDDEN_LAYERS}
    assert len(load_strategy_config(path, deepest)["model"]["architecture"]["hidden_layers"]) == 64
    with pytest.raises(StrategyConfigError, match=r"model\.architecture\.hidden_layers"):
        load_strategy_config(path, {"model.architecture.hidden_layers": [2] * 65})


def test_a_parsed_strategy_loads_like_its_file_and_keeps_its_name_through_pickling() -> None:
    import pickle

    from ktrdr.config.loader import ParsedStrategy, read_strategy

    path = STRATEGIES_DIR / "neuro_mean_reversion.yaml"
    parsed = read_strategy(path)
    overrides = {"training.epochs": 3}
    assert load_strategy_config(parsed, overrides) == load_strategy_config(path, overrides)
    assert parsed["training"]["epochs"] != 3  # each load changes its own copy
    again = pickle.loads(pickle.dumps(parsed))
    assert isinstance(again, ParsedStrategy) and again.source == str(path) and again == parsed
    with pytest.raises(StrategyConfigError, match=rf"^{re.escape(str(path))}: training.epochs"):
        load_strategy_config(again, {"training.epochs": -1})
