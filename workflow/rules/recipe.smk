# Recipe stage: base runs (which save their state at tau) and A(base) runs that branch from that state.
# The tau ablation adds A(base) runs at other tau fractions that branch from the same base runs.


rule train_base:
    input:
        data="data/prepared/{dataset}.pt",
        code=code("train.py", "models.py", "augment.py", "data.py", "certificate.py"),
    output:
        metrics="results/runs/{dataset}/{aug}/seed{seed}/base/metrics.json",
        curve="results/runs/{dataset}/{aug}/seed{seed}/base/curve.csv",
        model="results/runs/{dataset}/{aug}/seed{seed}/base/model.pt",
        tau_state="results/runs/{dataset}/{aug}/seed{seed}/base/tau_state.pt",
        certificate_init="results/runs/{dataset}/{aug}/seed{seed}/base/certificate_init.json",
    params:
        out_dir=out_dir,
        model=as_json(config["model"]),
        train=as_json(config["train"]),
        tau=config["recipe"]["tau_fraction"],
        ablation=lambda w: " ".join(f"{f:g}" for f in ablation_fractions(w)),
        certificate=config["recipe"]["certificate_method"],
        scratch=scratch_option,
    threads: config["train"]["threads"]
    resources:
        gpu=GPU_JOBS,
    log:
        "logs/train/{dataset}_{aug}_seed{seed}_base.log",
    conda:
        ENV
    shell:
        "globalmin train-base --data {input.data} --out-dir {params.out_dir} --seed {wildcards.seed}"
        " --augment {wildcards.aug} --model {params.model:q} --train {params.train:q}"
        " --tau-fraction {params.tau} --ablation-tau {params.ablation} --certificate-method {params.certificate}"
        " {params.scratch}"
        " --threads {threads} > {log} 2>&1"


# The ablated data sets' base runs also write the extra tau-states; for them this rule wins over train_base.
ruleorder: train_base_ablated > train_base


use rule train_base as train_base_ablated with:
    output:
        metrics="results/runs/{dataset}/{aug}/seed{seed}/base/metrics.json",
        curve="results/runs/{dataset}/{aug}/seed{seed}/base/curve.csv",
        model="results/runs/{dataset}/{aug}/seed{seed}/base/model.pt",
        tau_state="results/runs/{dataset}/{aug}/seed{seed}/base/tau_state.pt",
        certificate_init="results/runs/{dataset}/{aug}/seed{seed}/base/certificate_init.json",
        ablation=expand(
            "results/runs/{{dataset}}/{{aug}}/seed{{seed}}/base/tau_state_{frac}.pt",
            frac=[f"{f:g}" for f in ABLATION["fractions"]],
        ),
    wildcard_constraints:
        dataset=f"(?:{ABLATED})",


rule train_recipe:
    input:
        data="data/prepared/{dataset}.pt",
        tau_state="results/runs/{dataset}/{aug}/seed{seed}/base/tau_state{suffix}.pt",
        code=code("train.py", "models.py", "augment.py", "data.py", "certificate.py"),
    output:
        metrics="results/runs/{dataset}/{aug}/seed{seed}/recipe{suffix}/metrics.json",
        curve="results/runs/{dataset}/{aug}/seed{seed}/recipe{suffix}/curve.csv",
        model="results/runs/{dataset}/{aug}/seed{seed}/recipe{suffix}/model.pt",
        certificate="results/runs/{dataset}/{aug}/seed{seed}/recipe{suffix}/certificate.json",
    wildcard_constraints:
        suffix=r"(_[0-9.]+)?",
    params:
        out_dir=out_dir,
        recipe=as_json(config["recipe"]),
    threads: config["train"]["threads"]
    resources:
        gpu=GPU_JOBS,
    log:
        "logs/train/{dataset}_{aug}_seed{seed}_recipe{suffix}.log",
    conda:
        ENV
    shell:
        "globalmin train-recipe --data {input.data} --tau-state {input.tau_state} --out-dir {params.out_dir}"
        " --recipe {params.recipe:q} --threads {threads} > {log} 2>&1"
