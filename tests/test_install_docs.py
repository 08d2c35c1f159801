"""docs/install.md shows the environment's size as benchmarks/install_size.py recorded it, and its install commands
are the README's."""

from __future__ import annotations

import json

from conftest import REPO, load_benchmark

RECORD = REPO / "benchmarks" / "results" / "install-size-cpu-2core.json"


def test_the_install_page_shows_the_recorded_size():
    bench = load_benchmark("install_size.py")
    record = json.loads(RECORD.read_text())
    page = (REPO / "docs" / "install.md").read_text()
    assert f"<!-- install-size -->\n{bench.table(record, RECORD.name)}\n<!-- /install-size -->" in page
    assert record["install"]["command"] == bench.readme_install()  # measured with the README's command
    groups = record["install"]["bytes_by_group"]
    assert groups["nvidia CUDA libraries"] > groups["everything else"] > 0  # what the page says of the CUDA part


def test_the_cpu_route_keeps_the_pinned_torch_and_torchvision():
    pins = dict(line.split("==") for line in (REPO / "constraints.txt").read_text().splitlines()
                if "==" in line and not line.startswith("#"))
    page = (REPO / "docs" / "install.md").read_text()
    assert (f"pip install torch=={pins['torch']} torchvision=={pins['torchvision']} --index-url "
            "https://download.pytorch.org/whl/cpu") in page
    assert load_benchmark("install_size.py").readme_install()[-1] in page  # then the README's own command
