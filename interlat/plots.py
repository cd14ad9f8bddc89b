"""Figures for the report: accuracy (MATH) and success (ALFWorld) per variant with intervals, and training curves."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import polars as pl  # noqa: E402

from interlat import variants  # noqa: E402


def accuracy_plot(table: pl.DataFrame, path, title: str) -> None:
    """Horizontal bars of overall accuracy per variant with 95% bootstrap intervals."""
    t = table.sort("overall_mean")
    fig, ax = plt.subplots(figsize=(7, 0.45 * t.height + 1.5))
    y = range(t.height)
    err = [(t["overall_mean"] - t["overall_lo"]).to_list(), (t["overall_hi"] - t["overall_mean"]).to_list()]
    ax.barh(list(y), t["overall_mean"].to_list(), xerr=err, color="#4c72b0", capsize=3)
    ax.set_yticks(list(y), t["variant"].to_list())
    ax.set_xlabel("accuracy (%) with 95% bootstrap interval")
    ax.set_title(title)
    ax.set_xlim(0, 100)
    fig.tight_layout()
    fig.savefig(path, dpi=110, metadata={"Software": None})
    plt.close(fig)


def success_plot(table: pl.DataFrame, path, title: str) -> None:
    """ALFWorld: seen and unseen success per variant, side by side, with 95% bootstrap intervals."""
    t = table.reverse()
    fig, ax = plt.subplots(figsize=(7, 0.6 * t.height + 1.5))
    for k, (name, color) in enumerate((("seen", "#4c72b0"), ("unseen", "#dd8452"))):
        y = [i + (0.2 if k == 0 else -0.2) for i in range(t.height)]
        mean = t[f"{name}_mean"].fill_nan(0)
        err = [(mean - t[f"{name}_lo"].fill_nan(0)).to_list(), (t[f"{name}_hi"].fill_nan(0) - mean).to_list()]
        ax.barh(y, mean.to_list(), height=0.38, xerr=err, color=color, capsize=3, label=name)
    ax.set_yticks(list(range(t.height)), t["variant"].to_list())
    ax.set_xlabel("success (%) with 95% bootstrap interval")
    ax.set_title(title)
    ax.set_xlim(0, 100)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110, metadata={"Software": None})
    plt.close(fig)


def training_plot(logs: dict[str, pl.DataFrame], path) -> None:
    """CE, L_plan, L_rand and the dynamic weights against the step, one line per receiver."""
    keys = [("ce", "cross-entropy"), ("l_plan", "plan similarity"), ("l_rand", "random contrast"), ("w_plan", "w_plan / w_rand")]
    fig, axes = plt.subplots(1, 4, figsize=(16, 3.4))
    for ax, (key, label) in zip(axes, keys, strict=True):
        for name, df in sorted(logs.items()):
            if key in df.columns and df[key].drop_nulls().len():
                ax.plot(df["step"].to_list(), df[key].to_list(), label=name, lw=1)
            if key == "w_plan" and "w_rand" in df.columns and df["w_rand"].drop_nulls().len():
                ax.plot(df["step"].to_list(), df["w_rand"].to_list(), ls="--", label=f"{name} w_rand", lw=1)
        ax.set_title(label)
        ax.set_xlabel("step")
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110, metadata={"Software": None})
    plt.close(fig)


def compression_plot(table: pl.DataFrame, path, what: str = "accuracy") -> None:
    """Table 3 as a scatter: accuracy (ALFWorld: success; 95% intervals) against total latency per message."""
    t = table.filter(pl.col("total_s").is_not_nan())
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for r in t.iter_rows(named=True):
        family = variants.parse(r["variant"]).family if variants.is_variant(r["variant"]) else None
        color = {"interlat": "#c44e52", "compressed_<K>": "#4c72b0", "first_<K>": "#55a868",
                 "truncated_<p>": "#8172b2"}.get(family, "#777777")
        err = [[r["overall_mean"] - r["overall_lo"]], [r["overall_hi"] - r["overall_mean"]]]
        ax.errorbar([r["total_s"]], [r["overall_mean"]], yerr=err, fmt="o", color=color, capsize=3)
        ax.annotate(r["variant"], (r["total_s"], r["overall_mean"]), textcoords="offset points", xytext=(4, 4), fontsize=7)
    ax.set_xscale("log")
    until = "first action" if what == "success" else "first token"
    ax.set_xlabel(f"seconds per task: message + receiver's {until} (log)")
    ax.set_ylabel(f"{what} (%) with 95% bootstrap interval")
    ax.set_title(f"Compression: {what} against latency")
    fig.tight_layout()
    fig.savefig(path, dpi=110, metadata={"Software": None})
    plt.close(fig)
