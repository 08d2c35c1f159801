"""Stage `fc_theory`: does the wide layer of a random net have rank n, as the theory predicts? (claim F1, check F2)

Kawaguchi & Sun's theory for fully-connected nets (as reconstructed, docs/science.md): with narrow hidden
layers of any width, one wide last hidden layer of width m_H >= n, an analytic activation and pairwise-distinct
inputs, the n x m_H feature matrix has rank n for almost every parameter value. Negative controls must fail:
m_H < n (rank <= m_H) and exactly duplicated inputs (two equal rows): that is check F2, true by construction.
ReLU is outside the theory and is reported as measured.

The float64 certificate (exact SVD) decides most networks. Narrow layers make the features so ill-conditioned
(sigma_min / sigma_max down to 1e-30 and below) that float64 cannot resolve them, and such a network cannot
refute an almost-everywhere statement. Those networks are decided again in ball arithmetic (python-flint's
arb, rigorous error bounds): the features are recomputed from the same float64 weights, taken as exact, and
rank n is proven when the determinant ball of an n x n minor of Phi (the columns float64 pivoted QR ranks first)
excludes 0. Precision doubles up to `max_bits`; a ball that still contains 0 there counts against F1.
"""

from __future__ import annotations

import itertools
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.linalg
import torch
import torch.nn as nn

from globalmin.certificate import certify
from globalmin.claims import make_check, make_claim, write_fragment
from globalmin.models import ACTIVATIONS
from globalmin.runinfo import derive_seed, write_text

ANALYTIC = ("tanh", "softplus", "sigmoid")
SOURCE = "Kawaguchi & Sun 2021, theory for fully-connected networks"


def run(cfg: dict[str, Any], inputs: dict[str, Any], outputs: dict[str, Any]) -> None:
    """Certify the grid of cfg (the fc_theory section) on inputs['data'] (prepared digits) into outputs['out_dir']:
    runs.csv, pass_rates.csv/.html and the claims fragment claims.json."""
    from globalmin import data as datamod

    out = Path(outputs["out_dir"])
    digits = datamod.load(inputs["data"]).x_train.flatten(1).double().numpy()
    runs = run_grid(cfg, digits)
    rates = pass_rates(runs)
    write_text(out / "runs.csv", runs.to_csv(index=False))
    write_text(out / "pass_rates.csv", rates.to_csv(index=False))
    write_text(out / "pass_rates.html", rates.to_html(index=False, classes="table", border=0, float_format="%.3g",
                                                      na_rep="–"))
    write_fragment(out / "claims.json", "fc_theory", theory_claims(runs, [str(out / "runs.csv")]))


def make_inputs(kind: str, n: int, seed: int, near_scale: float, digits: np.ndarray | None = None) -> np.ndarray:
    """n inputs of one kind: 'gaussian' (d=16), 'digits' (n real training digits in [0, 1], d=64),
    'near_duplicates' (n/2 Gaussian points and a copy of each moved by near_scale), 'duplicates' (Gaussian,
    last row = first)."""
    rng = np.random.default_rng(derive_seed(seed, "fc-data", kind))
    if kind == "digits":
        if digits is None:
            raise ValueError("the 'digits' inputs need the prepared digits (fc_theory reads data/prepared/digits.pt)")
        return digits[rng.choice(len(digits), n, replace=False)]
    x = rng.standard_normal((n, 16))
    if kind == "near_duplicates":
        half = n // 2
        x[half:2 * half] = x[:half] + near_scale * rng.standard_normal((half, 16))
    elif kind == "duplicates":
        x[-1] = x[0]
    elif kind != "gaussian":
        raise ValueError(f"unknown input kind {kind!r}")
    return x


def fc_network(d: int, narrow: list[int], wide: int, activation: str, seed: int) -> nn.Sequential:
    """A random fully-connected net up to the activated wide layer (PyTorch's default init), float64."""
    # the CPU generator only (the one nn.Linear's init draws from): torch.manual_seed would also queue a seed for
    # every CUDA device, recording a stack trace each time, about a second over the study's networks
    torch.default_generator.manual_seed(derive_seed(seed, "fc-init"))
    layers: list[nn.Module] = []
    for w_in, w_out in zip([d] + narrow, narrow + [wide]):
        layers += [nn.Linear(w_in, w_out, dtype=torch.float64), ACTIVATIONS[activation]()]
    return nn.Sequential(*layers)


