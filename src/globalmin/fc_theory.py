"""The fully-connected theory check: does the wide layer of a random net have rank n, as the theory predicts?

Kawaguchi & Sun's theory for fully-connected nets: with narrow hidden layers of any width, one wide last
hidden layer of width m_H >= n, an analytic activation and pairwise-distinct inputs, the n x m_H feature
matrix has rank n for almost every parameter value. Negative controls must fail: m_H < n (rank <= m_H) and
exactly duplicated inputs (two equal rows). ReLU is outside the theory and is reported as measured.
The certificate is the exact float64 SVD, so "rank n" here is numerical rank, which can fall short of the
exact-arithmetic statement when features are extremely ill-conditioned (narrow layers, near-duplicates).
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn as nn

from globalmin.certificate import certify
from globalmin.models import ACTIVATIONS
from globalmin.runinfo import derive_seed

ANALYTIC = ("tanh", "softplus", "sigmoid")


def make_inputs(kind: str, n: int, seed: int, near_scale: float) -> np.ndarray:
    """n inputs of one kind: 'gaussian' (d=16), 'digits' (real, d=64, scaled to [0, 1]), 'near_duplicates'
    (n/2 Gaussian points and a copy of each moved by near_scale), 'duplicates' (Gaussian, last row = first)."""
    rng = np.random.default_rng(derive_seed(seed, "fc-data", kind))
    if kind == "digits":
        from sklearn.datasets import load_digits

        images = load_digits().data / 16.0
        return images[rng.choice(len(images), n, replace=False)]
    x = rng.standard_normal((n, 16))
    if kind == "near_duplicates":
        half = n // 2
        x[half:2 * half] = x[:half] + near_scale * rng.standard_normal((half, 16))
    elif kind == "duplicates":
        x[-1] = x[0]
    elif kind != "gaussian":
        raise ValueError(f"unknown input kind {kind!r}")
    return x


def fc_features(x: np.ndarray, narrow: list[int], wide: int, activation: str, seed: int) -> torch.Tensor:
    """Features of the wide layer of a random fully-connected net (PyTorch's default init), in float64."""
    torch.manual_seed(derive_seed(seed, "fc-init"))
    act = ACTIVATIONS[activation]
    layers: list[nn.Module] = []
    for w_in, w_out in zip([x.shape[1]] + narrow, narrow + [wide]):
        layers += [nn.Linear(w_in, w_out, dtype=torch.float64), act()]
    with torch.no_grad():
        return nn.Sequential(*layers)(torch.from_numpy(x))


def wide_widths(n: int, ratios: list[str]) -> dict[str, int]:
    """m_H for each ratio label: 'n/2', 'n-1', 'n', '2n'."""
    table = {"n/2": n // 2, "n-1": n - 1, "n": n, "2n": 2 * n}
    return {r: table[r] for r in ratios}


def predicted_full_rank(activation: str, kind: str, m_h: int, n: int) -> bool | None:
    """The theory's prediction: True (rank n), False (rank < n, negative control), None (outside the theory)."""
    if m_h < n or kind == "duplicates":
        return False
    return True if activation in ANALYTIC else None


def run_grid(cfg: dict[str, Any]) -> pd.DataFrame:
    """Certify every combination of the fc_theory config section; one row per network."""
    rows = []
    n = cfg["n"]
    grid = itertools.product(cfg["inputs"], cfg["activations"], cfg["narrow_widths"], cfg["depths"],
                             wide_widths(n, cfg["wide_ratios"]).items(), cfg["seeds"])
    for kind, activation, width, depth, (ratio, m_h), seed in grid:
        x = make_inputs(kind, n, seed, cfg["near_duplicate_scale"])
        cert = certify(fc_features(x, [width] * depth, m_h, activation, seed))
        rows.append({"inputs": kind, "activation": activation, "narrow_width": width, "depth": depth,
                     "wide_ratio": ratio, "m_H": m_h, "n": n, "seed": seed, "rank": cert["rank"],
                     "full_rank": cert["full_rank"], "sigma_min": cert["sigma_min"], "sigma_max": cert["sigma_max"],
                     "tolerance": cert["tolerance"],
                     "predicted_full_rank": predicted_full_rank(activation, kind, m_h, n)})
    return pd.DataFrame(rows)


def pass_rates(runs: pd.DataFrame) -> pd.DataFrame:
    """Share of networks with numerical rank n, per inputs x activation x m_H / n, beside the prediction."""
    table = (runs.groupby(["inputs", "activation", "wide_ratio"], sort=False)
             .agg(networks=("full_rank", "size"), rank_n=("full_rank", "sum"),
                  predicted=("predicted_full_rank", "first"), min_sigma_min=("sigma_min", "min"))
             .reset_index())
    table["pass_rate"] = table.rank_n / table.networks
    table["predicted"] = table.predicted.map({True: "rank n", False: "rank < n", None: "outside theory"})
    return table


def theory_claims(runs: pd.DataFrame, evidence: list[str]) -> list[dict[str, Any]]:
    """F1 (analytic, m_H >= n, distinct inputs: rank n) and F2 (negative controls rank-deficient)."""
    from globalmin.claims import make_claim

    source = "Kawaguchi & Sun 2021, theory for fully-connected networks"
    positive = runs[runs.predicted_full_rank.eq(True)]
    clean = positive[positive.inputs != "near_duplicates"]
    near = positive[positive.inputs == "near_duplicates"]
    by_width = clean.groupby("narrow_width").full_rank.mean().round(4).to_dict()
    f1 = make_claim(
        "F1", "With analytic activations, m_H >= n and distinct inputs, the wide layer's features have rank n "
        "for almost every parameter value.", source, evidence,
        {"networks": int(len(clean)), "rank_n": int(clean.full_rank.sum()),
         "pass_rate_by_narrow_width": {str(k): v for k, v in by_width.items()},
         "near_duplicates_rank_n": int(near.full_rank.sum()), "near_duplicates_networks": int(len(near))},
        ("supported" if clean.full_rank.all() else "inconclusive") if len(clean) else "inconclusive",
        reconstructed=False,
        rule="supported when every random network with an analytic activation, m_H >= n and distinct "
             "(Gaussian or digits) inputs has numerical rank n in float64. A network below the float64 rank "
             "tolerance cannot refute an almost-everywhere statement in exact arithmetic, so any such network "
             "makes the verdict inconclusive (see the pass rate by narrow width); near-duplicate inputs are "
             "reported beside it")
    negative = runs[runs.predicted_full_rank.eq(False)]
    f2 = make_claim(
        "F2", "Negative controls fail: m_H < n or exactly duplicated inputs give rank < n.", source, evidence,
        {"networks": int(len(negative)), "rank_deficient": int((~negative.full_rank.astype(bool)).sum())},
        "supported" if len(negative) and not negative.full_rank.any() else "not supported", reconstructed=False,
        rule="supported when every network with m_H < n or a duplicated input has numerical rank below n")
    return [f1, f2]
