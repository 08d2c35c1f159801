# Stage fetch_raw (src/globalmin/sources.py): raw files downloaded or imported, verified, placed atomically.
# No code inputs on purpose: a verified raw folder is immutable, and editing the fetch code must not download
# the data sets again.


# Downloads run where Snakemake runs, never as a cluster job: compute nodes often have no network.
localrules:
    fetch_raw,


rule fetch_raw:
    output:
        directory("data/raw/{dataset}"),
    log:
        "logs/fetch/{dataset}.log",
    conda:
        ENV
    params:
        options=lambda w: as_json(config["data"].get(w.dataset, {})),
    shell:
        "globalmin fetch --dataset {wildcards.dataset} --options {params.options:q} --out {output} > {log} 2>&1"
