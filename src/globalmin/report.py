"""The HTML report: tables, figures and claims with verdicts in one page that opens from disk (jinja2)."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path
from typing import Any

import jinja2
import pandas as pd
import yaml

from globalmin.runinfo import environment, read_json, write_text

# Choices PAPERS.md marks as reconstructed (R), and choices where this project may differ from the paper.
# (config key, what it is, the paper's value as reconstructed in PAPERS.md, or None where the paper is silent)
RECONSTRUCTED = [
    ("recipe.tau_fraction", "τ as a fraction of the total iterations T", 0.9),
    ("recipe.noise_on", "which layers are perturbed at τ", "wide"),
    ("recipe.noise_scale", "ε, the noise scale relative to std(W)", 1e-3),
    ("recipe.phase2_trains", "what phase 2 trains", "head"),
    ("recipe.tau_ablation", "τ ablation (besides recipe.tau_fraction)", None),
    ("model.wide_activation", "activation of the wide layer (project choice: analytic, so the condition holds "
     "almost everywhere; ReLU at m_H = n loses rank to units dead on every input)", None),
    ("model.widths", "stage widths of the PreAct ResNet", [64, 128, 256, 512]),
    ("model.blocks", "blocks per stage", [2, 2, 2, 2]),
    ("train.epochs", "epochs without / with augmentation", {"plain": 50, "augmented": 200}),
    ("train.milestones", "lr milestones (epochs)", {"plain": [10], "augmented": [10, 100]}),
    ("train.lr", "SGD learning rate", 0.01),
    ("train.batch_size", "mini-batch size", 64),
]


def _status(value: Any, paper: Any) -> str:
    if paper is None:
        return "reconstructed: the paper's value is not known"
    return "as in the paper (reconstructed reading)" if value == paper else f"differs: the paper used {paper}"


NOTES = [
    "Batch norm in eval mode for all of phase 2; momentum buffers of the phase-2 parameters carry over from base.",
    "The certificate uses the features of all n training inputs, un-augmented, computed in float64.",
    "Digits and its augmentation (crop 8 pad 1, affine ±10°, scale 0.9-1.1) are not in the paper; "
    "they are this project's offline stand-in.",
]


def _lookup(cfg: dict[str, Any], dotted: str) -> Any:
    value: Any = cfg
    for part in dotted.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def _split_notes(runs: pd.DataFrame) -> list[str]:
    """One line per data set on where its train/test split comes from (recorded in each prepared file)."""
    notes = {"digits": "digits: fixed seeded split of scikit-learn's 1,797 images (config data.digits).",
             "semeion": "semeion: fixed seeded 1,000 / 593 split of its 1,593 images (config data.semeion); "
                        "the indices are stored in data/prepared/semeion.pt."}
    return [notes.get(d, f"{d}: the data set's own train/test split (torchvision).")
            for d in sorted(runs.dataset.unique())]


def render(tables_dir: str | Path, claims_path: str | Path, figures: list[str | Path], out: str | Path,
           cfg: dict[str, Any], paper_values_path: str | Path | None = None,
           fc_rates_path: str | Path | None = None, study_tables: dict[str, str | Path] | None = None) -> Path:
    """Render report/index.html and copy the tables beside it, so the report folder stands alone."""
    out = Path(out)
    tables_dir = Path(tables_dir)
    copied = out.parent / "tables"
    copied.mkdir(parents=True, exist_ok=True)
    for name in ("table1.csv", "table1.html", "table1.tex", "runs.csv", "ablation.csv"):
        shutil.copyfile(tables_dir / name, copied / name)
    claims = read_json(claims_path)
    runs = pd.read_csv(tables_dir / "runs.csv")
    paper_values = (yaml.safe_load(Path(paper_values_path).read_text()) or {}) if paper_values_path else {}
    certs = runs[runs.algorithm == "recipe"][["run_id", "n_train", "m_H", "cert_rank", "cert_sigma_min",
                                               "cert_sigma_max", "cert_tolerance", "cert_full_rank"]]
    env = jinja2.Environment(loader=jinja2.PackageLoader("globalmin", "templates"),
                             autoescape=jinja2.select_autoescape(["html", "j2"]))
    html = env.get_template("report.html.j2").render(
        title=cfg.get("report", {}).get("title", "globalmin report"),
        generated=dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        table1=(tables_dir / "table1.html").read_text(),
        ablation=(tables_dir / "ablation.html").read_text() if len(pd.read_csv(tables_dir / "ablation.csv")) else "",
        splits=_split_notes(runs),
        fc_rates=Path(fc_rates_path).read_text() if fc_rates_path else "",
        studies={name: Path(path).read_text() for name, path in (study_tables or {}).items()},
        certificates=certs.to_dict("records"),
        claims=claims["claims"], summary=claims["summary"],
        figures=[Path(f).relative_to(out.parent).as_posix() for f in figures if str(f).endswith(".png")],
        reconstructed=[{"key": k, "what": w, "value": _lookup(cfg, k), "status": _status(_lookup(cfg, k), paper)}
                       for k, w, paper in RECONSTRUCTED],
        notes=NOTES, paper_values=paper_values.get("values", []) if isinstance(paper_values, dict) else [],
        wall=runs.groupby("algorithm").wall_seconds.sum().round(1).to_dict(),
        devices=sorted(runs.device.dropna().unique()), environment=environment(),
    )
    return write_text(out, html)
