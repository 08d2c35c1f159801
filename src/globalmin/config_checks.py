"""Checks of the config that a JSON schema cannot express, and short messages where its own would be long.

Run by the Snakefile before any job starts: strings that Snakemake's --config makes of numbers are read back as
numbers; a YAML syntax error names the file and line; an unknown key names where it is and the closest valid name
(jsonschema's own message prints the whole section); the cross-key checks name the keys and the fix; a config whose
jobs cannot fit the memory they may use is refused, naming the key that sizes the largest part of the estimate
(resources.py). Kept free of heavy imports (no torch) so that every `snakemake` invocation can afford it.
"""

from __future__ import annotations

import difflib
import functools
import math
import operator
import os
import subprocess
from pathlib import Path
from typing import Any

import yaml

from globalmin import optimizers, resources
from globalmin.conditions import expand
from globalmin.datasets import FACTS, n_train, unknown_message, width_of

RAW_KEYS = ("import_dir", "mirror", "retries", "retry_wait", "timeout")  # data sets with raw files only
POOL_KEYS = ("test_size", "split_seed")  # data sets this project splits only
USER_KEYS = ("path", "classes", "augmentation")  # your own data sets only (source: folder | arrays)
USER_SOURCES = ("folder", "arrays")


def yaml_problem(path: str | Path) -> str | None:
    """None if `path` parses as YAML; otherwise one line naming the file, line, column and the problem."""
    try:
        yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "unknown position"
        return f"{path}: YAML syntax error at {where}: {err.problem or err.context} (fix the file and rerun)"
    except yaml.YAMLError as err:
        return f"{path}: not valid YAML ({err})"
    return None


def _resolve(schema: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    if ref:  # local references only: "#/$defs/<name>"
        return _resolve(root["$defs"][ref.split("/")[-1]], root)
    return schema


def unknown_keys(config: Any, schema: dict[str, Any], root: dict[str, Any] | None = None,
                 where: str = "") -> list[str]:
    """One short line per key the schema does not allow, with where it is and the closest valid name."""
    root = root or schema
    schema = _resolve(schema, root)
    if not isinstance(config, dict) or schema.get("type") not in ("object", None):
        return []
    known = schema.get("properties", {})
    extra = schema.get("additionalProperties", True)
    found = []
    for key, value in config.items():
        path = f"{where}.{key}" if where else str(key)
        if key in known:
            found += unknown_keys(value, known[key], root, path)
        elif isinstance(extra, dict):
            found += unknown_keys(value, extra, root, path)
        elif extra is False:
            close = difflib.get_close_matches(str(key), list(known), n=1)
            hint = f"; did you mean '{close[0]}'?" if close else f"; valid keys: {', '.join(known)}"
            found.append(f"unknown key '{key}' in {where or 'the top level'}{hint}")
    return found


def schema_errors(config: dict[str, Any], schema: dict[str, Any]) -> list[str]:
    """One line per value the schema refuses: the key's dotted path, the value and what is allowed."""
    import jsonschema

    validator = jsonschema.Draft202012Validator(schema)
    found = []
    for error in sorted(validator.iter_errors(config), key=lambda e: list(map(str, e.absolute_path))):
        where = ".".join(map(str, error.absolute_path)) or "the top level"
        allowed = {k: error.schema.get(k) for k in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum",
                                                    "enum", "type", "pattern") if k in error.schema}
        found.append(f"{where} = {error.instance!r}: {error.message} ({error.validator}; allowed: {allowed})"
                     if not isinstance(error.instance, (dict, list)) or error.validator != "additionalProperties"
                     else f"{where}: {error.message}")
    return found


JSON_TYPES = {bool: "boolean", int: "integer", float: "number", type(None): "null", list: "array", dict: "object"}


