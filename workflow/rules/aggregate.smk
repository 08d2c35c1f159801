# Stage aggregate (src/globalmin/aggregate.py): every run into tables, the DVC views, and the Recipe's claims.


rule aggregate:
    input:
        metrics=[f"{folder}/metrics.json" for folder in run_folders()],
        curves=[f"{folder}/curve.csv" for folder in run_folders()],
        horizons=[f"{folder}/horizon.csv" for folder in run_folders(["recipe"])],
        certificates_init=[f"{folder}/certificate_init.json" for folder in run_folders(["base"])],
        code=code("aggregate"),
    output:
        tables=[table(name) for name in TABLES],
        claims=table("claims.json"),
        summary="results/metrics.json",
        # one folder, not one declared file per data set: outputs whose names change with the config would
        # have no Snakemake metadata, and then a changed set of runs could not trigger this rule
        plots=directory("results/plots"),
    log:
        "logs/aggregate.log",
    conda:
        ENV
    params:
        out_dir=lambda w, output: str(Path(output.claims).parent),
        settings=as_json({"claims": config["claims"], "sweep_points": sweep_points(config)}),
    shell:
        "globalmin aggregate --metrics {input.metrics} --config {params.settings:q} --out-dir {params.out_dir}"
        " --summary {output.summary} --plots-dir {output.plots} > {log} 2>&1"
