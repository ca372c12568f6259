"""Read YAML that a stranger wrote, at a bounded cost.

``yaml.safe_load`` runs no code, but a 2 KB file of nested aliases ("billion laughs") expands to
gigabytes as soon as anything walks the result, a deeply nested document overflows the stack, and
a repeated key silently keeps the last value. ``load_yaml`` refuses all three before building any
Python object: it composes the node graph, measures its depth and its size with every alias
expanded, and checks mapping keys for duplicates.
"""

from __future__ import annotations

from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from ktrdr.messages import shorten

MAX_DEPTH = 32
MAX_EXPANDED_NODES = 50_000


class YamlRefused(ValueError):
    """The document is well-formed YAML but too costly or ambiguous to accept."""


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys (reported with their line)."""

    def construct_mapping(self, node: Node, deep: bool = False) -> dict[Any, Any]:
        assert isinstance(node, MappingNode)
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if isinstance(key_node, ScalarNode):
                key = key_node.value
                if key in seen:
                    line = key_node.start_mark.line + 1
                    raise YamlRefused(
                        f"duplicate key {shorten(key, 40)!r} at line {line} (first at line "
                        f"{seen[key]}); keep one"
                    )
                seen[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep=deep)


def describe_yaml_error(exc: yaml.YAMLError) -> str:
    """One line for a message: "invalid YAML at line 3, column 7: found unhashable key".

    PyYAML's own text spans several lines and quotes the document; its repr names internal
    objects. This keeps the position of the problem and the problem itself, cut short.
    """
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
    problem = getattr(exc, "problem", None) or getattr(exc, "context", None)
    return f"invalid YAML{where}: {shorten(problem if problem else exc)}"


def load_yaml(text: str) -> Any:
    """The document in ``text``; YamlRefused or yaml.YAMLError when it cannot be accepted."""
    loader = _StrictLoader(text)
    try:
        try:
            node = loader.get_single_node()
        except RecursionError:
            raise YamlRefused(f"nested deeper than {MAX_DEPTH} levels") from None
        if node is None:
            return None
        _check_size(node)
        return loader.construct_document(node)
    finally:
        loader.dispose()


def _check_size(root: Node) -> None:
    """Depth and alias-expanded node count of the graph, without expanding it."""
    sizes: dict[int, int] = {}
    depths: dict[int, int] = {}
    in_progress: set[int] = set()

    def visit(node: Node) -> tuple[int, int]:
        key = id(node)
        if key in sizes:
            return sizes[key], depths[key]
        if key in in_progress:
            raise YamlRefused("an alias refers to itself; recursive documents are not accepted")
        in_progress.add(key)
        children: list[Node] = []
        if isinstance(node, SequenceNode):
            children = list(node.value)
        elif isinstance(node, MappingNode):
            children = [part for pair in node.value for part in pair]
        size, depth = 1, 1
        for child in children:
            child_size, child_depth = visit(child)
            size += child_size
            depth = max(depth, child_depth + 1)
            if size > MAX_EXPANDED_NODES:
                raise YamlRefused(
                    f"expands to more than {MAX_EXPANDED_NODES} values (anchors and aliases "
                    "repeat content); write the values out or simplify the file"
                )
            if depth > MAX_DEPTH:
                raise YamlRefused(f"nested deeper than {MAX_DEPTH} levels")
        in_progress.discard(key)
        sizes[key], depths[key] = size, depth
        return size, depth

    visit(root)
