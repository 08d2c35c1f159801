# Stage train_base (src/globalmin/base.py): base runs, which save their state at every tau.


rule train_base:
    input:
        data=prepared("{dataset}"),
        code=code("train-base"),
    output:
        base_files(*RUN_FILES, "certificate_init.json", "tau_state.pt"),
    log:
        "logs/train/{dataset}/{condition}/{aug}/seed{seed}/base.log",
    benchmark:
        "logs/benchmarks/train/{dataset}/{condition}/{aug}/seed{seed}/base.tsv"
    conda:
        ENV
    threads: config["train"]["threads"]
    resources:
        gpu_slots=GPU_JOBS,
    params:
        settings=base_settings,
        run_dir=out_dir,
    shell:
        "globalmin train-base --data {input.data} --config {params.settings:q} --seed {wildcards.seed}"
        " --augment {wildcards.aug} --threads {threads} --out-dir {params.run_dir} > {log} 2>&1"


# The ablated data sets' and conditions' base runs also write the extra tau-states; for them this rule wins over
# train_base.
ruleorder: train_base_ablated > train_base


use rule train_base as train_base_ablated with:
    output:
        base_files(*RUN_FILES, "certificate_init.json", "tau_state.pt", *[f"tau_state_{f}.pt" for f in FRACTIONS]),
    wildcard_constraints:
        dataset=f"(?:{ABLATED})",
        condition=f"(?:{ABLATED_CONDITIONS})",