def _readings(text: str, types: list[str]) -> list[Any]:
    """The values `text` may stand for that have a JSON type in `types`: its YAML reading, then int, then a finite
    float (PyYAML reads '1e-4' as a string). An integral float is no 'integer' here (unlike in jsonschema)."""
    found = []
    for read in (yaml.safe_load, int, float):
        try:
            value = read(text)
        except (yaml.YAMLError, ValueError):
            continue
        name = JSON_TYPES.get(type(value))
        typed = name in types or (name == "integer" and "number" in types)
        if typed and (name != "number" or math.isfinite(value)):
            found.append(value)
    return found


def coerce_strings(config: dict[str, Any], schema: dict[str, Any]) -> list[str]:
    """Snakemake 9 reads a nested --config value as strings (recipe='{tau_fraction: 0.75}' gives '0.75'): replace,
    in place, each string the schema refuses where it stands by its first reading of a type the schema names there
    (an out-of-range number is then refused as a number). A string the schema accepts stays a string. Returns the
    dotted keys it changed."""
    import jsonschema

    changed = []
    for error in list(jsonschema.Draft202012Validator(schema).iter_errors(config)):
        types = error.schema.get("type") if isinstance(error.schema, dict) else None
        key = ".".join(map(str, error.absolute_path))
        if not isinstance(error.instance, str) or types is None or not key or key in changed:
            continue
        for value in _readings(error.instance, [types] if isinstance(types, str) else types)[:1]:
            *parents, last = error.absolute_path
            functools.reduce(operator.getitem, parents, config)[last] = value
            changed.append(key)
    return changed


def is_user(config: dict[str, Any], name: str) -> bool:
    """Whether data set `name` is the user's own (data.<name>.source folder or arrays)."""
    return (config["data"].get(name) or {}).get("source") in USER_SOURCES


def _data_set(config: dict[str, Any], name: str, key: str) -> str | None:
    if name in FACTS or is_user(config, name):
        return None
    return (f"{key}: {unknown_message(name, 'data set', list(FACTS))}; or give your own with "
            f"data.{name}: {{source: folder | arrays, path: ...}}")


def user_data_problems(config: dict[str, Any], name: str, options: dict[str, Any]) -> list[str]:
    """A user's data set: not a built-in name, readable, with an augmentation where the experiment augments."""
    from globalmin.userdata import UserDataError, describe

    if name in FACTS:
        return [f"data.{name}.source = {options['source']} is for your own data set: give it a name that is not a "
                f"built-in data set ({', '.join(sorted(FACTS))})"]
    found = []
    try:
        f = describe(name, options)
    except UserDataError as err:
        return [str(err)]
    if name in config["experiment"]["datasets"] and True in config["experiment"]["augmentation"] and (
            f.augmentation.describe() == "none"):
        found.append(f"data.{name}.augmentation is not set but experiment.augmentation runs with augmentation: set "
                     f"it (e.g. {{crop_pad: 2, hflip: true}}) or run experiment.augmentation: [false]")
    if f.pooled and not 0 < f.test_size < f.train:
        found.append(f"data.{name}.test_size = {f.test_size} must be between 1 and {f.train - 1} ({name} has "
                     f"{f.train} points)")
    return found


def data_problems(config: dict[str, Any]) -> list[str]:
    """Data sets: known names, options that apply to them, test sizes in range, imports with a folder."""
    found = []
    for dataset in config["experiment"]["datasets"]:
        found += filter(None, [_data_set(config, dataset, "experiment.datasets")])
    for dataset, options in config["data"].items():
        if is_user(config, dataset):
            found += user_data_problems(config, dataset, options)
            continue
        if dataset not in FACTS:
            found.append(_data_set(config, dataset, f"data.{dataset}"))
            continue
        f = FACTS[dataset]
        set_keys = [k for k, v in options.items() if v is not None and v != _default(k)]
        wrong = [k for k in set_keys if (k in RAW_KEYS and not f.has_raw_files) or (k in POOL_KEYS and not f.pooled)
                 or k in USER_KEYS or (k == "source" and not f.has_raw_files)]
        if wrong:
            found.append(f"data.{dataset}: {', '.join(wrong)} do not apply to {dataset} ({f.description}); remove them")
        test_size = options.get("test_size")
        if f.pooled and test_size is not None and not 0 < test_size < f.train:
            found.append(f"data.{dataset}.test_size = {test_size} must be between 1 and {f.train - 1} "
                         f"({dataset} has {f.train} images)")
        if options.get("source") == "import" and not options.get("import_dir"):
            found.append(f"data.{dataset}.source is 'import' but data.{dataset}.import_dir is not set: "
                         f"set it to the folder holding the raw files")
    return found


