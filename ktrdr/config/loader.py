"""Load a strategy (YAML or dict), apply overrides, validate, fill defaults.

See docs/strategy-reference.md.
"""

from __future__ import annotations

import copy
import logging
import os
import types
import typing
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from ktrdr.config.schema import StrategyConfig
from ktrdr.config.semantics import check_semantics
from ktrdr.config.yaml_safety import (
    MAX_DEPTH,
    MAX_EXPANDED_NODES,
    YamlRefused,
    describe_yaml_error,
    load_yaml,
)
from ktrdr.errors import StrategyConfigError
from ktrdr.fileio import NotARegularFile, open_regular_file
from ktrdr.messages import shorten

logger = logging.getLogger(__name__)

# Far more than any real strategy, from a file or in an HTTP body alike (a character is at least
# one byte, so text under the character limit is under the byte limit once encoded).
MAX_STRATEGY_BYTES = 1_000_000
MAX_STRATEGY_CHARS = MAX_STRATEGY_BYTES
_SHOWN_ERRORS = 8

StrategySource = str | os.PathLike[str] | Mapping[str, Any]


class ParsedStrategy(dict[str, Any]):
    """A strategy's parsed YAML mapping that remembers where it came from.

    Read a file once with ``read_strategy`` and load it as often as needed (a sweep's thousands
    of runs, each with its own overrides): every load validates a fresh copy, and its errors
    name ``source`` (the file, or ``strategy_yaml`` for a request body) rather than ``<dict>``.
    It is a plain dict otherwise, so anything that takes a strategy dict takes it.
    """

    def __init__(self, raw: Mapping[str, Any], source: str) -> None:
        super().__init__(raw)
        self.source = source

    def __reduce__(self) -> tuple[Any, ...]:
        # Pickled (into a worker or a Ray task) with its source, not as a bare dict.
        return (ParsedStrategy, (dict(self), self.source))


def read_strategy(path: str | os.PathLike[str]) -> ParsedStrategy:
    """The strategy file at ``path`` read and parsed once, with the limits and messages of
    ``load_strategy_config``; StrategyConfigError naming the file otherwise."""
    raw, source = _read(path)
    return ParsedStrategy(raw, source)


