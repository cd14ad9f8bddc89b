"""Benchmark result tables: rows of one dict per method, as CSV or Markdown, written atomically."""

from interlat.atomic import write_csv, write_text


def to_markdown(rows: list[dict], columns: list[str], caption: str = "", left: tuple[str, ...] = ("method",)) -> str:
    """The rows as a Markdown table under `caption` (the `left` columns left-aligned, numbers right)."""
    lines = [caption, ""] if caption else []
    lines.append("| " + " | ".join(columns) + " |")
    lines.append("|" + "|".join("---" if c in left else "--:" for c in columns) + "|")
    lines += ["| " + " | ".join(str(r[c]) for c in columns) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def write_table(path, rows: list[dict], columns: list[str], caption: str) -> None:
    """Write the rows as CSV (`.csv`) or a Markdown table (any other suffix), atomically."""
    if str(path).endswith(".csv"):
        write_csv(path, rows, columns)
    else:
        write_text(path, to_markdown(rows, columns, caption))
