from __future__ import annotations

import copy
from collections.abc import Callable

import pytest
import torch
from torch import nn

from ktrdr.training.optimizers import FusedAdam

pytestmark = pytest.mark.unit

Builder = Callable[[list[nn.Parameter]], torch.optim.Optimizer]


def mlp(seed: int = 3) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(12, 16), nn.ReLU(), nn.Linear(16, 3))


def fit(build: Builder, steps: int = 40, scheduled: bool = True) -> nn.Module:
    """Train a small MLP on fixed batches, halving the learning rate every 10 steps."""
    model = mlp()
    optimizer = build(list(model.parameters()))
    schedule = torch.optim.lr_scheduler.StepLR(optimizer, step_size=10, gamma=0.5)
    generator = torch.Generator().manual_seed(7)
    x = torch.randn(64, 12, generator=generator)
    y = torch.randint(0, 3, (64,), generator=generator)
    for step in range(steps):
        optimizer.zero_grad(set_to_none=True)
        rows = slice((step % 4) * 16, (step % 4 + 1) * 16)
        nn.functional.cross_entropy(model(x[rows]), y[rows]).backward()
        optimizer.step()
        if scheduled:
            schedule.step()
    return model


def same_weights(a: nn.Module, b: nn.Module) -> bool:
    return all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters(), strict=True))


@pytest.mark.parametrize(
    ("ours", "torchs"),
    [
        (
            lambda p: FusedAdam(p, lr=0.01, weight_decay=1e-3),
            lambda p: torch.optim.Adam(p, lr=0.01, weight_decay=1e-3, fused=True),
        ),
        (
            lambda p: FusedAdam(p, lr=0.01, weight_decay=1e-2, decoupled_weight_decay=True),
            lambda p: torch.optim.AdamW(p, lr=0.01, weight_decay=1e-2, fused=True),
        ),
    ],
    ids=["adam", "adamw"],
)
def test_weights_are_bit_identical_to_torchs_fused_optimizer(
    ours: Builder, torchs: Builder
) -> None:
    trained = fit(ours)
    assert same_weights(trained, fit(torchs))
    assert not same_weights(trained, mlp()), "the optimizer did not move the weights"


def test_adam_and_adamw_differ_when_weight_decay_is_set() -> None:
    adam = fit(lambda p: FusedAdam(p, lr=0.01, weight_decay=0.1))
    adamw = fit(lambda p: FusedAdam(p, lr=0.01, weight_decay=0.1, decoupled_weight_decay=True))
    assert not same_weights(adam, adamw)


def test_state_dict_is_interchangeable_with_torchs_adam() -> None:
    model, twin = mlp(), mlp()
    ours = FusedAdam(list(model.parameters()), lr=0.01)
    x, y = torch.randn(32, 12), torch.randint(0, 3, (32,))
    for _ in range(3):
        ours.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        ours.step()
    twin.load_state_dict(model.state_dict())
    theirs = torch.optim.Adam(list(twin.parameters()), lr=0.01, fused=True)
    # A copy, as a checkpoint on disk would be: loading shares tensors of the same dtype.
    theirs.load_state_dict(copy.deepcopy(ours.state_dict()))
    for optimizer, net in ((ours, model), (theirs, twin)):
        optimizer.zero_grad()
        nn.functional.cross_entropy(net(x), y).backward()
        optimizer.step()
    assert same_weights(model, twin)


def test_parameters_without_gradients_are_left_alone() -> None:
    model = mlp()
    frozen = model[0].weight.detach().clone()
    model[0].weight.requires_grad_(False)
    optimizer = FusedAdam([p for p in model.parameters()], lr=0.1)
    nn.functional.cross_entropy(
        model(torch.randn(8, 12)), torch.zeros(8, dtype=torch.long)
    ).backward()
    optimizer.step()
    assert torch.equal(model[0].weight, frozen)
    assert model[0].weight not in optimizer.state


def test_zero_grad_without_set_to_none_keeps_zeroed_tensors() -> None:
    model = mlp()
    optimizer = FusedAdam(list(model.parameters()), lr=0.1)
    nn.functional.cross_entropy(
        model(torch.randn(8, 12)), torch.zeros(8, dtype=torch.long)
    ).backward()
    optimizer.zero_grad(set_to_none=False)
    assert all(p.grad is not None and not p.grad.any() for p in model.parameters())
    optimizer.zero_grad()
    assert all(p.grad is None for p in model.parameters())


def test_a_parameter_listed_twice_is_refused() -> None:
    layer = nn.Linear(2, 2)
    with pytest.raises(ValueError, match="more than one parameter group"):
        FusedAdam([{"params": [layer.weight]}, {"params": [layer.weight, layer.bias]}], lr=0.1)


def test_closure_loss_is_returned() -> None:
    model = mlp()
    optimizer = FusedAdam(list(model.parameters()), lr=0.1)
    x, y = torch.randn(8, 12), torch.zeros(8, dtype=torch.long)

    def closure() -> float:
        optimizer.zero_grad()
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        return float(loss.detach())

    with torch.no_grad():
        expected = float(nn.functional.cross_entropy(mlp()(x), y))
    assert optimizer.step(closure) == pytest.approx(expected)
