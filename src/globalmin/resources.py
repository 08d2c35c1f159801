"""What each job of a config will need in memory, from the config alone, and the refusal of one that cannot fit.

Run by the Snakefile (through config_checks.problems) before any job starts, so it imports no torch. Each job
kind (prepare, train-base, train-recipe, beyond-ntk) is modelled as phases that follow one another inside the
job (loading, the certificate, training, the optimum); a phase's bytes are the sum of what the code holds then,
and the job's peak is its largest phase. The terms follow the code they name (a comment says which copies
they count), and they are upper bounds: every copy that may be alive at the same time is counted. The test
(tests/test_resources.py) runs the real stage entry points at small sizes and checks the estimate against the
measured peak resident memory: at least the peak, and at most RSS_FACTOR times it.

On a GPU (train.device cuda, or auto where nvidia-smi exists) the tensors of a run live in the GPU's memory,
and what the host holds (scipy's copies, serialised states) in the host's: a Part says which. The limits they
are checked against, and the one-line refusal, are config_checks.memory_problems'.
"""

from __future__ import annotations

import math
import shutil
from dataclasses import dataclass
from typing import Any

from globalmin.datasets import FACTS, n_train, width_of

# RSS of a training job's process before it holds any data: the interpreter, torch, scipy and globalmin's
# imports, and the torch._dynamo import of torch.optim's first step: benchmarks/results/job-memory-cpu-2core.json,
# "runtime_bytes", measured with torch 2.14.1's CUDA build on CPU (the CPU build is smaller). About 300 MiB of it
# are pages of the shared libraries, and how many of those a process maps depends on the page cache: with the
# same packages a freshly installed environment (CI's) peaks at 823 MiB, one in long use at 707 MiB (by hand).
# The allowance covers the fresh case, which the record measures; its rows show the estimate against each peak.
# The test adds to it what a bare job process of its own environment peaks above the record's.
RUNTIME_BYTES = 950 << 20
CUDA_CONTEXT_BYTES = 1 << 30  # the CUDA context and cuDNN/cuBLAS workspaces on the GPU (an allowance, not measured)
SVD_MAX_N = 4096  # certificate.SVD_MAX_N: 'auto' certifies with the exact SVD up to this n (kept equal by a test)
QR_BLOCK, QR_CHUNK = 256, 1 << 28  # certificate.BLOCK and CHUNK_BYTES: the blocked QR's panel rows and chunk
SMALL_BYTES = 32 << 20  # glibc's largest mmap threshold: allocations above it are mapped, and unmapped when freed
RSS_FACTOR = 1.5  # the test's stated bound: estimate <= RSS_FACTOR x the measured peak at its sizes
F32, F64, I64 = 4, 8, 8


@dataclass(frozen=True)
class Part:
    """Memory one thing holds during a phase: what it is, the config key that sizes it, bytes, where it lives."""

    what: str
    key: str
    nbytes: int
    on_device: bool = True  # the training device's memory (the host's on a CPU run); False: always the host's
    also: str = ""  # another key that sizes it, named in the fix


@dataclass(frozen=True)
class Job:
    """One job's estimate: its kind, the run it stands for, its phases (name -> parts) and its device."""

    kind: str
    label: str
    phases: dict[str, list[Part]]
    gpu: bool = False

    def peak(self, device: bool) -> tuple[int, str, list[Part]]:
        """(bytes, phase, parts) of the phase with the most bytes in the device's memory (device=True) or the
        host's (device=False; on a CPU run everything is the host's), plus the runtime (or CUDA context) and what
        the allocator may keep: memory that allocations below SMALL_BYTES freed in one phase (C's malloc serves
        them from its heap, which need not shrink) is at most what such parts ever held at once."""
        def mine(parts: list[Part]) -> list[int]:
            return [p.nbytes for p in parts if (p.on_device and self.gpu) == device]
        phase = max(self.phases, key=lambda name: sum(mine(self.phases[name])))
        kept = max(sum(b for b in mine(parts) if b < SMALL_BYTES) for parts in self.phases.values())
        fixed = CUDA_CONTEXT_BYTES if device else RUNTIME_BYTES
        return fixed + sum(mine(self.phases[phase])) + kept, phase, self.phases[phase]


