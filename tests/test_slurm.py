"""profiles/slurm on a real SLURM: the test DAG's Table 1 runs and studies (conftest.TABLE1_ONLY) through the
one-node cluster of deploy/slurm/start-local.sh, against the same jobs of the local run of the whole test DAG.

Run with the cluster up:   deploy/slurm/start-local.sh python -m pytest -m slurm
Without that cluster, or without the executor plugin, these tests are skipped and say why. The paper plan test
needs only the plugin.
"""

from __future__ import annotations

import importlib.util
import math
import os
import re
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import torch
import yaml

from conftest import REPO, TABLE1_ONLY, copy_workflow

# The project's profile, then the local cluster's site settings (squeue status, no account, kept logs).
PROFILES = ["--profile", "profiles/slurm", "--profile", str(REPO / "deploy" / "slurm" / "profile")]
CONFIG = ["--configfile", "config/test.yaml", "table1-only.yaml"]  # the layer is written into the copy
# The base runs of the test DAG: the candidates for a cancellation and a requeue while they train.
BASE_RUNS = [f"results/runs/digits/standard/{aug}/seed{seed}/base" for aug in ("aug", "noaug") for seed in (0, 1)]
# Iterations in one epoch of those runs: 1,297 training points in batches of 64 (test config).
FIRST_EPOCH = math.ceil(1297 / 64)
HAS_PLUGIN = importlib.util.find_spec("snakemake_executor_plugin_slurm") is not None
NO_PLUGIN = "snakemake-executor-plugin-slurm is not installed (pip install -c constraints.txt -e '.[slurm]')"


def _cluster_problem() -> str | None:
    """Why the SLURM tests cannot run here, or None when a local cluster answers."""
    if not HAS_PLUGIN:
        return NO_PLUGIN
    partition = os.environ.get("GLOBALMIN_SLURM_PARTITION")
    if not partition or shutil.which("sinfo") is None:
        return ("no local SLURM cluster: run the tests under deploy/slurm/start-local.sh (needs root and apt-get), "
                "e.g. deploy/slurm/start-local.sh python -m pytest -m slurm")
    info = subprocess.run(["sinfo", "-h", "-p", partition, "-o", "%T"], capture_output=True, text=True)
    if info.returncode != 0 or not {"idle", "mixed", "allocated"} & set(info.stdout.split()):
        return f"SLURM partition {partition!r} has no usable node (sinfo: {(info.stdout + info.stderr).strip()!r})"
    return None


def _slurm_jobs(run_id: str) -> dict[str, dict[str, str]]:
    """Every SLURM job of one Snakemake run (its job name is the run id): id -> state, comment, restarts."""
    out = subprocess.run(["squeue", "-h", "--states=all", "--name", run_id, "-o", "%i|%T|%k"],
                         capture_output=True, text=True, check=True).stdout
    jobs = {}
    for line in out.splitlines():
        job_id, state, comment = line.split("|", 2)
        shown = subprocess.run(["scontrol", "show", "job", "-o", job_id], capture_output=True, text=True).stdout
        restarts = re.search(r"\bRestarts=(\d+)", shown)
        jobs[job_id] = {"state": state, "comment": comment, "restarts": int(restarts.group(1)) if restarts else 0}
    return jobs


def _running_job(run: str) -> str | None:
    """The id of the running SLURM job that trains `run` (the plugin's job comment names rule and wildcards)."""
    _, _, dataset, condition, aug, seed, _ = run.split("/")
    wildcards = f"_wildcards_{dataset}_{condition}_{aug}_{seed.removeprefix('seed')}"
    out = subprocess.run(["squeue", "-h", "-t", "RUNNING", "-o", "%i|%k"], capture_output=True, text=True).stdout
    for line in out.splitlines():
        job_id, comment = line.split("|", 1)
        if comment.startswith("rule_train_base") and comment.endswith(wildcards):
            return job_id
    return None


def _wait_for_state(job_id: str, wanted: set[str], timeout: float = 30) -> str:
    """Poll a job's state until it is one of `wanted` (or the time is up); the last state seen."""
    deadline, state = time.monotonic() + timeout, ""
    while time.monotonic() < deadline:
        state = subprocess.run(["squeue", "-h", "--states=all", "-j", job_id, "-o", "%T"],
                               capture_output=True, text=True).stdout.strip()
        if state in wanted:
            break
        time.sleep(0.2)
    return state


