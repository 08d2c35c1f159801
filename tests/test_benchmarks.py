"""The benchmark scripts that `benchmarks/gpu.sh` runs, run here on the CPU at small sizes: the records they write,
the cost projection that reads them, its one-line errors on missing input, and the records kept when a run is
stopped. The GPU command has never run on a GPU in CI, so these keep its CPU-testable parts from breaking."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from conftest import BENCH, load_benchmark

# gpu.sh calls `python3`: the interpreter running the tests comes first on PATH, as in an activated environment
ENV = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}


def bench(script: str, *args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    """Run benchmarks/<script> with this interpreter, capturing its output."""
    return subprocess.run([sys.executable, str(BENCH / script), *args], capture_output=True, text=True,
                          timeout=timeout, env=ENV)


@pytest.fixture(scope="module")
def records(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A digits `steps` record and a certificate record (one size against NumPy, one alone), written on CPU."""
    folder = tmp_path_factory.mktemp("bench")
    paths = {"steps": folder / "steps.json", "certificate": folder / "certificate.json"}
    steps = bench("train_throughput.py", "--parts", "steps", "--shapes", "digits", "--seconds", "0.05",
                  "--warmup", "1", "--out", str(paths["steps"]))
    assert steps.returncode == 0, steps.stderr
    cert = bench("certificate_time.py", "--sizes", "100", "200", "--reference-max", "100",
                 "--out", str(paths["certificate"]))
    assert cert.returncode == 0, cert.stderr
    return paths


def test_gpu_script_names_an_unknown_part_before_any_work(tmp_path: Path) -> None:
    run = subprocess.run(["bash", str(BENCH / "gpu.sh"), "steps", "stpes"], capture_output=True, text=True, env=ENV)
    assert run.returncode == 2
    assert run.stderr.strip() == "gpu.sh: unknown part 'stpes'; name any of: steps concurrent certificate cost"


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message on a machine without CUDA")
def test_gpu_script_says_it_needs_cuda() -> None:
    run = subprocess.run(["bash", str(BENCH / "gpu.sh"), "steps"], capture_output=True, text=True, env=ENV)
    assert run.returncode == 1
    assert "torch sees no CUDA device here" in run.stderr


def test_steps_record_compares_each_variant_with_the_plain_loop(records: dict[str, Path]) -> None:
    rows = json.loads(records["steps"].read_text())["steps"]["digits"]
    assert set(rows) == {"plain", "project_nchw_fp32", "project_default"}  # CPU: no bf16 or compile unless asked
    for row in rows.values():
        assert row["images_per_s"] > 0 and row["steps"] >= 10 and row["train_step_gflops"] > 0
        assert row["ratio_to_plain"] == pytest.approx(row["images_per_s"] / rows["plain"]["images_per_s"])
        assert "mfu" not in row  # MFU only against a measured CUDA bf16 rate


def test_certificate_record_agrees_with_numpy_and_records_memory(records: dict[str, Path]) -> None:
    small, alone = json.loads(records["certificate"].read_text())["rows"]
    assert small["n"] == 100 and small["qr_certified"] and small["svd_certified"]
    assert small["qr_rel_diff"] < 1e-8 and small["svd_rel_diff"] < 1e-8 and small["qr_out_of_core_rel_diff"] < 1e-8
    assert alone["n"] == 200 and "numpy_sigma_min" not in alone  # above --reference-max: the certificate alone
    assert alone["qr_certified"] and 0 < alone["qr_sigma_min_lower_bound"] <= alone["qr_sigma_min"]
    assert alone["peak_resident_gib"] >= alone["resident_before_gib"] > 0


def test_records_name_the_machine_its_memory_and_how_busy_it_was(records: dict[str, Path]) -> None:
    mem_kib = next(int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
                   if line.startswith("MemTotal:"))
    for path in records.values():
        machine = json.loads(path.read_text())["machine"]
        assert machine["cpus"] == os.cpu_count() and machine["platform"]
        assert machine["memory_gib"] == pytest.approx(mem_kib / 2 ** 20, abs=0.2)  # the page count, not MemTotal
        assert 0 <= machine["load_average_before"] < 10 * os.cpu_count()


