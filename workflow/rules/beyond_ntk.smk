# Stage beyond_ntk (src/globalmin/beyond_ntk.py): how far Table 1's ResNet runs (the standard condition, base and
# A(base) at the main tau) moved from their initialisation, beside the lazy MLPs of the ntk stage. One job for all:
# the runs of a seed share their initial network, whose kernel is computed once. (Written under results/studies:
# results/runs is the DVC train stage's output.)


rule beyond_ntk:
    input:
        data=[prepared(d) for d in config["experiment"]["datasets"]],
        models=[f"{folder}/model.pt" for folder in run_folders(conditions=["standard"], ablation=False)],
        ntk_runs=rules.ntk.output.runs,
        code=code("beyond-ntk"),
    output:
        runs=f"{STUDIES}/beyond_ntk/runs.csv",
        comparison=f"{STUDIES}/beyond_ntk/comparison.csv",
        html=f"{STUDIES}/beyond_ntk/comparison.html",
        claims=f"{STUDIES}/beyond_ntk/claims.json",
    log:
        "logs/beyond_ntk.log",
    benchmark:
        "logs/benchmarks/beyond_ntk.tsv"
    conda:
        ENV
    threads: config["train"]["threads"]
    resources:
        gpu_slots=GPU_JOBS,
    params:
        out_dir=out_dir,
        settings=as_json({**config["beyond_ntk"], "ntk_depth": config["ntk"]["depth"]}),
    shell:
        "globalmin beyond-ntk --data {input.data} --models {input.models} --ntk-runs {input.ntk_runs}"
        " --config {params.settings:q} --threads {threads} --out-dir {params.out_dir} > {log} 2>&1"
