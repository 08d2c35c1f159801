# Data stage: raw files (downloaded or imported, verified, placed atomically), then one prepared tensor file
# per data set (inputs uint8, split stored with the data).


rule fetch_raw:
    output:
        directory("data/raw/{dataset}"),
    params:
        options=lambda w: as_json(config["data"][w.dataset]),
    log:
        "logs/fetch/{dataset}.log",
    conda:
        ENV
    shell:
        "globalmin fetch --dataset {wildcards.dataset} --options {params.options:q} --out {output} > {log} 2>&1"


rule prepare_data:
    input:
        # ancient: a fetched raw folder is immutable (verified, then renamed into place), so its time, which
        # DVC does not keep, must not trigger a rebuild
        raw=ancient(raw_input),
        code=code("data.py", "sources.py"),
    output:
        "data/prepared/{dataset}.pt",
    params:
        options=lambda w: as_json(config["data"].get(w.dataset, {})),
        raw=lambda w, input: f"--raw-dir {input.raw}" if input.raw else "",
    log:
        "logs/prepare/{dataset}.log",
    conda:
        ENV
    shell:
        "globalmin prepare --dataset {wildcards.dataset} --options {params.options:q} {params.raw}"
        " --out {output} > {log} 2>&1"
