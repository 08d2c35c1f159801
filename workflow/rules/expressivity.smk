# Expressivity stage: the fully-connected theory check (random nets, exact certificates, negative controls).


rule fc_theory:
    input:
        code=code("fc_theory.py", "certificate.py"),
    output:
        runs="results/studies/fc_theory/runs.csv",
        rates="results/studies/fc_theory/pass_rates.csv",
        rates_html="results/studies/fc_theory/pass_rates.html",
        claims="results/studies/fc_theory/claims.json",
    params:
        out_dir=out_dir,
        cfg=as_json(config["fc_theory"]),
    log:
        "logs/fc_theory.log",
    conda:
        ENV
    shell:
        "globalmin fc-theory --config {params.cfg:q} --out-dir {params.out_dir} --claims {output.claims}"
        " > {log} 2>&1"


rule fc_theory_figure:
    input:
        runs="results/studies/fc_theory/runs.csv",
        code=code("figures.py"),
    output:
        report("report/figures/fc_theory.png", caption="../report/fc_theory.rst", category="Expressivity"),
        "report/figures/fc_theory.pdf",
    params:
        out_dir=out_dir,
    log:
        "logs/fc_theory_figure.log",
    conda:
        ENV
    shell:
        "globalmin figures --fc-theory {input.runs} --out-dir {params.out_dir} > {log} 2>&1"
