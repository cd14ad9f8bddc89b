"""Where each reported file goes in `snakemake --report`: a category per pipeline stage, a
subcategory per benchmark, and labels saying what the file is.

workflow/rules/tables.smk passes `category`, `subcategory` and `labels` to `report(...)` for
every file of results/<run>/tables/ (the `{name}.{ext}` pattern's wildcards);
workflow/report/tables.rst holds one caption per file stem. A stem missing here lands in
"4. Evaluation / other" and tests/test_report_layout.py fails, so a new table gets a place.

The per-receiver training logs (rule `train`, results/<run>/train/<benchmark>/replicate<r>/
<receiver>.csv; caption workflow/report/train.rst) go to "2. Training" and the latency tables
(rule `latency`, results/<run>/latency/<benchmark>/{full,K<k>}.csv; caption
workflow/report/latency.rst) to "3. Compression", each under its benchmark's subcategory
(`benchmark_subcategory`), labelled by `train_labels` / `latency_labels`.

The report's JavaScript keys a subcategory's rows by their label values and turns a label
(other than the first) with exactly two values, each on half the rows, into a toggle: no label
may repeat another's information (a replicate inside a file name), or a toggled row has no file.
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
#: benchmark (the `{benchmark}` wildcard) -> its subcategory, as the tables' subcategories spell it
BENCHMARKS = {"math": "MATH", "alfworld": "ALFWorld"}
KINDS = {"csv": "table (CSV)", "md": "table (Markdown)", "png": "figure", "yml": "YAML", "yaml": "YAML"}


def category(wildcards) -> str:
    return STAGES[FILES.get(wildcards.name, ("evaluation",))[0]]


def subcategory(wildcards) -> str:
    return FILES.get(wildcards.name, ("", "other"))[1]


def labels(wildcards) -> dict[str, str]:
    what = FILES.get(wildcards.name, ("", "", wildcards.name))[2]
    return {"file": wildcards.name, "shows": what, "kind": KINDS.get(wildcards.ext, wildcards.ext)}


def benchmark_subcategory(wildcards) -> str:
    """The subcategory of a per-benchmark file (training log, latency table): MATH, ALFWorld."""
    return BENCHMARKS.get(wildcards.benchmark, wildcards.benchmark)


def train_labels(wildcards) -> dict[str, str]:
    """A receiver's training log: which receiver (the variant it is evaluated as), replicate, benchmark."""
    return {
        "variant": wildcards.receiver,
        "replicate": str(wildcards.replicate),
        "benchmark": benchmark_subcategory(wildcards),
        "kind": "training log (CSV)",
    }


def latency_labels(wildcards) -> dict[str, str]:
    """A latency table, in the layout of the tables beside it (file, shows, kind) plus its message."""
    message = wildcards.message
    shows = (
        "latency: full message and untrained baselines"
        if message == "full"
        else f"latency: full message and compressed_{message[1:]}"
    )
    return {
        "file": f"latency/{wildcards.benchmark}/{message}.csv",
        "shows": shows,
        "kind": KINDS["csv"],
        "benchmark": benchmark_subcategory(wildcards),
        "message": message,
    }
