# Local-minimum stage: trained students against the projection bound LB of Kawaguchi, Huang & Kaelbling (B1-B4).


rule local_minima:
    input:
        code=code("local_minima.py"),
        # image data kinds other than digits read the pipeline's prepared files (teacher and digits need none)
        data=[
            f"{config['local_minima']['prepared_dir']}/{kind}.pt"
            for kind in config["local_minima"]["data"]
            if kind not in ("teacher", "digits")
        ],
    output:
        runs="results/studies/local_minima/runs.csv",
        summary="results/studies/local_minima/summary.html",
        claims="results/studies/local_minima/claims.json",
    params:
        out_dir=out_dir,
        cfg=as_json(config["local_minima"]),
    log:
        "logs/local_minima.log",
    conda:
        ENV
    shell:
        "globalmin local-minima --config {params.cfg:q} --out-dir {params.out_dir} --claims {output.claims}"
        " > {log} 2>&1"


rule local_minima_figure:
    input:
        runs="results/studies/local_minima/runs.csv",
        code=code("figures.py"),
    output:
        report("report/figures/local_minima.png", caption="../report/local_minima.rst", category="Local minima"),
        "report/figures/local_minima.pdf",
    params:
        out_dir=out_dir,
    log:
        "logs/local_minima_figure.log",
    conda:
        ENV
    shell:
        "globalmin figures --local-minima {input.runs} --out-dir {params.out_dir} > {log} 2>&1"
