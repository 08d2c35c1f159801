# Stage local_minima (src/globalmin/local_minima.py): trained students against the projection bound LB of
# Kawaguchi, Huang & Kaelbling (claims B1, B2, B4; check B3).


rule local_minima:
    input:
        data=[prepared(kind) for kind in config["local_minima"]["data"] if kind != "teacher"],
        code=code("local-minima"),
    output:
        runs=f"{STUDIES}/local_minima/runs.csv",
        summary=f"{STUDIES}/local_minima/summary.csv",
        html=f"{STUDIES}/local_minima/summary.html",
        claims=f"{STUDIES}/local_minima/claims.json",
    log:
        "logs/local_minima.log",
    benchmark:
        "logs/benchmarks/local_minima.tsv"
    conda:
        ENV
    threads: config["local_minima"]["threads"]
    params:
        out_dir=out_dir,
        settings=as_json(config["local_minima"]),
    shell:
        "globalmin local-minima --data {input.data} --config {params.settings:q} --out-dir {params.out_dir}"
        " > {log} 2>&1"
