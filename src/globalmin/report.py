"""Stage `report`: the HTML report (jinja2) and a Markdown results summary, from the tables, the claims ledger
and the figures the pipeline wrote. No time stamps and no timings inside: the same results give the same bytes.

Every hyper-parameter in the reconstruction table names where its value comes from: the paper (only when
config/paper_values.yaml records it with a source), the authors' related code (with the caveat that the
attribution is not confirmed), or this project's choice with the reason (docs/science.md).
"""

from __future__ import annotations

import platform
import shutil
from pathlib import Path
from typing import Any

import jinja2
import pandas as pd
import yaml

from globalmin.datasets import AUTHORS_CODE, facts
from globalmin.outputs import REPORT_TABLES
from globalmin.runinfo import read_json, versions, write_text

PACKAGE_DATA = ("templates/report.html.j2", "templates/summary.md.j2")

# (config key, what it is, the value in the authors' related code or None, why this project chose its value)
PROVENANCE = [
    ("recipe.tau_fraction", "τ as a fraction of the total iterations T", None,
     "the reconstruction's default reading; the paper's τ is not known, so the early switch varies it"),
    ("recipe.tau_ablation", "extra τ fractions (the early switch) and the data sets they apply to", None,
     "phase 2 from where base has not yet fit the data, so the guarantee can decide the outcome"),
    ("recipe.noise_on", "which layers are perturbed at τ", None, "the reconstruction: the wide layer"),
    ("recipe.noise_scale", "ε, the noise scale relative to std(W)", None,
     "small enough to leave the learned features in place, large enough to break exact rank deficiencies"),
    ("recipe.phase2_trains", "what phase 2 trains", None, "the reconstruction: the head W_out only (convex)"),
    ("model.wide_width", "m_H, the wide layer's width (null: m_H = n)", None,
     "the smallest width the expressivity condition allows"),
    ("model.wide_activation", "activation of the wide layer", None,
     "analytic, so the condition holds almost everywhere; ReLU at m_H = n loses rank to units dead on every input"),
    ("model.widths", "stage widths of the PreAct ResNet", [64, 128, 256, 512],
     "a small ResNet a CPU trains in minutes"),
    ("model.blocks", "blocks per stage", [2, 2, 2, 2], "a small ResNet a CPU trains in minutes"),
    ("train.lr", "learning rate", 0.01, "—"),
    ("train.optimizer", "base: a torch.optim optimizer and its settings",
     {"name": "sgd", "momentum": 0.9, "weight_decay": 1e-4, "nesterov": False}, "—"),
    ("conditions.adam", "A(Adam): base = Adam (its settings and lr)", None,
     "Adam's defaults with lr 1e-3 (Adam's usual step) and SGD's weight decay as an L2 term, so that phase 2's "
     "problem is the same regularised one"),
    ("width_sweep", "the width sweep (ratios, losses, seeds)", None,
     "widths below and above n on random labels, the squared loss where the certificate decides the outcome"),
    ("recipe.horizon", "phase 2 continued past T (epochs, lr)", None,
     "long enough to see convergence on the convex problem, short enough to cost seconds per run"),
    ("experiment.data_seed", "the data seed (null: each run's seed draws its split and labels)", None,
     "so that intervals over seeds cover the data's randomness too"),
    ("train.batch_size", "mini-batch size", 64, "—"),
    ("train.epochs", "epochs without / with augmentation", {"plain": 50, "augmented": 200},
     "fewer epochs for a CPU; digits is fit long before"),
    ("train.milestones", "lr ×0.1 at these epochs", {"plain": [10], "augmented": [10, 100]},
     "scaled with the shorter schedule"),
    ("claims.equivalence_margin_pp", "R1's equivalence margin (percentage points)", None,
     "half a point: a difference a reader of Table 1 would call 'comparable'"),
    ("claims.gap_fraction", "R3: the gap at the horizon's end must fall to this fraction of its value at τ", None,
     "an order of magnitude"),
]
NOTES = [
    "Batch norm is in eval mode for all of phase 2; the momentum buffers of the phase-2 parameters carry over "
    "from base (the reconstruction).",
    "The certificate uses the features of all n training inputs, un-augmented, in float64, with NumPy's "
    "matrix_rank tolerance σ_max · max(n, m_H) · eps (this project's choice); the rank at float32's tolerance is "
    "shown beside it.",
    "The digits data set and its augmentation are this project's offline stand-in; they are not in the paper.",
    "The SGD settings, epochs, milestones and the six paper data sets' augmentations come from GitHub k9k2/qSGD, the "
    "code of Kawaguchi & Lu's Ordered SGD paper (arXiv 1907.04371): same first author and the same six data sets, "
    "but not the Recipe paper's code.",
]


