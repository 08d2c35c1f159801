"""The expressivity certificate: does the n x m_H feature matrix of the wide layer have rank n?

This is the exact method for small n (a float64 SVD of the whole matrix). The tolerance follows NumPy's
`matrix_rank` rule, sigma_max * max(n, m) * eps, with eps of the precision the features were computed in.
"""

from __future__ import annotations

import copy
import time
from typing import Any

import numpy as np
import scipy.linalg
import torch

TOLERANCE_RULE = "sigma_max * max(n, m) * eps(dtype)  (NumPy matrix_rank default)"


def certify(features: torch.Tensor | np.ndarray) -> dict[str, Any]:
    """Singular values of the n x m matrix `features` in float64: sigma_min (the n-th), sigma_max, rank vs n."""
    start = time.perf_counter()
    phi = features.detach().cpu().numpy() if isinstance(features, torch.Tensor) else np.asarray(features)
    eps = float(np.finfo(phi.dtype).eps) if np.issubdtype(phi.dtype, np.floating) else float(np.finfo(np.float64).eps)
    n, m = phi.shape
    sv = scipy.linalg.svdvals(phi.astype(np.float64))  # descending, min(n, m) values
    sigma_max = float(sv[0]) if sv.size else 0.0
    tolerance = sigma_max * max(n, m) * eps
    rank = int((sv > tolerance).sum())
    # With m < n there is no n-th singular value: the n-th is 0 by definition and the condition fails.
    sigma_min = float(sv[n - 1]) if m >= n else 0.0
    return {
        "n": n, "m": m, "sigma_min": sigma_min, "sigma_max": sigma_max, "rank": rank,
        "full_rank": rank == n, "tolerance": tolerance, "tolerance_rule": TOLERANCE_RULE,
        "dtype": str(phi.dtype), "method": "exact SVD (scipy.linalg.svdvals, float64)",
        "seconds": time.perf_counter() - start,
    }


@torch.no_grad()
def wide_features(model: torch.nn.Module, x: torch.Tensor, batch_size: int = 1024,
                  dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """h_H(x) for every input, in eval mode (batch norm uses its running statistics), without augmentation.

    Runs a copy of the model in `dtype` (float64 by default) so that the certified rank is that of the exact
    network at these parameters, not of float32 rounding; the training model is left untouched.
    """
    shadow = copy.deepcopy(model).to(dtype).eval()
    parts = [shadow.features(x[i:i + batch_size].to(dtype)) for i in range(0, len(x), batch_size)]
    return torch.cat(parts).cpu()
