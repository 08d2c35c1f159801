"""The record blocks of docs/performance.md: the studies' kernels, training throughput, compile, the resume file's
cost and the pipeline's time against a baseline commit."""

from __future__ import annotations

from doc_records import block, num, record, sci, source, table, times

PIPELINE_TARGET = 0.5  # the goal: the default DAG's job-seconds at most half the baseline commit's


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
    ("base runs", {"train_base", "train_base_ablated"}, ("scoring every second epoch, channels_last, each epoch's "
     "draws and augmentation at once, no `torch._dynamo` import, no interpreter teardown; a step is PyTorch's")),
    ("beyond-NTK movement", {"movement", "beyond_ntk"}, ("one job, each seed's initial kernel once, per-point trace "
     "kernel")),
    ("local-minimum study", {"local_minima"}, ("Jacobian and first-order gradient written out, one flat Adam "
     "update, Levenberg-Marquardt writing trial steps into one vector")),
    ("A(base)", {"train_recipe", "train_recipe_ablated"}, ("phase 2 on cached features, but now also the "
     "certificate at τ and the exact optimum")),
    ("NTK study", {"ntk"}, "the Jacobian and the GD steps' gradients written out, each update added into W in place"),
    ("fc_theory", {"fc_theory"}, "new work: the ball-arithmetic proofs of rank n, on an n × n minor"),
    ("notebook", {"notebook"}, "new job; its kernel stopped at once after the last cell"),
    ("figures, tables, claims, report, data", set(), ("fewer jobs; torch and scipy.stats imported only where they "
     "compute")),
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


DEFAULT_RECORD = "pipeline-cpu-2core.json"  # the default DAG, timed on a clean copy
BEFORE_RECORD = "pipeline-09b460d-cpu-2core.json"  # 09b460d's default DAG (pipeline_time.py --commit 09b460d)
FASHION_RECORD = "pipeline-fashion-cpu-2core.json"
FASHION_BUDGET_S = 3600  # issue 17's goal: the Fashion-MNIST profile within an hour on this 2-core machine


def run_in_words(rec: dict) -> str:
    jobs = rec["benchmarked_job_seconds"]
    return (f"{rec['jobs']} jobs, {jobs['train:base']['jobs']} base runs and {jobs['train:recipe']['jobs']} A(base) "
            f"runs among them, on {rec['machine']['cpus']} cores: {num(rec['wall_seconds'], 1)} s wall "
            f"({num(rec['wall_seconds'] / 60, 1)} min), {num(rec['cpu_seconds_all_processes'], 1)} CPU-s and "
            f"{num(rec['logged_job_seconds_total'])} job-seconds; its largest process peaked at "
            f"{num(rec['peak_rss_mib_largest_process'])} MiB")


def training_jobs(rec: dict) -> int:
    """How many jobs of the record's DAG trained (each a fresh process stepping a torch.optim optimizer)."""
    return sum(g["jobs"] for k, g in rec["benchmarked_job_seconds"].items() if k.startswith("train:"))


@block("pipeline-default")
def pipeline_default() -> str:
    rec, kernels = record(DEFAULT_RECORD), record("study-kernels-cpu-2core.json")["optimizer_startup"]
    jobs, per_job = training_jobs(rec), kernels["saved_cpu_s"]
    before = record(BEFORE_RECORD)
    return (f"The default DAG ran {run_in_words(rec)}. The default DAG of 09b460d (the hand-written SGD, before "
            f"A(Adam), phase 2's horizon and the width sweep), timed on a clean copy after it on the same machine, "
            f"ran {before['jobs']} jobs in {num(before['wall_seconds'], 1)} s wall and "
            f"{num(before['cpu_seconds_all_processes'], 1)} CPU-s. What torch.optim's own classes cost in today's "
            f"DAG: {jobs} training jobs each pay the `torch._dynamo` import of a first step, {num(per_job, 2)} CPU-s "
            f"more than the hand-written SGD did (row `optimizer_startup` above, the two timed side by side), "
            f"{num(jobs * per_job, 1)} CPU-s in all, {jobs * per_job / rec['cpu_seconds_all_processes']:.1%} of the "
            f"DAG's CPU time.\n\n" + source(DEFAULT_RECORD, BEFORE_RECORD, "study-kernels-cpu-2core.json"))


def rule_rows(rec: dict) -> list[list[str]]:
    """Per rule: job-seconds from Snakemake's log, largest first, with its share of the total."""
    logged, total = rec["logged_job_seconds"], rec["logged_job_seconds_total"]
    return [[f"`{rule}`", num(seconds), f"{seconds / total:.0%}"] for rule, seconds in logged.items() if seconds]


@block("pipeline-fashion")
def pipeline_fashion() -> str:
    rec = record(FASHION_RECORD)
    within = rec["wall_seconds"] <= FASHION_BUDGET_S
    verdict = (f"within the hour's budget by {num((FASHION_BUDGET_S - rec['wall_seconds']) / 60, 1)} min" if within
               else f"over the hour's budget by {num((rec['wall_seconds'] - FASHION_BUDGET_S) / 60, 1)} min")
    return (f"`config/fashion.yaml` on a clean copy ran {run_in_words(rec)}: {verdict}. Where the time went, "
            f"rule by rule (job-seconds from Snakemake's log; two jobs run at once):\n\n"
            + table(["rule", "job-seconds", "share"], rule_rows(rec)) + "\n\n" + source(FASHION_RECORD))


@block("optimum-scale")
def optimum_scale() -> str:
    name = "optimum-scale-cpu-2core.json"
    rows = [[num(r["n"]), r["loss"].replace("_", "-"), num(r["problem_svd_s"], 1), num(r["optimum_s"], 1),
             f"{r['optimum_iterations']} ({'converged' if r['optimum_converged'] else 'not converged'})",
             num(r["infimum_s"], 1), r["infimum_kind"], num(r["peak_rss_mib"])] for r in record(name)["rows"]]
    header = ["n", "loss", "SVD of [Φ, 1] (s)", "optimum (s)", "L-BFGS iterations", "infimum (s)", "infimum",
              "peak memory (MiB)"]
    return table(header, rows) + "\n\n" + source(name)