def _lookup(cfg: dict[str, Any], dotted: str) -> Any:
    value: Any = cfg
    for part in dotted.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def provenance(cfg: dict[str, Any], paper_values: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per reconstructed or chosen value: key, what, the value used and where it comes from."""
    recorded = {v["key"]: v for v in paper_values if isinstance(v, dict) and v.get("key")}
    rows = []
    for key, what, authors, reason in PROVENANCE:
        value = _lookup(cfg, key)
        if key in recorded and value == recorded[key].get("value"):
            source = f"paper ({recorded[key]['source']})"
        elif authors is not None and value == authors:
            source = AUTHORS_CODE
        elif authors is not None:
            source = f"this project's choice: {reason}; the authors' related code uses {authors}"
        else:
            source = f"this project's choice: {reason}"
        rows.append({"key": key, "what": what, "value": value, "source": source})
    return rows


def markdown(csv_path: Path) -> str:
    """A CSV table as a Markdown table (empty cells as '–'); '(none)' for a table without rows."""
    if not Path(csv_path).read_text().strip():
        return "(none)"
    frame = pd.read_csv(csv_path, dtype=str).fillna("–")
    lines = ["| " + " | ".join(frame.columns) + " |", "|" + "---|" * len(frame.columns)]
    lines += ["| " + " | ".join(row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join(lines)


def headline(tables_dir: Path, ledger: dict[str, Any]) -> str:
    """The results block of the README: Table 1 compact (the certificate as runs certified at tau), and every
    claim's verdict. Written into summary.md between markers; benchmarks/render_docs.py copies the reference run's
    into README.md."""
    table = pd.read_csv(tables_dir / "table1.csv", dtype=str)
    certified = table["Expressivity condition"].str.extract(r"\((\d+/\d+) runs")[0].fillna("–")
    compact = pd.DataFrame({"data set": table["Dataset"], "base": table["base"], "n": table["# training points"],
                            "aug.": table["Augmentation"], "seeds": table["Seeds"], "rank n at τ": certified,
                            "base test error (%)": table["base test error (%)"],
                            "A(base) test error (%)": table["A(base) test error (%)"]})
    lines = ["| " + " | ".join(compact.columns) + " |", "|" + "---|" * len(compact.columns)]
    lines += ["| " + " | ".join(row) + " |" for row in compact.itertuples(index=False)]
    lines += ["", "| claim | verdict | statement |", "|---|---|---|"]
    lines += [f"| {c['id']} | {c['verdict']}{' (R)' if c.get('reconstructed') else ''} | {c['statement']} |"
              for c in ledger["claims"]]
    lines += ["", "Test error in %, mean (std) over seeds; (R): the claim rests on a reconstruction of the paper. "
                  "Instrument checks (true by construction, not evidence): "
                  + ", ".join(f"{c['id']} {c['verdict']}" for c in ledger["checks"]) + "."]
    return "\n".join(lines)


def machine() -> dict[str, Any]:
    """The machine and installed libraries that rendered the report (the runs record their own in metrics.json)."""
    import os

    return {**versions(), "processor": platform.processor() or platform.machine(), "cpus": os.cpu_count()}


def randomness(cfg: dict[str, Any]) -> str:
    """Which randomness the intervals over seeds cover."""
    fixed = (cfg.get("experiment") or {}).get("data_seed")
    if fixed is None:
        return ("Each seed draws its own initialisation, mini-batch order, augmentation and perturbation, and its own "
                "data: the train/test split of a pooled data set, the training subset and the random labels "
                "(experiment.data_seed: null), so the intervals over seeds cover all of them.")
    return (f"Each seed draws its own initialisation, mini-batch order, augmentation and perturbation; the data "
            f"(split, training subset, random labels) is fixed by experiment.data_seed = {fixed}, so the intervals "
            f"over seeds do not cover the data's randomness.")


def run(cfg: dict[str, Any], inputs: dict[str, Any], outputs: dict[str, Any]) -> None:
    """report/index.html (outputs['html']), its tables beside it, and the Markdown summary (outputs['summary'])."""
    out = Path(outputs["html"])
    tables_dir = Path(inputs["tables"])
    copied = out.parent / "tables"
    copied.mkdir(parents=True, exist_ok=True)
    for name in REPORT_TABLES:
        shutil.copyfile(tables_dir / name, copied / name)
    ledger = read_json(inputs["claims"])
    runs = pd.read_csv(tables_dir / "runs.csv")
    paper_values = (yaml.safe_load(Path(inputs["paper_values"]).read_text()) or {}).get("values") or []
    studies = dict(item.split("=", 1) for item in inputs.get("study_tables", []))
    context = {
        "title": cfg.get("report", {}).get("title", "globalmin report"),
        "table1": (tables_dir / "table1.html").read_text(), "table1_md": markdown(tables_dir / "table1.csv"),
        "conditions": (tables_dir / "conditions.html").read_text(),
        "conditions_md": markdown(tables_dir / "conditions.csv"),
        "sweep": (tables_dir / "sweep.html").read_text(), "sweep_md": markdown(tables_dir / "sweep.csv"),
        "headline": headline(tables_dir, ledger),
        "randomness": randomness(cfg),
        "splits": [f"{d}: {facts(d, (cfg.get('data') or {}).get(d)).note}." for d in sorted(runs.dataset.unique())],
        "studies": {name: Path(path).read_text() for name, path in studies.items()},
        "certificates": runs[runs.algorithm == "recipe"].to_dict("records"),
        "claims": ledger["claims"], "checks": ledger["checks"], "summary": ledger["summary"],
        "checks_summary": ledger["checks_summary"],
        "figures": [Path(f).relative_to(out.parent).as_posix() for f in inputs["figures"] if str(f).endswith(".png")],
        "provenance": provenance(cfg, paper_values), "notes": NOTES, "paper_values": paper_values,
        "devices": sorted(runs.device.dropna().unique()), "machine": machine(),
    }
    env = jinja2.Environment(loader=jinja2.PackageLoader("globalmin", "templates"), trim_blocks=True,
                             lstrip_blocks=True, autoescape=lambda name: (name or "").endswith(".html.j2"))
    write_text(out, env.get_template("report.html.j2").render(**context))
    write_text(outputs["summary"], env.get_template("summary.md.j2").render(**context))
