"""The MLP: input -> [Linear, activation, dropout] per hidden layer -> Linear to 3 class logits."""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from typing import Any

from torch import nn

from ktrdr.errors import ModelStorageError

ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "gelu": nn.GELU,
    "leaky_relu": nn.LeakyReLU,
}
NUM_CLASSES = 3


def build_mlp(spec: Mapping[str, Any]) -> nn.Sequential:
    """A fresh MLP from an architecture spec (``mlp_spec`` output); ModelStorageError if invalid.

    The module is a plain ``nn.Sequential``, so its state-dict keys are stable ("0.weight", ...).
    """
    try:
        if spec["type"] != "mlp":
            raise ModelStorageError(f"unknown model type {spec['type']!r}; this ktrdr builds mlp")
        input_dim = int(spec["input_dim"])
        hidden = [int(width) for width in spec["hidden_layers"]]
        activation = ACTIVATIONS[spec["activation"]]
        dropout = float(spec["dropout"])
        output_dim = int(spec.get("output_dim", NUM_CLASSES))
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelStorageError(f"architecture spec is malformed ({exc!r})") from exc
    if input_dim < 1 or output_dim < 1 or not hidden or min(hidden) < 1 or not 0 <= dropout < 1:
        raise ModelStorageError(f"architecture spec has impossible sizes: {dict(spec)}")
    layers: list[nn.Module] = []
    width_in = input_dim
    for width in hidden:
        layers += [nn.Linear(width_in, width), activation()]
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        width_in = width
    layers.append(nn.Linear(width_in, output_dim))
    return nn.Sequential(*layers)


def mlp_weights(input_dim: int, hidden_layers: Sequence[int], outputs: int = NUM_CLASSES) -> int:
    """Weights and biases of an MLP with these layer widths."""
    widths = [input_dim, *hidden_layers, outputs]
    return sum(a * b + b for a, b in itertools.pairwise(widths))


def mlp_spec(input_dim: int, architecture: Mapping[str, Any]) -> dict[str, Any]:
    """The plain-data spec of an MLP with ``input_dim`` inputs and the strategy's architecture."""
    return {
        "type": "mlp",
        "input_dim": int(input_dim),
        "hidden_layers": [int(width) for width in architecture["hidden_layers"]],
        "activation": str(architecture["activation"]),
        "dropout": float(architecture["dropout"]),
        "output_dim": NUM_CLASSES,
    }