def load_strategy_config(
    path_or_dict: StrategySource, overrides: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The resolved strategy as a plain dict (defaults filled in, overrides applied).

    Raises StrategyConfigError naming the file (``<dict>`` for a dict, a ParsedStrategy's
    source for one) and the key path of every problem.
    """
    return load_strategy(path_or_dict, overrides).model_dump(mode="json")


def load_strategy(
    path_or_dict: StrategySource, overrides: Mapping[str, Any] | None = None
) -> StrategyConfig:
    """The resolved strategy as a validated pydantic model; see ``load_strategy_config``."""
    raw, source = _read(path_or_dict)
    raw = _normalise_layout(raw, source)
    if overrides:
        apply_overrides(raw, overrides, source)
    try:
        config = StrategyConfig.model_validate(raw)
    except ValidationError as exc:
        raise StrategyConfigError(_format_pydantic(exc, source)) from exc
    indicators, problems = check_semantics(config)
    if problems:
        raise StrategyConfigError(_format_problems(problems, source))
    resolved = config.model_dump(mode="python")
    resolved["indicators"] = indicators
    return StrategyConfig.model_validate(resolved)


def _read(path_or_dict: StrategySource) -> tuple[dict[str, Any], str]:
    if isinstance(path_or_dict, Mapping):
        source = path_or_dict.source if isinstance(path_or_dict, ParsedStrategy) else "<dict>"
        check_nesting(path_or_dict, source)
        return copy.deepcopy(dict(path_or_dict)), source
    path = Path(path_or_dict)
    source = str(path)
    text = read_text_file(path, MAX_STRATEGY_BYTES, source, "strategy")
    return parse_strategy_text(text, source), source


def read_text_file(path: Path, limit: int, source: str, kind: str) -> str:
    """The UTF-8 text of the regular file at ``path``, ``limit`` bytes at the most.

    Never blocks and never reads past the limit, whatever ``path`` is: a FIFO without a writer,
    a device such as /dev/zero or a folder is refused without reading. StrategyConfigError
    names ``source`` (what a ``kind`` file it should have been) and what to do.
    """
    try:
        with open_regular_file(path) as stream:
            data = stream.read(limit + 1)
    except NotARegularFile as exc:
        if exc.what == "a folder":
            raise StrategyConfigError(f"{source}: is a folder; give a {kind} YAML file") from None
        raise StrategyConfigError(
            f"{source}: not a regular file ({exc.what}); give a {kind} YAML file"
        ) from None
    except (FileNotFoundError, NotADirectoryError):
        raise StrategyConfigError(f"{source}: {kind} file not found") from None
    except OSError as exc:  # a name too long, a loop of links, no permission
        raise StrategyConfigError(f"{source}: cannot be read ({exc.strerror})") from None
    if len(data) > limit:
        raise StrategyConfigError(
            f"{source}: larger than {limit} bytes; is this really a {kind} file?"
        )
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise StrategyConfigError(f"{source}: not UTF-8 text ({exc.reason})") from exc


def parse_strategy_text(text: str, source: str) -> dict[str, Any]:
    """The mapping in strategy YAML ``text``, read as a file's is (one loader, one set of
    limits and messages, whether it came from a file or a request body).

    Raises StrategyConfigError naming ``source``: too long, invalid YAML (with the line and
    column), refused YAML (aliases, tags, depth, size), empty, or not a mapping.
    """
    if len(text) > MAX_STRATEGY_CHARS:
        raise StrategyConfigError(
            f"{source}: larger than {MAX_STRATEGY_BYTES} bytes; is this really a strategy file?"
        )
    return parse_yaml_mapping(text, source, "strategy", "name:, indicators:, ...")


def parse_yaml_mapping(text: str, source: str, kind: str, example: str) -> dict[str, Any]:
    """The YAML mapping in ``text`` (a ``kind`` such as "strategy" or "sweep"; ``example``
    names its first keys for the message); StrategyConfigError naming ``source`` otherwise."""
    try:
        raw = load_yaml(text)
    except YamlRefused as exc:
        raise StrategyConfigError(f"{source}: {exc}") from None
    except ValueError as exc:  # e.g. an integer of thousands of digits
        raise StrategyConfigError(
            f"{source}: a value cannot be read ({shorten(exc)}); no {kind} needs it"
        ) from None
    except yaml.YAMLError as exc:
        raise StrategyConfigError(f"{source}: {describe_yaml_error(exc)}") from exc
    if raw is None:
        raise StrategyConfigError(f"{source}: the file is empty; a {kind} is a YAML mapping")
    if not isinstance(raw, dict):
        raise StrategyConfigError(
            f"{source}: expected a YAML mapping ({example}), got {type(raw).__name__}"
        )
    return raw


def check_nesting(value: Any, source: str) -> None:
    """StrategyConfigError when ``value`` nests deeper, or holds more values, than any strategy."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    count = 0
    while stack:
        item, depth = stack.pop()
        count += 1
        if depth > MAX_DEPTH or count > MAX_EXPANDED_NODES:
            raise StrategyConfigError(
                f"{source}: nested deeper than {MAX_DEPTH} levels or holding more than "
                f"{MAX_EXPANDED_NODES} values; not a strategy"
            )
        if isinstance(item, Mapping):
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list | tuple):
            stack.extend((v, depth + 1) for v in item)


def _normalise_layout(raw: dict[str, Any], source: str) -> dict[str, Any]:
    """Accept the older layout with hyperparameters under ``model.training``."""
    model = raw.get("model")
    if isinstance(model, dict) and "training" in model:
        if "training" in raw:
            raise StrategyConfigError(
                f"{source}: model.training and training are both present; keep only training"
            )
        raw = dict(raw)
        model = dict(model)
        raw["training"] = model.pop("training")
        raw["model"] = model
        message = (
            f"{source}: hyperparameters under model.training are deprecated; move them to "
            "a top-level training: section"
        )
        warnings.warn(message, DeprecationWarning, stacklevel=4)
        logger.warning(message)
    return raw


