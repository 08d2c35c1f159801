"""Peak working memory of the QR certificate beyond the feature matrix itself, against torch.linalg.qr.

Each measurement runs in a fresh process: it fills an n x n float64 matrix Phi (tanh of a Gaussian), then a
sampling thread records the process's anonymous resident memory (RssAnon in /proc/self/status, every 5 ms) while
one method runs; the peak above the level with Phi alone is the method's working memory, reported in units of
Phi's size. Methods: 'lapack' (globalmin's QR certificate as it runs on CPU in memory: one LAPACK geqrf through
torch on Phi itself), 'blocked' (the in-place blocked QR certificate, the GPU's path, factorising Phi itself),
'library' (torch.linalg.qr(Phi^T, mode='r') alone, without any sigma estimate), and 'out_of_core' (the blocked
certificate on a file-backed Phi: its page cache is file-backed, so the anonymous peak is the chunk and panel
memory only). This is what decides whether SVHN (n = 73,257, Phi = 42.9 GB) fits one 80 GB GPU.
The sampler slows the methods (most of all the file-backed one), so its times are not timings: those are
measured by certificate_time.py.
Linux only. Usage: python benchmarks/certificate_memory.py [--sizes 2000 4000 8000] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import torch

from workspace import machine, save_json, status_bytes  # noqa: E402  (benchmarks/ is the script's folder)

REPO = Path(__file__).resolve().parents[1]
METHODS = ("lapack", "blocked", "library", "out_of_core")


def measure(method: str, n: int, chunk_mib: int) -> dict:
    """In this process: Phi, then the method under a peak-memory sampler."""
    from globalmin.certificate import certify_qr, scratch_matrix

    torch.set_num_threads(2)
    with tempfile.TemporaryDirectory() as folder:
        phi = scratch_matrix(n, n, folder) if method == "out_of_core" else torch.empty(n, n, dtype=torch.float64)
        gen = torch.Generator().manual_seed(n)
        for i in range(0, n, 256):  # in place: a temporary would stay in the allocator's free lists, and a method
            phi[i:i + 256].normal_(generator=gen).tanh_()  # reusing it would not show in the anonymous memory
        certify_qr(torch.rand(64, 64, dtype=torch.float64), overwrite=True)  # its lazy imports are not working memory
        base = status_bytes("RssAnon")
        peak, done = [base], threading.Event()

        def sample() -> None:
            while not done.is_set():
                peak[0] = max(peak[0], status_bytes("RssAnon"))
                time.sleep(0.005)

        sampler = threading.Thread(target=sample)
        sampler.start()
        start = time.perf_counter()
        if method == "library":
            torch.linalg.qr(phi.mT, mode="r")
            sigma_min = None
        else:
            sigma_min = certify_qr(phi, overwrite=True, chunk_bytes=chunk_mib << 20,
                                   factorisation="auto" if method == "lapack" else "blocked")["sigma_min"]
        seconds = time.perf_counter() - start
        done.set()
        sampler.join()
        del phi  # before its folder goes
    phi_bytes = 8 * n * n
    return {"method": method, "n": n, "chunk_mib": chunk_mib if method in ("blocked", "out_of_core") else None,
            "phi_bytes": phi_bytes, "working_bytes": peak[0] - base,
            "working_over_phi": round((peak[0] - base) / phi_bytes, 3),
            "seconds_under_sampler": round(seconds, 2),
            "sigma_min": sigma_min}


def main() -> None:
    """Run every (size, method) in its own process; print and record the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[2000, 4000, 8000])
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "certificate-memory-cpu-2core.json"))
    parser.add_argument("--chunk-mib", type=int, default=2,
                        help="trailing-matrix chunk of the blocked QR (the library default is 256 MiB, sized for "
                             "GPUs; a smaller one shows the O(chunk) working memory at sizes this machine holds)")
    parser.add_argument("--one", nargs=3, metavar=("METHOD", "N", "CHUNK_MIB"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure(args.one[0], int(args.one[1]), int(args.one[2]))))
        return
    rows = []
    for n in args.sizes:
        for method in METHODS:
            out = subprocess.run([sys.executable, __file__, "--one", method, str(n), str(args.chunk_mib)], check=True,
                                 capture_output=True, text=True).stdout
            rows.append(json.loads(out.strip().splitlines()[-1]))
            print(f"n={n:6d} {method:12s} working memory {rows[-1]['working_over_phi']:6.3f} x Phi"
                  f"  ({rows[-1]['working_bytes'] / 2**20:8.1f} MiB)", flush=True)
    record = {"what": __doc__.split("\n\n")[0], "method": __doc__.split("\n\n")[1].replace("\n", " "),
              "machine": machine(device="cpu", torch=torch.__version__),
              "rows": rows, "date": time.strftime("%Y-%m-%d")}
    save_json(record, args.out)


if __name__ == "__main__":
    main()