def test_cost_projection_takes_the_fastest_project_variant(records: dict[str, Path], tmp_path: Path) -> None:
    # The cost reads steps.paper; timing the paper shape takes 80 s on this CPU, so the digits rows stand in for it
    # (the reader uses only the variants' names and tflops_per_s). The plain loop is made the fastest: it must not
    # be taken, since the projection is of the project's training.
    record = json.loads(records["steps"].read_text())
    rows = record["steps"]["paper"] = record["steps"].pop("digits")
    rows["plain"]["tflops_per_s"] = 1e6
    measured = tmp_path / "steps.json"
    measured.write_text(json.dumps(record))
    out = tmp_path / "cost.json"
    run = bench("project_paper_cost.py", "--measured", str(measured), "--measured-certificate",
                str(records["certificate"]), "--out", str(out))
    assert run.returncode == 0, run.stderr
    cost = json.loads(out.read_text())
    best = max((name for name in rows if name != "plain"), key=lambda name: rows[name]["tflops_per_s"])
    assert cost["gpu_training_tflops"] == rows[best]["tflops_per_s"]
    # CPU rows run without bf16, which config/paper.yaml turns on: the source says the rate assumes it off
    assert cost["gpu_rate_source"] == (f"measured: {best} in {measured}; assumes train.bf16: false (it says true) in "
                                       "config/paper.yaml: set it there")
    assert cost["certificate_source"].startswith(f"measured QR certificates in {records['certificate']}")
    assert cost["training_jobs"]["base"] == cost["training_jobs"]["recipe"] > 0
    assert cost["gpu_hours_projected"] > cost["certificate_gpu_hours"] > 0


def test_cost_rate_skips_failed_variants_and_says_what_it_assumes() -> None:
    fastest_variant = load_benchmark("project_paper_cost.py").fastest_variant
    rows = {"plain": {"tflops_per_s": 9.0}, "project_default": {"tflops_per_s": 1.0},
            "project_bf16": {"tflops_per_s": 2.0}, "project_bf16_compile_default": {"tflops_per_s": 3.0},
            "project_bf16_compile_reduce-overhead": {"error": "BackendCompilerFailed: no C compiler"}}
    paper = {"bf16": True, "compile": "none"}
    assert fastest_variant(rows, "r.json", paper) == (
        3.0, "measured: project_bf16_compile_default in r.json; assumes train.compile: default (it says none) in "
        "config/paper.yaml: set it there")
    assert fastest_variant(rows, "r.json", {**paper, "compile": "default"}) == (
        3.0, "measured: project_bf16_compile_default in r.json")
    rows["project_bf16_compile_default"]["tflops_per_s"] = rows["project_bf16"]["tflops_per_s"] = 0.5
    assert fastest_variant(rows, "r.json", {**paper, "compile": "default"}) == (
        1.0, "measured: project_default in r.json; assumes train.bf16: false (it says true) and train.compile: none "
        "(it says default) in config/paper.yaml: set it there")
    with pytest.raises(SystemExit, match="r.json: steps.paper has no project variant"):
        fastest_variant({"plain": rows["plain"], "project_bf16_compile_default": {"error": "x"}}, "r.json", paper)


def run_cost_main(monkeypatch: pytest.MonkeyPatch, *args: str) -> str:
    """project_paper_cost's main with `args`, expected to exit with a message: that message."""
    monkeypatch.setattr(sys, "argv", ["project_paper_cost.py", *args])
    with pytest.raises(SystemExit) as stop:
        load_benchmark("project_paper_cost.py").main()
    return str(stop.value.code)


