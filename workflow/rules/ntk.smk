# NTK stage: the lazy-regime study of Allen-Zhu, Li & Song (width and depth sweeps of the paper's MLP).


rule ntk:
    input:
        code=code("ntk.py"),
    output:
        runs="results/studies/ntk/runs.csv",
        curves="results/studies/ntk/curves.csv",
        memorisation="results/studies/ntk/memorisation.csv",
        claims="results/claims/ntk.json",
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
