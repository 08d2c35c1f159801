# Stage train_recipe (src/globalmin/recipe.py): A(base) from each tau-state of one base run (phase 1 is never
# trained again), with its certificate at tau and its distance to phase 2's optimum.


rule train_recipe:
    input:
        data=prepared("{dataset}"),
        tau_states=tau_states,
        code=code("train-recipe"),
    output:
        recipe_outputs(["recipe"]),
    log:
        "logs/train/{dataset}/{condition}/{aug}/seed{seed}/recipe.log",
    benchmark:
        "logs/benchmarks/train/{dataset}/{condition}/{aug}/seed{seed}/recipe.tsv"
    conda:
        ENV
    threads: config["train"]["threads"]
    resources:
        gpu_slots=GPU_JOBS,
    params:
        recipe=as_json({k: v for k, v in config["recipe"].items() if k != "tau_ablation"}),
        expect=expected_base,
        run_dirs=recipe_dirs,
    shell:
        "globalmin train-recipe --data {input.data} --tau-states {input.tau_states} --recipe {params.recipe:q}"
        " --expect {params.expect:q} --threads {threads} --out-dirs {params.run_dirs} > {log} 2>&1"


ruleorder: train_recipe_ablated > train_recipe


use rule train_recipe as train_recipe_ablated with:
    output:
        recipe_outputs(["recipe"] + [f"recipe_{f}" for f in FRACTIONS]),
    wildcard_constraints:
        dataset=f"(?:{ABLATED})",
        condition=f"(?:{ABLATED_CONDITIONS})",
