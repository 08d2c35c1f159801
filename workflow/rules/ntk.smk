# Stage ntk (src/globalmin/ntk.py): the lazy-regime study of Allen-Zhu, Li & Song (width and depth sweeps of the
# paper's MLP, and memorisation of real digits).


rule ntk:
    input:
        data=prepared("digits"),
        code=code("ntk"),
    output:
        runs=f"{STUDIES}/ntk/runs.csv",
        curves=f"{STUDIES}/ntk/curves.csv",
        memorisation=f"{STUDIES}/ntk/memorisation.csv",
        claims=f"{STUDIES}/ntk/claims.json",
    log:
        "logs/ntk.log",
    benchmark:
        "logs/benchmarks/ntk.tsv"
    conda:
        ENV
    params:
        out_dir=out_dir,
        settings=as_json(config["ntk"]),
    shell:
        "globalmin ntk --data {input.data} --config {params.settings:q} --out-dir {params.out_dir} > {log} 2>&1"
