# Report stage: tables, claims, figures and the HTML report, all from the run outputs.

ALL_METRICS = expand(
    "results/runs/{dataset}/{aug}/seed{seed}/{algorithm}/metrics.json",
    dataset=config["experiment"]["datasets"],
    aug=AUGS,
    seed=config["experiment"]["seeds"],
    algorithm=["base", "recipe"],
) + expand(
    "results/runs/{dataset}/{aug}/seed{seed}/recipe_{frac}/metrics.json",
    dataset=[d for d in ABLATION["datasets"] if d in config["experiment"]["datasets"]],
    aug=AUGS,
    seed=config["experiment"]["seeds"],
    frac=[f"{f:g}" for f in ABLATION["fractions"]],
)
TABLES = ["runs.csv", "curves.csv", "table1.csv", "table1.html", "table1.tex", "ablation.csv", "ablation.html"]
FIGURES = ["report/figures/curves.png", "report/figures/phase2.png", "report/figures/sigma_min.png",
           "report/figures/fc_theory.png", "report/figures/ntk.png", "report/figures/beyond_ntk.png",
           "report/figures/local_minima.png"]


rule aggregate:
    input:
        metrics=ALL_METRICS,
        curves=[m.replace("metrics.json", "curve.csv") for m in ALL_METRICS],
        certificates_init=[m.replace("metrics.json", "certificate_init.json") for m in ALL_METRICS if "/base/" in m],
        code=code("aggregate.py"),
    output:
        expand("results/tables/{name}", name=TABLES),
        summary="results/metrics.json",
        # one folder, not one declared file per data set: outputs whose names change with the config would
        # have no Snakemake metadata, and then a changed set of runs could not trigger this rule
        plots=directory("results/plots"),
    params:
        out_dir=out_dir,
    conda:
        ENV
    log:
        "logs/aggregate.log",
    shell:
        "globalmin aggregate --metrics {input.metrics} --out-dir {params.out_dir} --summary {output.summary}"
        " --plots-dir {output.plots} > {log} 2>&1"


rule claims_recipe:
    input:
        tables=expand("results/tables/{name}", name=["runs.csv", "curves.csv", "table1.csv"]),
        code=code("claims.py"),
    output:
        "results/claims/recipe.json",
    params:
        tables=lambda w, input: Path(input.tables[0]).parent,
        claims=as_json(config["claims"]),
    conda:
        ENV
    log:
        "logs/claims_recipe.log",
    shell:
        "globalmin claims-recipe --tables {params.tables} --claims {params.claims:q} --out {output} > {log} 2>&1"


rule claims:
    input:
        fragments=[
            "results/claims/recipe.json",
            "results/studies/fc_theory/claims.json",
            "results/studies/ntk/claims.json",
            "results/studies/beyond_ntk/claims.json",
            "results/studies/local_minima/claims.json",
        ],
        code=code("claims.py"),
    output:
        report("results/claims.json", caption="../report/claims.rst", category="Claims"),
    conda:
        ENV
    log:
        "logs/claims.log",
    shell:
        "globalmin claims-merge --fragments {input.fragments} --out {output} > {log} 2>&1"


rule figures:
    input:
        tables=["results/tables/runs.csv", "results/tables/curves.csv"],
        code=code("figures.py"),
    output:
        curves=report("report/figures/curves.png", caption="../report/curves.rst", category="Recipe"),
        curves_pdf="report/figures/curves.pdf",
        phase2=report("report/figures/phase2.png", caption="../report/phase2.rst", category="Recipe"),
        phase2_pdf="report/figures/phase2.pdf",
        sigma=report("report/figures/sigma_min.png", caption="../report/sigma_min.rst", category="Recipe"),
        sigma_pdf="report/figures/sigma_min.pdf",
    conda:
        ENV
    params:
        tables=lambda w, input: Path(input.tables[0]).parent,
        out_dir=out_dir,
    log:
        "logs/figures.log",
    shell:
        "globalmin figures --tables {params.tables} --out-dir {params.out_dir} > {log} 2>&1"


rule report:
    input:
        tables=expand("results/tables/{name}", name=TABLES),
        claims="results/claims.json",
        figures=FIGURES,
        paper_values="config/paper_values.yaml",
        fc_rates="results/studies/fc_theory/pass_rates.html",
        beyond_ntk="results/studies/beyond_ntk/comparison.html",
        local_minima="results/studies/local_minima/summary.html",
        code=code("report.py", "templates/report.html.j2"),
    output:
        html="report/index.html",
        table=report("report/tables/table1.html", caption="../report/table1.rst", category="Recipe"),
        tables=["report/tables/table1.csv", "report/tables/table1.tex", "report/tables/runs.csv"],
    params:
        tables=lambda w, input: Path(input.tables[0]).parent,
        config=as_json({k: config[k] for k in ("model", "train", "recipe", "report")}),
    conda:
        ENV
    log:
        "logs/report.log",
    shell:
        "globalmin report --tables {params.tables} --claims {input.claims} --figures {input.figures}"
        " --config {params.config:q} --paper-values {input.paper_values} --fc-rates {input.fc_rates}"
        " --study-table beyond_ntk={input.beyond_ntk} --study-table local_minima={input.local_minima}"
        " --out {output.html} > {log} 2>&1"
