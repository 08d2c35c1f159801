# Recipe stage: base runs (which save their state at tau) and A(base) runs that branch from that state.


rule train_base:
    input:
        data="data/prepared/{dataset}.pt",
        code=code("train.py", "models.py", "augment.py", "data.py", "certificate.py"),
    output:
        metrics="results/runs/{dataset}/{aug}/seed{seed}/base/metrics.json",
        curve="results/runs/{dataset}/{aug}/seed{seed}/base/curve.csv",
        model="results/runs/{dataset}/{aug}/seed{seed}/base/model.pt",
        tau_state="results/runs/{dataset}/{aug}/seed{seed}/base/tau_state.pt",
    params:
        out_dir=out_dir,
        model=as_json(config["model"]),
        train=as_json(config["train"]),
        tau=config["recipe"]["tau_fraction"],
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
        " --tau-fraction {params.tau} --threads {threads} > {log} 2>&1"


rule train_recipe:
    input:
        data="data/prepared/{dataset}.pt",
        tau_state="results/runs/{dataset}/{aug}/seed{seed}/base/tau_state.pt",
        code=code("train.py", "models.py", "augment.py", "data.py", "certificate.py"),
    output:
        metrics="results/runs/{dataset}/{aug}/seed{seed}/recipe/metrics.json",
        curve="results/runs/{dataset}/{aug}/seed{seed}/recipe/curve.csv",
        model="results/runs/{dataset}/{aug}/seed{seed}/recipe/model.pt",
        certificate="results/runs/{dataset}/{aug}/seed{seed}/recipe/certificate.json",
    params:
        out_dir=out_dir,
        recipe=as_json(config["recipe"]),
    threads: config["train"]["threads"]
    resources:
        gpu=GPU_JOBS,
    log:
        "logs/train/{dataset}_{aug}_seed{seed}_recipe.log",
    conda:
        ENV
    shell:
        "globalmin train-recipe --data {input.data} --tau-state {input.tau_state} --out-dir {params.out_dir}"
        " --recipe {params.recipe:q} --threads {threads} > {log} 2>&1"