@dataclass(frozen=True)
class Network:
    """Sizes of the WideHeadResNet a config builds: parameter and buffer counts, and activation elements per
    sample (stored for backward in a training step; alive at once in a no-grad forward)."""

    params: int
    buffers: int
    wide_params: int
    head_params: int
    train_elements: int
    eval_elements: int


def network(model_cfg: dict[str, Any], channels: int, size: int, classes: int, m: int) -> Network:
    """The network of models.WideHeadResNet, counted without building it (tests compare with torch's count)."""
    widths, blocks = list(model_cfg["widths"]), list(model_cfg["blocks"])
    params, buffers = channels * widths[0] * 9, 0
    stem = widths[0] * size * size
    stored, widest, c_in, r = stem, stem, widths[0], size
    for stage, (width, count) in enumerate(zip(widths, blocks)):
        for b in range(count):
            stride = 2 if stage > 0 and b == 0 else 1
            r_out = (r - 1) // stride + 1  # 3x3 convolution, padding 1
            params += 2 * c_in + 9 * c_in * width + 2 * width + 9 * width * width
            params += c_in * width if stride != 1 or c_in != width else 0
            buffers += 2 * c_in + 2 * width + 2
            size_in, size_out = c_in * r * r, width * r_out * r_out
            stored += 2 * size_in + 6 * size_out  # bn1 and relu of the input; shortcut, conv1, bn2, relu, conv2, sum
            widest = max(widest, size_in, size_out)
            c_in, r = width, r_out
    params += 2 * c_in
    buffers += 2 * c_in + 1
    wide, head = c_in * m + m, m * classes + classes
    params += wide + head
    last = c_in * r * r
    train = stored + 2 * last + c_in + 3 * m + 2 * classes + 2 * widest  # + the gradients backward holds at once
    evaluate = 4 * widest + 2 * m + 2 * classes  # input, normalised, activated, convolved; the wide layer's two
    return Network(params, buffers, wide, head, train, evaluate)


def wide_width(width: int | str | None, n: int) -> int:
    """m_H as models.wide_width computes it (datasets.width_of: null is n, 'an/b' a multiple of n)."""
    return width_of(width, n)


def test_points(name: str, options: dict[str, Any]) -> int:
    """The test split's size under the data options (after any subset)."""
    f = FACTS[name]
    nt = (options.get("test_size") or f.test_size) if f.pooled else f.test
    subset = options.get("test_subset")
    return min(nt, subset) if subset else nt


@dataclass(frozen=True)
class Run:
    """What sizes one run's memory: the data set's facts, n, n_test, m_H (and the key that set it), the network."""

    dataset: str
    condition: str
    augmented: bool
    n: int
    n_test: int
    m: int
    width_key: str
    tau_states: int
    net: Network
    config: dict[str, Any]
    gpu: bool = False  # its tensors live on a GPU

    @property
    def pixels(self) -> int:
        f = FACTS[self.dataset]
        return f.channels * f.size * f.size

    @property
    def label(self) -> str:
        return f"{self.dataset}/{self.condition}/{'aug' if self.augmented else 'noaug'}"


def runs(config: dict[str, Any]) -> list[Run]:
    """One Run per (data set, condition, augmentation) of the experiment: seeds do not change the sizes."""
    experiment, ablation = config["experiment"], config["recipe"]["tau_ablation"]
    gpu, out = on_gpu(config), []
    for dataset in experiment["datasets"]:
        if dataset not in FACTS:
            continue  # config_checks names it
        options = config["data"].get(dataset, {})
        n, f = n_train(dataset, options), FACTS[dataset]
        if n < 2:
            continue  # a test_size that leaves no training set: config_checks names it
        for name in experiment["conditions"]:
            condition = config["conditions"].get(name)
            if condition is None:
                continue
            own = condition.get("wide_width")
            key = f"conditions.{name}.wide_width" if own is not None else "model.wide_width"
            m = wide_width(own if own is not None else config["model"]["wide_width"], n)
            extra = len(ablation["fractions"]) if dataset in ablation["datasets"] else 0
            for augmented in condition.get("augmentation") or experiment["augmentation"]:
                out.append(Run(dataset, name, bool(augmented), n, test_points(dataset, options), m, key, 1 + extra,
                               network(config["model"], f.channels, f.size, f.classes, m), config, gpu))
    return out


