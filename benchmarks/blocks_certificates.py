"""The record blocks of docs/certificates.md: the certificate's time and memory, the large runs, and the memory plan
for the paper's sizes."""

from __future__ import annotations

from doc_records import block, num, paper_config, record, sci, source, table, times

from globalmin import datasets

PANELS = 5  # n x BLOCK float64 panels the blocked QR holds at once (factor, reflectors, solves' blocks)


@block("certificate-time")
def certificate_time() -> str:
    name = "certificate-cpu-2core.json"
    rows, last = [], None
    for r in record(name)["rows"]:
        last = r
        rows.append([num(r["n"]), *(f"{num(r[k], 2)} s" for k in ("numpy_svd_seconds", "svd_seconds", "qr_seconds",
                     "qr_out_of_core_seconds", "library_qr_only_seconds")),
                     num(r["qr_seconds"] / r["numpy_svd_seconds"], 2),
                     f"{sci(r['qr_rel_diff'])} / {sci(r['qr_out_of_core_rel_diff'])}"])
    header = ["n", "NumPy SVD", "`svd`", "`qr` (LAPACK, in memory)", "`qr`, Φ on disk (blocked)",
              "`torch.linalg.qr` alone", "qr / NumPy", "σ_min rel. diff (qr / on disk)"]
    text = (f"At n = {num(last['n'])}, `torch.linalg.qr` alone takes "
            f"{last['library_qr_only_seconds'] / last['qr_seconds']:.0%} of the whole certificate "
            f"({num(last['library_qr_only_seconds'], 2)} of {num(last['qr_seconds'], 2)} s); on disk, with Φ in the "
            f"page cache, the blocked QR took {num(last['qr_out_of_core_seconds'], 2)} s, "
            f"{times(last['qr_out_of_core_seconds'] / last['qr_seconds'])} the in-memory certificate.")
    return table(header, rows) + "\n\n" + text + "\n\n" + source(name)


def minutes(seconds: float) -> str:
    return f" ({num(seconds / 60, 1)} minutes)" if seconds >= 600 else ""


def working_gib(row: dict) -> float:
    return row["peak_resident_gib"] - row["resident_before_gib"]


@block("certificate-large")
def certificate_large() -> str:
    name, blocked_name, small_name = ("certificate-large-cpu-2core.json", "certificate-large-blocked-cpu-2core.json",
                                      "certificate-cpu-2core.json")
    rows = record(name)["rows"]
    runs = "; ".join(
        f"n = {num(r['n'])} took {num(r['qr_seconds'], 1)} s{minutes(r['qr_seconds'])}, with "
        f"Φ = {num(r['phi_gib'], 2)} GiB and {num(working_gib(r), 2)} GiB ({working_gib(r) / r['phi_gib']:.2f} Φ) of "
        f"working memory (peak {num(r['peak_resident_gib'], 2)} GiB against {num(r['resident_before_gib'], 2)} GiB "
        f"before it)" for r in rows)
    big, small = rows[-1], record(small_name)["rows"][-1]
    n, svhn = num(big["n"]), datasets.FACTS["svhn"].train
    blocked = next(r for r in record(blocked_name)["rows"] if r["n"] == big["n"])
    agree = abs(blocked["qr_sigma_min"] - big["qr_sigma_min"]) / big["qr_sigma_min"]
    growth, cubed = big["qr_seconds"] / small["qr_seconds"], (big["n"] / small["n"]) ** 3
    svhn_seconds = round(big["qr_seconds"] * (svhn / big["n"]) ** 3, -2)
    return (f"{runs}. `torch.linalg.qr`, which needs Φ twice ({num(2 * big['phi_gib'], 1)} GiB at n = {n}), needs "
            f"more than that machine's memory (read by hand; the record names none). From n = {num(small['n'])} "
            f"({num(small['qr_seconds'], 2)} s in the table above, another run) to {n} the time grew "
            f"{growth:.0f}-fold, where n³ gives {cubed:.0f}-fold: LAPACK runs faster on larger matrices. Extrapolated "
            f"by n³ from n = {n} (not measured), SVHN's n = {num(svhn)} would take about {num(svhn_seconds)} s on "
            f"these cores if its Φ fitted in memory.\n\n"
            f"The GPU's hand-blocked QR, run on this CPU at n = {n}, took {num(blocked['qr_seconds'], 1)} s "
            f"({times(blocked['qr_seconds'] / big['qr_seconds'])} the LAPACK call) with "
            f"{num(working_gib(blocked), 2)} GiB ({working_gib(blocked) / blocked['phi_gib']:.2f} Φ) of working "
            f"memory, and its σ_min agreed with the "
            f"LAPACK path's to {sci(agree)} relative.\n\n" + source(name, blocked_name, small_name))


