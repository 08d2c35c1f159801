# Stage prepare_data (src/globalmin/data.py): one prepared tensor file per data set (inputs uint8, split stored).


rule prepare_data:
    input:
        # ancient: a fetched raw folder is immutable (verified, then renamed into place), so its time, which
        # DVC does not keep, must not trigger a rebuild
        raw=ancient(raw_input),
        code=code("prepare"),
    output:
        prepared("{dataset}"),
    log:
        "logs/prepare/{dataset}.log",
    conda:
        ENV
    params:
        options=lambda w: as_json(config["data"].get(w.dataset, {})),
        raw=lambda w, input: f"--raw-dir {input.raw}" if input.raw else "",
    shell:
        "globalmin prepare --dataset {wildcards.dataset} --options {params.options:q} {params.raw}"
        " --out {output} > {log} 2>&1"