def data_parts(run: Run, loading: bool = False) -> list[Part]:
    """The prepared data in memory (data.load): float32 inputs and int64 labels of both splits, the split's index
    lists (Python ints); while loading, the uint8 record beside them; a random-labels run's permuted copy."""
    points = run.n + run.n_test
    key = f"data.{run.dataset}"
    parts = [Part("prepared data, float32", key, points * (F32 * run.pixels + I64) + 40 * points)]
    if loading:
        parts.append(Part("prepared file being read (uint8)", key, points * (run.pixels + 1), on_device=False))
    if run.config["conditions"][run.condition]["labels"] == "random":
        parts.append(Part("permuted labels", f"conditions.{run.condition}.labels", 2 * I64 * run.n))
    return parts


def augment_parts(run: Run) -> list[Part]:
    """train.Batches with augmentation: one augmented copy of the training set, and while an epoch's copy is
    made, the permuted input, the padded copy and the output of each step (augment.apply), and the affine grid."""
    if not run.augmented:
        return []
    f = FACTS[run.dataset]
    padded = f.channels * (f.size + 2 * f.augmentation.crop_pad) ** 2
    return [Part("augmented copy of the training set", "experiment.augmentation", F32 * run.n * run.pixels),
            Part("augmenting an epoch", "experiment.augmentation",
                 F32 * run.n * (3 * padded + 2 * f.size * f.size))]


def batch(run: Run, key: str) -> int:
    """The effective batch of train.<key>: no larger than the largest split."""
    return min(run.config["train"][key], max(run.n, run.n_test))


def activation_parts(run: Run, width: int = F32, eval_only: bool = False) -> list[Part]:
    """The larger of a training step's stored activations (train.batch_size) and an evaluation forward's
    (train.eval_batch_size), in bytes of `width` per element: the body's, and the wide layer's (m_H per sample,
    sized by m_H as much as by the batch)."""
    net, wkey = run.net, run.width_key
    eb, b = batch(run, "eval_batch_size"), batch(run, "batch_size")
    evaluate = [Part("activations of an evaluation batch", "train.eval_batch_size",
                     width * eb * (net.eval_elements - 2 * run.m)),
                Part("the wide layer's output for an evaluation batch", wkey, width * eb * 2 * run.m,
                     also="train.eval_batch_size")]
    step = [Part("activations of a training step", "train.batch_size", F32 * b * (net.train_elements - 3 * run.m)),
            Part("the wide layer's output for a training step", wkey, F32 * b * 3 * run.m, also="train.batch_size")]
    if eval_only or sum(p.nbytes for p in evaluate) >= sum(p.nbytes for p in step):
        return evaluate
    return step


def phi_parts(run: Run, copies: int = 1, on_device: bool = True) -> list[Part]:
    """Phi, the n x m_H float64 feature matrix of the certificate, `copies` times."""
    what = "Phi (n x m_H float64)" + (f" and its {copies - 1} SVD copies" if copies > 1 else "")
    return [Part(what, run.width_key, copies * F64 * run.n * run.m, on_device)]


def certificate_phases(run: Run, resident: list[Part], method: str, scratch: bool) -> dict[str, list[Part]]:
    """certificate.certify_model: Phi built by a float64 copy of the model (12 P: the deepcopy and its float64
    parameters), batch by batch; then the exact SVD (certify_svd: an astype copy and LAPACK's Fortran copy beside
    Phi, scipy's gesdd work) or the in-place QR (LAPACK's and the estimates' working rows, measured in
    benchmarks/results/certificate-memory-cpu-2core.json; the blocked path's chunks and panel)."""
    n, m = run.n, run.m
    shadow = Part("float64 copy of the model", run.width_key, 3 * F32 * run.net.params)
    phi = [] if scratch and method == "qr" else phi_parts(run)
    build = resident + phi + [shadow] + activation_parts(run, F64, eval_only=True)
    if method == "svd":
        lo, hi = min(n, m), max(n, m)
        work = Part("gesdd work", run.width_key, F64 * (3 * lo + max(hi, 7 * lo)) + 4 * 8 * lo, on_device=False)
        # certify_svd takes Phi to the host (.cpu()), then copies it twice there
        return {"certificate: features": build,
                "certificate: SVD": resident + phi_parts(run, 3, on_device=False) + [work]}
    work = F64 * n * 1536 + (32 << 20)
    if scratch or run.gpu:  # the blocked QR (factor_in_place); on CPU in memory one LAPACK geqrf
        work += 2 * QR_CHUNK + 2 * F64 * m * QR_BLOCK
    return {"certificate: features": build, "certificate: QR": resident + phi + [
        Part("QR working memory", run.width_key, work)]}