def apply_overrides(raw: dict[str, Any], overrides: Mapping[str, Any], source: str) -> None:
    """Set each dotted key (``training.epochs``; list items by index) in ``raw``, in place."""
    for key, value in overrides.items():
        parts = str(key).split(".")
        if not all(parts) or len(parts) > MAX_DEPTH:
            raise StrategyConfigError(
                f"{source}: override {shorten(str(key))!r} is not a dotted key path of at most "
                f"{MAX_DEPTH} parts"
            )
        check_nesting(value, f"{source}: override {shorten(str(key))}")
        node: Any = raw
        for depth, part in enumerate(parts):
            last = depth == len(parts) - 1
            here = ".".join(parts[: depth + 1])
            if isinstance(node, list):
                # isdigit() alone also takes "¹" and other digits int() refuses.
                if not (part.isascii() and part.isdigit()) or int(part) >= len(node):
                    raise StrategyConfigError(
                        f"{source}: override {shorten(str(key))!r}: {shorten(here)} is not an "
                        "index of a "
                        f"{len(node)}-item list"
                    )
                if last:
                    node[int(part)] = value
                else:
                    node = node[int(part)]
            elif isinstance(node, dict):
                if last:
                    node[part] = value
                else:
                    if node.get(part) is None:
                        node[part] = {}
                    node = node[part]
            else:
                raise StrategyConfigError(
                    f"{source}: override {shorten(str(key))!r}: "
                    f"{shorten('.'.join(parts[:depth]))} is a value, "
                    "not a section"
                )


def _key_path(loc: tuple[int | str, ...]) -> str:
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{shorten(part, 40)}" if path else shorten(part, 40)
    return path


def _format_pydantic(exc: ValidationError, source: str) -> str:
    problems = []
    for error in exc.errors():
        loc = _drop_union_tags(tuple(error["loc"]))
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "finite_number":
            message = "must be a finite number (not NaN or infinity)"
        if error["type"] == "extra_forbidden":
            valid = _valid_keys(loc[:-1])
            message = "unknown key" + (f"; valid keys here: {', '.join(valid)}" if valid else "")
        elif error["type"] == "missing":
            message = "required key is missing"
        problems.append((_key_path(loc), message))
    return _format_problems(problems, source)


def _format_problems(problems: list[tuple[str, str]], source: str) -> str:
    shown = [
        f"{path}: {message}" if path else message for path, message in problems[:_SHOWN_ERRORS]
    ]
    more = len(problems) - _SHOWN_ERRORS
    text = "; ".join(shown) + (f"; and {more} more" if more > 0 else "")
    return f"{source}: {text}"


def _drop_union_tags(loc: tuple[Any, ...]) -> tuple[Any, ...]:
    # Pydantic adds the union member (e.g. 'plateau', 'list[float]') to the location; users never
    # wrote those keys, so they are left out of the path.
    kept = []
    for part in loc:
        if isinstance(part, str) and ("[" in part or part in ("plateau", "cosine", "step")):
            continue
        kept.append(part)
    return tuple(kept)


def _valid_keys(loc: tuple[Any, ...]) -> list[str]:
    annotation: Any = StrategyConfig
    for part in loc:
        annotation = _unwrap(annotation)
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            field = annotation.model_fields.get(str(part))
            if field is None:
                return []
            annotation = field.annotation
        else:
            args = typing.get_args(annotation)
            origin = typing.get_origin(annotation)
            if origin is list and args:
                annotation = args[0]
            elif origin is dict and len(args) == 2:
                annotation = args[1]
            else:
                return []
    annotation = _unwrap(annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return list(annotation.model_fields)
    return []


def _unwrap(annotation: Any) -> Any:
    while True:
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            annotation = typing.get_args(annotation)[0]
        elif origin in (typing.Union, types.UnionType):
            members = [a for a in typing.get_args(annotation) if a is not type(None)]
            if len(members) != 1:
                return annotation
            annotation = members[0]
        else:
            return annotation
