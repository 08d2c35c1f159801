"""Command line: `globalmin <command>`, one command per pipeline stage; this module only parses and dispatches.

Every command calls one stage module's entry point, `run(cfg, inputs, outputs)`, which writes all of that
stage's files: its options are the stage's config (JSON or values), its input paths and its output paths. So
every stage runs without Snakemake too (README, "Running a stage by hand"), and `deps.py` can tell from this
table which source files each command runs. Kept free of heavy imports: `--help` and the Snakefile's
dependency scan never load torch.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import sys
from dataclasses import dataclass, field
from typing import Any, Callable, NoReturn

CONFIG, INPUT, OUTPUT = "config", "input", "output"


def json_object(text: str) -> dict:
    """An argparse type: a JSON object."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        raise argparse.ArgumentTypeError(f"not valid JSON ({err}): {text[:80]}") from err
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"expected a JSON object, got {text[:80]}")
    return value


def augmentation_flag(text: str) -> bool:
    """An argparse type: aug/noaug (or true/false)."""
    if text.lower() in ("1", "true", "yes", "aug"):
        return True
    if text.lower() in ("0", "false", "no", "noaug"):
        return False
    raise argparse.ArgumentTypeError(f"expected aug or noaug, got {text!r}")


@dataclass(frozen=True)
class Option:
    """One command-line option: its flag, whether it is config, an input or an output, its help and argparse
    keyword arguments; `key` is its name in the stage's cfg/inputs/outputs (default: the flag's name)."""

    flag: str
    role: str
    help: str
    kwargs: dict[str, Any] = field(default_factory=dict)
    key: str | None = None

    @property
    def name(self) -> str:
        """The key in the stage's dictionary."""
        return self.key or self.flag.lstrip("-").replace("-", "_")


@dataclass(frozen=True)
class Command:
    """A command: the stage module it runs (and its entry point), what it does, its options."""

    module: str
    help: str
    options: list[Option]
    entry: str = "run"


def _dataset_choices() -> list[str]:
    from globalmin.datasets import FACTS  # torch-free

    return sorted(FACTS)


def dataset_name(text: str) -> str:
    """An argparse type: a data set name, built-in or your own ([a-z0-9_], as the workflow's wildcards)."""
    import re

    if not re.fullmatch(r"[a-z0-9_]+", text):
        raise argparse.ArgumentTypeError(f"data set names are lower-case letters, digits and _, got {text!r}")
    return text


