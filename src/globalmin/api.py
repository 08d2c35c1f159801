"""The Recipe as a library: Kawaguchi & Sun's operator A on your own model, optimizer and data (docs/library.md).

    model = widen(torchvision.models.resnet18(num_classes=10), m_H=len(train_set), example=x0)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    recipe = Recipe(model, optimizer, tau=int(0.9 * total_steps), cert_loader=unaugmented_loader)
    for x, y in batches:                  # your training loop, unchanged
        loss = F.cross_entropy(model(x), y)
        optimizer.zero_grad(); loss.backward(); optimizer.step()
        recipe.step()                     # at tau: the switch to phase 2
    print(recipe.certificate)

At tau, `Recipe.transition` does what the paper's A does to `base` (the reconstruction in docs/science.md): it pins
batch norm (and dropout) to eval mode, so that a `model.train()` each epoch does not undo it; adds seeded Gaussian
noise N(0, (eps * std(W))^2) to the wide layer; certifies the expressivity condition (the n x m_H matrix of the head's
inputs on the un-augmented training points has rank n, in float64); and removes every parameter but the head's from
the *same* optimizer, its param groups and its state, so that base keeps running on the head with its own state,
and a learning-rate scheduler or gradient scaler attached to the optimizer stays attached. The pipeline's A(base)
stage (`recipe.py`) is built on this module.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from globalmin import certificate as cert
from globalmin.models import ACTIVATIONS
from globalmin.runinfo import UserError, generator

TRAINS = ("head", "wide_head", "all")
NOISE_ON = ("wide", "all_hidden", "none")
# Modules whose train mode changes what they compute: pinned to eval from tau on, so phase 2's features are fixed.
PINNED = (nn.modules.batchnorm._BatchNorm, nn.modules.instancenorm._InstanceNorm, nn.modules.dropout._DropoutNd)


class RecipeError(UserError):
    """A model, optimizer or input the Recipe cannot work with; the message says why and what to do."""


@dataclass(frozen=True)
class Layers:
    """Where the Recipe acts: the wide layer (a Linear whose activated output is h_H) and the head W_out (the last
    Linear, whose input is h_H and whose output is the model's), by module name."""

    wide: str
    head: str


@dataclass(frozen=True)
class Certificate:
    """The expressivity certificate: does the n x m_H feature matrix have rank n? (float64, NumPy's tolerance rule)"""

    n: int
    m_H: int
    sigma_min: float
    sigma_max: float
    tolerance: float
    rank: int | None  # the numerical rank (exact SVD); None for QR, which bounds sigma_min instead
    full_rank: bool
    method: str
    sigma_min_lower_bound: float | None = None  # QR: the rigorous bound 1 / ||R^-1||_F that decides full_rank
    rank_float32: int | None = None  # the rank at float32's tolerance (what float32 training can resolve)
    full_rank_float32: bool | None = None  # rank n at float32's tolerance

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> "Certificate":
        """From the dictionary globalmin.certificate writes (and every certificate.json holds)."""
        return cls(n=record["n"], m_H=record["m"], sigma_min=record["sigma_min"], sigma_max=record["sigma_max"],
                   tolerance=record["tolerance"], rank=record.get("rank"), full_rank=bool(record["full_rank"]),
                   method=record["method"], sigma_min_lower_bound=record.get("sigma_min_lower_bound"),
                   rank_float32=record.get("rank_float32"), full_rank_float32=record.get("full_rank_float32"))

    def as_dict(self) -> dict[str, Any]:
        """The fields as a plain dictionary (JSON-ready)."""
        return asdict(self)

    def __str__(self) -> str:
        verdict = "rank n certified" if self.full_rank else "NOT certified"
        decided = self.sigma_min_lower_bound if self.sigma_min_lower_bound is not None else self.sigma_min
        return (f"{verdict}: sigma_min {self.sigma_min:.3g} (deciding value {decided:.3g}) against tolerance "
                f"{self.tolerance:.3g}; n = {self.n}, m_H = {self.m_H}, sigma_max {self.sigma_max:.3g}; {self.method}")


def first_batch(inputs: Any) -> torch.Tensor:
    """One batch of inputs from a tensor or a DataLoader (for locating the layers)."""
    for batch in cert.batches_of(inputs, 64):
        return batch
    raise RecipeError("the certificate's inputs are empty: give the un-augmented training inputs or their loader")


@torch.no_grad()
def _linear_calls(model: nn.Module, example: torch.Tensor) -> tuple[list[tuple[str, Any, Any]], Any]:
    """(name, input, output) of every nn.Linear call of one forward pass on `example`, in call order, and the
    model's output; in eval mode and without gradients, so no batch-norm statistic moves."""
    names = {m: n for n, m in model.named_modules()}
    calls: list[tuple[str, Any, Any]] = []
    hooks = [m.register_forward_hook(lambda mod, args, out: calls.append((names[mod], args[0], out)))
             for m in model.modules() if isinstance(m, nn.Linear)]
    was_training = model.training
    model.eval()
    try:
        device = next(model.parameters()).device
        output = model(example.to(device))
    finally:
        model.train(was_training)
        for hook in hooks:
            hook.remove()
    return calls, output


def find_head(model: nn.Module, example: torch.Tensor, head: str | None = None) -> tuple[str, list[str]]:
    """The head's name (the last nn.Linear a forward pass on `example` calls, or the one named) and the names of the
    Linear layers called before it; refuses a model whose output is not exactly the head's output."""
    calls, output = _linear_calls(model, example)
    if not isinstance(output, torch.Tensor):
        raise RecipeError(f"the model returns a {type(output).__name__}, not a tensor of logits: the Recipe needs "
                          f"f(x) = W_out h_H(x); wrap the model so that it returns the head's output")
    called = [name for name, _, _ in calls]
    head = head or (called[-1] if called else None)
    if head is None or head not in called:
        raise RecipeError(f"no nn.Linear {'named ' + repr(head) + ' ' if head else ''}is called by the model's "
                          f"forward pass (called: {called or 'none'}): the Recipe needs a linear head; use "
                          f"globalmin.api.widen to add one, or name it with head=")
    if [out for name, _, out in calls if name == head][-1] is not output:
        raise RecipeError(f"the model's output is not its head '{head}''s output (it is changed after the last "
                          f"Linear, e.g. scaled or passed through softmax): the Recipe needs f(x) = W_out h_H(x); "
                          f"return the logits, or name the head with head=")
    return head, [name for name in called[:called.index(head)] if name != head]


def locate(model: nn.Module, example: torch.Tensor, wide: str | None = None, head: str | None = None) -> Layers:
    """Find the head (the last nn.Linear a forward pass calls) and the wide layer (the Linear called before it) by
    forward hooks on one batch, so declaration order does not matter; explicit names win. Checks that the model's
    output is exactly head(features): a model that post-processes its last Linear's output is refused."""
    head, before = find_head(model, example, head)
    wide = wide or (before[-1] if before else None)
    if wide is None or wide not in before:
        raise RecipeError(f"no wide layer: the model calls no nn.Linear {'named ' + repr(wide) + ' ' if wide else ''}"
                          f"before its head '{head}'; use globalmin.api.widen to add Linear(d, m_H) + activation "
                          f"before the head, or name it with wide=")
    return Layers(wide=wide, head=head)


def widen(model: nn.Module, m_H: int, activation: str = "tanh", example: torch.Tensor | None = None,
          head: str | None = None, classes: int | None = None) -> nn.Module:
    """Replace the model's last Linear `Linear(d, k)` by `Linear(d, m_H) + activation + Linear(m_H, classes)` in
    place (its name then holds a Sequential with children 'wide', 'act', 'head'); return the model.

    The last Linear is the last one a forward pass on `example` calls, or, without an example, the last one declared
    (`head=` names it). torchvision's resnet18 has 512 features before its head: without widening, m_H = 512 < n and
    the certificate must fail."""
    if activation not in ACTIVATIONS:
        raise RecipeError(f"activation {activation!r} is not one of {sorted(ACTIVATIONS)}")
    if head is None:
        declared = [n for n, m in model.named_modules() if isinstance(m, nn.Linear)]
        head = find_head(model, example)[0] if example is not None else (declared[-1] if declared else None)
    if head is None:
        raise RecipeError("the model has no nn.Linear to widen; add a linear head first")
    old = model.get_submodule(head)
    if not isinstance(old, nn.Linear):
        raise RecipeError(f"'{head}' is a {type(old).__name__}, not an nn.Linear")
    new = nn.Sequential(OrderedDict(wide=nn.Linear(old.in_features, m_H), act=ACTIVATIONS[activation](),
                                    head=nn.Linear(m_H, classes or old.out_features)))
    parent, _, attr = head.rpartition(".")
    setattr(model.get_submodule(parent) if parent else model, attr, new.to(old.weight.device, old.weight.dtype))
    return model


def certify(features: torch.Tensor | Any, method: str = "auto") -> Certificate:
    """The certificate of an n x m feature matrix: 'svd' (exact), 'qr' (rigorous lower bound; scales), or 'auto'
    (svd up to n = 4,096)."""
    features = torch.as_tensor(features)
    return Certificate.from_record(cert.certify(features, cert.choose_method(len(features), method)))


def certify_model(model: nn.Module, inputs: Any, head: str | None = None, method: str = "auto",
                  batch_size: int = 1024, scratch: str | Path | None = None) -> Certificate:
    """The certificate of a model's features h_H (the head's input) on `inputs`: a tensor or a DataLoader of the
    n un-augmented training points (augmentation would certify other points). float64, eval mode; the model is left
    untouched. `scratch` is a folder for an on-disk feature matrix (QR out of core, for n beyond memory)."""
    head = head or find_head(model, first_batch(inputs))[0]
    n = cert.count_inputs(inputs)
    chosen = cert.choose_method(n if n is not None else cert.SVD_MAX_N + 1, method)
    return Certificate.from_record(cert.certify_model(model, inputs, chosen, batch_size, scratch, head=head))


@torch.no_grad()
def perturb(model: nn.Module, names: list[str], scale: float, seed: int) -> list[str]:
    """Add N(0, (scale * std(W))^2) noise to the named parameters (W: the weight of the parameter's layer), drawn
    on the CPU from (seed, 'perturb') in the order given, so the perturbation is the same on every device."""
    gen = generator(seed, "perturb")
    params = dict(model.named_parameters())
    for name in names:
        p = params[name]
        ref = params.get(name.rsplit(".", 1)[0] + ".weight", p)
        std = ref.float().std().item() if ref.numel() > 1 else ref.abs().item()
        p.add_((torch.randn(p.shape, generator=gen, dtype=torch.float32) * (scale * std)).to(p.device, p.dtype))
    return names


def _pin(module: nn.Module, _args: Any) -> None:
    module.training = False  # before every forward: a model.train() since does not bring batch statistics back


class Recipe:
    """A(base) around your model and optimizer: call `step()` after each `optimizer.step()`; at iteration `tau` the
    switch to phase 2 happens (`transition`). See the module docstring and docs/library.md for every argument."""

    def __init__(self, model: nn.Module, optimizer: torch.optim.Optimizer, tau: int, cert_loader: Any, *,
                 wide: str | None = None, head: str | None = None, trains: str = "head", noise_on: str = "wide",
                 noise_scale: float = 1e-3, seed: int = 0, method: str = "auto", scratch: str | Path | None = None,
                 batch_size: int = 1024, certify_unperturbed: bool = False, keep_features: bool = False):
        if isinstance(model, nn.parallel.DistributedDataParallel):
            raise RecipeError("DistributedDataParallel is not supported yet: run the Recipe on one process")
        if trains not in TRAINS or noise_on not in NOISE_ON:
            raise RecipeError(f"trains must be one of {TRAINS} and noise_on one of {NOISE_ON}; "
                              f"got {trains!r}, {noise_on!r}")
        if tau < 0:
            raise RecipeError(f"tau = {tau}: the switch iteration must be >= 0")
        self.model, self.optimizer, self.tau, self.cert_loader = model, optimizer, int(tau), cert_loader
        self.trains, self.noise_on, self.noise_scale, self.seed = trains, noise_on, noise_scale, seed
        self.method, self.scratch, self.batch_size = method, scratch, batch_size
        self.certify_unperturbed, self.keep_features = certify_unperturbed, keep_features
        self.features: torch.Tensor | None = None  # the perturbed features at tau (float64), with keep_features
        self.layers = locate(model, first_batch(cert_loader), wide, head)
        self.iteration, self.switched = 0, False
        self.certificate: Certificate | None = None
        self.certificate_unperturbed: Certificate | None = None
        self.perturbed: list[str] = []
        self._hooks: list[Any] = []
        held = {id(p) for group in optimizer.param_groups for p in group["params"]}
        missing = [n for n in self.trained_names() if id(dict(model.named_parameters())[n]) not in held]
        if missing:
            raise RecipeError(f"the optimizer does not hold {missing}: phase 2 trains them with base's optimizer; "
                              f"build it over model.parameters() (after widen)")

    def _names(self, prefix: str) -> list[str]:
        return [n for n, _ in self.model.named_parameters() if n.startswith(prefix + ".")]

    def trained_names(self) -> list[str]:
        """The parameters phase 2 trains: the head's (default), the wide layer's and the head's, or all."""
        if self.trains == "all":
            return [n for n, _ in self.model.named_parameters()]
        names = self._names(self.layers.head) + (self._names(self.layers.wide) if self.trains == "wide_head" else [])
        return [n for n, _ in self.model.named_parameters() if n in names]

    def noise_names(self) -> list[str]:
        """The parameters perturbed at tau: the wide layer's, every one below the head, or none."""
        if self.noise_on == "none":
            return []
        if self.noise_on == "wide":
            return self._names(self.layers.wide)
        head = set(self._names(self.layers.head))
        return [n for n, _ in self.model.named_parameters() if n not in head]

    def step(self) -> None:
        """Count one optimizer step; the switch to phase 2 happens after step `tau`."""
        self.iteration += 1
        if self.iteration >= self.tau and not self.switched:
            self.transition()

    def transition(self) -> Certificate:
        """Pin batch norm and dropout to eval mode, perturb, certify, and drop the frozen parameters from the
        optimizer. Returns the certificate (also `self.certificate`)."""
        self._pin()
        if self.certify_unperturbed:
            self.certificate_unperturbed = self.certify()
        self.perturbed = perturb(self.model, self.noise_names(), self.noise_scale, self.seed)
        self.certificate = self.certify(keep=self.keep_features)
        self._freeze()
        self.switched = True
        return self.certificate

    def certify(self, keep: bool = False) -> Certificate:
        """The certificate of the model's features now, on the certificate's inputs; with `keep`, the float64 feature
        matrix stays in `self.features` (a copy where the QR factorises it in place: twice Phi's memory)."""
        if not keep:
            return certify_model(self.model, self.cert_loader, self.layers.head, self.method, self.batch_size,
                                 self.scratch)
        phi = cert.feature_matrix(self.model, self.cert_loader, self.batch_size, self.scratch, head=self.layers.head)
        method = cert.choose_method(len(phi), self.method)
        self.features = phi.clone() if method == "qr" else phi
        return Certificate.from_record(cert.certify_qr(phi, overwrite=True) if method == "qr" else
                                       cert.certify_svd(phi.cpu()))

    def _pin(self) -> None:
        if not self._hooks:
            self._hooks = [m.register_forward_pre_hook(_pin) for m in self.model.modules() if isinstance(m, PINNED)]

    def _freeze(self) -> None:
        """requires_grad off for the frozen parameters, and out of the optimizer's groups and state: torch.optim
        then never touches them again (weight decay included), while its groups, and the schedulers that hold
        them, stay as they were."""
        trained = set(self.trained_names())
        frozen = [p for n, p in self.model.named_parameters() if n not in trained]
        gone = {id(p) for p in frozen}
        for p in frozen:
            p.requires_grad_(False)
            p.grad = None
            self.optimizer.state.pop(p, None)
        for group in self.optimizer.param_groups:
            group["params"] = [p for p in group["params"] if id(p) not in gone]

    def state_dict(self) -> dict[str, Any]:
        """What resuming needs: the iteration, whether the switch happened, the certificates and the perturbed
        names. Save it beside model.state_dict() and optimizer.state_dict()."""
        return {"iteration": self.iteration, "tau": self.tau, "switched": self.switched, "trains": self.trains,
                "layers": asdict(self.layers), "perturbed": self.perturbed,
                "certificate": self.certificate.as_dict() if self.certificate else None,
                "certificate_unperturbed": (self.certificate_unperturbed.as_dict()
                                            if self.certificate_unperturbed else None)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Resume: after model.load_state_dict and BEFORE optimizer.load_state_dict (a phase-2 optimizer state has
        only the head's parameters). Past tau it pins and freezes again, without perturbing again: the model's
        saved weights are already perturbed."""
        if state["layers"] != asdict(self.layers) or state["trains"] != self.trains:
            raise RecipeError(f"this Recipe state is for layers {state['layers']} training {state['trains']!r}, "
                              f"not {asdict(self.layers)} training {self.trains!r}")
        self.iteration, self.tau, self.perturbed = state["iteration"], state["tau"], list(state["perturbed"])
        self.certificate = Certificate(**state["certificate"]) if state["certificate"] else None
        unperturbed = state.get("certificate_unperturbed")
        self.certificate_unperturbed = Certificate(**unperturbed) if unperturbed else None
        if state["switched"] and not self.switched:
            self._pin()
            self._freeze()
        self.switched = state["switched"]


def load_model(spec: str) -> tuple[nn.Module, dict[str, Any]]:
    """A model to certify: a pipeline run's model.pt (rebuilt from the config it records), or `module:function`, a
    function (importable from the current folder) that returns an nn.Module with its weights. Also returns the
    run's record (empty for a function)."""
    if ":" in spec and not Path(spec).exists():
        import importlib
        import sys

        module_name, _, function = spec.partition(":")
        sys.path.insert(0, str(Path.cwd()))
        try:
            model = getattr(importlib.import_module(module_name), function)()
        except (ImportError, AttributeError) as err:
            raise RecipeError(f"--model {spec}: cannot import {function} from {module_name} ({err}); give "
                              f"module:function, a function in module.py of the current folder") from err
        finally:
            sys.path.remove(str(Path.cwd()))
        if not isinstance(model, nn.Module):
            raise RecipeError(f"--model {spec} returned a {type(model).__name__}, not a torch.nn.Module")
        return model, {}
    from globalmin.models import build_model

    try:
        saved = torch.load(spec, map_location="cpu", weights_only=True)
        weights = saved["model"]
        model_cfg = {**saved["config"]["model"], "wide_width": int(weights["wide.weight"].shape[0]),
                     "require_expressivity": False}
        model = build_model(model_cfg, int(weights["stem.weight"].shape[1]), int(weights["head.weight"].shape[0]),
                            int(weights["wide.weight"].shape[0]))
        model.load_state_dict(weights)
    except FileNotFoundError as err:
        raise RecipeError(f"--model {spec} does not exist: give a run's model.pt or module:function") from err
    except Exception as err:
        raise RecipeError(f"--model {spec} is not a globalmin model.pt ({type(err).__name__}: {err}); give a run's "
                          f"model.pt or module:function") from err
    return model, saved


def load_inputs(path: str, record: dict[str, Any]) -> torch.Tensor:
    """The un-augmented training inputs to certify on, in [0, 1]: a prepared data file (the run's own split and
    subset when the model is a run's), or your own .npz file or image folder (its training part, or every point of
    one without a train/test split)."""
    from globalmin import data as datamod

    if Path(path).suffix == ".pt":
        return datamod.for_run(datamod.load(path), record.get("data_seed")).x_train
    from globalmin import userdata

    source = "arrays" if Path(path).suffix == ".npz" else "folder"
    parts = userdata.read("certify", {"source": source, "path": path})["parts"]
    x = (parts.get("train") or parts.get("pool"))[0]
    return torch.from_numpy(x).float().div_(255.0)


def certify_command(cfg: dict[str, Any], inputs: dict[str, Any], outputs: dict[str, Any]) -> dict[str, Any]:
    """`globalmin certify`: the certificate of a model's features on a data set's training inputs, printed and
    written as JSON (outputs['out'])."""
    from globalmin.runinfo import write_json

    model, record = load_model(inputs["model"])
    x = load_inputs(inputs["data"], record)
    found = certify_model(model, x, cfg.get("head"), cfg.get("method") or "auto", cfg.get("batch_size") or 1024,
                          cfg.get("scratch"))
    print(found)
    result = {**found.as_dict(), "model": inputs["model"], "data": inputs["data"], "run_id": record.get("run_id")}
    if outputs.get("out"):
        write_json(outputs["out"], result)
    return {"summary": {k: result[k] for k in ("n", "m_H", "sigma_min", "full_rank")}}
