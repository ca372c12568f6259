"""Fused Adam and AdamW that train without importing torch._dynamo (docs/performance.md).

``torch.optim.Optimizer`` imports ``torch._dynamo`` (about 0.8 s and 71 MiB on this project's
2-core machine) the first time it adds a parameter group, zeroes gradients or steps, only to mark
those methods as not compilable. That import was a third of a one-year ``ktrdr train``. This
subclass replaces exactly those three methods and runs the kernel that
``torch.optim.Adam(fused=True)`` runs, with the same state layout, so its weights are
bit-identical to torch's (tested), torch's learning-rate schedulers drive it unchanged, and
``state_dict``/``load_state_dict`` are torch's own.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch

# Device types whose fused Adam kernel torch ships for every version this project supports.
FUSED_DEVICE_TYPES = frozenset({"cpu", "cuda"})


class FusedAdam(torch.optim.Optimizer):
    """Adam (or AdamW with ``decoupled_weight_decay``) on torch's fused kernel.

    Inputs: the parameters, learning rate, L2 or decoupled weight decay, betas and eps as in
    ``torch.optim.Adam``. Raises ValueError on a parameter listed twice and RuntimeError on a
    sparse gradient; amsgrad, maximize and gradient scaling are not offered.
    """

    def __init__(
        self,
        params: Iterable[torch.Tensor] | Iterable[dict[str, Any]],
        lr: float,
        weight_decay: float = 0.0,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        decoupled_weight_decay: bool = False,
    ) -> None:
        defaults = {
            "lr": lr,
            "betas": betas,
            "eps": eps,
            "weight_decay": weight_decay,
            "amsgrad": False,
            "maximize": False,
            "foreach": None,
            "capturable": False,
            "differentiable": False,
            "fused": True,
            "decoupled_weight_decay": decoupled_weight_decay,
        }
        super().__init__(params, defaults)

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Add a group, filling unset options from the defaults (torch's rules, no dynamo)."""
        params = param_group["params"]
        param_group["params"] = [params] if isinstance(params, torch.Tensor) else list(params)
        for param in param_group["params"]:
            if not isinstance(param, torch.Tensor) or not param.is_leaf:
                raise ValueError("the optimizer can only optimize leaf tensors")
        for name, default in self.defaults.items():
            param_group.setdefault(name, default)
        seen = {id(p) for group in self.param_groups for p in group["params"]}
        if any(id(p) in seen for p in param_group["params"]):
            raise ValueError("some parameters appear in more than one parameter group")
        self.param_groups.append(param_group)

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Drop (or zero) every parameter's gradient."""
        for group in self.param_groups:
            for param in group["params"]:
                if param.grad is None:
                    continue
                if set_to_none:
                    param.grad = None
                else:
                    param.grad.detach_().requires_grad_(False)
                    param.grad.zero_()

    def step(self, closure: Callable[[], float] | None = None) -> float | None:  # type: ignore[override]
        """One Adam update of every parameter that has a gradient; returns the closure's loss."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        with torch.no_grad():
            for group in self.param_groups:
                self._step_group(group)
        return loss

    def _step_group(self, group: dict[str, Any]) -> None:
        # One kernel call per (device, dtype), as torch groups them.
        batches: dict[tuple[torch.device, torch.dtype], tuple[list[torch.Tensor], ...]] = {}
        for param in group["params"]:
            if param.grad is None:
                continue
            if param.grad.is_sparse:
                raise RuntimeError("FusedAdam does not support sparse gradients")
            state = self.state[param]
            if not state:
                # The fused kernel keeps its step count as a float32 tensor beside the weights.
                state["step"] = torch.zeros((), dtype=torch.float32, device=param.device)
                state["exp_avg"] = torch.zeros_like(param, memory_format=torch.preserve_format)
                state["exp_avg_sq"] = torch.zeros_like(param, memory_format=torch.preserve_format)
            batch = batches.setdefault((param.device, param.dtype), ([], [], [], [], []))
            for items, value in zip(
                batch,
                (param, param.grad, state["exp_avg"], state["exp_avg_sq"], state["step"]),
                strict=True,
            ):
                items.append(value)
        kernel = torch._fused_adamw_ if group["decoupled_weight_decay"] else torch._fused_adam_
        beta1, beta2 = group["betas"]
        for params, grads, exp_avgs, exp_avg_sqs, steps in batches.values():
            torch._foreach_add_(steps, 1)
            kernel(
                params,
                grads,
                exp_avgs,
                exp_avg_sqs,
                [],
                steps,
                amsgrad=False,
                lr=float(group["lr"]),
                beta1=float(beta1),
                beta2=float(beta2),
                weight_decay=float(group["weight_decay"]),
                eps=float(group["eps"]),
                maximize=False,
                grad_scale=None,
                found_inf=None,
            )
