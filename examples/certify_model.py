"""Certify the expressivity condition of your own model's features, and what a too-narrow wide layer gives.

`python examples/certify_model.py`; the same from the command line for a function that builds your model:
`globalmin certify --model examples.certify_model:build --data digits.npz` (see docs/library.md).
"""

import torch
import torch.nn as nn
from sklearn.datasets import load_digits

from globalmin import certify_model


def build(m_H: int = 1400) -> nn.Module:
    """An MLP whose last hidden layer (the wide layer) has m_H units, then a linear head."""
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, m_H), nn.Tanh(),
                         nn.Linear(m_H, 10))


if __name__ == "__main__":
    x = torch.tensor(load_digits().images[:1300], dtype=torch.float32).div(16).unsqueeze(1)
    for width in (1400, 1000):  # m_H >= n can have rank n; m_H < n cannot
        print(f"m_H = {width}:", certify_model(build(width), x))
