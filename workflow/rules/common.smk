# Helpers shared by the rule files (functions and path patterns only; the catalog convention keeps them out of
# rule files). Every path a rule reads or writes is built here once.
import json
import shutil
from pathlib import Path

from globalmin.datasets import FACTS
from globalmin.deps import command_sources

REPO = Path(workflow.basedir)
RUNS = "results/runs"
RUN = f"{RUNS}/{{dataset}}/{{condition}}/{{aug}}/seed{{seed}}"  # one run's folder (base, recipe, recipe_<f> in it)
RUN_FILES = ["metrics.json", "curve.csv", "model.pt"]
STUDIES = "results/studies"
FIGURES = "report/figures"


BASE = f"{RUN}/base"  # a base run's folder


def out_dir(wildcards, output):
    """The folder of a rule's first output, for stages that take an output directory."""
    return str(Path(output[0]).parent)


def base_files(*names):
    """Declared files of a base run's folder."""
    return [f"{BASE}/{n}" for n in names]


def recipe_outputs(suffixes):
    """The declared files of the A(base) run folders named by `suffixes` (recipe, recipe_<f>)."""
    return [f"{RUN}/{s}/{f}" for s in suffixes for f in RUN_FILES + ["certificate.json"]]


def tau_states(wildcards):
    """The base run's tau-states, in the order of recipe_suffixes: the main tau first."""
    base = BASE.format(**dict(wildcards.items()))
    return [f"{base}/tau_state{s[len('recipe'):]}.pt" for s in recipe_suffixes(wildcards.dataset)]


def recipe_dirs(wildcards):
    """The A(base) run folders train-recipe writes, one per tau-state."""
    prefix = RUN.format(**dict(wildcards.items()))
    return [f"{prefix}/{s}" for s in recipe_suffixes(wildcards.dataset)]


def figure_files(*names, category):
    """PNG (shown in Snakemake's own report, with workflow/report/<name>.rst as caption) and PDF of figures."""
    return [report(f"{FIGURES}/{n}.png", caption=f"../report/{n}.rst", category=category) for n in names] + [
        f"{FIGURES}/{n}.pdf" for n in names]


def code(command):
    """Source files `globalmin <command>` runs, derived from the package's imports (globalmin.deps): declared as
    inputs so that editing a function reruns exactly the jobs whose commands import it."""
    return command_sources(command, REPO / "src" / "globalmin", REPO)


def as_json(section):
    """A config section as compact JSON, passed to a stage through `params:` so Snakemake tracks it."""
    return json.dumps(section, sort_keys=True, separators=(",", ":"))


def raw_input(wildcards):
    """The raw folder a data set is prepared from; none for data sets that ship with a package (digits)."""
    return [f"data/raw/{wildcards.dataset}"] if FACTS[wildcards.dataset].has_raw_files else []


def prepared(dataset):
    """The prepared data file of a data set."""
    return f"data/prepared/{dataset}.pt"


def condition_of(name):
    """A condition's settings with the experiment's augmentation and seeds where it does not narrow them."""
    cond = config["conditions"][name]
    return {"name": name, "labels": cond.get("labels", "dataset"), "label_seed": cond.get("label_seed", 0),
            "wide_width": cond.get("wide_width"),
            "augmentation": cond.get("augmentation") or config["experiment"]["augmentation"],
            "seeds": cond.get("seeds") or config["experiment"]["seeds"]}


def base_runs():
    """(dataset, condition, aug, seed) of every base run of the experiment."""
    return [(d, c, "aug" if a else "noaug", s) for d in config["experiment"]["datasets"]
            for c in config["experiment"]["conditions"]
            for a in condition_of(c)["augmentation"] for s in condition_of(c)["seeds"]]


ABLATION = config["recipe"]["tau_ablation"]
FRACTIONS = [f"{f:g}" for f in ABLATION["fractions"]]
# Data sets with a tau ablation get variants of the base and recipe rules whose outputs include the extra tau
# runs (a rule's outputs cannot depend on a wildcard's value otherwise).
ABLATED = "|".join(d for d in ABLATION["datasets"] if ABLATION["fractions"]) or "(?!)"


def recipe_suffixes(dataset):
    """The A(base) run folders of one base run: 'recipe' (main tau) and 'recipe_<f>' (the tau ablation)."""
    extra = FRACTIONS if dataset in ABLATION["datasets"] else []
    return ["recipe"] + [f"recipe_{f}" for f in extra]


def run_folders(algorithms=("base", "recipe"), conditions=None, ablation=True):
    """Run folders of the experiment: base runs and, per base run, its A(base) runs (without the tau ablation's
    when `ablation` is false), for every condition or the listed ones."""
    folders = []
    for dataset, condition, aug, seed in base_runs():
        if conditions is not None and condition not in conditions:
            continue
        prefix = RUN.format(dataset=dataset, condition=condition, aug=aug, seed=seed)
        recipes = recipe_suffixes(dataset) if ablation else ["recipe"]
        names = (["base"] if "base" in algorithms else []) + (recipes if "recipe" in algorithms else [])
        folders += [f"{prefix}/{name}" for name in names]
    return folders


def base_settings(wildcards):
    """train-base's JSON config: the model (with the condition's wide width), train, condition, tau and ablation."""
    cond = condition_of(wildcards.condition)
    model = dict(config["model"])
    if cond["wide_width"] is not None:  # a condition's own width: a deliberate control may go below n
        model.update(wide_width=cond["wide_width"], require_expressivity=False)
    fractions = ABLATION["fractions"] if wildcards.dataset in ABLATION["datasets"] else []
    return as_json({"model": model, "train": config["train"], "tau_fraction": config["recipe"]["tau_fraction"],
                    "ablation": fractions,
                    "condition": {k: cond[k] for k in ("name", "labels", "label_seed")},
                    "certificate": {"method": config["recipe"]["certificate_method"],
                                    "scratch": config["recipe"]["certificate_scratch"]}})


def uses_gpu():
    """Whether training jobs will run on a GPU (train.device cuda, or auto on a machine with an NVIDIA driver)."""
    device = config["train"]["device"]
    return device.startswith("cuda") or (device == "auto" and shutil.which("nvidia-smi") is not None)


# Training jobs claim one `gpu_slots` resource where a GPU will be used: `--resources gpu_slots=k`
# (profiles/default: k = 1) lets k of them share the GPU at once and queues the rest; on CPU they claim none.
GPU_JOBS = int(uses_gpu())
ENV = "../envs/globalmin.yaml"
