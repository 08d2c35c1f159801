# Stage fc_theory (src/globalmin/fc_theory.py): random fully-connected nets, exact certificates, negative controls.


rule fc_theory:
    input:
        data=prepared("digits"),
        code=code("fc-theory"),
    output:
        runs=f"{STUDIES}/fc_theory/runs.csv",
        rates=f"{STUDIES}/fc_theory/pass_rates.csv",
        rates_html=f"{STUDIES}/fc_theory/pass_rates.html",
        claims=f"{STUDIES}/fc_theory/claims.json",
    log:
        "logs/fc_theory.log",
    benchmark:
        "logs/benchmarks/fc_theory.tsv"
    conda:
        ENV
    params:
        out_dir=out_dir,
        settings=as_json(config["fc_theory"]),
    shell:
        "globalmin fc-theory --data {input.data} --config {params.settings:q} --out-dir {params.out_dir}"
        " > {log} 2>&1"
