"""A(Adam) on torchvision's ResNet-18 with your own DataLoader: the README's quick start (docs/library.md).

Runs in seconds on a CPU: 256 of scikit-learn's 8x8 digits, as 3-channel images.
"""

import torch
import torch.nn.functional as F
import torchvision
from sklearn.datasets import load_digits
from torch.utils.data import DataLoader, TensorDataset

from globalmin import Recipe, widen

digits = load_digits()
x = torch.tensor(digits.images[:256], dtype=torch.float32).div(16).unsqueeze(1).repeat(1, 3, 1, 1)
y = torch.tensor(digits.target[:256])
train = DataLoader(TensorDataset(x, y), batch_size=64, shuffle=True)  # your training loader (augment here)
plain = DataLoader(TensorDataset(x, y), batch_size=256)  # the same points un-augmented: what is certified

torch.manual_seed(0)
model = widen(torchvision.models.resnet18(num_classes=10), m_H=len(x), example=x[:2])  # fc -> 512, n, 10
optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
epochs = 3
recipe = Recipe(model, optimizer, tau=int(0.9 * epochs * len(train)), cert_loader=plain)
for epoch in range(epochs):
    model.train()
    for xb, yb in train:
        loss = F.cross_entropy(model(xb), yb)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        recipe.step()  # at tau: batch norm pinned, wide layer perturbed, certified, body out of the optimizer
print(recipe.certificate)
print(f"phase 2 trains {recipe.trained_names()}; the optimizer holds "
      f"{sum(len(g['params']) for g in optimizer.param_groups)} tensors")
