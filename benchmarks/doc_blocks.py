"""The record blocks of the docs, one function per block: each reads its records (doc_records.record) and returns
Markdown that ends with doc_records.source(...), naming them. docs/performance.md, "Adding a figure", says how to
add one."""

from __future__ import annotations

import re
from pathlib import Path

import yaml
from doc_records import REPO, block, num, record, sci, source, table, times

from globalmin import datasets

PIPELINE_TARGET = 0.5  # the goal: the default DAG's job-seconds at most half the baseline commit's
PAPER_GOAL_HOURS = 3.0  # the goal for the paper profile on one GPU
PANELS = 5  # n x BLOCK float64 panels the blocked QR holds at once (factor, reflectors, solves' blocks)


# ---- docs/performance.md --------------------------------------------------------------------------------------

# the study_kernels row fields: ours, the call it replaced (the first key present of each), the unit
OURS = ("globalmin_ms", "globalmin_s", "minor_s", "globalmin_optim_cpu_s", "console_median_s")
REPLACED = ("library_ms", "library_s", "replaced_ms", "replaced_s", "gram_s", "torch_optim_cpu_s",
            "teardown_median_s")


def first_key(row: dict, keys: tuple[str, ...]) -> str:
    return next(k for k in keys if k in row)


def sameness(row: dict) -> str:
    """How a study_kernels row's two results compare, in words."""
    if "bit_identical" in row:
        return "bit-identical" if row["bit_identical"] else "differ"
    if "max_relative_difference" in row:
        return f"rel. diff. {sci(row['max_relative_difference'])}"
    if "same_decisions" in row:
        return "same decisions" if row["same_decisions"] else "decide differently"
    if "globalmin_optim_imports_dynamo" in row:
        return f"imports torch._dynamo: {'yes' if row['globalmin_optim_imports_dynamo'] else 'no'} against " \
               f"{'yes' if row['torch_optim_imports_dynamo'] else 'no'}"
    return "–"


def with_unit(key: str, value: float) -> str:
    unit = "ms" if key.endswith("_ms") else "CPU-s" if key.endswith("cpu_s") else "s"
    return f"{num(value, 2)} {unit}"


@block("study-kernels")
def study_kernels() -> str:
    name = "study-kernels-cpu-2core.json"
    rows = []
    for row_name, row in record(name).items():
        if not isinstance(row, dict) or "what" not in row:
            continue
        ours, theirs = first_key(row, OURS), first_key(row, REPLACED)
        rows.append([f"`{row_name}`", row["what"], with_unit(ours, row[ours]), with_unit(theirs, row[theirs]),
                     times(row[theirs] / row[ours]), sameness(row)])
    header = ["row", "what", "globalmin", "what it replaced", "speed-up", "results"]
    return table(header, rows) + "\n\n" + source(name)


@block("throughput")
def throughput() -> str:
    name = "train-throughput-cpu-2core.json"
    rec = record(name)
    pair, steps = rec["pair"], rec["steps"]
    train, proc = pair["training_seconds_best"], pair["process_seconds_best"]
    digits, paper = steps["digits"], steps["paper"]
    rows = [
        ["training seconds of a whole base + A(base) pair, scoring included", f"{num(train['project'], 2)} s",
         f"{num(train['plain'], 2)} s", f"**{times(pair['training_speedup_vs_plain'])}**"],
        ["the same, plain A(base) branched from base at τ (phase 1 trained once)", f"{num(train['project'], 2)} s",
         f"{num(train['plain_branched'], 2)} s", times(pair["training_speedup_vs_plain_branched"])],
        ["one process per variant, start-up, certificates and optimum included", f"{num(proc['project'], 2)} s",
         f"{num(proc['plain'], 2)} s", times(pair["process_speedup_vs_plain"])],
        ["the project as its two pipeline jobs (two start-ups)", f"{num(proc['project_jobs'], 2)} s",
         f"{num(proc['plain'], 2)} s", times(pair["jobs_speedup_vs_plain"])],
        ["training steps alone, images/s (digits; ResNet-18 + wide layer at 3×32×32)",
         f"{num(digits['project_default']['images_per_s'])}; {num(paper['project_default']['images_per_s'], 1)}",
         f"{num(digits['plain']['images_per_s'])}; {num(paper['plain']['images_per_s'], 1)}",
         f"{times(digits['project_default']['ratio_to_plain'])}; {times(paper['project_default']['ratio_to_plain'])}"],
    ]
    plain = pair["training_seconds"]["plain"]
    gain = {shape: steps[shape]["project_default"]["images_per_s"] / steps[shape]["project_nchw_fp32"]["images_per_s"]
            - 1 for shape in ("digits", "paper")}
    text = (f"Each figure is the best of {len(plain)} interleaved repeats (the plain pair took {num(min(plain), 1)} "
            f"to {num(max(plain), 1)} s across them). In this run channels_last added {gain['digits']:.0%} to a "
            f"step on digits and {gain['paper']:.0%} at the paper's shape.")
    header = ["what (digits, no augmentation, default config)", "project", "plain loop", "ratio"]
    return table(header, rows) + "\n\n" + text + "\n\n" + source(name)


