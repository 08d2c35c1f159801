# Data stage: one prepared tensor file per data set (inputs uint8, split stored with the data).


rule prepare_data:
    input:
        code=code("data.py"),
    output:
        "data/prepared/{dataset}.pt",
    params:
        options=lambda w: as_json(config["data"].get(w.dataset, {})),
    log:
        "logs/prepare/{dataset}.log",
    conda:
        ENV
    shell:
        "globalmin prepare --dataset {wildcards.dataset} --options {params.options:q} --out {output} > {log} 2>&1"