def test_cost_projection_names_what_is_missing(records: dict[str, Path], tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    missing, messages = tmp_path / "absent.json", []
    messages.append(message := run_cost_main(monkeypatch, "--measured", str(missing)))
    assert message.startswith(f"{missing}: no steps.paper (FileNotFoundError") and "`gpu.sh steps`" in message
    # a digits-only record (a run with --shapes digits) has no paper shape
    messages.append(message := run_cost_main(monkeypatch, "--measured", str(records["steps"])))
    assert message.startswith(f"{records['steps']}: no steps.paper (KeyError") and "--shapes paper" in message
    # a run stopped after timing only the plain loop at the paper shape
    stopped = json.loads(records["steps"].read_text())
    stopped["steps"]["paper"] = {"plain": stopped["steps"]["digits"]["plain"]}
    partial = tmp_path / "partial.json"
    partial.write_text(json.dumps(stopped))
    messages.append(message := run_cost_main(monkeypatch, "--measured", str(partial)))
    assert message == f"{partial}: steps.paper has no project variant; run `gpu.sh steps` to its end"
    messages.append(message := run_cost_main(monkeypatch, "--measured-certificate", str(missing)))
    assert message.startswith(f"{missing}: no rows (FileNotFoundError") and "`gpu.sh certificate`" in message
    assert all("\n" not in message for message in messages)  # one line each


def test_stopped_steps_run_keeps_the_variants_it_finished(tmp_path: Path) -> None:
    out = tmp_path / "steps.json"
    proc = subprocess.Popen([sys.executable, str(BENCH / "train_throughput.py"), "--parts", "steps", "--shapes",
                             "digits", "--seconds", "3", "--warmup", "1", "--out", str(out)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENV)
    try:
        deadline = time.monotonic() + 120
        while not out.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert proc.poll() is None, "the run ended before it was stopped: give it more --seconds"
        proc.send_signal(signal.SIGKILL)  # no chance to write anything more: what is there was written before
    finally:
        proc.kill()
        proc.wait()
    rows = json.loads(out.read_text())["steps"]["digits"]  # complete JSON: the record is replaced atomically
    assert "plain" in rows and "project_default" not in rows  # the first variant kept, the last not yet timed
    assert [p.name for p in tmp_path.iterdir()] == ["steps.json"]  # no temporary file left behind


def test_failed_variant_is_recorded_and_the_others_still_run(tmp_path: Path) -> None:
    # Two compile modes torch does not know fail as torch.compile is called (a compiler missing on a GPU machine
    # would fail later, in the warm-up steps, inside the same `try`): each is recorded with its error, the second
    # still runs after the first failed, and the run succeeds.
    out = tmp_path / "steps.json"
    run = bench("train_throughput.py", "--parts", "steps", "--shapes", "digits", "--compile-modes", "bogus1", "bogus2",
                "--seconds", "0.2", "--warmup", "2", "--out", str(out))
    assert run.returncode == 0, run.stderr
    rows = json.loads(out.read_text())["steps"]["digits"]
    for mode in ("bogus1", "bogus2"):
        assert rows[f"project_compile_{mode}"]["error"].startswith(f"RuntimeError: Unrecognized mode={mode}")
        assert f"digits project_compile_{mode} FAILED: RuntimeError" in run.stderr
    assert all(rows[name]["images_per_s"] > 0 for name in ("plain", "project_nchw_fp32", "project_default"))


def test_concurrent_record_picks_the_best_number_of_jobs(tmp_path: Path) -> None:
    out = tmp_path / "concurrent.json"
    run = bench("train_throughput.py", "--parts", "concurrent", "--concurrent", "1", "2", "--concurrent-shape",
                "digits", "--concurrent-delay", "3", "--seconds", "0.2", "--warmup", "2", "--out", str(out))
    assert run.returncode == 0, run.stderr
    summary = json.loads(out.read_text())["concurrent"]
    by_k = summary["by_k"]
    assert set(by_k) == {"1", "2"} and summary["shape"] == "digits" and summary["compile"] == "none"
    for k, row in by_k.items():
        assert len(row["per_process"]) == int(k) and all(rate > 0 for rate in row["per_process"])
        assert row["total_images_per_s"] == pytest.approx(sum(row["per_process"]))
    assert summary["best_gpu_slots"] == int(max(by_k, key=lambda k: by_k[k]["total_images_per_s"]))


def test_concurrent_record_says_when_a_process_started_timing_late(tmp_path: Path) -> None:
    # No time to warm up: the process's timed window starts after the common start, and the record and log say so
    out = tmp_path / "late.json"
    run = bench("train_throughput.py", "--parts", "concurrent", "--concurrent", "1", "--concurrent-shape", "digits",
                "--concurrent-delay", "0", "--seconds", "0.2", "--warmup", "2", "--out", str(out))
    assert run.returncode == 0, run.stderr
    late = json.loads(out.read_text())["concurrent"]["by_k"]["1"]["started_late_s"]
    assert late > 0 and f"concurrent 1: a process warmed up {late:.1f} s past the common start" in run.stderr


def dry_run_job(rule: str, inputs: list[str], outputs: list[str], resources: str, indent: str = "") -> str:
    """One job block as `snakemake -n` prints it, after its time stamp (a group's jobs indented under the group)."""
    lines = ["[Tue Nov 24 17:16:25 2026]", f"rule {rule}:"] + ([f"    input: {', '.join(inputs)}"] if inputs else [])
    lines += [f"    output: {', '.join(outputs)}", "    threads: 2", f"    resources: {resources}"]
    return "".join(f"{indent}{line}\n" for line in lines)


def test_slurm_plan_orders_rules_by_depth_whatever_the_print_order() -> None:
    plan = load_benchmark("slurm_plan.py")
    jobs = [dry_run_job("prepare", [], ["a.pt"], "mem_mb=4000, runtime=60"),
            dry_run_job("train", ["a.pt"], ["b.pt"], "mem_mb=8000, runtime=60, gres=gpu:1"),
            dry_run_job("train", ["a.pt"], ["c.pt"], "mem_mb=8000, runtime=180, gres=gpu:1"),
            "[Tue Nov 24 17:16:25 2026] Group job report (jobs in lexicogr. order):\n\n"
            + dry_run_job("figure", ["b.pt", "c.pt"], ["f.png"], "mem_mb=4000, runtime=60", indent="    "),
            dry_run_job("aggregate", ["a.pt"], ["t.csv"], "mem_mb=4000, runtime=60", indent="    ")]
    forward, backward = plan.per_rule("".join(jobs)), plan.per_rule("".join(reversed(jobs)))
    assert forward == backward and list(forward) == list(backward) == ["prepare", "aggregate", "train", "figure"]
    assert forward["train"] == {"jobs": 2, "threads": ["2"], "mem_mb": ["8000"], "runtime": ["60", "180"],
                                "gres": ["gpu:1"]}
    assert forward["figure"]["gres"] == ["-"]
