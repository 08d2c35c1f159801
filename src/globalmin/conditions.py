"""The conditions of the base runs, resolved, and the width sweep that expands into more of them.

A condition (config `conditions.<name>`) says which labels the runs learn, the wide layer's width, the loss, the
optimizer and learning rate of `base`, and which of the experiment's augmentation settings and seeds it runs; what it
leaves out comes from the experiment, `model` and `train` sections (`resolve`). The width sweep (config
`width_sweep`) is the certificate's sharp test: random labels at m_H = ratio x n under each loss; `expand` adds one
condition per point, named sweep_<base>_<loss>_<ratio>, except where a condition of the experiment already runs
that point (same labels, width, loss, optimizer and learning rate), whose runs the sweep then reads. Torch-free: the
Snakefile calls it at every invocation.
"""

from __future__ import annotations

import copy
from typing import Any

LOSS_NAMES = {"cross_entropy": "ce", "squared": "sq"}


def resolve(config: dict[str, Any], name: str) -> dict[str, Any]:
    """A condition's settings, with the experiment's augmentation and seeds and the model and train sections'
    width, optimizer and lr where it does not set its own."""
    from globalmin.optimizers import settings_of

    cond = config["conditions"][name]
    # every key is there: the schema's defaults fill a written condition, expand() writes all of a generated one
    return {"name": name, "labels": cond["labels"], "label_seed": cond["label_seed"],
            "wide_width": cond["wide_width"], "loss": cond["loss"],
            "optimizer": dict(cond["optimizer"] or settings_of(config["train"])),
            "lr": cond["lr"] or config["train"]["lr"],
            "augmentation": cond["augmentation"] or config["experiment"]["augmentation"],
            "seeds": cond["seeds"] or config["experiment"]["seeds"]}


def ratio_name(ratio: str) -> str:
    """'3n/4' -> '3n4', 'n/8' -> 'n8', 'n' -> 'n': the ratio in a condition name ([a-z0-9_])."""
    return ratio.replace("/", "")


def _width(config: dict[str, Any], cond: dict[str, Any]) -> str:
    """The width setting a resolved condition runs at, as a ratio string where it is one ('n' for m_H = n)."""
    width = cond["wide_width"] if cond["wide_width"] is not None else config["model"]["wide_width"]
    return "n" if width is None else str(width)


def _same_point(config: dict[str, Any], cond: dict[str, Any], point: dict[str, Any]) -> bool:
    return (cond["labels"] == "random" and cond["label_seed"] is None and _width(config, cond) == point["ratio"]
            and cond["loss"] == point["loss"] and cond["optimizer"] == point["optimizer"]
            and cond["lr"] == point["lr"] and False in cond["augmentation"]
            and set(point["seeds"]) <= set(cond["seeds"]))


def sweep_points(config: dict[str, Any]) -> list[dict[str, Any]]:
    """Every point of the width sweep: base condition, loss, ratio, seeds, optimizer, lr, and the condition whose
    runs hold it (an existing one, or the generated sweep_<base>_<loss>_<ratio>)."""
    sweep = config.get("width_sweep") or {}
    points = []
    for base in sweep.get("bases", []) if sweep.get("ratios") else []:
        settings = resolve(config, base)
        for loss in sweep["losses"]:
            for ratio in sweep["ratios"]:
                point = {"base": base, "loss": loss, "ratio": ratio, "seeds": list(sweep["seeds"]),
                         "optimizer": settings["optimizer"], "lr": settings["lr"]}
                existing = [c for c in config["experiment"]["conditions"]
                            if c in config["conditions"] and _same_point(config, resolve(config, c), point)]
                point["condition"] = existing[0] if existing else (
                    f"sweep_{base}_{LOSS_NAMES[loss]}_{ratio_name(ratio)}")
                point["generated"] = not existing
                points.append(point)
    return points


def expand(config: dict[str, Any]) -> dict[str, Any]:
    """The config with the width sweep's generated conditions added to `conditions` and run by the experiment."""
    config = copy.deepcopy(config)
    for point in sweep_points(config):
        if not point["generated"] or point["condition"] in config["conditions"]:
            continue
        config["conditions"][point["condition"]] = {
            "labels": "random", "label_seed": None, "wide_width": point["ratio"], "loss": point["loss"],
            "optimizer": point["optimizer"], "lr": point["lr"], "augmentation": [False], "seeds": point["seeds"]}
        config["experiment"]["conditions"].append(point["condition"])
    return config
