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
    """CE, L_plan, L_rand and the dynamic weights against the step, one line per receiver.

    Each receiver keeps its colour in every panel and one legend under the panels names them
    all; 2 x 2 panels, so the figure fits the report's panel without shrinking its text.
    """
    keys = [("ce", "cross-entropy (CE)"), ("l_plan", "plan similarity (L_plan)"),
            ("l_rand", "random contrast (L_rand)"), ("w_plan", "loss weights: w_plan (solid), w_rand (dashed)")]
    names = sorted(logs)
    palette = plt.get_cmap("tab10" if len(names) <= 10 else "tab20").colors
    colors = {name: palette[i % len(palette)] for i, name in enumerate(names)}
    columns = min(len(names), 3) or 1
    rows = -(-len(names) // columns)
    fig, axes = plt.subplots(2, 2, figsize=(11, 7 + 0.25 * rows))
    for ax, (key, label) in zip(axes.flat, keys, strict=True):
        drawn = False
        for name in names:
            df = logs[name]
            if key in df.columns and df[key].drop_nulls().len():
                ax.plot(df["step"].to_list(), df[key].to_list(), color=colors[name], lw=1.2)
                drawn = True
            if key == "w_plan" and "w_rand" in df.columns and df["w_rand"].drop_nulls().len():
                ax.plot(df["step"].to_list(), df["w_rand"].to_list(), color=colors[name], ls="--", lw=1.2)
        if not drawn:
            ax.text(0.5, 0.5, "not logged (no interlat receiver with contrast)", ha="center", va="center",
                    transform=ax.transAxes, color="#777777")
        ax.set_title(label)
        ax.set_xlabel("optimizer step")
        ax.grid(alpha=0.3)
    handles = [plt.Line2D([], [], color=colors[name], lw=2, label=name) for name in names]
    fig.legend(handles=handles, loc="lower center", ncol=columns, fontsize=9, frameon=False)
    fig.tight_layout(rect=(0, (0.15 + 0.22 * rows) / (7 + 0.25 * rows), 1, 1))
    fig.savefig(path, dpi=110, metadata={"Software": None})
    plt.close(fig)


def compression_plot(table: pl.DataFrame, path, what: str = "accuracy") -> None:
    """Table 3 as a scatter: accuracy (ALFWorld: success; 95% intervals) against total latency per message."""
    t = table.filter(pl.col("total_s").is_not_nan())
    fig, ax = plt.subplots(figsize=(7, 4.5))
    # a colour per family, a marker per message within it, named in the legend (labels written
    # beside the points overlapped wherever two messages took the same time)
    markers, used = "osD^vP*X", {}
    for r in t.iter_rows(named=True):
        family = variants.parse(r["variant"]).family if variants.is_variant(r["variant"]) else None
        color = {"interlat": "#c44e52", "compressed_<K>": "#4c72b0", "first_<K>": "#55a868",
                 "truncated_<p>": "#8172b2"}.get(family, "#777777")
        marker = markers[used.get(family, 0) % len(markers)]
        used[family] = used.get(family, 0) + 1
        err = [[r["overall_mean"] - r["overall_lo"]], [r["overall_hi"] - r["overall_mean"]]]
        ax.errorbar([r["total_s"]], [r["overall_mean"]], yerr=err, fmt=marker, color=color, capsize=3, ms=6,
                    alpha=0.85, label=r["variant"])
    if t.height:
        ax.legend(fontsize=8, title="message", title_fontsize=8, loc="best")
    ax.set_xscale("log")
    until = "first action" if what == "success" else "first token"
    ax.set_xlabel(f"seconds per task: message + receiver's {until} (log)")
    ax.set_ylabel(f"{what} (%) with 95% bootstrap interval")
    ax.set_title(f"Compression: {what} against latency")
    fig.tight_layout()
    fig.savefig(path, dpi=110, metadata={"Software": None})
    plt.close(fig)
