"""Memory estimates from the config alone (resources.py): the counts against torch's, the estimate against the
measured peak of the real stage entry points, and the refusal of a config that cannot fit, before any job
(config_checks.memory_problems)."""

from __future__ import annotations

import copy
import json
import subprocess

import pytest
import yaml
from conftest import REPO, copy_workflow, load_benchmark
from snakemake.utils import validate

from globalmin import certificate, config_checks, models, resources
from globalmin.config_checks import memory_problems

SCHEMA = str(REPO / "workflow" / "schemas" / "config.schema.yaml")


def _config(**sections) -> dict:
    """The default config with sections replaced key by key, validated (defaults filled)."""
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    for name, over in sections.items():
        config[name] = {**config.get(name, {}), **over}
    validate(config, SCHEMA)
    return config


@pytest.mark.parametrize("widths, blocks, channels, size, classes, m", [
    ([16, 32], [1, 1], 1, 8, 10, 1297), ([64, 128, 256, 512], [2, 2, 2, 2], 3, 32, 100, 500), ([8], [3], 1, 28, 10, 7)])
def test_network_sizes_are_torch_counts(widths, blocks, channels, size, classes, m):
    model = models.WideHeadResNet(channels, classes, widths, blocks, m)
    net = resources.network({"widths": widths, "blocks": blocks}, channels, size, classes, m)
    assert net.params == sum(p.numel() for p in model.parameters())
    assert net.buffers == sum(b.numel() for b in model.buffers())
    assert net.head_params == model.head.weight.numel() + model.head.bias.numel()
    assert net.wide_params == model.wide.weight.numel() + model.wide.bias.numel()


def test_the_rules_it_mirrors_are_the_code_s():
    assert (resources.SVD_MAX_N, resources.QR_BLOCK, resources.QR_CHUNK) == (
        certificate.SVD_MAX_N, certificate.BLOCK, certificate.CHUNK_BYTES)
    for width in (None, "n/2", "n/3", 32):
        assert resources.wide_width(width, 1297) == models.wide_width({"wide_width": width}, 1297)


@pytest.mark.parametrize("m, augmented, ablation", [(3000, True, [0.1, 0.5]), (8000, False, [])])
def test_the_estimate_bounds_the_measured_peak_of_the_real_jobs(tmp_path, digits_file, m, augmented, ablation):
    bench = load_benchmark("job_memory.py")
    config = bench.config_for(m, augmented)
    config["recipe"]["tau_ablation"]["fractions"] = ablation
    row = bench.measure(config, digits_file, tmp_path)
    # The fixed part is the one term set by the environment, not the config: how many pages of the shared
    # libraries a process maps (more in a freshly installed one, whose files are all in the page cache).
    # RUNTIME_BYTES allows for the record's environment; where a bare job process peaks higher than there, the
    # estimate is compared with that much more, so that what is checked is the config's terms.
    record = json.loads((REPO / "benchmarks" / "results" / "job-memory-cpu-2core.json").read_text())
    shift = max(0, bench.runtime_peak() - record["runtime_bytes"])
    for kind in ("train-base", "train-recipe"):
        measured, estimated = row[kind]["measured_bytes"], row[kind]["estimated_bytes"] + shift
        assert measured <= estimated <= resources.RSS_FACTOR * measured, (kind, shift, row)


def test_a_width_too_large_for_the_machine_is_refused_naming_the_key():
    found = memory_problems(_config(model={"wide_width": 100_000_000}))
    assert len(found) == 1, found
    line = found[0]
    assert line.startswith("model.wide_width = 100000000: train-") and "needs about" in line and "TiB" in line
    assert "more than the" in line and "this machine's memory" in line and "\n" not in line
    assert memory_problems(_config()) == []  # the default fits


def test_the_budget_key_sets_the_limit():
    low = memory_problems(_config(resources={"memory_gb": 0.5}))
    assert low and all("more than the 512.0 MiB of resources.memory_gb = 0.5" in line for line in low)
    paper = yaml.safe_load((REPO / "config" / "paper.yaml").read_text())
    paper_config = _config(**{k: v for k, v in paper.items() if k != "report"}, resources={"memory_gb": 16})
    refused = memory_problems(paper_config)
    assert any(line.startswith("model.wide_width = null (m_H = n): train-") and "svhn/standard" in line
               for line in refused), refused
    assert memory_problems({**paper_config, "resources": {"memory_gb": 64}}) == []
    with pytest.raises(Exception, match="exclusiveMinimum"):
        _config(resources={"memory_gb": 0})


