"""Figures for the report: accuracy per variant with intervals, and training curves."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import polars as pl  # noqa: E402


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