@block("throughput-second-host")
def throughput_second_host() -> str:
    name = "train-throughput-pair-cpu-2core-second-host.json"
    pair = record(name)["pair"]
    train = pair["training_seconds_best"]
    return (f"The pair trained **{times(pair['training_speedup_vs_plain'])}** as fast as the plain loop there "
            f"({num(train['project'], 2)} s against {num(train['plain'], 2)} s of training; "
            f"{times(pair['training_speedup_vs_plain_branched'])} against the branched plain A(base); "
            f"{times(pair['jobs_speedup_vs_plain'])} as the two pipeline jobs, start-ups included).\n\n"
            + source(name))


@block("compile")
def compile_cpu() -> str:
    name, pair_name = "train-compile-cpu-2core.json", "train-throughput-cpu-2core.json"
    digits = record(name)["steps"]["digits"]
    compiled, eager = digits["project_compile_default"], digits["project_default"]
    pair = record(pair_name)["pair"]["training_seconds_best"]["project"]
    return (f"On the CPU, compiling the default network made its steps "
            f"{compiled['images_per_s'] / eager['images_per_s'] - 1:.0%} faster than channels_last alone "
            f"({num(compiled['images_per_s'])} against {num(eager['images_per_s'])} images/s), but its warm-up "
            f"took {num(compiled['warmup_seconds'], 1)} s from an empty compiler cache, where a whole digits "
            f"base + A(base) pair trains in {num(pair, 1)} s.\n\n" + source(name, pair_name))


@block("resume-cost")
def resume_cost() -> str:
    name = "resume-cost-cpu-2core.json"
    rec = record(name)
    every = rec["every_epoch"]
    return (f"Writing `last.pt` at every epoch end instead of every {rec['default_resume_seconds']} s cost an "
            f"augmented default-DAG base run {num(rec['saved_wall_s'], 2)} s of its "
            f"{num(every['median_wall_s'], 1)} s ({1 - rec['ratio_wall']:.1%}; medians of {len(every['wall_s'])} "
            f"alternating pairs; final weights "
            f"{'identical' if rec['same_final_weights'] else 'different'}).\n\n" + source(name))


def job_seconds(rec: dict) -> str:
    return (f"{num(rec['logged_job_seconds_total'])} job-seconds ({rec['jobs']} jobs; "
            f"{num(rec['cpu_seconds_all_processes'], 1)} CPU-s, {num(rec['wall_seconds'], 1)} s wall)")


def against_baseline(name: str) -> str:
    """One comparison record in a sentence: both DAGs' job-seconds, the ratios, and the target's margin."""
    rec = record(name)
    base, ratio = rec["baseline"], rec["ratio_to_baseline"]
    margin = PIPELINE_TARGET * base["logged_job_seconds_total"] - rec["logged_job_seconds_total"]
    verdict = (f"the target, at most {PIPELINE_TARGET:g} of the baseline, is met by {num(margin)} job-seconds"
               if margin >= 0 else f"the target, at most {PIPELINE_TARGET:g}, is missed by {num(-margin)} job-seconds")
    return (f"`{name}`: this DAG took {job_seconds(rec)} against 990fcdd's {job_seconds(base)}: "
            f"**{times(ratio['logged_job_seconds_total'])} the job-seconds** "
            f"({times(ratio['cpu_seconds_all_processes'])} the CPU time, {times(ratio['wall_seconds'])} the wall "
            f"time); {verdict}.")


@block("pipeline-vs-baseline")
def pipeline_vs_baseline() -> str:
    names = ["pipeline-vs-990fcdd-cpu-1core.json", "pipeline-vs-990fcdd-cpu-1core-repeat.json",
             "pipeline-vs-990fcdd-cpu-2core.json"]
    return "\n".join(f"- {against_baseline(n)}" for n in names) + "\n\n" + source(*names)


@block("pipeline-second-host")
def pipeline_second_host() -> str:
    name = "pipeline-vs-990fcdd-cpu-1core-second-host.json"
    return against_baseline(name) + "\n\n" + source(name)