def test_a_condition_s_own_width_is_the_key_named():
    config = _config(conditions={"narrow_width": {"labels": "random", "wide_width": 100_000_000,
                                                  "augmentation": [False], "seeds": [0]}},
                     experiment={"conditions": ["standard", "narrow_width"]})
    found = memory_problems(config)
    assert len(found) == 1 and found[0].startswith("conditions.narrow_width.wide_width = 100000000: "), found


def test_phi_on_disk_and_a_smaller_evaluation_batch_lower_the_estimate():
    big = {"experiment": {"datasets": ["svhn"], "conditions": ["standard"], "augmentation": [False], "seeds": [0]},
           "recipe": {"tau_ablation": {"datasets": [], "fractions": []}}}
    in_memory = resources.base_job(resources.runs(_config(**big))[0]).peak(False)
    phi = resources.runs(_config(**big))[0]
    assert in_memory[1].startswith("certificate") and in_memory[0] > 8 * phi.n * phi.m
    scratch = copy.deepcopy(big)
    scratch["recipe"]["certificate_scratch"] = "/scratch"
    on_disk = resources.base_job(resources.runs(_config(**scratch))[0]).peak(False)
    assert in_memory[0] - on_disk[0] >= 8 * phi.n * phi.m - (1 << 30)
    smaller = resources.base_job(resources.runs(_config(**big, train={"eval_batch_size": 64}))[0]).peak(False)
    assert smaller[0] < in_memory[0]


def test_a_gpu_run_is_checked_against_the_gpu_s_memory(monkeypatch):
    monkeypatch.setattr(config_checks, "gpu_limit", lambda config: (8 << 30, "GPU 0's memory (nvidia-smi)"))
    config = _config(model={"wide_width": 2_000_000}, train={"device": "cuda"}, resources={"memory_gb": 4096})
    found = memory_problems(config)
    assert found and all("GPU 0's memory" in line for line in found) and found[0].startswith("model.wide_width")
    job = resources.base_job(resources.runs(config)[0])
    host, device = job.peak(False), job.peak(True)
    # the exact SVD takes Phi to the host and copies it twice there; the GPU holds one Phi while it is built
    assert host[1] == "certificate: SVD" and device[1] == "certificate: features"


def test_the_host_limit_is_the_machine_s_or_its_cgroup_s():
    import os

    limit, name = config_checks.host_limit(_config())
    physical = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    assert limit == min(physical, config_checks.cgroup_bytes() or physical) and "resources.memory_gb is null" in name


def test_the_dry_run_refuses_it_in_one_line_before_any_job(tmp_path):
    work = copy_workflow(tmp_path)
    (work / "huge.yaml").write_text("model: {wide_width: 100000000}\n")
    plan = subprocess.run(["snakemake", "-n", "--cores", "1", "--configfile", "config/config.yaml", "huge.yaml"],
                          cwd=work, capture_output=True, text=True, timeout=300, check=False)
    said = plan.stdout + plan.stderr
    assert plan.returncode != 0 and "Traceback" not in said and "train_base" not in said
    assert "- model.wide_width = 100000000: train-" in said and "needs about" in said


def test_the_troubleshooting_page_shows_the_recorded_measurements():
    import json

    bench = load_benchmark("job_memory.py")
    record = json.loads((REPO / "benchmarks" / "results" / "job-memory-cpu-2core.json").read_text())
    page = (REPO / "docs" / "troubleshooting.md").read_text()
    assert f"<!-- job-memory -->\n{bench.table(record)}\n<!-- /job-memory -->" in page
    for row in record["rows"]:  # the recorded runs obey the bound the test states
        for kind in ("train-base", "train-recipe"):
            assert 1 <= row[kind]["estimate_over_measured"] <= resources.RSS_FACTOR, row
