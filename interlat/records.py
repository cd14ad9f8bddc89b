"""Evaluation records as the tables read them: one `interlat evaluate` Parquet file checked
(readable, records not a shard part, the columns and types the tables need), and several
files joined into one frame. Every problem is one line naming the file."""

import polars as pl

RECORD_COLUMNS = {
    "math": {"task_id": pl.String, "variant": pl.String, "seed": pl.Int64, "subject": pl.String,
             "level": pl.Int64, "correct": pl.Boolean, "message_rows": pl.Int64},
    "alfworld": {"task_id": pl.String, "variant": pl.String, "seed": pl.Int64, "split": pl.String,
                 "task_type": pl.String, "won": pl.Boolean, "steps": pl.Int64},
}


def _type_ok(actual: pl.DataType, expected: pl.DataType) -> bool:
    if expected == pl.Int64:
        return actual.is_integer()
    return actual == expected


def read_records(path) -> pl.DataFrame:
    """One `interlat evaluate` Parquet file, checked: readable, evaluation records (not a shard
    part or other table), at least one row, the columns the tables read with their types.
    Anything else is one line naming the file."""
    import pyarrow as pa

    from interlat.errors import InterlatError

    def why(e: Exception) -> str:
        return (str(e).strip().splitlines() or [type(e).__name__])[0]

    try:
        schema = pl.read_parquet_schema(path)
    except (OSError, pl.exceptions.PolarsError, pa.ArrowException) as e:
        raise InterlatError(f"{path}: not a readable Parquet file ({why(e)})") from None
    if "hidden_state" in schema:
        raise InterlatError(f"{path}: a shard part (latent messages), expected the records of `interlat evaluate`")
    benchmark = "alfworld" if {"won", "steps"} & set(schema) else "math"
    if benchmark == "math" and "correct" not in schema:
        raise InterlatError(f"{path}: not evaluation records (no \"correct\" or \"won\" column; columns: "
                            f"{', '.join(schema) or 'none'})")
    for name, dtype in RECORD_COLUMNS[benchmark].items():
        if name not in schema:
            raise InterlatError(f'{path}: column "{name}": missing ({benchmark} evaluation records)')
        if not _type_ok(schema[name], dtype):
            raise InterlatError(f'{path}: column "{name}": {schema[name]}, expected {dtype}')
    try:
        df = pl.read_parquet(path)
    except (OSError, pl.exceptions.PolarsError, pa.ArrowException) as e:
        raise InterlatError(f"{path}: unreadable ({why(e)})") from None
    if df.height == 0:
        raise InterlatError(f"{path}: no evaluation records (0 rows)")
    return df


def concat_records(files: list[tuple[str, pl.DataFrame]]) -> pl.DataFrame:
    """Records of several evaluation files as one frame: columns one file has and another lacks
    are null there, types are widened to a common one; columns that cannot be joined are one
    line naming the two files."""
    from interlat.errors import InterlatError

    try:
        return pl.concat([df for _, df in files], how="diagonal_relaxed")
    except pl.exceptions.PolarsError:
        first, schema = files[0][0], files[0][1].schema
        for path, df in files[1:]:
            clash = [c for c in df.columns if c in schema and df.schema[c] != schema[c]]
            if clash:
                raise InterlatError(f'{path}: column "{clash[0]}": {df.schema[clash[0]]}, but {schema[clash[0]]} '
                                    f"in {first}; records of one table must share their columns' types") from None
        raise
