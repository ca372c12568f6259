"""Step 7a: seed everything and build the strategy's model.

See docs/architecture.md: the twelve steps, training.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from torch import nn

from ktrdr.errors import TrainingError
from ktrdr.neural.limits import MAX_PARAMETERS
from ktrdr.neural.mlp import build_mlp, mlp_spec, mlp_weights

logger = logging.getLogger(__name__)


def seed_everything(seed: int) -> None:
    """Seed Python's, numpy's legacy and torch's global generators (all devices) with ``seed``.

    Called immediately before ``create_model`` on every path, under the training lock, so that
    weight initialisation and dropout masks are the same for the same seed.
    """
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def architecture_spec(input_dim: int, strategy_config: Mapping[str, Any]) -> dict[str, Any]:
    """The plain-data architecture spec for ``input_dim`` features; TrainingError if unusable."""
    model = strategy_config["model"]
    if model["type"] != "mlp":
        raise TrainingError(f"model.type={model['type']!r} cannot be built; use mlp")
    if input_dim < 1:
        raise TrainingError("the model needs at least one feature column")
    spec = mlp_spec(input_dim, model["architecture"])
    parameters = mlp_weights(input_dim, spec["hidden_layers"], spec["output_dim"])
    if parameters > MAX_PARAMETERS:
        raise TrainingError(
            f"model.architecture.hidden_layers {spec['hidden_layers']} with {input_dim} features "
            f"make {parameters:,} weights (limit {MAX_PARAMETERS:,}); use smaller layers"
        )
    return spec


def create_model(input_dim: int, strategy_config: Mapping[str, Any]) -> nn.Module:
    """A freshly initialised model whose spec is ``architecture_spec(input_dim, strategy_config)``.

    The spec is attached as ``model.architecture_spec`` so callers can save it beside the weights.
    """
    spec = architecture_spec(input_dim, strategy_config)
    model = build_mlp(spec)
    model.architecture_spec = spec  # type: ignore[assignment]
    logger.debug("model: %s", spec)
    return model