def _default(key: str) -> Any:
    return {"retries": 3, "retry_wait": 5, "timeout": 60, "split_seed": 0, "subset_seed": 0}.get(key)


def condition_problems(config: dict[str, Any]) -> list[str]:
    """Conditions: known names; their optimizer; their augmentation and seeds within the experiment's."""
    found = optimizers.problems(config["train"]["optimizer"])
    experiment = config["experiment"]
    for name in experiment["conditions"]:
        if name not in config["conditions"]:
            found.append(f"experiment.conditions: {unknown_message(name, 'condition', list(config['conditions']))}")
            continue
        condition = config["conditions"][name]
        if condition.get("optimizer"):
            found += optimizers.problems(condition["optimizer"], f"conditions.{name}.optimizer")
        for key in ("augmentation", "seeds"):
            outside = sorted(set(condition.get(key) or []) - set(experiment[key]), key=str)
            if outside:
                found.append(f"conditions.{name}.{key} lists {outside}, which experiment.{key} does not run: "
                             f"add them there or remove them here")
    return found


def model_problems(config: dict[str, Any]) -> list[str]:
    """The model and the schedule: widths/blocks lengths, milestones within the epochs, m_H >= n."""
    found = []
    model, train = config["model"], config["train"]
    if len(model["widths"]) != len(model["blocks"]):
        found.append(f"model.widths has {len(model['widths'])} stages but model.blocks has {len(model['blocks'])}: "
                     f"give one block count per stage width")
    for kind in ("plain", "augmented"):
        late = [m for m in train["milestones"][kind] if m >= train["epochs"][kind]]
        if late:
            found.append(f"train.milestones.{kind} = {late} at or beyond train.epochs.{kind} = "
                         f"{train['epochs'][kind]}: such a milestone never lowers the learning rate; remove it")
    narrow = [w for w in model["widths"][:-1] if 1 < w < 8]  # a stage that feeds a strided 1x1 shortcut conv
    if narrow and train["channels_last"] and not train["device"].startswith("cuda"):
        found.append(f"model.widths = {model['widths']} has a stage of {narrow[0]} channels before a strided one: "
                     f"torch 2.14.1's CPU kernel of the strided 1x1 shortcut convolution in channels_last layout "
                     f"corrupts memory (the job crashes) for 2 to 7 input channels; use widths of at least 8 or set "
                     f"train.channels_last: false")
    width = model["wide_width"]
    if model["require_expressivity"] and isinstance(width, (int, str)) and width is not None:
        for dataset in config["experiment"]["datasets"]:
            if dataset not in FACTS and not is_user(config, dataset):
                continue
            try:
                n = n_train(dataset, config["data"].get(dataset, {}))
            except Exception:  # a user data set that cannot be read is reported by data_problems
                continue
            m_h = width_of(width, n)
            if m_h < n:
                found.append(f"model.wide_width = {width} gives m_H = {m_h}, below n = {n} training points of "
                             f"{dataset}: the expressivity condition needs m_H >= n. Set model.wide_width: null "
                             f"(m_H = n) or at least {n}, or model.require_expressivity: false to run a "
                             f"rank-deficient control on purpose (or use a condition's wide_width)")
    return found


