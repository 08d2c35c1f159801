"""`base`: any torch.optim optimizer, named in the config (`train.optimizer: {name: adam, <its keyword arguments>}`).

The classes are torch.optim's own (`build`), so a user's choice just works and A(base) keeps that optimizer, its
state and its schedule. The learning rate is not a keyword here: it comes from the schedule (`train.lr`,
`train.milestones`), which sets it on every parameter group at every iteration.

The config is checked before any job runs, by the Snakefile, which must not import torch (`import torch` costs a
process about a CPU-second, in every `snakemake` invocation and, on a cluster, every job). So `catalogue` reads the
optimizers' names, keyword arguments and defaults from torch.optim's source files with `ast`, without importing
them; a test checks the result against `inspect.signature` of the imported classes.
"""

from __future__ import annotations

import ast
import difflib
import functools
import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Not a first-order `base` of the Recipe's kind: LBFGS needs a closure per step, SparseAdam sparse gradients.
EXCLUDED = ("LBFGS", "SparseAdam")
# Decoupled weight decay (AdamW, Adafactor, Muon; `decoupled_weight_decay` of Adam, NAdam and RAdam) shrinks weights
# outside the gradient (p *= 1 - lr * wd):
# its fixed points minimise no regularised objective, so phase 2's exact optimum L* (optimum.py) is not defined.
DECOUPLED = ("AdamW", "Adafactor", "Muon")


@dataclass(frozen=True)
class OptimizerInfo:
    """One torch.optim class: its name and its keyword arguments with their defaults (params and lr excluded)."""

    cls: str
    defaults: dict[str, Any]


def _torch_optim_dir() -> Path:
    spec = importlib.util.find_spec("torch")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("torch is not installed")
    return Path(list(spec.submodule_search_locations)[0]) / "optim"


def _literal(node: ast.expr) -> Any:
    try:
        return ast.literal_eval(node)
    except ValueError:  # a non-literal default (none in torch 2.14); shown as its source
        return ast.unparse(node)


def _keywords(module: Path, cls: str) -> dict[str, Any]:
    """The keyword arguments of `cls.__init__` in `module` and their defaults, params and lr left out."""
    tree = ast.parse(module.read_text(encoding="utf-8"))
    init = next(f for c in tree.body if isinstance(c, ast.ClassDef) and c.name == cls
                for f in c.body if isinstance(f, ast.FunctionDef) and f.name == "__init__")
    args = init.args
    positional = args.posonlyargs + args.args
    defaults = dict(zip([a.arg for a in positional[len(positional) - len(args.defaults):]], args.defaults))
    defaults.update((a.arg, d) for a, d in zip(args.kwonlyargs, args.kw_defaults) if d is not None)
    names = [a.arg for a in positional + args.kwonlyargs if a.arg not in ("self", "params", "lr")]
    return {name: _literal(defaults[name]) if name in defaults else None for name in names}


@functools.cache
def catalogue() -> dict[str, OptimizerInfo]:
    """Every torch.optim optimizer by lower-case name (sgd, adam, adamw, rmsprop, ...), read from torch's source."""
    root = _torch_optim_dir()
    tree = ast.parse((root / "__init__.py").read_text(encoding="utf-8"))
    found = {}
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("torch.optim."):
            module = root / (node.module.split(".")[-1] + ".py")
            for alias in node.names:
                if alias.name[:1].isupper() and alias.name not in (*EXCLUDED, "Optimizer") and module.is_file():
                    found[alias.name.lower()] = OptimizerInfo(alias.name, _keywords(module, alias.name))
    return found


def settings_of(train_cfg: dict[str, Any]) -> dict[str, Any]:
    """The optimizer section of a train section; records written before `train.optimizer` existed had SGD's
    momentum, weight_decay and nesterov keys directly in `train`, which mean the same SGD."""
    if "optimizer" in train_cfg:
        return dict(train_cfg["optimizer"])
    return {"name": "sgd", **{k: train_cfg[k] for k in ("momentum", "weight_decay", "nesterov") if k in train_cfg}}


def problems(settings: dict[str, Any], key: str = "train.optimizer") -> list[str]:
    """One line per unknown optimizer name or keyword, naming the key, the value and the valid names."""
    known = catalogue()
    name = str(settings.get("name", ""))
    if name.lower() not in known:
        close = difflib.get_close_matches(name.lower(), list(known), n=1)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        return [f"{key}.name = {name!r} is not a torch.optim optimizer{hint} (valid: {', '.join(sorted(known))})"]
    info = known[name.lower()]
    found = []
    for arg in settings:
        if arg == "name":
            continue
        if arg == "lr":
            found.append(f"{key}.lr: the learning rate comes from train.lr and train.milestones (the schedule "
                         f"both phases share); remove it here")
        elif arg not in info.defaults:
            close = difflib.get_close_matches(arg, list(info.defaults), n=1)
            hint = f"did you mean '{close[0]}'? " if close else ""
            found.append(f"{key}.{arg}: torch.optim.{info.cls} has no keyword '{arg}' ({hint}valid: "
                         f"{', '.join(info.defaults)})")
    return found


def resolved(settings: dict[str, Any]) -> dict[str, Any]:
    """The settings with every keyword the class has, its default where the config leaves it out."""
    info = catalogue()[settings["name"].lower()]
    return {"name": settings["name"].lower(), **info.defaults, **{k: v for k, v in settings.items() if k != "name"}}


def l2_weight(settings: dict[str, Any]) -> float | None:
    """The weight decay as an L2 term of the objective (torch.optim adds wd * p to the gradient); None when the
    optimizer decays weights outside the gradient (AdamW, `decoupled_weight_decay`), where no such objective exists."""
    full = resolved(settings)
    if catalogue()[full["name"]].cls in DECOUPLED or full.get("decoupled_weight_decay"):
        return None
    return float(full.get("weight_decay") or 0.0)


def build(params: Any, settings: dict[str, Any], lr: float, key: str = "train.optimizer") -> Any:
    """The torch.optim optimizer the settings name, over `params`, at learning rate `lr`."""
    import torch

    from globalmin.runinfo import UserError

    found = problems(settings, key)
    if found:
        raise UserError(found[0])
    cls = getattr(torch.optim, catalogue()[settings["name"].lower()].cls)
    kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in settings.items() if k != "name"}
    try:
        return cls(params, lr=lr, **kwargs)
    except (ValueError, TypeError) as err:  # torch's own check of a value, e.g. "Invalid beta parameter"
        raise UserError(f"{key} = {dict(settings)}: torch.optim.{cls.__name__} refuses it ({err})") from err
