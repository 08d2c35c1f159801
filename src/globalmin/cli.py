"""Command line: `globalmin <command>`, one command per pipeline stage, called by the Snakemake rules.

Each stage takes explicit input and output paths and its own config section as JSON, so every stage
runs without Snakemake too (see README, "Running a stage by hand").
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path


def _json(text: str) -> dict:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        raise argparse.ArgumentTypeError(f"not valid JSON ({err}): {text[:80]}") from err
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"expected a JSON object, got {text[:80]}")
    return value


def _bool(text: str) -> bool:
    if text.lower() in ("1", "true", "yes", "aug"):
        return True
    if text.lower() in ("0", "false", "no", "noaug"):
        return False
    raise argparse.ArgumentTypeError(f"expected true/false, got {text!r}")


def cmd_fetch(a: argparse.Namespace) -> None:
    """Download (or import, per the options' `source`) a data set's raw files, verified, into --out."""
    from globalmin import data, sources
    from globalmin.runinfo import UserError

    spec = data.get_spec(a.dataset)
    if spec.tv_class is None:
        raise UserError(f"{a.dataset} ships with its Python package; it has no raw files to fetch")
    manifest = sources.fetch(a.dataset, spec.tv_class, a.out, a.options)
    print(json.dumps({k: manifest[k] for k in ("dataset", "source", "fetched")}))


def cmd_import_data(a: argparse.Namespace) -> None:
    """Import raw files fetched elsewhere: verify their checksums and place them where a download would."""
    a.options = {"source": "import", "import_dir": a.source_dir}
    cmd_fetch(a)


def cmd_prepare(a: argparse.Namespace) -> None:
    """Build one data set's prepared tensor file."""
    from globalmin import data

    print(json.dumps(data.prepare(a.dataset, a.out, a.options, a.raw_dir)))


def cmd_train_base(a: argparse.Namespace) -> None:
    """Train `base` and save its tau-state."""
    from globalmin import train

    train.train_base(a.data, a.out_dir, a.seed, a.augment, a.model, a.train, a.tau_fraction, a.threads,
                     tuple(a.ablation_tau), a.certificate_method,
                     a.certificate_scratch)


def cmd_train_recipe(a: argparse.Namespace) -> None:
    """Train A(base) phase 2 from base's tau-state."""
    from globalmin import train

    train.train_recipe(a.data, a.tau_state, a.out_dir, a.recipe, a.threads)


def cmd_aggregate(a: argparse.Namespace) -> None:
    """Collect run metrics into tables."""
    from globalmin import aggregate

    runs, curves = aggregate.collect_runs(a.metrics)
    aggregate.write_tables(runs, curves, a.out_dir)
    aggregate.write_dvc_views(runs, curves, a.summary, a.plots_dir)


def cmd_claims_recipe(a: argparse.Namespace) -> None:
    """Judge the Recipe paper's claims from the aggregated tables."""
    import pandas as pd

    from globalmin import claims

    tables = Path(a.tables)
    runs, curves = pd.read_csv(tables / "runs.csv"), pd.read_csv(tables / "curves.csv")
    evidence = [str(tables / n) for n in ("runs.csv", "curves.csv", "table1.csv")]
    claims.write_fragment(a.out, "recipe", claims.recipe_claims(runs, curves, a.claims, evidence))


def cmd_claims_merge(a: argparse.Namespace) -> None:
    """Merge claim fragments into the claims file."""
    from globalmin import claims
    from globalmin.runinfo import write_json

    write_json(a.out, claims.merge(a.fragments))


def cmd_fc_theory(a: argparse.Namespace) -> None:
    """Run the fully-connected theory check: certificates of random nets, pass rates and claims F1, F2."""
    from globalmin import claims, fc_theory
    from globalmin.runinfo import write_text

    out = Path(a.out_dir)
    runs = fc_theory.run_grid(a.config)
    rates = fc_theory.pass_rates(runs)
    write_text(out / "runs.csv", runs.to_csv(index=False))
    write_text(out / "pass_rates.csv", rates.to_csv(index=False))
    write_text(out / "pass_rates.html", rates.to_html(index=False, classes="table", border=0, float_format="%.3g"))
    claims.write_fragment(a.claims, "fc_theory", fc_theory.theory_claims(runs, [str(out / "runs.csv")]))


def cmd_ntk(a: argparse.Namespace) -> None:
    """Run the NTK-regime study (Allen-Zhu, Li & Song): width and depth sweeps (A1-A5), memorisation (A8)."""
    from globalmin import claims, ntk
    from globalmin.runinfo import write_text

    out = Path(a.out_dir)
    runs, curves = ntk.run_study(a.config)
    write_text(out / "runs.csv", runs.to_csv(index=False))
    write_text(out / "curves.csv", curves.to_csv(index=False))
    memorised = ntk.run_memorisation(a.config["memorisation"])
    write_text(out / "memorisation.csv", memorised.to_csv(index=False))
    found = ntk.ntk_claims(runs, a.config, [str(out / "runs.csv")])
    found.append(ntk.memorisation_claim(memorised, a.config["memorisation"], [str(out / "memorisation.csv")]))
    claims.write_fragment(a.claims, "ntk", found)


def cmd_movement(a: argparse.Namespace) -> None:
    """Measure how far one finished ResNet run moved from its initialisation (beyond-NTK quantities)."""
    import torch

    from globalmin import beyond_ntk
    from globalmin.runinfo import environment, write_json

    torch.set_num_threads(a.threads)
    record = beyond_ntk.measure_run(a.data, a.model, a.subset)
    write_json(a.out, {**record, "environment": environment(torch.device(record["device"]))})


def cmd_beyond_ntk(a: argparse.Namespace) -> None:
    """Set the ResNet runs' movement beside the lazy MLPs of the NTK study; write the table and claim R4."""
    import pandas as pd

    from globalmin import beyond_ntk, claims
    from globalmin.runinfo import read_json, write_text

    out = Path(a.out_dir)
    resnet = pd.DataFrame([{k: v for k, v in read_json(p).items() if k != "environment"} for p in a.movements])
    lazy = pd.read_csv(a.ntk_runs)
    table = beyond_ntk.comparison(resnet, lazy, a.ntk_depth)
    write_text(out / "runs.csv", resnet.to_csv(index=False))
    write_text(out / "comparison.csv", table.to_csv(index=False))
    write_text(out / "comparison.html", table.to_html(index=False, classes="table", border=0, float_format="%.3g"))
    claim = beyond_ntk.beyond_ntk_claim(resnet, lazy, a.ntk_depth, a.config["factor"],
                                        [str(out / "runs.csv"), a.ntk_runs])
    claims.write_fragment(a.claims, "beyond_ntk", [claim])


def cmd_local_minima(a: argparse.Namespace) -> None:
    """Run the local-minimum study (Kawaguchi, Huang & Kaelbling): L against the projection bound LB (B1-B4)."""
    from globalmin import claims, local_minima
    from globalmin.runinfo import write_text

    out = Path(a.out_dir)
    runs = local_minima.run_study(a.config)
    write_text(out / "runs.csv", runs.to_csv(index=False))
    table = local_minima.summary_table(runs)
    write_text(out / "summary.csv", table.to_csv(index=False))
    write_text(out / "summary.html", table.to_html(index=False, classes="table", border=0, float_format="%.3g"))
    claims.write_fragment(a.claims, "local_minima",
                          local_minima.local_minima_claims(runs, a.config, [str(out / "runs.csv")]))


def cmd_figures(a: argparse.Namespace) -> None:
    """Draw the Recipe figures (--tables), or the fully-connected theory (--fc-theory) or NTK (--ntk) figure."""
    import pandas as pd

    from globalmin import figures

    if a.fc_theory:
        figures.plot_fc_theory(pd.read_csv(a.fc_theory), Path(a.out_dir) / "fc_theory.png")
        return
    if a.ntk:
        figures.plot_ntk(pd.read_csv(a.ntk), a.ntk_depth, Path(a.out_dir) / "ntk.png")
        return
    if a.local_minima:
        figures.plot_local_minima(pd.read_csv(a.local_minima), Path(a.out_dir) / "local_minima.png")
        return
    if a.beyond_ntk:
        figures.plot_beyond_ntk(pd.read_csv(a.beyond_ntk[0]), pd.read_csv(a.beyond_ntk[1]), a.ntk_depth,
                                Path(a.out_dir) / "beyond_ntk.png")
        return
    tables = Path(a.tables)
    figures.plot_curves(pd.read_csv(tables / "curves.csv"), Path(a.out_dir) / "curves.png")
    figures.plot_phase2(pd.read_csv(tables / "curves.csv"), Path(a.out_dir) / "phase2.png")
    figures.plot_sigma_min(pd.read_csv(tables / "runs.csv"), Path(a.out_dir) / "sigma_min.png")


def cmd_report(a: argparse.Namespace) -> None:
    """Render the HTML report."""
    from globalmin import report

    studies = dict(item.split("=", 1) for item in a.study_table)
    report.render(a.tables, a.claims, a.figures, a.out, a.config, a.paper_values, a.fc_rates, studies)


def add_study(sub: argparse._SubParsersAction, name: str, func, section: str) -> argparse.ArgumentParser:
    """A study's sub-command: its config section as JSON, an output folder and its claims fragment."""
    s = sub.add_parser(name, help=func.__doc__)
    s.add_argument("--config", type=_json, required=True, help=f"{section} config section as JSON")
    s.add_argument("--out-dir", required=True)
    s.add_argument("--claims", required=True, help="claims fragment to write")
    s.set_defaults(func=func)
    return s


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with one sub-command per stage."""
    p = argparse.ArgumentParser(prog="globalmin", description=__doc__.splitlines()[0])
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("fetch", help=cmd_fetch.__doc__)
    s.add_argument("--dataset", required=True)
    s.add_argument("--out", required=True, help="the data set's raw folder, e.g. data/raw/mnist")
    s.add_argument("--options", type=_json, default={}, help="the data set's config section as JSON")
    s.set_defaults(func=cmd_fetch)

    s = sub.add_parser("import-data", help=cmd_import_data.__doc__)
    s.add_argument("--dataset", required=True)
    s.add_argument("--from", dest="source_dir", required=True, help="folder holding the files (searched recursively)")
    s.add_argument("--out", required=True, help="the data set's raw folder, e.g. data/raw/mnist")
    s.set_defaults(func=cmd_import_data)

    s = sub.add_parser("prepare", help=cmd_prepare.__doc__)
    s.add_argument("--dataset", required=True)
    s.add_argument("--out", required=True)
    s.add_argument("--options", type=_json, default={}, help="the data set's config section as JSON")
    s.add_argument("--raw-dir", default=None, help="fetched raw folder (all data sets but digits)")
    s.set_defaults(func=cmd_prepare)

    s = sub.add_parser("train-base", help=cmd_train_base.__doc__)
    s.add_argument("--data", required=True)
    s.add_argument("--out-dir", required=True)
    s.add_argument("--seed", type=int, required=True)
    s.add_argument("--augment", type=_bool, required=True)
    s.add_argument("--model", type=_json, required=True, help="model config section as JSON")
    s.add_argument("--train", type=_json, required=True, help="train config section as JSON")
    s.add_argument("--tau-fraction", type=float, required=True)
    s.add_argument("--ablation-tau", type=float, nargs="*", default=[], help="extra tau fractions to save states at")
    s.add_argument("--certificate-method", default="auto", choices=["auto", "svd", "qr"])
    s.add_argument("--certificate-scratch", default=None,
                   help="folder for an on-disk feature matrix (the out-of-core QR certificate)")
    s.add_argument("--threads", type=int, default=None)
    s.set_defaults(func=cmd_train_base)

    s = sub.add_parser("train-recipe", help=cmd_train_recipe.__doc__)
    s.add_argument("--data", required=True)
    s.add_argument("--tau-state", required=True)
    s.add_argument("--out-dir", required=True)
    s.add_argument("--recipe", type=_json, required=True, help="recipe config section as JSON")
    s.add_argument("--threads", type=int, default=None)
    s.set_defaults(func=cmd_train_recipe)

    s = sub.add_parser("aggregate", help=cmd_aggregate.__doc__)
    s.add_argument("--metrics", nargs="+", required=True)
    s.add_argument("--out-dir", required=True)
    s.add_argument("--summary", required=True, help="summary metrics JSON (for `dvc metrics show`)")
    s.add_argument("--plots-dir", required=True, help="folder of mean-curve CSVs (for `dvc plots show`)")
    s.set_defaults(func=cmd_aggregate)

    s = sub.add_parser("claims-recipe", help=cmd_claims_recipe.__doc__)
    s.add_argument("--tables", required=True)
    s.add_argument("--claims", type=_json, required=True, help="claims config section as JSON")
    s.add_argument("--out", required=True)
    s.set_defaults(func=cmd_claims_recipe)

    s = sub.add_parser("claims-merge", help=cmd_claims_merge.__doc__)
    s.add_argument("--fragments", nargs="+", required=True)
    s.add_argument("--out", required=True)
    s.set_defaults(func=cmd_claims_merge)

    add_study(sub, "fc-theory", cmd_fc_theory, "fc_theory")

    add_study(sub, "ntk", cmd_ntk, "ntk")

    s = sub.add_parser("movement", help=cmd_movement.__doc__)
    s.add_argument("--data", required=True, help="prepared data file")
    s.add_argument("--model", required=True, help="a finished run's model.pt")
    s.add_argument("--subset", type=int, required=True, help="first training points for flips and kernels")
    s.add_argument("--threads", type=int, default=1)
    s.add_argument("--out", required=True, help="movement JSON")
    s.set_defaults(func=cmd_movement)

    s = sub.add_parser("beyond-ntk", help=cmd_beyond_ntk.__doc__)
    s.add_argument("--movements", nargs="+", required=True, help="movement JSON files of the ResNet runs")
    s.add_argument("--ntk-runs", required=True, help="NTK study runs CSV")
    s.add_argument("--ntk-depth", type=int, required=True, help="depth of the NTK width sweep")
    s.add_argument("--config", type=_json, required=True, help="beyond_ntk config section as JSON")
    s.add_argument("--out-dir", required=True)
    s.add_argument("--claims", required=True, help="claims fragment to write")
    s.set_defaults(func=cmd_beyond_ntk)

    add_study(sub, "local-minima", cmd_local_minima, "local_minima")

    s = sub.add_parser("figures", help=cmd_figures.__doc__)
    s.add_argument("--tables", help="Recipe tables folder")
    s.add_argument("--fc-theory", help="fully-connected theory runs CSV")
    s.add_argument("--ntk", help="NTK study runs CSV")
    s.add_argument("--ntk-depth", type=int, default=2, help="depth of the NTK width sweep")
    s.add_argument("--local-minima", help="local-minimum study runs CSV")
    s.add_argument("--beyond-ntk", nargs=2, metavar=("RESNET_RUNS", "NTK_RUNS"),
                   help="ResNet movement runs CSV and NTK study runs CSV")
    s.add_argument("--out-dir", required=True)
    s.set_defaults(func=cmd_figures)

    s = sub.add_parser("report", help=cmd_report.__doc__)
    s.add_argument("--tables", required=True)
    s.add_argument("--claims", required=True)
    s.add_argument("--figures", nargs="+", required=True)
    s.add_argument("--config", type=_json, required=True, help="model/train/recipe/report sections as JSON")
    s.add_argument("--paper-values", default=None)
    s.add_argument("--fc-rates", default=None, help="fully-connected theory pass-rate table (HTML)")
    s.add_argument("--study-table", action="append", default=[], metavar="NAME=HTML",
                   help="a study's summary table (beyond_ntk, local_minima), repeatable")
    s.add_argument("--out", required=True)
    s.set_defaults(func=cmd_report)
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `globalmin` console script."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    from globalmin.runinfo import UserError

    try:
        args.func(args)
    except UserError as err:
        # Known failure modes carry a message naming the problem and the fix; no traceback needed.
        logging.getLogger("globalmin").error("%s: %s", type(err).__name__, err)
        return 1
    return 0
