# globalmin: replication of Kawaguchi & Sun's recipe A(base). `snakemake --cores all` builds report/index.html.
# The stages live in workflow/rules/, the logic in src/globalmin/; rules only wire files.
from pathlib import Path

from snakemake.exceptions import WorkflowError
from snakemake.utils import min_version, validate

from globalmin.config_checks import problems

min_version("9.0")


configfile: "config/config.yaml"


validate(config, "workflow/schemas/config.schema.yaml")
config_problems = problems(config)
if config_problems:
    raise WorkflowError("invalid configuration:\n  - " + "\n  - ".join(config_problems))


wildcard_constraints:
    dataset="[a-z0-9_]+",
    aug="aug|noaug",
    seed=r"\d+",


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/recipe.smk"
include: "workflow/rules/expressivity.smk"
include: "workflow/rules/ntk.smk"
include: "workflow/rules/local_minima.smk"
include: "workflow/rules/report.smk"


rule all:
    input:
        "report/index.html",