def method_for(run: Run) -> str:
    """The certificate method of run's n (certificate.choose_method)."""
    method = run.config["recipe"]["certificate_method"]
    return ("svd" if run.n <= SVD_MAX_N else "qr") if method == "auto" else method


def serialised(nbytes: int, what: str, key: str) -> Part:
    """runinfo.torch_bytes of `nbytes` of tensors: torch.save into a growing buffer (old and new while it grows)."""
    return Part(what, key, 2 * nbytes, on_device=False)


def base_job(run: Run) -> Job:
    """train-base (base.run): data, the model, the certificate at init, then training with its tau-states and
    resume file. P: parameters; the optimizer's momentum and the gradients are P each; a tau-state is 2 P."""
    p = F32 * (run.net.params + run.net.buffers)
    wkey, scratch = run.width_key, bool(run.config["recipe"]["certificate_scratch"])
    data = data_parts(run)
    model = Part("model parameters", wkey, p)
    phases = {"loading": data_parts(run, loading=True)}
    phases.update(certificate_phases(run, data + [model], method_for(run), scratch))
    kept = Part(f"{run.tau_states} tau-state(s) kept in memory", "recipe.tau_ablation", run.tau_states * 2 * p,
                on_device=False)
    # the resume file pickles the kept tau-states (data.pkl's buffer) and then the whole archive
    resume = serialised(run.tau_states * 2 * p * 2 + 2 * p, "resume file being written (tau-states, model)", wkey)
    phases["training"] = (data + augment_parts(run) + [model, Part("gradients and momentum", wkey, 2 * p), kept,
                          resume] + activation_parts(run))
    return Job("train-base", run.label, phases, run.gpu)