def wide_widths(n: int, ratios: list[str]) -> dict[str, int]:
    """m_H for each ratio label: 'n/2', 'n-1', 'n', '2n'."""
    table = {"n/2": n // 2, "n-1": n - 1, "n": n, "2n": 2 * n}
    return {r: table[r] for r in ratios}


def predicted_full_rank(activation: str, kind: str, m_h: int, n: int) -> bool | None:
    """The theory's prediction: True (rank n), False (rank < n, negative control), None (outside the theory)."""
    if m_h < n or kind == "duplicates":
        return False
    return True if activation in ANALYTIC else None


def _arb_activation(name: str):
    return {"tanh": lambda z: z.tanh(), "softplus": lambda z: (z.exp() + 1).log(),
            "sigmoid": lambda z: 1 / (1 + (-z).exp())}[name]  # analytic ones only: ReLU is outside the theory


def minor_columns(features: np.ndarray) -> np.ndarray:
    """The n columns of the n x m_H features that float64 pivoted QR ranks first, in order: the n x n minor most
    likely to be well conditioned."""
    _, _, pivots = scipy.linalg.qr(features, mode="economic", pivoting=True)
    return np.sort(pivots[:features.shape[0]])


def arb_features(x: np.ndarray, weights: list[tuple[np.ndarray, np.ndarray]], activation: str) -> Any:
    """The features of the layers (weight, bias) on inputs x in ball arithmetic at the context's precision, every
    float64 value taken as exact: an arb_mat of n rows, one column per unit of the last layer."""
    from flint import arb, arb_mat

    act = _arb_activation(activation)
    h = arb_mat([[arb(float(v)) for v in row] for row in x])
    for weight, bias in weights:
        z = h * arb_mat([[arb(float(v)) for v in r] for r in weight]).transpose()
        b = [arb(float(v)) for v in bias]
        h = arb_mat([[act(z[i, j] + b[j]) for j in range(z.ncols())] for i in range(z.nrows())])
    return h


def layer_weights(net: nn.Sequential) -> list[tuple[np.ndarray, np.ndarray]]:
    """(weight, bias) of each linear layer, as float64 arrays."""
    return [(m.weight.detach().numpy(), m.bias.detach().numpy()) for m in net if isinstance(m, nn.Linear)]


def rank_n_in_ball_arithmetic(x: np.ndarray, net: nn.Sequential, activation: str, max_bits: int,
                              features: np.ndarray | None = None) -> dict[str, Any]:
    """Recompute the features in ball arithmetic (weights as exact binary64 values) and try to prove rank n: an
    n x n minor of Phi whose determinant ball excludes 0, doubling the precision from 128 bits up to max_bits.
    `features` are the float64 features net(x) where the caller has them (they choose the minor's columns)."""
    from flint import ctx

    # Why a minor and not det(Phi Phi^T): the Gram matrix squares Phi's condition number, so it needs about twice
    # the bits, and a minor needs only n of the wide layer's m_H units. On the default grid's networks this
    # took less time and decided the same networks (benchmarks/results/study-kernels-cpu-2core.json, row
    # fc_theory_proofs). Any nonzero minor proves rank n.
    if features is None:
        with torch.no_grad():
            features = net(torch.from_numpy(x)).numpy()
    columns = minor_columns(features)
    weights = layer_weights(net)
    weights[-1] = (weights[-1][0][columns], weights[-1][1][columns])
    bits, saved = 128, ctx.prec
    try:
        while True:
            ctx.prec = bits
            det = arb_features(x, weights, activation).det()
            proven = not det.contains(0)
            if proven or bits >= max_bits:
                log10 = float(abs(det).mid().log()) / math.log(10) if proven else None
                return {"proven_rank_n": proven, "bits": bits, "log10_abs_det_minor": log10}
            bits *= 2
    finally:
        ctx.prec = saved


def run_grid(cfg: dict[str, Any], digits: np.ndarray | None = None) -> pd.DataFrame:
    """Certify every combination of the fc_theory config section; one row per network. Networks the theory
    predicts rank n for but float64 cannot certify are decided in ball arithmetic."""
    rows = []
    n = cfg["n"]
    grid = itertools.product(cfg["inputs"], cfg["activations"], cfg["narrow_widths"], cfg["depths"],
                             wide_widths(n, cfg["wide_ratios"]).items(), cfg["seeds"])
    for kind, activation, width, depth, (ratio, m_h), seed in grid:
        x = make_inputs(kind, n, seed, cfg["near_duplicate_scale"], digits)
        net = fc_network(x.shape[1], [width] * depth, m_h, activation, seed)
        with torch.no_grad():
            features = net(torch.from_numpy(x))
        cert = certify(features)
        predicted = predicted_full_rank(activation, kind, m_h, n)
        row = {"inputs": kind, "activation": activation, "narrow_width": width, "depth": depth, "wide_ratio": ratio,
               "m_H": m_h, "n": n, "seed": seed, "rank": cert["rank"], "full_rank": cert["full_rank"],
               "sigma_min": cert["sigma_min"], "sigma_max": cert["sigma_max"], "tolerance": cert["tolerance"],
               "predicted_full_rank": predicted, "proven_rank_n": None, "proof_bits": None, "log10_abs_det_minor": None}
        if predicted is True and not cert["full_rank"] and kind != "near_duplicates":
            proof = rank_n_in_ball_arithmetic(x, net, activation, cfg["max_bits"], features.numpy())
            row.update(proven_rank_n=proof["proven_rank_n"], proof_bits=proof["bits"],
                       log10_abs_det_minor=proof["log10_abs_det_minor"])
        rows.append(row)
    return pd.DataFrame(rows)


def pass_rates(runs: pd.DataFrame) -> pd.DataFrame:
    """Share of networks with numerical rank n in float64, and with rank n decided (float64 or ball arithmetic),
    per inputs x activation x m_H / n, beside the prediction."""
    frame = runs.assign(decided=runs.full_rank.astype(bool) | runs.proven_rank_n.eq(True))
    table = (frame.groupby(["inputs", "activation", "wide_ratio"], sort=False)
             .agg(networks=("full_rank", "size"), rank_n_float64=("full_rank", "sum"),
                  rank_n_proven=("decided", "sum"), predicted=("predicted_full_rank", "first"),
                  min_sigma_min=("sigma_min", "min"))
             .reset_index())
    table["pass_rate_float64"] = table.rank_n_float64 / table.networks
    table["predicted"] = table.predicted.map({True: "rank n", False: "rank < n", None: "outside theory"})
    return table


def theory_claims(runs: pd.DataFrame, evidence: list[str]) -> list[dict[str, Any]]:
    """F1 (analytic, m_H >= n, distinct inputs: rank n) and check F2 (negative controls are rank-deficient)."""
    positive = runs[runs.predicted_full_rank.eq(True)]
    clean = positive[positive.inputs != "near_duplicates"]
    near = positive[positive.inputs == "near_duplicates"]
    in_float64 = clean.full_rank.astype(bool)
    proven = clean.proven_rank_n.eq(True)
    refuted = clean[~in_float64 & clean.proven_rank_n.eq(False)]
    verdict = ("inconclusive" if not len(clean) else "not supported" if len(refuted)
               else "supported" if (in_float64 | proven).all() else "inconclusive")
    f1 = make_claim(
        "F1", "With analytic activations, m_H >= n and distinct inputs, the wide layer's features have rank n "
        "for almost every parameter value.", SOURCE, evidence,
        {"networks": int(len(clean)), "rank_n_float64": int(in_float64.sum()), "proven_in_ball_arithmetic":
         int(proven.sum()), "not_proven_at_max_precision": int(len(refuted)),
         "max_bits_used": None if clean.proof_bits.isna().all() else int(clean.proof_bits.max()),
         "pass_rate_float64_by_narrow_width": {str(k): round(float(v), 4) for k, v in
                                               clean.groupby("narrow_width").full_rank.mean().items()},
         "near_duplicates_rank_n_float64": int(near.full_rank.sum()), "near_duplicates_networks": int(len(near))},
        verdict, reconstructed=True,
        rule="every random network with an analytic activation, m_H >= n and distinct (Gaussian or digits) inputs is "
             "decided: rank n in float64 (exact SVD, NumPy's tolerance) or, where float64 cannot resolve it, proven "
             "in ball arithmetic (an n x n minor of Phi with a determinant ball excluding 0, precision doubled up to "
             "fc_theory.max_bits). Supported when every network has rank n; not supported when a network's "
             "determinant ball still contains 0 at the maximum precision; inconclusive otherwise (or without "
             "networks). Near-duplicate inputs are reported beside it, not judged")
    negative = runs[runs.predicted_full_rank.eq(False)]
    f2 = make_check(
        "F2", "Negative controls fail: m_H < n or exactly duplicated inputs give rank < n.", evidence,
        {"networks": int(len(negative)), "rank_deficient": int((~negative.full_rank.astype(bool)).sum())},
        bool(len(negative)) and not negative.full_rank.astype(bool).any(),
        rule="passes when every network with m_H < n or a duplicated input has numerical rank below n (true by "
             "construction: rank <= m_H, two equal rows)")
    return [f1, f2]
