# Helpers shared by the rule files (functions and path patterns only; the catalog convention keeps them out of
# rule files). Every path a rule reads or writes is built here once.
import json
import shutil
from pathlib import Path

from globalmin.conditions import resolve, sweep_points
from globalmin.datasets import FACTS
from globalmin.deps import command_sources
from globalmin.outputs import FIGURES, REPORT_TABLES, TABLES, figure_names
from globalmin.runinfo import fingerprint
from globalmin.runfiles import run_id

REPO = Path(workflow.basedir)
RUNS = "results/runs"
RUN = f"{RUNS}/{{dataset}}/{{condition}}/{{aug}}/seed{{seed}}"  # one run's folder (base, recipe, recipe_<f> in it)
RUN_FILES = ["metrics.json", "curve.csv", "model.pt"]
STUDIES = "results/studies"
TABLES_DIR = "results/tables"
FIGURES_DIR = "report/figures"


BASE = f"{RUN}/base"  # a base run's folder


def out_dir(wildcards, output):
    """The folder of a rule's first output, for stages that take an output directory."""
    return str(Path(output[0]).parent)


def base_files(*names):
    """Declared files of a base run's folder."""
    return [f"{BASE}/{n}" for n in names]


def recipe_outputs(suffixes):
    """The declared files of the A(base) run folders named by `suffixes` (recipe, recipe_<f>)."""
    return [f"{RUN}/{s}/{f}" for s in suffixes for f in RUN_FILES + ["certificate.json", "horizon.csv"]]


def tau_states(wildcards):
    """The base run's tau-states, in the order of recipe_suffixes: the main tau first."""
    base = BASE.format(**dict(wildcards.items()))
    return [f"{base}/tau_state{s[len('recipe'):]}.pt" for s in recipe_suffixes(wildcards.dataset, wildcards.condition)]


def recipe_dirs(wildcards):
    """The A(base) run folders train-recipe writes, one per tau-state."""
    prefix = RUN.format(**dict(wildcards.items()))
    return [f"{prefix}/{s}" for s in recipe_suffixes(wildcards.dataset, wildcards.condition)]


def table(name):
    """A table the aggregate stage writes (globalmin.outputs.TABLES)."""
    return f"{TABLES_DIR}/{name}"


def figure_files(command, category):
    """PNG (shown in Snakemake's own report, with workflow/report/<name>.rst as caption) and PDF of the figures a
    figure command draws (globalmin.outputs.FIGURES)."""
    names = FIGURES[command]
    return [report(f"{FIGURES_DIR}/{n}.png", caption=f"../report/{n}.rst", category=category) for n in names] + [
        f"{FIGURES_DIR}/{n}.pdf" for n in names
    ]


def code(command):
    """Source files `globalmin <command>` runs, derived from the package's imports (globalmin.deps): declared as
    inputs so that editing a function reruns exactly the jobs whose commands import it."""
    return command_sources(command, REPO / "src" / "globalmin", REPO)


def as_json(section):
    """A config section as compact JSON, passed to a stage through `params:` so Snakemake tracks it."""
    return json.dumps(section, sort_keys=True, separators=(",", ":"))


def raw_input(wildcards):
    """What a data set is prepared from: its fetched raw folder, your own folder or array file (data.<name>.path),
    or nothing for data sets that ship with a package (digits)."""
    options = config["data"].get(wildcards.dataset) or {}
    if options.get("source") in ("folder", "arrays"):
        return [options["path"]]
    return [f"data/raw/{wildcards.dataset}"] if FACTS[wildcards.dataset].has_raw_files else []


def prepared(dataset):
    """The prepared data file of a data set."""
    return f"data/prepared/{dataset}.pt"


def condition_of(name):
    """A condition's settings (globalmin.conditions.resolve: the experiment's, model's and train's where it sets
    none of its own)."""
    return resolve(config, name)


def base_runs():
    """(dataset, condition, aug, seed) of every base run of the experiment."""
    return [
        (d, c, "aug" if a else "noaug", s)
        for d in config["experiment"]["datasets"]
        for c in config["experiment"]["conditions"]
        for a in condition_of(c)["augmentation"]
        for s in condition_of(c)["seeds"]
    ]