def phase2_epochs(run: Run) -> int:
    """Epoch ends in phase 2 of the run's earliest tau (train.make_schedule): the heads recipe.py keeps."""
    train, recipe = run.config["train"], run.config["recipe"]
    epochs = train["epochs"]["augmented" if run.augmented else "plain"]
    ipe = math.ceil(run.n / train["batch_size"])
    ablation = recipe["tau_ablation"]
    fractions = [recipe["tau_fraction"]] + (ablation["fractions"] if run.dataset in ablation["datasets"] else [])
    total = epochs * ipe
    return max(epochs - min(max(1, round(f * total)), total - 1) // ipe for f in fractions)


def recipe_job(run: Run) -> Job:
    """train-recipe (recipe.train_recipe), one tau-state at a time: the tau-state and the model, the certificate at
    tau (Phi kept for the optimum on the SVD path), cached features, phase 2 with the heads of every epoch, and
    the optimum of phase 2's problem (optimum.Problem: [Phi, 1], its SVD's copy, U, V^T and gesdd's work)."""
    recipe = run.config["recipe"]
    p, wkey = F32 * (run.net.params + run.net.buffers), run.width_key
    n, nt, m, classes = run.n, run.n_test, run.m, FACTS[run.dataset].classes
    trains = recipe["phase2_trains"]
    trained = {"head": run.net.head_params, "wide_head": run.net.head_params + run.net.wide_params}.get(
        trains, run.net.params)
    data = data_parts(run)
    state = [Part("model and the tau-state (parameters, momentum)", wkey, 3 * p),
             Part("phase 2's gradients and momentum", "recipe.phase2_trains", 2 * F32 * trained)]
    method, scratch = method_for(run), bool(recipe["certificate_scratch"])
    phases = {"loading": data_parts(run, loading=True) + state}
    phases.update(certificate_phases(run, data + state, method, scratch))
    kept_phi = phi_parts(run) if method == "svd" else []  # features64: kept for the optimum
    head = trains == "head"
    cached = [Part("cached features (float32)", wkey, F32 * (n + nt) * m)] if head else []
    kind = "augmented" if run.augmented else "plain"
    heads = Part("the head at tau and every epoch of phase 2 (float64)", wkey,
                 (phase2_epochs(run) + 1) * F64 * classes * (m + 1), on_device=False, also=f"train.epochs.{kind}")
    resume = serialised(p + F32 * trained + heads.nbytes, "resume file being written (model, heads)", wkey)
    resident = data + state + kept_phi + cached + [heads]
    phases["phase 2"] = resident + augment_parts(run) + [resume] + activation_parts(run)
    if not run.augmented and head and n <= recipe["optimum"]["max_n"]:
        a = F64 * n * (m + 1)
        gesdd = F64 * (3 * n * n + max(m + 1, 4 * n * n + 4 * n)) + 4 * 8 * n
        problem = Part("phase 2's problem [Phi, 1], its SVD copy, U, V^T, gesdd work", wkey,
                       3 * a + F64 * n * n + gesdd, on_device=False, also="recipe.optimum.max_n below n")
        kept = Part("phase 2's problem: [Phi, 1], U and V^T kept", wkey, 2 * a + 2 * F64 * n * n,
                    on_device=False, also="recipe.optimum.max_n below n")
        test = Part("test features (float64) and [Phi_test, 1]", wkey,
                    2 * F64 * nt * (m + 1) + 3 * F32 * run.net.params)
        phases["optimum"] = resident + [problem]
        phases["optimum: test features"] = resident + [kept, test] + activation_parts(run, F64, eval_only=True)
    return Job("train-recipe", run.label, phases, run.gpu)


def beyond_ntk_job(all_runs: list[Run], config: dict[str, Any]) -> Job:
    """beyond-ntk (beyond_ntk.measure_runs): every data set, one initial model per (data set, model, seed) kept,
    and per run the largest model's per-class Jacobian on the subset (float32 per point, flattened, float64)."""
    s = config["beyond_ntk"]["subset"]
    big = max(all_runs, key=lambda r: r.net.params)
    seeds = len(config["experiment"]["seeds"])
    keys = len({(r.dataset, r.m) for r in all_runs}) * seeds
    p = F32 * (big.net.params + big.net.buffers)
    data = [Part(f"prepared data of {r.dataset}", f"data.{r.dataset}", part.nbytes)
            for r in {r.dataset: r for r in all_runs}.values() for part in data_parts(r)[:1]]
    parts = data + [Part("initial models kept, one per data set, width and seed", big.width_key, keys * p),
                    Part("the run's model, its saved state and its copy", big.width_key, 3 * p),
                    Part("per-class Jacobian on the subset (float32, flat, float64)", big.width_key,
                         s * big.net.params * (F32 + F32 + F64), also="beyond_ntk.subset"),
                    Part("vmapped activations of the subset", "beyond_ntk.subset",
                         4 * F32 * s * big.net.train_elements)]
    return Job("beyond-ntk", "every run", {"kernels": parts}, big.gpu)


def prepare_job(dataset: str, options: dict[str, Any]) -> Job:
    """prepare (data.prepare): the raw pool read, its train/test arrays, the record (uint8) and its save buffer;
    scikit-learn's digits arrive as float64 images."""
    f = FACTS[dataset]
    pool = f.train + (f.test if not f.pooled else 0)
    pixels = f.channels * f.size * f.size
    per_point = (F64 + 4) * pixels if f.package == "sklearn" else 6 * pixels
    return Job("prepare", dataset, {"build": [Part("raw and prepared arrays", f"data.{dataset}",
                                                    pool * (per_point + 100))]})


def on_gpu(config: dict[str, Any]) -> bool:
    """Whether the training jobs' tensors live on a GPU: train.device cuda, or auto with an NVIDIA driver (the
    rule files' uses_gpu)."""
    device = config["train"]["device"]
    return device.startswith("cuda") or (device == "auto" and shutil.which("nvidia-smi") is not None)


def jobs(config: dict[str, Any]) -> list[Job]:
    """Every job kind's estimate for the config: prepare per data set, train-base and train-recipe per run shape,
    and beyond-ntk once."""
    shapes = runs(config)
    out = [prepare_job(d, config["data"].get(d, {})) for d in config["experiment"]["datasets"] if d in FACTS]
    for run in shapes:
        out += [base_job(run), recipe_job(run)]
    return out + ([beyond_ntk_job(shapes, config)] if shapes else [])