# the comparison DAG's work by rule, 990fcdd's rules and this DAG's under one name: (work, rules, what changed); the
# last group takes every rule the others do not name
RULE_GROUPS = [
    ("base runs", {"train_base", "train_base_ablated"}, "scoring every second epoch, channels_last, each epoch's "
     "draws and augmentation at once, no `torch._dynamo` import, no interpreter teardown; a step is PyTorch's"),
    ("beyond-NTK movement", {"movement", "beyond_ntk"}, "one job, each seed's initial kernel once, per-point trace "
     "kernel"),
    ("local-minimum study", {"local_minima"}, "Jacobian and first-order gradient written out, one flat Adam "
     "update, Levenberg-Marquardt writing trial steps into one vector"),
    ("A(base)", {"train_recipe", "train_recipe_ablated"}, "phase 2 on cached features, but now also the "
     "certificate at τ and the exact optimum"),
    ("NTK study", {"ntk"}, "the Jacobian and the GD steps' gradients written out, each update added into W in place"),
    ("fc_theory", {"fc_theory"}, "new work: the ball-arithmetic proofs of rank n, on an n × n minor"),
    ("notebook", {"notebook"}, "new job; its kernel stopped at once after the last cell"),
    ("figures, tables, claims, report, data", set(), "fewer jobs; torch and scipy.stats imported only where they "
     "compute"),
]


def by_group(logged: dict[str, float]) -> list[float | None]:
    """Job-seconds per RULE_GROUPS entry (None where a DAG has no such rule)."""
    sums: list[float | None] = [None] * len(RULE_GROUPS)
    for rule, seconds in logged.items():
        i = next((i for i, (_, rules, _) in enumerate(RULE_GROUPS) if rule in rules), len(RULE_GROUPS) - 1)
        sums[i] = (sums[i] or 0) + seconds
    return sums


@block("pipeline-rules")
def pipeline_rules() -> str:
    name = "pipeline-vs-990fcdd-cpu-1core.json"
    rec = record(name)
    before, now = by_group(rec["baseline"]["logged_job_seconds"]), by_group(rec["logged_job_seconds"])
    rows = [[work, "–" if b is None else num(b), "–" if n is None else num(n), why]
            for (work, _, why), b, n in zip(RULE_GROUPS, before, now)]
    return table(["work", "990fcdd", "this DAG", "what changed"], rows) + "\n\n" + source(name)


@block("pipeline-default")
def pipeline_default() -> str:
    name = "pipeline-cpu-2core.json"
    rec = record(name)
    jobs = rec["benchmarked_job_seconds"]
    return (f"In the run recorded there the default DAG ran {rec['jobs']} jobs, {jobs['train:base']['jobs']} base "
            f"runs and {jobs['train:recipe']['jobs']} A(base) jobs among them, on {rec['machine']['cpus']} cores: "
            f"{num(rec['wall_seconds'], 1)} s wall, {num(rec['cpu_seconds_all_processes'], 1)} CPU-s and "
            f"{num(rec['logged_job_seconds_total'])} job-seconds; its largest process peaked at "
            f"{num(rec['peak_rss_mib_largest_process'])} MiB.\n\n" + source(name))


