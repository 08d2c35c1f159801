"""The expressivity certificate: does the n x m_H feature matrix of the wide layer have rank n?

Two methods, both in float64, with NumPy's `matrix_rank` tolerance sigma_max * max(n, m) * eps:
- 'svd': every singular value of the whole matrix (scipy); exact, O(n^2 m) time, for small n.
- 'qr': Householder QR of Phi^T = QR, so that R (n x n, triangular) has the singular values of Phi. Backward
  stable: R is exact for a matrix within about n * eps * sigma_max of Phi, the order of the tolerance itself
  (a Gram matrix Phi Phi^T would square the condition number instead). From R: sigma_max by Lanczos (scipy's
  eigsh on R^T R, which converges where power iteration stalls), sigma_min estimated by inverse iteration
  (two triangular solves per step; approaches from above), and the rigorous lower bound
  sigma_min >= 1 / ||R^-1||_F, which decides the certificate.

The QR is blocked and in place (`factor_in_place`): panels of `block` rows of Phi are factorised with
LAPACK/cuSOLVER's geqrf, their reflectors applied to the rest in chunks of rows with ormqr, and R^T overwrites
Phi's first n columns. Beyond Phi itself it needs O((block + chunk) * m) memory, so at the paper's largest size
(SVHN, n = m_H = 73,257: Phi is 42.9 GB in float64) it fits one 80 GB GPU, where torch.linalg.qr needs a second
copy of Phi (85.8 GB; its copy measured in benchmarks/results/certificate-memory-cpu-2core.json). The same code
runs on an on-disk `numpy.memmap` (`scratch_matrix`): the chunked, out-of-core CPU path for n beyond the host's
memory. The triangular solves are blocked by hand too, because torch.linalg.solve_triangular copies a strided n x n
factor (measured), and so are Lanczos's products with R^T R (`gram_product`: only R's nonzero half). Hand-written
blocking is kept only where no library QR is known to work in place: on a GPU tensor (whether torch.geqrf with an
aliased output stays in place on CUDA is unmeasured, and a copy of Phi would not fit at n = 73,257) and on a memmap
in chunks. On CPU in memory, one LAPACK geqrf through torch (`factor_lapack`, its output aliased to Phi^T's column-
major view) factorises Phi in place.
"""

from __future__ import annotations

import copy
import tempfile
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import scipy.linalg
import torch

TOLERANCE_RULE = "sigma_max * max(n, m) * eps(dtype)  (NumPy matrix_rank default)"
FLOAT32_EPS = float(np.finfo(np.float32).eps)


METHODS = ("svd", "qr")
SVD_MAX_N = 4096  # 'auto' uses the exact SVD up to this n, QR above it


def choose_method(n: int, method: str = "auto") -> str:
    """The certificate method for n training points: 'auto' means svd for n <= SVD_MAX_N, else qr."""
    return ("svd" if n <= SVD_MAX_N else "qr") if method == "auto" else method


def certify(features: torch.Tensor | np.ndarray, method: str = "svd") -> dict[str, Any]:
    """Certificate of the n x m matrix `features`: sigma_min (the n-th), sigma_max, rank n or not."""
    if method == "qr":
        return certify_qr(torch.as_tensor(features))
    if method != "svd":
        raise ValueError(f"certificate method must be one of {METHODS}, got {method!r}")
    return certify_svd(features)


def certify_svd(features: torch.Tensor | np.ndarray) -> dict[str, Any]:
    """Every singular value of `features` in float64 (scipy): the exact method."""
    phi = features.detach().cpu().numpy() if isinstance(features, torch.Tensor) else np.asarray(features)
    eps = float(np.finfo(phi.dtype).eps) if np.issubdtype(phi.dtype, np.floating) else float(np.finfo(np.float64).eps)
    n, m = phi.shape
    sv = scipy.linalg.svdvals(phi.astype(np.float64))  # descending, min(n, m) values
    sigma_max = float(sv[0]) if sv.size else 0.0
    tolerance = sigma_max * max(n, m) * eps
    rank = int((sv > tolerance).sum())
    # the rank at float32's tolerance: what the network, which trains in float32, can resolve
    rank_float32 = int((sv > sigma_max * max(n, m) * FLOAT32_EPS).sum())
    # With m < n there is no n-th singular value: the n-th is 0 by definition and the condition fails.
    sigma_min = float(sv[n - 1]) if m >= n else 0.0
    return {
        "n": n, "m": m, "sigma_min": sigma_min, "sigma_max": sigma_max, "rank": rank,
        "full_rank": rank == n, "tolerance": tolerance, "tolerance_rule": TOLERANCE_RULE,
        "rank_float32": rank_float32, "full_rank_float32": rank_float32 == n,
        "dtype": str(phi.dtype), "method": "exact SVD (scipy.linalg.svdvals, float64)",
    }