@dataclass
class SlurmRun:
    """What the test DAG's run through SLURM left behind."""
    work: Path
    returncode: int
    output: str
    run_id: str
    jobs: dict[str, dict[str, str]]
    interrupted: dict[str, tuple[str, str]] = field(default_factory=dict)  # action -> (run folder, SLURM id)


def _first_epoch_done(folder: Path) -> bool:
    """Whether a base run's last.pt holds its first epoch and no more: the moment the test interrupts it (the
    test config's runs have two epochs, so later there is nothing left to interrupt)."""
    try:
        iteration = torch.load(folder / "last.pt", map_location="cpu", weights_only=True)["iteration"]
    except (OSError, RuntimeError, KeyError):  # not there yet (it is renamed into place when complete)
        return False
    return iteration <= FIRST_EPOCH and not (folder / "metrics.json").exists()


def _training_process(work: Path, run: str) -> int | None:
    """The PID of the `globalmin train-base` process that writes `run` in `work` (on this one-node cluster)."""
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
            if b"train-base" in argv and run.encode() in argv and Path(os.readlink(proc / "cwd")) == work.resolve():
                return int(proc.name)
        except OSError:  # the process ended while being looked at
            continue
    return None


def _interrupt(work: Path, proc: subprocess.Popen) -> dict[str, tuple[str, str]]:
    """While the DAG runs, cancel one base run (scancel) and requeue another (scontrol requeue, what a
    preemption does) after their first epoch. An epoch of the test config takes well under a second, less than
    SLURM takes to deliver a signal, so the training process is first frozen (SIGSTOP) at the moment its first
    epoch's last.pt appears; SLURM then ends the frozen job (SIGCONT, SIGTERM, SIGKILL after KillWait). A run
    that got past its first epoch before it froze is let go, and the next base run is tried."""
    pending, done, tried = ["scancel", "requeue"], {}, set()
    while proc.poll() is None and pending:
        for run in BASE_RUNS:
            folder = work / run
            if run in tried or not _first_epoch_done(folder):
                continue
            pid, job_id = _training_process(work, run), _running_job(run)
            if pid is None or job_id is None:
                continue
            tried.add(run)
            os.kill(pid, signal.SIGSTOP)
            if not _first_epoch_done(folder):
                os.kill(pid, signal.SIGCONT)
                break
            action = pending[0]
            if action == "scancel":
                subprocess.run(["scancel", job_id], capture_output=True)
                hit = _wait_for_state(job_id, {"CANCELLED", "COMPLETED", "FAILED"}) == "CANCELLED"
            else:
                subprocess.run(["scontrol", "requeue", job_id], capture_output=True)
                # SLURM holds a requeued job back for about two minutes (its begin time); start it at once
                if _wait_for_state(job_id, {"PENDING"}) == "PENDING":
                    subprocess.run(["scontrol", "update", f"JobId={job_id}", "StartTime=now"], capture_output=True)
                shown = subprocess.run(["scontrol", "show", "job", "-o", job_id], capture_output=True, text=True)
                hit = "Restarts=1" in shown.stdout
            if hit:
                done[action] = (run, job_id)
                pending.pop(0)
            break
        time.sleep(0.02)
    return done


@pytest.fixture(scope="module")
def slurm_run(tmp_path_factory) -> SlurmRun:
    """The test DAG through profiles/slurm on the local cluster, with one base run cancelled and one requeued."""
    problem = _cluster_problem()
    if problem:
        pytest.skip(problem)
    work = copy_workflow(tmp_path_factory.mktemp("slurm"))
    (work / "table1-only.yaml").write_text(yaml.safe_dump(TABLE1_ONLY))
    log = work / "snakemake-slurm.out"
    with log.open("w") as out:
        proc = subprocess.Popen(["snakemake", *PROFILES, *CONFIG], cwd=work, stdout=out, stderr=subprocess.STDOUT)
        try:
            interrupted = _interrupt(work, proc)
            proc.wait(timeout=1500)
        finally:
            if proc.poll() is None:
                proc.terminate()
                proc.wait(timeout=60)
    output = log.read_text()
    run_id = re.search(r"SLURM run ID: (\S+)", output)
    assert run_id, output[-3000:]
    return SlurmRun(work, proc.returncode, output, run_id.group(1), _slurm_jobs(run_id.group(1)), interrupted)


