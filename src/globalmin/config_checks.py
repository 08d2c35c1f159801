"""Checks of the config that a JSON schema cannot express, run by the Snakefile before any job starts.

Kept free of heavy imports (no torch) so that every `snakemake` invocation can afford it.
"""

from __future__ import annotations

from typing import Any

# Training-set sizes before any subset: fixed splits, or the pool minus data.<name>.test_size.
FIXED_TRAIN_SIZES = {"mnist": 60000, "kmnist": 60000, "fashion_mnist": 60000, "cifar10": 50000, "cifar100": 50000,
                     "svhn": 73257}
POOL_SIZES = {"digits": 1797, "semeion": 1593}


def n_train(dataset: str, options: dict[str, Any]) -> int:
    """The number of training points n that `dataset` will have under its data options."""
    n = FIXED_TRAIN_SIZES.get(dataset)
    if n is None:
        n = POOL_SIZES[dataset] - options["test_size"]
    subset = options.get("train_subset")
    return min(n, subset) if subset else n


def problems(config: dict[str, Any]) -> list[str]:
    """Every cross-key problem of a validated config, each naming the keys and the fix."""
    found = []
    datasets = config["experiment"]["datasets"]
    for dataset in datasets:
        options = config["data"].get(dataset, {})
        if dataset in POOL_SIZES and not 0 < options["test_size"] < POOL_SIZES[dataset]:
            found.append(f"data.{dataset}.test_size = {options['test_size']} must be between 1 and "
                         f"{POOL_SIZES[dataset] - 1} ({dataset} has {POOL_SIZES[dataset]} images)")
            continue
        n = n_train(dataset, options)
        width = config["model"]["wide_width"]
        if config["model"]["require_expressivity"] and width is not None and width < n:
            found.append(f"model.wide_width = {width} is below n = {n} training points of {dataset}: the expressivity "
                         f"condition needs m_H >= n. Set model.wide_width: null (m_H = n) or at least {n}, or "
                         f"model.require_expressivity: false to run a rank-deficient control on purpose")
        if options.get("source") == "import" and not options.get("import_dir"):
            found.append(f"data.{dataset}.source is 'import' but data.{dataset}.import_dir is not set: "
                         f"set it to the folder holding the raw files")
    for dataset in config["recipe"]["tau_ablation"]["datasets"]:
        if dataset not in datasets:
            found.append(f"recipe.tau_ablation.datasets lists {dataset}, which is not in experiment.datasets "
                         f"{datasets}: add it there or remove it from the ablation")
    if config["recipe"]["tau_fraction"] in config["recipe"]["tau_ablation"]["fractions"]:
        found.append(f"recipe.tau_ablation.fractions repeats recipe.tau_fraction ({config['recipe']['tau_fraction']}),"
                     " which the main runs already cover: remove it from the ablation")
    return found
