# NTK stage: the lazy-regime study of Allen-Zhu, Li & Song (width and depth sweeps of the paper's MLP).


rule ntk:
    input:
        code=code("ntk.py"),
    output:
        runs="results/studies/ntk/runs.csv",
        curves="results/studies/ntk/curves.csv",
        memorisation="results/studies/ntk/memorisation.csv",
        claims="results/studies/ntk/claims.json",
    params:
        out_dir=out_dir,
        cfg=as_json(config["ntk"]),
    log:
        "logs/ntk.log",
    conda:
        ENV
    shell:
        "globalmin ntk --config {params.cfg:q} --out-dir {params.out_dir} --claims {output.claims} > {log} 2>&1"


rule ntk_figure:
    input:
        runs="results/studies/ntk/runs.csv",
        code=code("figures.py"),
    output:
        report("report/figures/ntk.png", caption="../report/ntk.rst", category="NTK regime"),
        "report/figures/ntk.pdf",
    params:
        out_dir=out_dir,
        depth=config["ntk"]["depth"],
    log:
        "logs/ntk_figure.log",
    conda:
        ENV
    shell:
        "globalmin figures --ntk {input.runs} --ntk-depth {params.depth} --out-dir {params.out_dir} > {log} 2>&1"


# Beyond NTK: how far each Recipe ResNet run moved from its initialisation, beside the lazy MLPs above.
# (Written under results/studies, not beside the run: results/runs is the DVC train stage's output.)
MOVEMENTS = expand(
    "results/studies/beyond_ntk/runs/{dataset}/{aug}/seed{seed}/{algorithm}.json",
    dataset=config["experiment"]["datasets"],
    aug=AUGS,
    seed=config["experiment"]["seeds"],
    algorithm=["base", "recipe"],
)


rule movement:
    input:
        data="data/prepared/{dataset}.pt",
        model="results/runs/{dataset}/{aug}/seed{seed}/{algorithm}/model.pt",
        code=code("beyond_ntk.py", "models.py", "train.py"),
    output:
        "results/studies/beyond_ntk/runs/{dataset}/{aug}/seed{seed}/{algorithm}.json",
    wildcard_constraints:
        algorithm="base|recipe",
    params:
        subset=config["beyond_ntk"]["subset"],
    threads: 1
    resources:
        gpu=GPU_JOBS,
    log:
        "logs/movement/{dataset}_{aug}_seed{seed}_{algorithm}.log",
    conda:
        ENV
    shell:
        "globalmin movement --data {input.data} --model {input.model} --subset {params.subset}"
        " --threads {threads} --out {output} > {log} 2>&1"


rule beyond_ntk:
    input:
        movements=MOVEMENTS,
        ntk_runs="results/studies/ntk/runs.csv",
        code=code("beyond_ntk.py"),
    output:
        runs="results/studies/beyond_ntk/runs.csv",
        comparison="results/studies/beyond_ntk/comparison.csv",
        html="results/studies/beyond_ntk/comparison.html",
        claims="results/studies/beyond_ntk/claims.json",
    params:
        out_dir=out_dir,
        cfg=as_json(config["beyond_ntk"]),
        depth=config["ntk"]["depth"],
    log:
        "logs/beyond_ntk.log",
    conda:
        ENV
    shell:
        "globalmin beyond-ntk --movements {input.movements} --ntk-runs {input.ntk_runs} --ntk-depth {params.depth}"
        " --config {params.cfg:q} --out-dir {params.out_dir} --claims {output.claims} > {log} 2>&1"


rule beyond_ntk_figure:
    input:
        runs="results/studies/beyond_ntk/runs.csv",
        ntk_runs="results/studies/ntk/runs.csv",
        code=code("figures.py"),
    output:
        report("report/figures/beyond_ntk.png", caption="../report/beyond_ntk.rst", category="NTK regime"),
        "report/figures/beyond_ntk.pdf",
    params:
        out_dir=out_dir,
        depth=config["ntk"]["depth"],
    log:
        "logs/beyond_ntk_figure.log",
    conda:
        ENV
    shell:
        "globalmin figures --beyond-ntk {input.runs} {input.ntk_runs} --ntk-depth {params.depth}"
        " --out-dir {params.out_dir} > {log} 2>&1"
