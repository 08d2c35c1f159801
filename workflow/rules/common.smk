# Helpers shared by the rule files (functions only; the catalog convention keeps them out of rule files).
import json
import shutil


def code(*modules):
    """Source files of the globalmin modules a stage runs: declared as inputs so that editing them reruns
    exactly the stages that use them (and, through their outputs, what depends on those)."""
    return [f"src/globalmin/{m}" for m in modules]


def as_json(section):
    """A config section as compact JSON, passed to a stage through `params:` so Snakemake tracks it."""
    return json.dumps(section, sort_keys=True, separators=(",", ":"))


def raw_input(wildcards):
    """The raw folder a data set is prepared from; none for data sets that ship with a package (digits)."""
    return [f"data/raw/{wildcards.dataset}"] if "source" in config["data"].get(wildcards.dataset, {}) else []


def ablation_fractions(wildcards):
    """Extra tau fractions at which this base run saves states (the tau ablation), or none."""
    ablation = config["recipe"]["tau_ablation"]
    return ablation["fractions"] if wildcards.dataset in ablation["datasets"] else []


def scratch_option(wildcards):
    """The on-disk certificate folder option of train-base (the out-of-core QR path), or nothing."""
    folder = config["recipe"]["certificate_scratch"]
    return f"--certificate-scratch {folder}" if folder else ""


def out_dir(wildcards, output):
    """The folder of a rule's first output, for stages that take an output directory."""
    return str(Path(output[0]).parent)


def uses_gpu():
    """Whether training jobs will run on a GPU (train.device cuda, or auto on a machine with an NVIDIA driver)."""
    device = config["train"]["device"]
    return device.startswith("cuda") or (device == "auto" and shutil.which("nvidia-smi") is not None)


# Training jobs claim one `gpu` resource where a GPU will be used, so that with `--resources gpu=1`
# (profiles/default) they queue for the device instead of sharing it; on CPU they claim none.
GPU_JOBS = int(uses_gpu())
AUGS = ["aug" if a else "noaug" for a in config["experiment"]["augmentation"]]
ABLATION = config["recipe"]["tau_ablation"]
# Data sets with a tau ablation get a variant of the base rule whose outputs include the extra tau-states.
ABLATED = "|".join(d for d in ABLATION["datasets"] if ABLATION["fractions"]) or "(?!)"
ENV = "../envs/globalmin.yaml"