ABLATION = config["recipe"]["tau_ablation"]
FRACTIONS = [f"{f:g}" for f in ABLATION["fractions"]]
# Data sets and conditions with a tau ablation get variants of the base and recipe rules whose outputs include the
# extra tau runs (a rule's outputs cannot depend on a wildcard's value otherwise).
ABLATED = "|".join(d for d in ABLATION["datasets"] if ABLATION["fractions"]) or "(?!)"
ABLATED_CONDITIONS = "|".join(ABLATION["conditions"] or config["experiment"]["conditions"]) or "(?!)"


def ablated(dataset, condition):
    """Whether the base runs of a data set and condition save the tau ablation's states too."""
    return dataset in ABLATION["datasets"] and condition in (ABLATION["conditions"] or [condition])


def recipe_suffixes(dataset, condition):
    """The A(base) run folders of one base run: 'recipe' (main tau) and 'recipe_<f>' (the tau ablation)."""
    extra = FRACTIONS if ablated(dataset, condition) else []
    return ["recipe"] + [f"recipe_{f}" for f in extra]


def run_folders(algorithms=("base", "recipe"), conditions=None, ablation=True):
    """Run folders of the experiment: base runs and, per base run, its A(base) runs (without the tau ablation's
    when `ablation` is false), for every condition or the listed ones."""
    folders = []
    for dataset, condition, aug, seed in base_runs():
        if conditions is not None and condition not in conditions:
            continue
        prefix = RUN.format(dataset=dataset, condition=condition, aug=aug, seed=seed)
        recipes = recipe_suffixes(dataset, condition) if ablation else ["recipe"]
        names = (["base"] if "base" in algorithms else []) + (recipes if "recipe" in algorithms else [])
        folders += [f"{prefix}/{name}" for name in names]
    return folders


def base_settings(wildcards):
    """train-base's JSON config: the model (with the condition's wide width), train (with the condition's optimizer
    and lr), condition, data seed, tau and ablation."""
    cond = condition_of(wildcards.condition)
    model = dict(config["model"])
    if cond["wide_width"] is not None:  # a condition's own width: a deliberate control may go below n
        model.update(wide_width=cond["wide_width"], require_expressivity=False)
    train = {**config["train"], "optimizer": cond["optimizer"], "lr": cond["lr"]}
    fractions = ABLATION["fractions"] if ablated(wildcards.dataset, wildcards.condition) else []
    data_seed = config["experiment"]["data_seed"]
    return as_json(
        {
            "model": model,
            "train": train,
            "tau_fraction": config["recipe"]["tau_fraction"],
            "ablation": fractions,
            "data_seed": int(wildcards.seed) if data_seed is None else data_seed,
            "condition": {k: cond[k] for k in ("name", "labels", "label_seed", "loss")},
            "certificate": {
                "method": config["recipe"]["certificate_method"],
                "scratch": config["recipe"]["certificate_scratch"],
            },
        }
    )


def expected_base(wildcards):
    """What train-recipe must find in its tau-states: the base run's id and config hash (base.identity)."""
    settings = json.loads(base_settings(wildcards))
    identity = fingerprint({**settings, "seed": int(wildcards.seed), "augment": wildcards.aug == "aug"})
    return as_json(
        {
            "run_id": run_id(wildcards.dataset, wildcards.condition, wildcards.aug == "aug", wildcards.seed, "base"),
            "config_hash": identity,
        }
    )


def uses_gpu():
    """Whether training jobs will run on a GPU (train.device cuda, or auto on a machine with an NVIDIA driver)."""
    device = config["train"]["device"]
    return device.startswith("cuda") or (device == "auto" and shutil.which("nvidia-smi") is not None)


# Training jobs claim one `gpu_slots` resource where a GPU will be used: `--resources gpu_slots=k`
# (profiles/default: k = 1) lets k of them share the GPU at once and queues the rest; on CPU they claim none.
GPU_JOBS = int(uses_gpu())
ENV = "../envs/globalmin.yaml"
