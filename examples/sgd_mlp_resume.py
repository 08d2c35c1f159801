"""A(SGD) on an MLP with a learning-rate scheduler, interrupted after tau and resumed bit for bit (docs/library.md).

The order of loading matters: the model, then the Recipe (which takes the frozen parameters out of the optimizer
again), then the optimizer (whose saved state holds only the head's parameters).
"""

import copy

import torch
import torch.nn as nn
import torch.nn.functional as F
from sklearn.datasets import load_digits

from globalmin import Recipe

digits = load_digits()
x = torch.tensor(digits.data[:600], dtype=torch.float32) / 16
y = torch.tensor(digits.target[:600])


def setup():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, 64), nn.BatchNorm1d(64), nn.ReLU(), nn.Linear(64, 600), nn.Tanh(),
                          nn.Linear(600, 10))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=1e-4)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=30, gamma=0.5)
    return model, optimizer, scheduler, Recipe(model, optimizer, tau=60, cert_loader=x)


def train(model, optimizer, scheduler, recipe, start, stop):
    for it in range(start, stop):
        model.train()
        idx = torch.randperm(len(x), generator=torch.Generator().manual_seed(it))[:64]
        loss = F.cross_entropy(model(x[idx]), y[idx])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        scheduler.step()
        recipe.step()


model, optimizer, scheduler, recipe = setup()
train(model, optimizer, scheduler, recipe, 0, 80)
# what torch.save would write (state_dict()s hold the live tensors, which the training below goes on changing)
checkpoint = copy.deepcopy({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                            "scheduler": scheduler.state_dict(), "recipe": recipe.state_dict()})
train(model, optimizer, scheduler, recipe, 80, 100)

again, optimizer2, scheduler2, recipe2 = setup()
again.load_state_dict(checkpoint["model"])
recipe2.load_state_dict(checkpoint["recipe"])
optimizer2.load_state_dict(checkpoint["optimizer"])
scheduler2.load_state_dict(checkpoint["scheduler"])
train(again, optimizer2, scheduler2, recipe2, 80, 100)
same = all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), again.state_dict().values()))
print(recipe.certificate)
print("resumed run identical:", same)
assert same