# ---- docs/certificates.md -------------------------------------------------------------------------------------

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
    svhn = datasets.FACTS["svhn"].train
    blocked = next(r for r in record(blocked_name)["rows"] if r["n"] == big["n"])
    agree = abs(blocked["qr_sigma_min"] - big["qr_sigma_min"]) / big["qr_sigma_min"]
    return (f"{runs}. `torch.linalg.qr`, which needs Φ twice ({num(2 * big['phi_gib'], 1)} GiB at n = "
            f"{num(big['n'])}), needs more than that machine's memory (read by hand; the record names none). From n = {num(small['n'])} "
            f"({num(small['qr_seconds'], 2)} s in the table above, another run) to {num(big['n'])} the time grew "
            f"{big['qr_seconds'] / small['qr_seconds']:.0f}-fold, where n³ gives {(big['n'] / small['n']) ** 3:.0f}-fold: "
            f"LAPACK runs faster on larger matrices. Extrapolated by n³ from n = {num(big['n'])} (not measured), "
            f"SVHN's n = {num(svhn)} would take about {num(round(big['qr_seconds'] * (svhn / big['n']) ** 3, -2))} s on these "
            f"cores if its Φ fitted in memory.\n\n"
            f"The GPU's hand-blocked QR, run on this CPU at n = {num(big['n'])}, took {num(blocked['qr_seconds'], 1)} s "
            f"({times(blocked['qr_seconds'] / big['qr_seconds'])} the LAPACK call) with {num(working_gib(blocked), 2)} "
            f"GiB ({working_gib(blocked) / blocked['phi_gib']:.2f} Φ) of working memory, and its σ_min agreed with the "
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


def paper_config() -> dict:
    return yaml.safe_load((REPO / "config" / "paper.yaml").read_text())


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


# ---- docs/cluster.md and docs/paper-profile.md ----------------------------------------------------------------

@block("paper-cost")
def paper_cost() -> str:
    name = "paper-cost-projection.json"
    rec = record(name)
    kinds = rec["pflops_by_kind"]
    train_pflop = kinds["base"] + kinds["recipe"]
    cert_hours = kinds["certificates_fp64"] * 1e15 / (rec["assumed_gpu_fp64_tflops"] * 1e12) / 3600
    needed = train_pflop * 1e15 / ((PAPER_GOAL_HOURS - cert_hours) * 3600) / 1e12
    rows = [[f"`{ds}`", num(d["n_train"]), num(d["train_step_gflops"], 1), num(d["gpu_hours"], 2),
             *(num(d["projected_job_minutes"][k], 1) for k in ("base_noaug", "base_aug", "recipe_noaug", "recipe_aug"))]
            for ds, d in rec["per_dataset"].items()]
    header = ["data set", "n", "GFLOP per step", "GPU-hours", "base min (no aug)", "base min (aug)",
              "A(base) min (no aug)", "A(base) min (aug)"]
    return (f"About {num(round(kinds['base'], -1))} PFLOP of base training and scoring, {num(kinds['recipe'])} PFLOP of "
            f"A(base) and {num(kinds['certificates_fp64'])} PFLOP of float64 certificates: "
            f"**{num(rec['gpu_hours_projected'], 1)} GPU-hours** at {rec['gpu_rate_source']} for training and "
            f"{rec['assumed_gpu_fp64_tflops']:g} TFLOP/s float64 (assumed, not measured). The {PAPER_GOAL_HOURS:g}-hour "
            f"goal needs about {num(round(needed, -1))} TFLOP/s of training.\n\n" + table(header, rows) + "\n\n"
            + source(name))


@block("paper-plan")
def paper_plan() -> str:
    name = "slurm-plan-paper.json"
    rules = {rule: r["jobs"] for rule, r in record(name)["rules"].items()}
    base = sum(j for r, j in rules.items() if r.startswith("train_base"))
    recipe = sum(j for r, j in rules.items() if r.startswith("train_recipe"))
    rest = ", ".join(f"{j} `{r}`" for r, j in rules.items() if not r.startswith("train_"))
    return (f"The plan has {record(name)['total_jobs']} jobs: {base} base runs and {recipe} A(base) jobs, and "
            f"{rest}.\n\n" + source(name))


@block("slurm-time-limits")
def slurm_time_limits() -> str:
    name = "paper-cost-projection.json"
    per = record(name)["per_dataset"]
    ablated = set(paper_config()["recipe"]["tau_ablation"]["datasets"])
    base_aug = max(per, key=lambda d: per[d]["projected_job_minutes"]["base_aug"])
    abl = max(ablated, key=lambda d: per[d]["projected_job_minutes"]["recipe_aug"])
    others = [(m, f"{d} {k}") for d, v in per.items() for k, m in v["projected_job_minutes"].items()
              if k != "base_aug" and not (d in ablated and k.startswith("recipe"))]
    longest, which = max(others)
    return (f"Projected, the longest base run with augmentation is `{base_aug}`'s, "
            f"{num(per[base_aug]['projected_job_minutes']['base_aug'], 1)} min; the longest A(base) job of a τ-ablation "
            f"data set (three phase-2 runs) `{abl}`'s, {num(per[abl]['projected_job_minutes']['recipe_aug'], 1)} min; "
            f"every other job at most {num(longest, 1)} min (`{which.replace(' ', '` ')}).\n\n" + source(name))


@block("job-sizes")
def job_sizes() -> str:
    name = "job-sizes-test-cpu-2core.json"
    rules = record(name)["rules"]
    rows = [[f"`{r}`", str(v["jobs"]), num(v["wall_seconds_median"], 1), num(v["wall_seconds_max"], 1),
             num(v["peak_rss_mib_max"])] for r, v in rules.items()]
    top = max(rules, key=lambda r: rules[r]["peak_rss_mib_max"])
    return (f"The test config's largest job peaked at {num(rules[top]['peak_rss_mib_max'])} MiB (`{top}`).\n\n"
            + table(["rule", "jobs", "wall s (median)", "wall s (max)", "peak MiB"], rows) + "\n\n" + source(name))


@block("slurm-plan")
def slurm_plan() -> str:
    name = "slurm-plan-paper.json"
    rec = record(name)
    return (rec["markdown"] + f"\n\nThe host that wrote this plan had {rec['submitting_host_cpus']} cores, so the "
            f"CPUs column shows at most {rec['submitting_host_cpus']}.\n\n" + source(name))


@block("slurm-vs-local")
def slurm_vs_local() -> str:
    name = "slurm-vs-local-test-cpu-2core.json"
    rec = record(name)
    slurm, local, node = rec["slurm"], rec["local"], rec["slurm"]["node"]
    rows = [["through SLURM", f"{num(slurm['wall_seconds'])} s", f"{slurm['slurm_jobs']} SLURM jobs on one node of "
             f"{node['cpus']} CPUs: `{slurm['command']}`"],
            ["locally", f"{num(local['wall_seconds'])} s", f"`{local['command']}`"]]
    return (table(["test DAG (`config/test.yaml`)", "wall time", "how"], rows)
            + f"\n\nThrough SLURM the DAG took {times(rec['ratio'])} as long.\n\n" + source(name))


# ---- docs/determinism.md --------------------------------------------------------------------------------------

CELL = re.compile(r"^(-?\d+(?:\.\d+)?) \((\d+(?:\.\d+)?)\)$")  # "mean (std)"
VERDICT = re.compile(r"^- \*\*(\w+)\*\* (supported|not supported|inconclusive|passed|failed)", re.MULTILINE)
# the columns of the report's tables that say which runs a row holds (the others are what they measured)
KEY_COLUMNS = {"dataset", "condition", "labels", "n", "# training points", "m_h", "augmentation", "τ / t", "seeds"}


def summary_tables(text: str) -> dict[str, dict[tuple, dict[str, str]]]:
    """Each '## ' section's table of a results summary: row key (its cells that are not 'mean (std)') -> cells."""
    tables: dict[str, dict[tuple, dict[str, str]]] = {}
    heading, header = "", None
    for line in text.splitlines():
        if line.startswith("## "):
            heading, header = line[3:].split(" (")[0], None
        elif line.startswith("|") and not line.startswith("|---"):
            cells = [c.strip() for c in line.strip("|").split("|")]
            if header is None:
                header = cells
                continue
            row = dict(zip(header, cells))
            key = tuple(c for h, c in row.items() if h.lower() in KEY_COLUMNS)
            tables.setdefault(heading, {})[key] = row
    return tables


def largest_difference(a: dict, b: dict) -> tuple[float, int, int, str]:
    """Over the 'mean (std)' cells two tables share: the largest difference, the cells compared, those differing
    by more than both standard deviations, and where the largest is."""
    best, compared, beyond, where = 0.0, 0, 0, ""
    for key in a.keys() & b.keys():
        for col, cell in a[key].items():
            x, y = CELL.match(cell), CELL.match(b[key].get(col, ""))
            if not (x and y):
                continue
            diff = abs(float(x[1]) - float(y[1]))
            compared += 1
            beyond += diff > max(float(x[2]), float(y[2]))
            if diff > best:
                best, where = diff, f"{' '.join(key[:3])}, {col}: {cell} against {b[key][col]}"
    return best, compared, beyond, where


@block("reference-hosts")
def reference_hosts() -> str:
    files = [REPO / "docs" / "reference-run.md", REPO / "docs" / "reference-run-second-host.md"]
    here, there = (summary_tables(f.read_text()) for f in files)
    lines = []
    for heading in [h for h in here if h in there]:
        best, compared, beyond, where = largest_difference(here[heading], there[heading])
        if compared:
            lines.append(f"- {heading}: {compared} cells compared; the largest difference is {best:.2f} points "
                         f"({where}); {beyond} differ by more than either host's standard deviation.")
    verdicts = [dict(VERDICT.findall(f.read_text())) for f in files]
    same = [c for c in verdicts[0] if verdicts[1].get(c) == verdicts[0][c]]
    lines.append(f"- Claims and instrument checks: {len(same)} of {len(verdicts[0])} have the same verdict on both.")
    return "\n".join(lines) + "\n\n*From " + " and ".join(
        f"`{f.relative_to(REPO)}`" for f in files) + ", as the pipeline's `report` rule wrote them.*"