BLOCK = 256  # rows of Phi per QR panel (and per triangular-solve block): big enough for BLAS-3 speed
CHUNK_BYTES = 1 << 28  # rows of the trailing matrix updated at once: 256 MiB of working memory per chunk


def factor_lapack(work: torch.Tensor) -> torch.Tensor | None:
    """factor_in_place by one LAPACK geqrf on Phi^T in place (CPU, float64, in memory); None where it would copy
    (a file-backed matrix), so that the caller falls back to the blocked path.

    torch.geqrf with its output aliased to its input (Phi^T's view, already column-major) runs LAPACK in place:
    nothing is copied (checked below; its working memory is in
    benchmarks/results/certificate-memory-cpu-2core.json). It is torch's LAPACK (MKL in the pinned wheels),
    faster than scipy's dgeqrf with overwrite_a (OpenBLAS) at n = 8,000 on two cores (timed once by hand)."""
    if (work.device.type != "cpu" or work.dtype != torch.float64 or not work.is_contiguous()
            or hasattr(work, "_scratch_file")):  # on disk: the blocked path reads the file a panel at a time
        return None
    n = len(work)
    tau = torch.empty(n, dtype=work.dtype)
    qr, _ = torch.geqrf(work.mT, out=(work.mT, tau))
    if qr.data_ptr() != work.data_ptr():
        raise RuntimeError("LAPACK geqrf did not factorise Phi in place")
    lower = work[:, :n]
    lower.tril_()  # R^T; above the diagonal (and right of column n) lie the reflectors, not needed
    work[:, n:].zero_()
    return lower


