# globalmin: replication of Kawaguchi & Sun's recipe A(base). `snakemake --cores all` builds report/index.html.
# The stages live in workflow/rules/ (one file per stage, named after the module it runs), the logic in
# src/globalmin/; rules only wire files.
import os

import yaml
from snakemake.exceptions import WorkflowError
from snakemake.utils import min_version, validate

from globalmin.conditions import expand
from globalmin.config_checks import coerce_strings, problems, schema_errors, unknown_keys, yaml_problem

min_version("9.0")

# A syntax error in the workflow's own config names its file and line (Snakemake's message names neither).
if yaml_problem("config/config.yaml"):
    raise WorkflowError(yaml_problem("config/config.yaml"))


configfile: "config/config.yaml"


# DVC experiments set values in params.yaml, a comment-free layer over config/config.yaml (DVC rewrites the file it
# sets in its own layout: docs/dvc-experiments.md); --config and --configfile on the command line still win.
if os.path.exists("params.yaml"):
    if yaml_problem("params.yaml"):
        raise WorkflowError(yaml_problem("params.yaml"))

    configfile: "params.yaml"


# Unknown keys and refused values get one short line each (jsonschema's own message prints the whole section),
# then Snakemake's validation fills the defaults, then the checks a schema cannot express run: all before any job.
SCHEMA = "workflow/schemas/config.schema.yaml"
schema = yaml.safe_load(open(SCHEMA, encoding="utf-8"))
coerce_strings(config, schema)  # Snakemake 9 reads recipe='{tau_fraction: 0.75}' as '0.75' (docs/running.md)
config_problems = unknown_keys(config, schema) or schema_errors(config, schema)
if config_problems:
    raise WorkflowError("invalid configuration:\n  - " + "\n  - ".join(config_problems))
validate(config, SCHEMA)
config_problems = problems(config)
if config_problems:
    raise WorkflowError("invalid configuration:\n  - " + "\n  - ".join(config_problems))
# The width sweep's points become conditions of their own (globalmin/conditions.py).
expanded = expand(config)
config["conditions"], config["experiment"]["conditions"] = expanded["conditions"], expanded["experiment"]["conditions"]


wildcard_constraints:
    dataset="[a-z0-9_]+",
    condition="[a-z0-9_]+",
    aug="aug|noaug",
    seed=r"\d+",


include: "workflow/rules/common.smk"
include: "workflow/rules/sources.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/base.smk"
include: "workflow/rules/recipe.smk"
include: "workflow/rules/aggregate.smk"
include: "workflow/rules/fc_theory.smk"
include: "workflow/rules/ntk.smk"
include: "workflow/rules/beyond_ntk.smk"
include: "workflow/rules/local_minima.smk"
include: "workflow/rules/figures.smk"
include: "workflow/rules/claims.smk"
include: "workflow/rules/report.smk"
include: "workflow/rules/notebook.smk"


rule all:
    input:
        rules.report.output.html,
        rules.notebook.output,
