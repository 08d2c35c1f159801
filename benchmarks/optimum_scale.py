"""Time and memory of phase 2's exact optimum (globalmin.optimum) at the default's and the Fashion-MNIST profile's n.

Each size runs in a fresh process: the n x (n+1) float64 problem built (its thin SVD), the regularised optimum
(cross-entropy: L-BFGS to the rigorous error bound; squared: the closed form) and the unregularised infimum, as
train-recipe calls them with the default config's recipe.optimum settings, on stand-in features: tanh of a
Gaussian n x m_H matrix with m_H = n (the profiles' width) and 10 classes of seeded labels, the classes' means
apart as trained features' are (a real run's features are not kept). Reads the process's peak resident memory
(VmHWM) after the three steps. Linux only. Usage: python benchmarks/optimum_scale.py [--sizes 1297 4000]
[--out FILE]; writes benchmarks/results/optimum-scale-cpu-2core.json by default (docs/performance.md shows it).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

from workspace import REPO, machine, save_json

MEASURE = """
import json, sys, time
import numpy as np, yaml
from globalmin import optimum
from workspace import status_bytes
n, loss = int(sys.argv[1]), sys.argv[2]
settings = yaml.safe_load(open(sys.argv[3]))["recipe"]["optimum"]
rng = np.random.default_rng(0)
labels = rng.integers(0, 10, n)
features = np.tanh(rng.standard_normal((n, n)) / 4 + 0.5 * np.eye(10)[labels] @ rng.standard_normal((10, n)))
w0 = np.zeros((10, n + 1))
times = {}
start = time.perf_counter(); problem = optimum.Problem(features, labels, 10, 1e-4, loss)
times["problem_svd_s"] = time.perf_counter() - start
start = time.perf_counter(); best = optimum.solve(problem, w0, settings["max_iterations"], settings["error_bound"])
times["optimum_s"] = time.perf_counter() - start
start = time.perf_counter()
inf = optimum.infimum_unregularised(problem, w0, settings["max_iterations"], grad_tol=settings["grad_tol"])
times["infimum_s"] = time.perf_counter() - start
print(json.dumps({"n": n, "loss": loss, **{k: round(v, 2) for k, v in times.items()},
                  "optimum_iterations": best["iterations"], "optimum_converged": bool(best["converged"]),
                  "infimum_kind": inf["kind"], "peak_rss_mib": round(status_bytes("VmHWM") / 2**20, 1)}))
"""


def measure(n: int, loss: str) -> dict:
    """One size and loss in a fresh process (benchmarks/ on its path for workspace.status_bytes)."""
    out = subprocess.run([sys.executable, "-c", MEASURE, str(n), loss, str(REPO / "config" / "config.yaml")],
                         cwd=REPO / "benchmarks", capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1297, 4000])
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "optimum-scale-cpu-2core.json"))
    args = parser.parse_args()
    rows = []
    for n in args.sizes:
        for loss in ("cross_entropy", "squared"):
            rows.append(measure(n, loss))
            print(json.dumps(rows[-1]), flush=True)
    record = {"what": __doc__.splitlines()[0], "method": " ".join(__doc__.split("\n\n")[1].split()),
              "machine": machine(), "rows": rows, "date": time.strftime("%Y-%m-%d")}
    print(f"wrote {save_json(record, args.out)}")


if __name__ == "__main__":
    main()