@torch.no_grad()
def factor_in_place(work: torch.Tensor, block: int = BLOCK, chunk_bytes: int = CHUNK_BYTES) -> torch.Tensor:
    """Overwrite `work` (Phi, n x m float64, m >= n) with L = R^T of the QR of Phi^T; return the view L (n x n).

    Row j of Phi is column j of Phi^T, so a panel of Phi^T's columns is a block of Phi's rows. After the call
    `work[:, :n]` holds L (lower triangular, zeros above) and `work[:, n:]` holds zeros.
    """
    n, m = work.shape
    for k in range(0, n, block):
        e = min(k + block, n)
        panel, tau = torch.geqrf(work[k:e, k:].mT)  # (m - k) x b: R_kk on top, the reflectors below
        rows = max(1, chunk_bytes // (8 * (m - k)))
        for j in range(e, n, rows):  # apply the panel's Q^T to the trailing columns of Phi^T, a chunk at a time
            chunk = work[j:j + rows, k:]
            chunk.copy_(torch.ormqr(panel, tau, chunk.mT, left=True, transpose=True).mT)
        work[k:e, k:].zero_()
        work[k:e, k:e].copy_(panel[:e - k].triu().mT)
    return work[:, :n]


def solve_lower(lower: torch.Tensor, rhs: torch.Tensor, block: int = BLOCK) -> torch.Tensor:
    """x with L x = rhs for the lower-triangular view L, by blocks (forward substitution)."""
    x = rhs.clone()
    for s in range(0, len(x), block):
        e = min(s + block, len(x))
        if s:
            x[s:e] -= lower[s:e, :s] @ x[:s]
        x[s:e] = torch.linalg.solve_triangular(lower[s:e, s:e], x[s:e], upper=False)
    return x


def solve_upper(lower: torch.Tensor, rhs: torch.Tensor, block: int = BLOCK) -> torch.Tensor:
    """x with L^T x = rhs (R x = rhs) for the lower-triangular view L, by blocks (back substitution)."""
    x = rhs.clone()
    n = len(x)
    for e in range(n, 0, -block):
        s = max(e - block, 0)
        if e < n:
            x[s:e] -= lower[e:, s:e].mT @ x[e:]
        x[s:e] = torch.linalg.solve_triangular(lower[s:e, s:e].mT, x[s:e], upper=True)
    return x


def gram_product(lower: torch.Tensor, x: torch.Tensor, block: int = BLOCK) -> torch.Tensor:
    """L (L^T x) for the lower-triangular view L, reading only its lower part: a block of rows at a time.

    A dense L @ (L.mT @ x) reads all n^2 entries twice, half of them zeros; this reads about half as much and,
    being bound by memory bandwidth, takes about half the time (timed once by hand at n = 8,000). torch has no
    triangular matrix-vector product, and scipy's dtrmv copies a factor with row
    stride m > n (Phi's first n columns), so the blocks are cut here."""
    n = len(lower)
    half = torch.zeros_like(x)  # L^T x
    for s in range(0, n, block):
        e = min(s + block, n)
        half[:e] += lower[s:e, :e].mT @ x[s:e]
    out = torch.empty_like(x)
    for s in range(0, n, block):
        e = min(s + block, n)
        out[s:e] = lower[s:e, :e] @ half[:e]
    return out


def inverse_frobenius(lower: torch.Tensor, block: int = BLOCK) -> float:
    """||L^-1||_F = ||R^-1||_F, a block of L^-1's columns at a time (column block s:e lives in rows s:)."""
    n = len(lower)
    total = 0.0
    for s in range(0, n, block):
        e = min(s + block, n)
        unit = torch.zeros(n - s, e - s, dtype=lower.dtype, device=lower.device)
        unit[: e - s].fill_diagonal_(1.0)
        total += float(solve_lower(lower[s:, s:], unit, block).square().sum())
    return total ** 0.5


def scratch_matrix(n: int, m: int, folder: str | Path) -> torch.Tensor:
    """An n x m float64 matrix backed by a file in `folder` (numpy.memmap): the out-of-core CPU path."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    handle = tempfile.NamedTemporaryFile(dir=folder, prefix="features-", suffix=".f64")
    array = np.memmap(handle, dtype=np.float64, mode="w+", shape=(n, m))
    tensor = torch.from_numpy(array)
    tensor._scratch_file = handle  # the file lives (and is deleted) with the tensor
    return tensor


@torch.no_grad()
def largest_singular_value(lower: torch.Tensor, tol: float = 1e-12) -> float:
    """sigma_max of the triangular factor (= sigma_max of Phi) by Lanczos (scipy's eigsh on L L^T as an operator).

    Power iteration converges at the rate sigma_2 / sigma_1, which for trained features is close to 1: it used to
    stop at its iteration cap with sigma_max off by 1e-3 relative (and from below, which would lower the rank
    tolerance). Lanczos converges in tens of products on the same operator."""
    return top_singular_value(lambda v: gram_product(lower, v), len(lower), lower, tol)


def top_singular_value(gram: Any, size: int, like: torch.Tensor, tol: float = 1e-12) -> float:
    """The square root of the largest eigenvalue of the PSD operator `gram` (size x size, on `like`'s device and
    dtype), by Lanczos (scipy's eigsh)."""
    import scipy.sparse.linalg as sla

    def product(x):
        return gram(torch.as_tensor(x, dtype=like.dtype).to(like.device).reshape(size, -1)).cpu().numpy()

    operator = sla.LinearOperator((size, size), matvec=product, matmat=product, dtype=np.float64)
    start = np.random.default_rng(0).standard_normal(size)
    value = sla.eigsh(operator, k=1, which="LA", tol=tol, v0=start, return_eigenvectors=False)[0]
    return float(np.sqrt(max(value, 0.0)))


@torch.no_grad()
def certify_qr(features: torch.Tensor, iterations: int = 200, rtol: float = 1e-12, overwrite: bool = False,
               block: int = BLOCK, chunk_bytes: int = CHUNK_BYTES, factorisation: str = "auto") -> dict[str, Any]:
    """sigma_min and sigma_max of `features` from the R factor of its transpose's QR (see module docstring).

    With overwrite=True a float64 `features` is factorised in place (no copy: the large-n path). `factorisation`
    'auto' uses LAPACK where it works in place (CPU memory) and the blocked QR elsewhere; 'blocked' always uses
    the blocked QR (with `block` and `chunk_bytes`).
    """
    eps = float(torch.finfo(features.dtype).eps) if features.is_floating_point() else float(np.finfo(np.float64).eps)
    n, m = features.shape
    record = {"n": n, "m": m, "dtype": str(features.dtype).replace("torch.", ""), "tolerance_rule": TOLERANCE_RULE,
              "device": str(features.device)}
    if factorisation not in ("auto", "blocked"):
        raise ValueError(f"factorisation must be 'auto' or 'blocked', got {factorisation!r}")
    if m < n:  # rank <= m < n: the condition fails without any factorisation
        phi = features.to(torch.float64)
        # Lanczos on Phi^T Phi (m x m): the exact 2-norm of an n x m matrix costs an SVD, too slow at n = 4,000
        sigma_max = top_singular_value(lambda v: phi.T @ (phi @ v), m, phi)
        return {**record, "method": "none (fewer columns than rows)", "sigma_min": 0.0, "sigma_min_lower_bound": 0.0,
                "sigma_max": sigma_max, "rank": None, "full_rank": False, "tolerance": sigma_max * max(n, m) * eps,
                "iterations": 0, "rank_float32": None, "full_rank_float32": False}
    in_place = overwrite and features.dtype == torch.float64
    work = features if in_place else features.to(torch.float64, copy=True)
    lower = factor_lapack(work) if factorisation == "auto" else None
    if lower is None:
        lower = factor_in_place(work, block, chunk_bytes)
        record.update(method="blocked in-place Householder QR of Phi^T (geqrf/ormqr, float64), inverse iteration, "
                             "1/||R^-1||_F lower bound", block=block)
    else:
        record.update(method="in-place Householder QR of Phi^T (LAPACK geqrf, float64), inverse iteration, "
                             "1/||R^-1||_F lower bound")
    gen = torch.Generator().manual_seed(0)

    def start_vector() -> torch.Tensor:
        v = torch.randn(n, 1, generator=gen, dtype=torch.float64).to(lower.device)
        return v / torch.linalg.vector_norm(v)

    def power(step) -> tuple[float, int]:  # the dominant eigenvalue's square root of a PSD operator
        x, value = start_vector(), 0.0
        for count in range(1, iterations + 1):
            y = step(x)
            new = float(torch.linalg.vector_norm(y)) ** 0.5
            if not np.isfinite(new):
                return float("inf"), count
            x = y / torch.linalg.vector_norm(y)
            if abs(new - value) <= rtol * new:
                return new, count
            value = new
        return value, iterations

    sigma_max = largest_singular_value(lower)
    tolerance = sigma_max * max(n, m) * eps
    singular = bool((torch.diagonal(lower) == 0).any())
    inv_norm, steps = (float("inf"), 0) if singular else power(
        lambda x: solve_upper(lower, solve_lower(lower, x, block), block))  # (R^T R)^-1 = R^-1 R^-T
    if singular or not np.isfinite(inv_norm):
        sigma_min, lower_bound = 0.0, 0.0
    else:
        sigma_min = 1.0 / inv_norm
        r_inv_fro = inverse_frobenius(lower, block)
        lower_bound = 1.0 / r_inv_fro if np.isfinite(r_inv_fro) and r_inv_fro > 0 else 0.0
    if features.device.type == "cuda":
        torch.cuda.synchronize(features.device)
    return {**record, "sigma_min": sigma_min, "sigma_min_lower_bound": lower_bound, "sigma_max": sigma_max,
            "rank": None, "full_rank": lower_bound > tolerance, "tolerance": tolerance, "iterations": steps,
            "rank_float32": None, "full_rank_float32": lower_bound > sigma_max * max(n, m) * FLOAT32_EPS,
            "in_place": in_place}


def head_module(model: torch.nn.Module, head: str | torch.nn.Module | None = None) -> torch.nn.Linear:
    """The head W_out of `model`: a module, the name of one, or (None) the submodule named 'head'."""
    if isinstance(head, torch.nn.Module):
        return head
    name = head or "head"
    try:
        module = model.get_submodule(name)
    except AttributeError as err:
        raise ValueError(f"the model has no submodule '{name}' to use as the head; name its last Linear "
                         f"(globalmin.api.locate finds it)") from err
    if not isinstance(module, torch.nn.Linear):
        raise ValueError(f"the head '{name}' is a {type(module).__name__}, not a torch.nn.Linear")
    return module


def batches_of(inputs: Any, batch_size: int) -> Iterator[torch.Tensor]:
    """The input batches of a tensor (sliced) or of an iterable of batches (a DataLoader: (x, y, ...) or x)."""
    if isinstance(inputs, torch.Tensor):
        for i in range(0, len(inputs), batch_size):
            yield inputs[i:i + batch_size]
        return
    for batch in inputs:
        yield batch[0] if isinstance(batch, (tuple, list)) else batch


def count_inputs(inputs: Any) -> int | None:
    """How many inputs a tensor or a DataLoader holds (None for an iterable that does not say)."""
    if isinstance(inputs, torch.Tensor):
        return len(inputs)
    dataset = getattr(inputs, "dataset", None)
    try:
        return len(dataset) if dataset is not None else len(inputs)
    except TypeError:
        return None


@torch.no_grad()
def feature_matrix(model: torch.nn.Module, x: Any, batch_size: int = 1024, scratch: str | Path | None = None,
                   head: str | torch.nn.Module | None = None, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """h_H(x), the head's input, for every input, in eval mode (batch norm uses its running statistics), without
    augmentation. `x` is a tensor of inputs or an iterable of batches (a DataLoader over un-augmented data).

    In float64 (the default) a float64 copy of the model runs, so that the certified rank is that of the exact
    network at these parameters, not of float32 rounding; the model itself is left untouched. In the model's own
    dtype the model itself runs (phase 2's cached features), its train/eval mode restored after. A forward
    pre-hook on the head takes its input, so any model whose output is head(h_H(x)) works. Batches are written
    straight into one preallocated n x m_H matrix on the model's device (or on disk in `scratch`), so at most one
    batch's activations of the earlier layers are alive at a time and Phi is never concatenated or copied.
    """
    same = dtype == next(model.parameters()).dtype
    net = model if same else copy.deepcopy(model).to(dtype)
    was_training = net.training
    net.eval()
    linear = head_module(net, _name_of(model, head) if isinstance(head, torch.nn.Module) else head)
    device = next(net.parameters()).device
    n, m = count_inputs(x), linear.in_features
    out = None
    if n is not None:
        out = scratch_matrix(n, m, scratch) if scratch else torch.empty(n, m, dtype=dtype, device=device)
    parts, row, taken = [], 0, []
    hook = linear.register_forward_pre_hook(lambda module, args: taken.append(args[0]))
    try:
        for batch in batches_of(x, batch_size):
            net(batch.to(device, dtype))
            features = taken.pop()
            if out is None:
                parts.append(features)
            else:
                out[row:row + len(features)] = features.to(out.device)
            row += len(features)
    finally:
        hook.remove()
        net.train(was_training)
    return torch.cat(parts) if out is None else out


def _name_of(model: torch.nn.Module, module: torch.nn.Module) -> str:
    return next(name for name, m in model.named_modules() if m is module)


def certify_model(model: torch.nn.Module, x: Any, method: str, batch_size: int = 1024,
                  scratch: str | Path | None = None, head: str | torch.nn.Module | None = None) -> dict[str, Any]:
    """The certificate of a model's wide-layer features (the head's input) on inputs x (a tensor or batches);
    the QR factorises them in place."""
    if method == "svd":
        return certify_svd(feature_matrix(model, x, batch_size, head=head).cpu())
    if method != "qr":
        raise ValueError(f"certificate method must be one of {METHODS}, got {method!r}")
    phi = feature_matrix(model, x, batch_size, scratch, head=head)
    cert = certify_qr(phi, overwrite=True)
    if phi.device.type == "cuda":  # torch's allocator would keep Phi's memory (42.9 GB at SVHN's n) for this
        del phi                    # process alone: hand it back to the jobs that share the GPU (gpu_slots)
        torch.cuda.empty_cache()
    return cert