METHODS = [("library", "`torch.linalg.qr` alone"), ("lapack", "`qr` certificate (LAPACK, CPU in memory)"),
           ("blocked", "blocked `qr` certificate (the GPU's path)"), ("out_of_core", "blocked, Φ on disk")]


@block("certificate-memory")
def certificate_memory() -> str:
    name = "certificate-memory-cpu-2core.json"
    by_n: dict[int, dict[str, dict]] = {}
    for r in record(name)["rows"]:
        by_n.setdefault(r["n"], {})[r["method"]] = r
    rows = []
    for n, m in sorted(by_n.items()):
        phi = next(iter(m.values()))["phi_bytes"]
        rows.append([num(n), f"{num(phi / 2 ** 20)} MiB", *(
            f"{num(m[k]['working_bytes'] / 2 ** 20)} MiB ({m[k]['working_over_phi']:.2f} Φ)" if k in m else "–"
            for k, _ in METHODS)])
    n, m = max(by_n.items())
    text = (f"At n = {num(n)} the certificate needs {m['lapack']['working_over_phi']:.2f} Φ (LAPACK) and "
            f"{m['blocked']['working_over_phi']:.2f} Φ (blocked) beyond Φ, where the library QR alone needs "
            f"{m['library']['working_over_phi']:.2f} Φ.")
    return table(["n", "Φ", *(label for _, label in METHODS)], rows) + "\n\n" + text + "\n\n" + source(name)


def gb(size: float) -> str:
    return f"{size / 1e9:.1f} GB" if size >= 1e9 else f"{size / 1e6:.0f} MB"


@block("certificate-memory-plan")
def certificate_memory_plan() -> str:
    from globalmin.certificate import BLOCK, CHUNK_BYTES  # torch: only this block needs it

    name = "certificate-large-blocked-cpu-2core.json"
    sizes: dict[int, list[str]] = {}
    for ds in paper_config()["experiment"]["datasets"]:
        sizes.setdefault(datasets.n_train(ds, paper_config().get("data", {}).get(ds, {})), []).append(f"`{ds}`")
    phis = ", ".join(f"{gb(8 * n * n)} for {' and '.join(names)} (n = {num(n)})"
                     for n, names in sorted(sizes.items()))
    svhn = datasets.FACTS["svhn"]
    n = svhn.train
    panels, chunks = PANELS * n * BLOCK * 8, 2 * CHUNK_BYTES
    measured = record(name)["rows"][-1]
    at = measured["n"]
    return (f"Φ takes 8n² bytes: {phis}. The blocked QR adds about {PANELS} n × {BLOCK} float64 panels "
            f"({panels / 1e9:.2f} GB at n = {num(n)}) and two chunks of {CHUNK_BYTES // 2 ** 20} MiB: "
            f"{(PANELS * at * BLOCK * 8 + chunks) / 2 ** 30:.2f} GiB by these terms at n = {num(at)}, where the run "
            f"measured {working_gib(measured):.2f} GiB. So SVHN's certificate needs about "
            f"{(8 * n * n + panels + chunks) / 1e9:.1f} GB, plus one batch of `train.eval_batch_size` activations "
            f"and a float64 copy of the network, and fits one 80 GB GPU, where `torch.linalg.qr` would need "
            f"2 × {8 * n * n / 1e9:.1f} = {16 * n * n / 1e9:.1f} GB. The QR's cost is (4/3)n³ = "
            f"{sci(4 / 3 * n ** 3)} float64 operations at n = {num(n)}. An SVHN A(base) job holds its cached features "
            f"in float32: {4 * n * n / 1e9:.1f} GB for the training set and {4 * svhn.test * n / 1e9:.1f} GB for "
            f"the test set.\n\n" + source(name))