REQ = {"required": True}
JSON_REQ = {"required": True, "type": json_object}
COMMANDS: dict[str, Command] = {
    "datasets": Command("globalmin.datasets", "List the data sets: source, sizes, augmentation and where its "
                        "values come from (src/globalmin/datasets.py).", []),
    "fetch": Command("globalmin.sources", "Download (or import, per the options' source) a data set's raw files, "
                     "verified, into --out.", [
        Option("--dataset", CONFIG, "data set name", {"required": True, "choices": _dataset_choices()}),
        Option("--options", CONFIG, "the data set's config section data.<name> as JSON", {"type": json_object,
                                                                                         "default": {}}),
        Option("--out", OUTPUT, "the data set's raw folder, e.g. data/raw/mnist", REQ, key="raw")]),
    "import-data": Command("globalmin.sources", "Import raw files fetched elsewhere: verify their checksums and "
                           "place them where a download would.", [
        Option("--dataset", CONFIG, "data set name", {"required": True, "choices": _dataset_choices()}),
        Option("--from", CONFIG, "folder holding the files (searched recursively)", REQ, key="import_dir"),
        Option("--out", OUTPUT, "the data set's raw folder, e.g. data/raw/mnist", REQ, key="raw")],
        entry="import_data"),
    "prepare": Command("globalmin.data", "Build one data set's prepared tensor file.", [
        Option("--dataset", CONFIG, f"data set name: {', '.join(_dataset_choices())}, or your own (with --options "
               "'{\"source\": \"folder\" or \"arrays\", \"path\": ...}')", {"required": True, "type": dataset_name}),
        Option("--options", CONFIG, "the data set's config section data.<name> as JSON",
               {"type": json_object, "default": {}}),
        Option("--raw-dir", INPUT, "its fetched raw folder (every data set but digits)", {"default": None},
               key="raw"),
        Option("--out", OUTPUT, "the prepared file to write, e.g. data/prepared/digits.pt", REQ, key="prepared")]),
    "train-base": Command("globalmin.base", "Train `base` on one data set, condition, augmentation and seed; save "
                          "its state at every tau.", [
        Option("--data", INPUT, "prepared data file", REQ),
        Option("--config", CONFIG, "JSON: model, train, condition, tau_fraction, ablation (extra tau fractions), "
               "certificate (method, scratch)", JSON_REQ, key="settings"),
        Option("--seed", CONFIG, "the run's seed (drives every random draw)", {"required": True, "type": int}),
        Option("--augment", CONFIG, "aug or noaug", {"required": True, "type": augmentation_flag}),
        Option("--threads", CONFIG, "torch CPU threads", {"type": int, "default": None}),
        Option("--out-dir", OUTPUT, "the run folder", REQ, key="run_dir")]),
    "train-recipe": Command("globalmin.recipe", "Train A(base) phase 2 from each of a base run's tau-states.", [
        Option("--data", INPUT, "prepared data file", REQ),
        Option("--tau-states", INPUT, "the base run's tau-state files", {"required": True, "nargs": "+"}),
        Option("--recipe", CONFIG, "the recipe config section as JSON", JSON_REQ, key="settings"),
        Option("--expect", CONFIG, "JSON: the base run's id and config hash the tau-states must carry (the "
               "workflow's; a foreign tau-state is refused)", {"type": json_object, "default": None}),
        Option("--threads", CONFIG, "torch CPU threads", {"type": int, "default": None}),
        Option("--out-dirs", OUTPUT, "one run folder per tau-state, in the same order",
               {"required": True, "nargs": "+"}, key="run_dirs")]),
    "aggregate": Command("globalmin.aggregate", "Collect every run into tables and judge the Recipe's claims.", [
        Option("--metrics", INPUT, "every run's metrics.json", {"required": True, "nargs": "+"}),
        Option("--config", CONFIG, "JSON: the claims section and the main tau fraction", JSON_REQ, key="settings"),
        Option("--out-dir", OUTPUT, "tables folder (results/tables)", REQ),
        Option("--summary", OUTPUT, "headline metrics JSON for `dvc metrics show`", REQ),
        Option("--plots-dir", OUTPUT, "folder of mean-curve CSVs for `dvc plots show`", REQ)]),
    "fc-theory": Command("globalmin.fc_theory", "Fully-connected theory check: certificates of random nets "
                         "(claim F1, check F2).", [
        Option("--data", INPUT, "prepared digits file (real inputs)", REQ),
        Option("--config", CONFIG, "the fc_theory config section as JSON", JSON_REQ, key="settings"),
        Option("--out-dir", OUTPUT, "the study's folder (results/studies/fc_theory)", REQ)]),
    "ntk": Command("globalmin.ntk", "NTK-regime study (Allen-Zhu, Li & Song): sweeps, claims A1-A5 and A8.", [
        Option("--data", INPUT, "prepared digits file (A8's real inputs)", REQ),
        Option("--config", CONFIG, "the ntk config section as JSON", JSON_REQ, key="settings"),
        Option("--out-dir", OUTPUT, "the study's folder (results/studies/ntk)", REQ)]),
    "beyond-ntk": Command("globalmin.beyond_ntk", "Movement of every ResNet run from its initialisation beside the "
                          "lazy MLPs (claim R4).", [
        Option("--data", INPUT, "prepared data files of the runs' data sets", {"required": True, "nargs": "+"}),
        Option("--models", INPUT, "every run's model.pt", {"required": True, "nargs": "+"}),
        Option("--ntk-runs", INPUT, "the NTK study's runs.csv", REQ),
        Option("--config", CONFIG, "JSON: the beyond_ntk section and the NTK sweep's depth", JSON_REQ,
               key="settings"),
        Option("--threads", CONFIG, "torch CPU threads", {"type": int, "default": 1}),
        Option("--out-dir", OUTPUT, "the study's folder (results/studies/beyond_ntk)", REQ)]),
    "local-minima": Command("globalmin.local_minima", "Local minima against depth and width (Kawaguchi, Huang & "
                            "Kaelbling): claims B1, B2, B4, check B3.", [
        Option("--data", INPUT, "prepared data files of the image data kinds", {"nargs": "*", "default": []}),
        Option("--config", CONFIG, "the local_minima config section as JSON", JSON_REQ, key="settings"),
        Option("--out-dir", OUTPUT, "the study's folder (results/studies/local_minima)", REQ)]),
    "certify": Command("globalmin.api", "Certify the expressivity condition of a model's features (a run's model.pt, "
                       "or module:function returning your nn.Module) on a data set's training inputs.", [
        Option("--model", INPUT, "a run's model.pt, or module:function (a function in module.py of this folder that "
               "returns the model)", REQ),
        Option("--data", INPUT, "the training inputs: a prepared data file (.pt), an .npz file or an image folder",
               REQ),
        Option("--head", CONFIG, "the head's module name (default: the last nn.Linear the forward pass calls)",
               {"default": None}),
        Option("--method", CONFIG, "svd (exact), qr (rigorous bound; large n) or auto (svd up to n = 4,096)",
               {"default": "auto", "choices": ["auto", "svd", "qr"]}),
        Option("--batch-size", CONFIG, "inputs per forward pass", {"type": int, "default": 1024}),
        Option("--scratch", CONFIG, "folder for an on-disk feature matrix (qr out of core)", {"default": None}),
        Option("--out", OUTPUT, "the certificate as JSON (optional)", {"default": None})], entry="certify_command"),
    "watch": Command("globalmin.watch", "Show every training run's progress (epoch, images/s, time left) while "
                     "`snakemake` runs, refreshing until the jobs end; curves: tensorboard --logdir "
                     "logs/tensorboard.", [
        Option("--logs", INPUT, "the folder the runs write under (default $GLOBALMIN_LOGS or logs)", {"default": None}),
        Option("--interval", CONFIG, "seconds between refreshes", {"type": float, "default": 2.0}),
        Option("--once", CONFIG, "print the table once and leave", {"action": "store_true"})]),
    "claims": Command("globalmin.claims", "Merge the claims fragments into one ledger (claims, instrument checks).", [
        Option("--fragments", INPUT, "claims.json fragments of every stage", {"required": True, "nargs": "+"}),
        Option("--out", OUTPUT, "the merged ledger (results/claims.json)", REQ)]),
    "notebook": Command("globalmin.notebook", "Execute the exploration notebook with this run's outputs and save it "
                        "with its outputs.", [
        Option("--tables", INPUT, "tables folder (results/tables)", REQ),
        Option("--claims", INPUT, "the merged claims ledger", REQ),
        Option("--runs-dir", INPUT, "the run folders' root (results/runs)", REQ),
        Option("--data-dir", INPUT, "the prepared data folder (data/prepared)", REQ),
        Option("--out", OUTPUT, "the executed notebook (report/explore.ipynb)", REQ, key="notebook")]),
    "report": Command("globalmin.report", "Render the HTML report and the results summary.", [
        Option("--tables", INPUT, "tables folder (results/tables)", REQ),
        Option("--claims", INPUT, "the merged claims ledger", REQ),
        Option("--figures", INPUT, "figure PNG files", {"required": True, "nargs": "+"}),
        Option("--study-tables", INPUT, "studies' HTML tables as NAME=PATH", {"nargs": "*", "default": []}),
        Option("--paper-values", INPUT, "config/paper_values.yaml", REQ),
        Option("--config", CONFIG, "JSON: the config sections the report describes", JSON_REQ, key="settings"),
        Option("--out", OUTPUT, "report/index.html", REQ, key="html"),
        Option("--summary", OUTPUT, "the results summary in Markdown", REQ)]),
}
for _name, _about in [("recipe", "Recipe figures: curves, phase 2, gap to the optimum, sigma_min"),
                      ("sweep", "width sweep figures: infimum against m_H / n, phase 2's loss past T"),
                      ("fc-theory", "fully-connected theory figure"), ("ntk", "NTK study figure"),
                      ("beyond-ntk", "beyond-NTK figure"), ("local-minima", "local-minimum figure")]:
    COMMANDS[f"figure-{_name}"] = Command(f"globalmin.figures.{_name.replace('-', '_')}", f"Draw the {_about}.", [
        Option("--inputs", INPUT, "the CSV tables the figure reads, as NAME=PATH", {"required": True, "nargs": "+"}),
        Option("--config", CONFIG, "JSON: settings the figure needs", {"type": json_object, "default": {}},
               key="settings"),
        Option("--out-dir", OUTPUT, "figures folder (report/figures)", REQ)])


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with one sub-command per stage."""
    p = argparse.ArgumentParser(prog="globalmin", description=__doc__.splitlines()[0])
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, command in COMMANDS.items():
        s = sub.add_parser(name, help=command.help, description=command.help)
        for option in command.options:
            s.add_argument(option.flag, dest=f"{option.role}:{option.name}", help=option.help, **option.kwargs)
    return p


def split_args(args: argparse.Namespace) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """(cfg, inputs, outputs) from the parsed options; a JSON `settings` option is merged into cfg."""
    parts: dict[str, dict[str, Any]] = {CONFIG: {}, INPUT: {}, OUTPUT: {}}
    for dest, value in vars(args).items():
        if ":" in dest:
            role, name = dest.split(":", 1)
            parts[role][name] = value
    cfg = {**parts[CONFIG].pop("settings", {}), **parts[CONFIG]}
    return cfg, parts[INPUT], parts[OUTPUT]


def entry_point(command: str) -> Callable[..., Any]:
    """The stage function a command runs."""
    spec = COMMANDS[command]
    return getattr(importlib.import_module(spec.module), spec.entry)


def main(argv: list[str] | None = None) -> int:
    """Run one command."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    from globalmin.runinfo import UserError, limit_threads

    cfg, inputs, outputs = split_args(args)
    limit_threads(cfg.get("threads") or 1)  # one job's share of the CPU: Snakemake runs jobs side by side
    stage = entry_point(args.command)  # imports the stage's module, torch included where it computes with it
    try:
        result = stage(cfg, inputs, outputs)
    except UserError as err:
        # Known failure modes carry a message naming the problem and the fix; no traceback needed.
        logging.getLogger("globalmin").error("%s: %s", type(err).__name__, err)
        return 1
    if isinstance(result, dict) and "summary" in result:
        print(json.dumps(result["summary"], sort_keys=True))
    return 0


def console(argv: list[str] | None = None) -> NoReturn:
    """The `globalmin` console script (and `python -m globalmin`): `main`, and its exit code. It leaves through the
    interpreter's normal teardown: skipping it with os._exit saved less than 5 % of the default DAG's wall time
    (row `exit`, key `os_exit`, of benchmarks/results/study-twins-cpu-2core.json; docs/library-forms.md)."""
    sys.exit(main(argv))
