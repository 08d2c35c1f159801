"""Time the certificate methods against a plain NumPy float64 SVD on the same matrices, and their agreement.

Matrices: tanh of a Gaussian n x n matrix (features-like, full rank) for each n. For each: NumPy's
np.linalg.svd(compute_uv=False) time and sigma_min, then each globalmin method's time, sigma_min, and the
relative difference to NumPy's sigma_min; on CPU the same QR certificate with Phi in a file (the out-of-core
path); and, for scale, the time of torch.linalg.qr(mode="r") alone (the library
QR the blocked in-place method replaces to save memory). On a GPU machine (--device cuda) the QR runs there.
Above --reference-max (default 8,000) there is no NumPy SVD, exact SVD or library QR to compare with (days on a
CPU; the library QR's copy of Phi does not fit a GPU at n = 73,257): Phi = tanh(Gaussian) is drawn on the
device and only the in-place QR certificate runs, with its time and its peak memory: on CUDA the peak device
memory, on CPU the process's resident memory before the certificate (Phi and the libraries) and its peak during
it (Linux: /proc/self/status, the peak reset through /proc/self/clear_refs).
Usage: python benchmarks/certificate_time.py [--sizes 1000 2000 4000 8000] [--device cpu] [--reference-max N]
       [--factorisation auto|blocked] [--out FILE]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from globalmin.certificate import certify, certify_qr, scratch_matrix
from globalmin.runinfo import device_name
from workspace import machine, save_json, status_bytes  # noqa: E402  (benchmarks/ is the script's folder)

REPO = Path(__file__).resolve().parents[1]


def certificate_alone(n: int, device: torch.device, factorisation: str = "auto") -> dict:
    """The in-place QR certificate of an n x n tanh(Gaussian) Phi drawn on `device`: time and peak memory."""
    gen = torch.Generator(device=device).manual_seed(n)
    phi = torch.randn(n, n, generator=gen, device=device, dtype=torch.float64).tanh_()
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats(device)
    else:
        Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current resident set
        rss_before = status_bytes("VmRSS") / 2 ** 30
    start = time.perf_counter()
    cert = certify_qr(phi, overwrite=True, factorisation=factorisation)
    seconds = time.perf_counter() - start
    row = {"n": n, "qr_seconds": round(seconds, 3), "qr_sigma_min": cert["sigma_min"],
           "qr_sigma_min_lower_bound": cert["sigma_min_lower_bound"], "qr_certified": cert["full_rank"],
           "phi_gib": 8 * n * n / 2 ** 30, "method": cert["method"]}
    if device.type == "cuda":
        row["peak_device_memory_gib"] = torch.cuda.max_memory_allocated(device) / 2 ** 30
    else:
        row.update(resident_before_gib=rss_before, peak_resident_gib=status_bytes("VmHWM") / 2 ** 30)
    print(f"n={n:6d}  qr alone {seconds:8.2f}s  {row}", flush=True)
    return row


def main() -> None:
    """Run the sizes, print a table, write the JSON record (after each size)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 2000, 4000, 8000])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--reference-max", type=int, default=8000)
    parser.add_argument("--factorisation", choices=("auto", "blocked"), default="auto",
                        help="above --reference-max: 'blocked' runs the GPU's hand-blocked QR on CPU too (its memory)")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    device = torch.device(args.device)
    name = device_name(device)
    rows: list[dict] = []
    record = {"what": "certificate time and agreement with numpy.linalg.svd (float64), tanh(Gaussian) n x n; "
                      "qr = in-place QR (LAPACK in memory, blocked on disk or GPU) + inverse iteration "
                      "+ the 1/||R^-1||_F bound",
              "machine": machine(device=str(device), device_name=name, torch_threads=torch.get_num_threads()),
              "rows": rows, "date": time.strftime("%Y-%m-%d")}
    out = Path(args.out) if args.out else REPO / "benchmarks" / "results" / f"certificate-{device.type}.json"

    def add(row: dict) -> None:
        """Keep a size's row and rewrite the record (atomically): a run stopped at a time limit keeps the sizes it
        finished."""
        rows.append(row)
        save_json(record, out)

    # a small certificate first, so that the imports it makes (scipy's Lanczos) and the solver's first-call set-up
    # (cuSOLVER's handle on CUDA) are neither timed nor counted in the first size's peak memory
    certify_qr(torch.rand(64, 64, dtype=torch.float64, device=device), overwrite=True)
    for n in args.sizes:
        if n > args.reference_max:
            add(certificate_alone(n, device, args.factorisation))
            continue
        phi = np.tanh(np.random.default_rng(n).standard_normal((n, n)))
        start = time.perf_counter()
        reference = float(np.linalg.svd(phi, compute_uv=False)[-1])
        numpy_seconds = time.perf_counter() - start
        row = {"n": n, "numpy_svd_seconds": round(numpy_seconds, 3), "numpy_sigma_min": reference}
        for method in ("svd", "qr"):
            features = torch.from_numpy(phi).to(device) if method == "qr" else phi
            if device.type == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
            cert = certify(features, method)
            if device.type == "cuda":
                torch.cuda.synchronize()
            row[f"{method}_seconds"] = round(time.perf_counter() - start, 3)
            row[f"{method}_sigma_min"] = cert["sigma_min"]
            row[f"{method}_rel_diff"] = abs(cert["sigma_min"] - reference) / reference
            row[f"{method}_certified"] = cert["full_rank"]
        if device.type == "cpu":  # the out-of-core path: Phi in a file, factorised in place in chunks
            with tempfile.TemporaryDirectory() as folder:
                work = scratch_matrix(n, n, folder)
                work.copy_(torch.from_numpy(phi))
                start = time.perf_counter()
                cert = certify_qr(work, overwrite=True)
                row["qr_out_of_core_seconds"] = round(time.perf_counter() - start, 3)
                row["qr_out_of_core_rel_diff"] = abs(cert["sigma_min"] - reference) / reference
                del work
        features = torch.from_numpy(phi).to(device)
        start = time.perf_counter()
        torch.linalg.qr(features.T, mode="r")
        if device.type == "cuda":
            torch.cuda.synchronize()
        row["library_qr_only_seconds"] = round(time.perf_counter() - start, 3)
        add(row)
        print(f"n={n:6d}  numpy {numpy_seconds:8.2f}s  svd {row['svd_seconds']:8.2f}s  qr {row['qr_seconds']:8.2f}s"
              f"  (torch qr alone {row['library_qr_only_seconds']:7.2f}s)"
              f"  qr/numpy {row['qr_seconds'] / numpy_seconds:5.2f}  rel diff svd {row['svd_rel_diff']:.1e}"
              f" qr {row['qr_rel_diff']:.1e}", flush=True)


if __name__ == "__main__":
    main()
