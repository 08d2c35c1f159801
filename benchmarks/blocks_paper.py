"""The record blocks of docs/paper-profile.md and docs/cluster.md: the paper profile's plan and projected cost, and
what its jobs ask SLURM for."""

from __future__ import annotations

from doc_records import block, num, paper_config, record, source, table, times

PAPER_GOAL_HOURS = 3.0  # the goal for the paper profile on one GPU


@block("paper-cost")
def paper_cost() -> str:
    name = "paper-cost-projection.json"
    rec = record(name)
    kinds = rec["pflops_by_kind"]
    train_pflop = kinds["base"] + kinds["recipe"]
    cert_hours = kinds["certificates_fp64"] * 1e15 / (rec["assumed_gpu_fp64_tflops"] * 1e12) / 3600
    needed = train_pflop * 1e15 / ((PAPER_GOAL_HOURS - cert_hours) * 3600) / 1e12
    kinds_of_job = ("base_noaug", "base_aug", "recipe_noaug", "recipe_aug")
    rows = [[f"`{ds}`", num(d["n_train"]), num(d["train_step_gflops"], 1), num(d["gpu_hours"], 2),
             *(num(d["projected_job_minutes"][k], 1) for k in kinds_of_job)] for ds, d in rec["per_dataset"].items()]
    header = ["data set", "n", "GFLOP per step", "GPU-hours", "base min (no aug)", "base min (aug)",
              "A(base) min (no aug)", "A(base) min (aug)"]
    return (f"About {num(round(kinds['base'], -1))} PFLOP of base training and scoring, {num(kinds['recipe'])} "
            f"PFLOP of A(base) and {num(kinds['certificates_fp64'])} PFLOP of float64 certificates: "
            f"**{num(rec['gpu_hours_projected'], 1)} GPU-hours** at {rec['gpu_rate_source']} for training and "
            f"{rec['assumed_gpu_fp64_tflops']:g} TFLOP/s float64 (assumed, not measured). The "
            f"{PAPER_GOAL_HOURS:g}-hour goal needs about {num(round(needed, -1))} TFLOP/s of training.\n\n"
            + table(header, rows) + "\n\n" + source(name))


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
    minutes = {d: per[d]["projected_job_minutes"] for d in per}
    return (f"Projected, the longest base run with augmentation is `{base_aug}`'s, "
            f"{num(minutes[base_aug]['base_aug'], 1)} min; the longest A(base) job of a τ-ablation data set (three "
            f"phase-2 runs) `{abl}`'s, {num(minutes[abl]['recipe_aug'], 1)} min; every other job at most "
            f"{num(longest, 1)} min (`{which.replace(' ', '` ')}).\n\n" + source(name))


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
    rows = [["through SLURM", f"{num(slurm['wall_seconds'])} s", (f"{slurm['slurm_jobs']} SLURM jobs on one node of "
             f"{node['cpus']} CPUs: `{slurm['command']}`")],
            ["locally", f"{num(local['wall_seconds'])} s", f"`{local['command']}`"]]
    return (table(["test DAG (`config/test.yaml`)", "wall time", "how"], rows)
            + f"\n\nThrough SLURM the DAG took {times(rec['ratio'])} as long.\n\n" + source(name))
