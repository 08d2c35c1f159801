"""The optimizers the stages use, SGD (base, A(base)) and Adam (local minima): torch.optim's own updates, without
torch.optim's start-up cost.

Why not the `torch.optim` classes themselves: every `torch.optim.Optimizer` method is wrapped in
`torch._disable_dynamo`, whose first call imports `torch._dynamo` (and sympy with it), in every process that
trains (benchmarks/results/study-kernels-cpu-2core.json, row optimizer_startup; docs/performance.md). The updates
here are the library's functional forms, `torch.optim.sgd.sgd` and `torch.optim.adam.adam`, which the classes call
too, with state initialised as the classes do, and SGD's `state_dict` has the class's format: runs, tau-states and
resume files are bit-identical to those the classes give (tests/test_optim.py).
"""

from __future__ import annotations

from typing import Any

import torch
from torch.optim.adam import adam
from torch.optim.sgd import sgd


class SGD:
    """The subset of torch.optim.SGD's interface the training stages use: param_groups (one group; its "lr" is
    set per iteration), zero_grad, step, state_dict and load_state_dict."""

    def __init__(self, params: list[torch.nn.Parameter], lr: float, momentum: float = 0.0,
                 weight_decay: float = 0.0, nesterov: bool = False):
        self.params = list(params)
        # the keys and defaults of torch.optim.SGD's param group, so that state_dict() is the same dictionary
        self.param_groups = [{"lr": lr, "momentum": momentum, "dampening": 0, "weight_decay": weight_decay,
                              "nesterov": nesterov, "maximize": False, "foreach": None, "differentiable": False,
                              "fused": None}]
        self.momentum_buffers: list[torch.Tensor | None] = [None] * len(self.params)

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Drop the gradients (set_to_none=False zeroes them in place instead)."""
        for p in self.params:
            if p.grad is not None:
                if set_to_none:
                    p.grad = None
                else:
                    p.grad.zero_()

    @torch.no_grad()
    def step(self, grads: list[torch.Tensor | None] | None = None) -> None:
        """One update of every parameter that has a gradient, as torch.optim.SGD.step does it; `grads` (one per
        parameter) stand in for the parameters' .grad where a stage writes its gradients out itself."""
        group = self.param_groups[0]
        grads = [p.grad for p in self.params] if grads is None else grads
        live = [i for i, g in enumerate(grads) if g is not None]
        buffers = [self.momentum_buffers[i] for i in live]
        sgd([self.params[i] for i in live], [grads[i] for i in live], buffers,
            foreach=group["foreach"], fused=group["fused"], weight_decay=group["weight_decay"],
            momentum=group["momentum"], lr=group["lr"], dampening=group["dampening"], nesterov=group["nesterov"],
            maximize=group["maximize"])
        if group["momentum"] != 0:
            for i, buffer in zip(live, buffers):
                self.momentum_buffers[i] = buffer

    def state_dict(self) -> dict[str, Any]:
        """torch.optim.SGD's format: momentum buffers by parameter index, and the param group."""
        return {"state": {i: {"momentum_buffer": b} for i, b in enumerate(self.momentum_buffers) if b is not None},
                "param_groups": [{**self.param_groups[0], "params": list(range(len(self.params)))}]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore from `state_dict()` (or torch.optim.SGD's): buffers cast to their parameter's device and dtype,
        kept, not copied, as torch.optim does."""
        groups = state["param_groups"]
        if len(groups) != 1 or len(groups[0]["params"]) != len(self.params):
            raise ValueError(f"optimizer state has {[len(g['params']) for g in groups]} parameters in its groups; "
                             f"this optimizer has one group of {len(self.params)}")
        self.param_groups = [{k: v for k, v in groups[0].items() if k != "params"}]
        self.momentum_buffers = [None] * len(self.params)
        for position, index in enumerate(groups[0]["params"]):
            buffer = state["state"].get(index, {}).get("momentum_buffer")
            if buffer is not None:
                p = self.params[position]
                self.momentum_buffers[position] = buffer.to(device=p.device, dtype=p.dtype)


class Adam:
    """torch.optim.Adam with its defaults (betas 0.9 and 0.999, eps 1e-8, no weight decay or amsgrad): zero_grad
    and step, nothing saved. It runs the multi-tensor (foreach) update, torch.optim.Adam's default on CUDA: on the
    CPU it gives the same bits as the class's per-tensor loop (tests/test_optim.py) in about a fifth less time at
    the local-minimum study's sizes."""

    def __init__(self, params: list[torch.nn.Parameter], lr: float):
        self.params, self.lr = list(params), lr
        # torch.optim.Adam's lazy state: zero moments, and the step count as a CPU scalar tensor
        self.exp_avgs = [torch.zeros_like(p, memory_format=torch.preserve_format) for p in self.params]
        self.exp_avg_sqs = [torch.zeros_like(p, memory_format=torch.preserve_format) for p in self.params]
        scalar = torch.float64 if torch.get_default_dtype() == torch.float64 else torch.float32
        self.steps = [torch.tensor(0.0, dtype=scalar) for _ in self.params]

    def zero_grad(self) -> None:
        """Drop the gradients."""
        for p in self.params:
            p.grad = None

    @torch.no_grad()
    def step(self, grads: list[torch.Tensor] | None = None) -> None:
        """One update of every parameter (all must have a gradient: the study trains the whole net); `grads` (one
        per parameter) stand in for the parameters' .grad where a stage writes its gradients out itself."""
        grads = [p.grad for p in self.params] if grads is None else grads
        adam(self.params, grads, self.exp_avgs, self.exp_avg_sqs, [], self.steps,
             foreach=True, amsgrad=False, beta1=0.9, beta2=0.999, lr=self.lr, weight_decay=0.0, eps=1e-8,
             maximize=False)
