from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from ktrdr.config import load_strategy_config
from ktrdr.errors import ModelStorageError, TrainingError
from ktrdr.neural.mlp import build_mlp
from ktrdr.training.model_creation import architecture_spec, create_model, seed_everything
from tests.conftest import STRATEGIES_DIR

pytestmark = pytest.mark.unit

REAL = load_strategy_config(STRATEGIES_DIR / "neuro_mean_reversion.yaml")


def test_mlp_follows_the_architecture() -> None:
    model = create_model(18, REAL)
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(18, 50), (50, 25), (25, 3)]
    assert sum(isinstance(m, nn.Dropout) for m in model.modules()) == 2
    assert sum(isinstance(m, nn.ReLU) for m in model.modules()) == 2
    assert model(torch.zeros(4, 18)).shape == (4, 3)


@pytest.mark.parametrize(
    ("name", "cls"), [("tanh", nn.Tanh), ("gelu", nn.GELU), ("leaky_relu", nn.LeakyReLU)]
)
def test_activations(name: str, cls: type[nn.Module]) -> None:
    config = load_strategy_config(
        REAL, {"model.architecture.activation": name, "model.architecture.dropout": 0.0}
    )
    model = create_model(5, config)
    assert any(isinstance(m, cls) for m in model.modules())
    assert not any(isinstance(m, nn.Dropout) for m in model.modules())


def test_spec_rebuilds_the_same_module_without_pickles() -> None:
    seed_everything(3)
    model = create_model(7, REAL)
    rebuilt = build_mlp(copy.deepcopy(architecture_spec(7, REAL)))
    rebuilt.load_state_dict(model.state_dict())
    x = torch.randn(3, 7)
    model.eval()
    rebuilt.eval()
    assert torch.equal(model(x), rebuilt(x))


def test_same_seed_same_initial_weights() -> None:
    seed_everything(42)
    first = create_model(10, REAL).state_dict()
    seed_everything(42)
    second = create_model(10, REAL).state_dict()
    seed_everything(43)
    third = create_model(10, REAL).state_dict()
    assert all(torch.equal(first[k], second[k]) for k in first)
    assert not torch.equal(first["0.weight"], third["0.weight"])


def test_absurd_model_sizes_are_refused_before_allocating() -> None:
    config = load_strategy_config(REAL, {"model.architecture.hidden_layers": [100_000, 100_000]})
    with pytest.raises(TrainingError, match=r"hidden_layers.*weights \(limit"):
        create_model(18, config)


def test_bad_specs() -> None:
    with pytest.raises(TrainingError, match="at least one feature"):
        create_model(0, REAL)
    with pytest.raises(ModelStorageError, match="unknown model type"):
        build_mlp(
            {
                "type": "lstm",
                "input_dim": 3,
                "hidden_layers": [2],
                "activation": "relu",
                "dropout": 0.0,
            }
        )
    with pytest.raises(ModelStorageError, match="malformed"):
        build_mlp({"type": "mlp"})