@pytest.fixture(scope="module")
def local_run(slurm_run, request) -> Path:
    """The same DAG run locally (profiles/default, 2 cores): conftest's shared run, made only once the SLURM
    run has happened (so that a skipped SLURM test costs no local run)."""
    return request.getfixturevalue("workdir")


def _job_counts(text: str) -> dict[str, int]:
    table = text.split("Job stats:")[1].split("\n\n")[0]
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\w+)\s+(\d+)$", table, re.M) if m.group(1) != "total"}


def _jobs_in_slurm_log(text: str) -> set[tuple[str, str]]:
    """(rule, outputs) of every Snakemake job that a SLURM job's log shows running."""
    jobs, rule = set(), None
    for line in text.splitlines():
        if m := re.match(r"^\s*(?:local)?rule (\w+):$", line):
            rule = m.group(1)
        elif (m := re.match(r"^\s*output: (.+)$", line)) and rule:
            jobs.add((rule, m.group(1)))
            rule = None
    return jobs


@pytest.mark.slurm
@pytest.mark.integration
def test_every_job_ran_as_a_slurm_job(slurm_run):
    assert slurm_run.returncode == 0, slurm_run.output[-3000:]
    expected = _job_counts(slurm_run.output)
    expected.pop("all")  # the target rule has no command: Snakemake finishes it itself
    logs = {p.stem: p for p in (slurm_run.work / ".snakemake" / "slurm_logs").rglob("*.log")}
    assert set(logs) == set(slurm_run.jobs), "every SLURM job of the run has its log, and every log a job"
    ran: set[tuple[str, str]] = set()
    for job_id, job in slurm_run.jobs.items():
        if job["state"] == "COMPLETED":
            ran |= _jobs_in_slurm_log(logs[job_id].read_text())
        else:  # only the job cancelled on purpose may end otherwise
            assert (job["state"], job_id) == ("CANCELLED", slurm_run.interrupted["scancel"][1]), job
    counts: dict[str, int] = {}
    for rule, _ in ran:
        counts[rule] = counts.get(rule, 0) + 1
    assert counts == expected
    # profiles/slurm's groups: each study with its figure, and the report stage, one SLURM job each
    groups = [{rule for rule, _ in _jobs_in_slurm_log(p.read_text())} for p in logs.values()
              if p.parent.name.startswith("group_")]
    assert len(groups) == 4 and all(len(g) >= 2 for g in groups) and any("report" in g for g in groups), groups


def _interrupted_run(slurm_run: SlurmRun, action: str) -> tuple[str, str]:
    if action not in slurm_run.interrupted:
        pytest.fail(f"no base run could be interrupted by {action} before it finished: {slurm_run.interrupted}")
    return slurm_run.interrupted[action]


@pytest.mark.slurm
@pytest.mark.integration
def test_cancelled_job_is_resubmitted_and_resumes(slurm_run, local_run):
    run, job_id = _interrupted_run(slurm_run, "scancel")
    assert slurm_run.jobs[job_id]["state"] == "CANCELLED"
    comment = slurm_run.jobs[job_id]["comment"]
    again = [i for i, j in slurm_run.jobs.items() if j["comment"] == comment and i != job_id]
    assert [slurm_run.jobs[i]["state"] for i in again] == ["COMPLETED"], "one retry, as a new SLURM job"
    assert re.search(r"resuming from iteration \d+ of \d+", _train_log(slurm_run, run)), _train_log(slurm_run, run)
    assert (slurm_run.work / run / "metrics.json").read_bytes() == (local_run / run / "metrics.json").read_bytes()


def _train_log(slurm_run: SlurmRun, run: str) -> str:
    """The job log of a base run (logs/train/<data set>/<condition>/<aug>/seed<k>/base.log)."""
    return (slurm_run.work / "logs" / "train" / Path(*run.split("/")[2:6]) / "base.log").read_text()


