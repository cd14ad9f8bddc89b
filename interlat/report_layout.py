"""Where each reported file goes in `snakemake --report`: a category per pipeline stage, a
subcategory per benchmark, and labels saying what the file is.

workflow/rules/tables.smk passes `category`, `subcategory` and `labels` to `report(...)` for
every file of results/<run>/tables/ (the `{name}.{ext}` pattern's wildcards);
workflow/report/tables.rst holds one caption per file stem. A stem missing here lands in
"4. Evaluation / other" and tests/test_report_layout.py fails, so a new table gets a place.
"""

STAGES = {
    "data": "1. Data",
    "training": "2. Training",
    "compression": "3. Compression",
    "evaluation": "4. Evaluation",
    "run": "5. Run",
}

#: file stem -> (stage, subcategory, what it is)
FILES = {
    "table2_math": ("evaluation", "MATH", "Table 2: accuracy per message variant"),
    "math_subjects": ("evaluation", "MATH", "accuracy per subject"),
    "accuracy": ("evaluation", "MATH", "accuracy per variant (plot)"),
    "table1_alfworld": ("evaluation", "ALFWorld", "Table 1: success per message variant"),
    "alfworld_task_types": ("evaluation", "ALFWorld", "success per task type"),
    "alfworld_success": ("evaluation", "ALFWorld", "success per variant (plot)"),
    "comparisons": ("evaluation", "all benchmarks", "interlat minus each variant, paired"),
    "training": ("training", "receivers", "training curves (plot)"),
    "table3_compression": ("compression", "MATH", "Table 3: accuracy and latency per message"),
    "compression": ("compression", "MATH", "accuracy against latency (plot)"),
    "table3_compression_alfworld": ("compression", "ALFWorld", "Table 3: success and latency per message"),
    "compression_alfworld": ("compression", "ALFWorld", "success against latency (plot)"),
}
KINDS = {"csv": "table (CSV)", "md": "table (Markdown)", "png": "figure", "yml": "YAML", "yaml": "YAML"}


def category(wildcards) -> str:
    return STAGES[FILES.get(wildcards.name, ("evaluation",))[0]]


def subcategory(wildcards) -> str:
    return FILES.get(wildcards.name, ("", "other"))[1]


def labels(wildcards) -> dict[str, str]:
    what = FILES.get(wildcards.name, ("", "", wildcards.name))[2]
    return {"file": wildcards.name, "shows": what, "kind": KINDS.get(wildcards.ext, wildcards.ext)}