def study_problems(config: dict[str, Any]) -> list[str]:
    """The studies' data: the tau ablation's and local minima's data sets, fc_theory's digits."""
    found = []
    datasets = config["experiment"]["datasets"]
    for dataset in config["recipe"]["tau_ablation"]["datasets"]:
        if dataset not in datasets:
            found.append(f"recipe.tau_ablation.datasets lists {dataset}, which is not in experiment.datasets "
                         f"{datasets}: add it there or remove it from the ablation")
    for name in config["recipe"]["tau_ablation"].get("conditions") or []:
        if name not in config["experiment"]["conditions"]:
            found.append(f"recipe.tau_ablation.conditions lists {name}, which experiment.conditions does not run: "
                         f"add it there or remove it from the ablation")
    found += sweep_problems(config)
    if config["recipe"]["tau_fraction"] in config["recipe"]["tau_ablation"]["fractions"]:
        found.append(f"recipe.tau_ablation.fractions repeats recipe.tau_fraction ({config['recipe']['tau_fraction']}),"
                     " which the main runs already cover: remove it from the ablation")
    lm = config["local_minima"]
    for kind in lm["data"]:
        if kind != "teacher" and kind not in FACTS:
            found.append(f"local_minima.data: {unknown_message(kind, 'data kind', ['teacher', *FACTS])}")
        elif kind != "teacher" and lm["classes"] > FACTS[kind].classes:
            found.append(f"local_minima.classes = {lm['classes']} but {kind} has {FACTS[kind].classes} classes")
    digits_n = n_train("digits", config["data"].get("digits", {}))
    if "digits" in config["fc_theory"]["inputs"] and config["fc_theory"]["n"] > digits_n:
        found.append(f"fc_theory.n = {config['fc_theory']['n']} digits inputs, but digits has {digits_n} training "
                     f"points: lower fc_theory.n")
    return found


def sweep_problems(config: dict[str, Any]) -> list[str]:
    """The width sweep: its bases are conditions, its seeds the experiment's, and it needs runs without
    augmentation (its phase-2 problems are solved only there)."""
    sweep = config.get("width_sweep") or {}
    if not sweep.get("ratios"):
        return []
    found = [f"width_sweep.bases: {unknown_message(b, 'condition', list(config['conditions']))}"
             for b in sweep["bases"] if b not in config["conditions"]]
    outside = sorted(set(sweep["seeds"]) - set(config["experiment"]["seeds"]))
    if outside:
        found.append(f"width_sweep.seeds lists {outside}, which experiment.seeds does not run: add them there or "
                     f"remove them here")
    if False not in config["experiment"]["augmentation"]:
        found.append("width_sweep needs runs without augmentation, but experiment.augmentation is [true]: add false "
                     "or set width_sweep.ratios: []")
    return found


def cgroup_bytes() -> int | None:
    """The cgroup v2 memory limit of this process (memory.max), or None where there is none."""
    try:
        text = Path("/sys/fs/cgroup/memory.max").read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def host_limit(config: dict[str, Any]) -> tuple[int, str]:
    """(bytes, where the limit comes from): resources.memory_gb, else the machine's memory (or its cgroup's)."""
    budget = (config.get("resources") or {}).get("memory_gb")
    if budget is not None:
        return int(budget * 2 ** 30), f"resources.memory_gb = {budget:g}"
    physical = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    cgroup = cgroup_bytes()
    if cgroup is not None and cgroup < physical:
        return cgroup, "this machine's memory limit (cgroup memory.max; resources.memory_gb is null)"
    return physical, "this machine's memory (resources.memory_gb is null)"


def gpu_limit(config: dict[str, Any]) -> tuple[int, str] | None:
    """(bytes, what) of the GPU the runs use, from nvidia-smi's memory.total; None without one."""
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=memory.total", "--format=csv,noheader,nounits"],
                             capture_output=True, text=True, timeout=30, check=True).stdout.split()
    except (OSError, subprocess.SubprocessError):
        return None
    device = config["train"]["device"]
    index = int(device.split(":")[1]) if ":" in device else 0
    if index >= len(out):
        return None
    return int(out[index]) << 20, f"GPU {index}'s memory (nvidia-smi)"


