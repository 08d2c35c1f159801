"""The network of the Recipe paper: a pre-activation ResNet with batch norm, then the wide layer, then a linear head.

`f(x) = head(act(wide(h(x))))`: `wide` is `Linear(d, m_H)` whose activated output is the feature map
`h_H` of the expressivity condition, and `head` is `W_out`.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from globalmin.datasets import width_of

ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh, "softplus": nn.Softplus, "sigmoid": nn.Sigmoid}


class PreActBlock(nn.Module):
    """Pre-activation basic block (He et al. 2016): BN-ReLU-conv, BN-ReLU-conv, plus a shortcut."""

    def __init__(self, c_in: int, c_out: int, stride: int):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(c_in)
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.shortcut = nn.Conv2d(c_in, c_out, 1, stride, bias=False) if stride != 1 or c_in != c_out else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(x))
        skip = self.shortcut(out) if self.shortcut is not None else x
        out = self.conv1(out)
        out = self.conv2(F.relu(self.bn2(out)))
        return out + skip


class WideHeadResNet(nn.Module):
    """PreAct ResNet body, adaptive average pooling, the wide layer `Linear(d, m_H)` + activation, a linear head."""

    def __init__(self, in_channels: int, classes: int, widths: list[int], blocks: list[int],
                 wide_width: int, activation: str = "relu"):
        super().__init__()
        if len(widths) != len(blocks):
            raise ValueError(f"model.widths ({widths}) and model.blocks ({blocks}) must have the same length")
        self.stem = nn.Conv2d(in_channels, widths[0], 3, 1, 1, bias=False)
        layers, c_in = [], widths[0]
        for stage, (width, count) in enumerate(zip(widths, blocks)):
            for b in range(count):
                layers.append(PreActBlock(c_in, width, stride=2 if stage > 0 and b == 0 else 1))
                c_in = width
        self.body = nn.Sequential(*layers)
        self.bn_out = nn.BatchNorm2d(c_in)
        self.wide = nn.Linear(c_in, wide_width)
        self.act = ACTIVATIONS[activation]()
        self.head = nn.Linear(wide_width, classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The wide layer's activated output `h_H(x)`, shape (batch, m_H)."""
        z = F.relu(self.bn_out(self.body(self.stem(x))))
        return self.act(self.wide(F.adaptive_avg_pool2d(z, 1).flatten(1)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def wide_width(model_cfg: dict[str, Any], n_train: int) -> int:
    """m_H from the model section (`wide_width`, see width_of)."""
    return width_of(model_cfg.get("wide_width"), n_train)


def build_model(model_cfg: dict[str, Any], in_channels: int, classes: int, n_train: int) -> WideHeadResNet:
    """Build the network from the `model` config section; `wide_width: null` means m_H = n."""
    from globalmin.runinfo import UserError

    wide = wide_width(model_cfg, n_train)
    if wide < n_train and model_cfg.get("require_expressivity", True):
        raise UserError(f"model.wide_width = {wide} is below n = {n_train} training points: the expressivity "
                        f"condition needs m_H >= n. Set model.wide_width: null (m_H = n) or at least {n_train}, "
                        f"or model.require_expressivity: false for a deliberately rank-deficient control")
    return WideHeadResNet(in_channels, classes, list(model_cfg["widths"]), list(model_cfg["blocks"]),
                          wide, model_cfg.get("wide_activation", "relu"))


def init_model(model_cfg: dict[str, Any], in_channels: int, classes: int, n_train: int, seed: int,
               device: torch.device | str = "cpu") -> WideHeadResNet:
    """The network of run `seed` at initialisation, drawn from (seed, 'init'): training and every study that
    rebuilds a run's initial network call this one function."""
    from globalmin.runinfo import derive_seed

    with torch.random.fork_rng(devices=[]):  # the caller's global generator is left as it was
        torch.manual_seed(derive_seed(seed, "init"))
        model = build_model(model_cfg, in_channels, classes, n_train)
    return model.to(device)


def parameter_groups(model: WideHeadResNet) -> dict[str, list[str]]:
    """Parameter names by role: 'head' (W_out), 'wide' (the wide layer), 'body' (everything below it)."""
    groups: dict[str, list[str]] = {"head": [], "wide": [], "body": []}
    for name, _ in model.named_parameters():
        groups[name.split(".")[0] if name.split(".")[0] in ("head", "wide") else "body"].append(name)
    return groups