@pytest.mark.slurm
@pytest.mark.integration
def test_requeued_job_resumes_under_the_same_id(slurm_run, local_run):
    run, job_id = _interrupted_run(slurm_run, "requeue")
    assert slurm_run.jobs[job_id]["state"] == "COMPLETED" and slurm_run.jobs[job_id]["restarts"] == 1
    assert re.search(r"resuming from iteration \d+ of \d+", _train_log(slurm_run, run)), _train_log(slurm_run, run)
    assert (slurm_run.work / run / "metrics.json").read_bytes() == (local_run / run / "metrics.json").read_bytes()


@pytest.mark.slurm
@pytest.mark.integration
def test_outputs_equal_a_local_run(slurm_run, local_run):
    # the files each written by one job from its own inputs: the prepared data, the runs and the studies (the
    # tables, claims and report summarise every run of a DAG, and this one has fewer runs than the local one)
    def files(root: Path) -> set[str]:
        return {str(p.relative_to(root)) for d in ("data", "results/runs", "results/studies")
                for p in (root / d).rglob("*") if p.is_file()}

    produced = files(slurm_run.work)
    assert produced <= files(local_run) and (slurm_run.work / "report" / "index.html").exists()
    assert {f"results/runs/digits/standard/{aug}/seed{seed}/{a}/metrics.json" for aug in ("aug", "noaug")
            for seed in (0, 1) for a in ("base", "recipe", "recipe_0.5")} <= produced
    assert len({f for f in produced if f.startswith("results/studies/")}) >= 4
    # byte for byte: no output holds a time or a timing, and the same jobs on the same machine give the same bits
    differ = [f for f in sorted(produced) if (slurm_run.work / f).read_bytes() != (local_run / f).read_bytes()]
    assert not differ, differ


@pytest.mark.slurm
@pytest.mark.integration
def test_second_invocation_has_nothing_to_do(slurm_run):
    again = subprocess.run(["snakemake", *PROFILES, *CONFIG], cwd=slurm_run.work, capture_output=True, text=True,
                           timeout=300)
    said = again.stdout + again.stderr
    assert again.returncode == 0 and "Nothing to be done" in said, said[-2000:]
    run_id = re.search(r"SLURM run ID: (\S+)", said)
    assert run_id is None or not _slurm_jobs(run_id.group(1)), "no SLURM job submitted"


@pytest.mark.skipif(not HAS_PLUGIN, reason=NO_PLUGIN)
def test_paper_plan_requests_gpus_for_training(tmp_path):
    work = copy_workflow(tmp_path)
    (work / "paper-machine.yaml").write_text("resources: {memory_gb: 64}\n")  # the nodes' memory: 46 GiB on a CPU
    plan = subprocess.run(["snakemake", "--profile", "profiles/slurm", "-n", "--configfile", "config/paper.yaml",
                           "paper-machine.yaml"], cwd=work, capture_output=True, text=True, timeout=300)
    said = plan.stdout + plan.stderr
    assert plan.returncode == 0, said[-2000:]
    blocks = re.findall(r"^(?:local)?rule (\w+):\n((?:    .*\n)+)", said, re.M)
    seen: dict[str, set[str]] = {}
    for rule, body in blocks:
        resources = re.search(r"resources: (.+)", body)
        wildcards = re.search(r"wildcards: (.+)", body)
        seen.setdefault(rule, set()).add(resources.group(1) if resources else "")
        if rule.startswith("train_"):
            res = dict(item.split("=", 1) for item in resources.group(1).split(", "))
            assert res["gres"] == "gpu:1" and res["gpu_slots"] == "0" and res["mem_mb"] == "8000", (rule, res)
            aug = "aug=aug" in wildcards.group(1)
            long = rule == "train_recipe_ablated" or (rule.startswith("train_base") and aug)
            assert res["runtime"] == ("180" if long else "60"), (rule, res)
            # train.threads (4) CPUs, capped like every job's threads at the submitting host's --cores
            threads = min(4, os.cpu_count() or 1)
            assert threads == 1 or f"threads: {threads}" in body, body
    assert {"train_base", "train_base_ablated", "train_recipe", "train_recipe_ablated", "beyond_ntk"} <= seen.keys()