def size(nbytes: float) -> str:
    """Bytes in binary units: '12.0 GiB'."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if abs(nbytes) < 1024 or unit == "PiB":
            return f"{nbytes:.0f} {unit}" if unit == "B" else f"{nbytes:.1f} {unit}"
        nbytes /= 1024
    raise AssertionError("unreachable")


FIXES = {  # what to change, by the key that sizes the largest part
    "wide_width": "lower it (the certificate needs only m_H >= n)",
    "n": "m_H = n here: train on a subset (data.<name>.train_subset) or use a machine with more memory",
    "data": "train on a subset (data.<name>.train_subset) or a machine with more memory",
    "train.eval_batch_size": "lower it (it changes memory only, not results)",
    "train.batch_size": "lower it",
    "recipe.optimum.max_n": "lower it below n to skip phase 2's optimum",
    "beyond_ntk.subset": "lower it",
}


def fix_for(key: str, value: Any, largest: resources.Part) -> str:
    """The advice of the key's FIXES entry (by its last part, then its first); for Phi, also the QR on disk."""
    name = "n" if key.endswith("wide_width") and value is None else key
    fix = FIXES.get(name) or FIXES.get(name.split(".")[-1]) or FIXES.get(name.split(".")[0]) or \
        "lower the sizes it sets, or use a machine with more memory"
    if largest.what.startswith("Phi"):
        fix += "; recipe.certificate_method: qr with recipe.certificate_scratch: a folder keeps Phi on disk"
    return fix + (f", or lower {largest.also}" if largest.also else "")


def value_of(config: dict[str, Any], key: str) -> Any:
    """The config's value at a dotted key (None where it is a section or absent)."""
    value: Any = config
    for part in key.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return None if isinstance(value, (dict, list)) else value


def over_limits(config: dict[str, Any]) -> list[tuple[resources.Job, bool, int, str, list, int, str]]:
    """Every (job, on the GPU, peak, phase, parts, limit, limit's name) whose estimate exceeds its limit; a GPU
    job's device memory is checked only where nvidia-smi tells the GPU's."""
    jobs = resources.jobs(config)
    limits = {False: host_limit(config), True: gpu_limit(config) if any(j.gpu for j in jobs) else None}
    found = []
    for job in jobs:
        for device in ((False, True) if job.gpu else (False,)):
            peak, phase, parts = job.peak(device)
            if limits[device] is not None and peak > limits[device][0]:
                found.append((job, device, peak, phase, parts, *limits[device]))
    return found


def memory_problems(config: dict[str, Any]) -> list[str]:
    """One line per config key whose sizes make a job exceed the memory it may use: the key and its value, the
    worst job's estimate and phase, its largest part, the limit and the fix."""
    worst: dict[str, tuple] = {}
    counts: dict[str, int] = {}
    for job, device, peak, phase, parts, limit, name in over_limits(config):
        mine = [p for p in parts if (p.on_device and job.gpu) == device] or parts
        largest = max(mine, key=lambda p: p.nbytes)
        counts[largest.key] = counts.get(largest.key, 0) + 1
        if largest.key not in worst or peak > worst[largest.key][1]:
            worst[largest.key] = (job, peak, phase, largest, limit, name)
    lines = []
    for key, (job, peak, phase, largest, limit, name) in worst.items():
        value = value_of(config, key)
        shown = f"{key} = {value}" if value is not None else (
            f"{key} = null (m_H = n)" if key.endswith("wide_width") else key)
        more = f" ({counts[key] - 1} more job(s) too)" if counts[key] > 1 else ""
        lines.append(f"{shown}: {job.kind} {job.label} needs about {size(peak)} at its peak ({phase}; largest part: "
                     f"{largest.what}, {size(largest.nbytes)}), more than the {size(limit)} of {name}{more}; "
                     f"{fix_for(key, value, largest)} (docs/troubleshooting.md, 'Not enough memory')")
    return lines


def problems(config: dict[str, Any]) -> list[str]:
    """Every cross-key problem of a validated config, each naming the keys and the fix."""
    found = data_problems(config) + condition_problems(config) + model_problems(config) + study_problems(config)
    # the memory of every job the DAG will hold, the width sweep's included (its conditions once expanded)
    return found + memory_problems(config if found else expand(config))
