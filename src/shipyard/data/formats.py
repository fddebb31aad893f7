"""Dataset file formats: which files of a tree are table data, writing frames deterministically, reading tables back.

A version is tabular when all its data files share one format (Parquet, CSV or JSON lines); a
directory of Parquet files is one table. Files whose name (or a parent directory's) starts with
``_`` or ``.`` are bookkeeping (Spark's ``_SUCCESS``, ``.crc`` files) and are kept but not read.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from typing import Any

from shipyard.core.errors import InvalidInput

TABULAR_FORMATS = ("parquet", "csv", "jsonl")
_EXTENSIONS = {
    ".parquet": "parquet",
    ".pq": "parquet",
    ".parq": "parquet",
    ".csv": "csv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
}
FRAME_FILE = "data.parquet"  # the one file a DataFrame or Table is written to
ROW_GROUP = 1_000_000


def _is_bookkeeping(rel: str) -> bool:
    return any(part.startswith(("_", ".")) for part in rel.split("/"))


def format_of(rel: str) -> str | None:
    return _EXTENSIONS.get(os.path.splitext(rel)[1].lower())


def detect_format(rels: Iterable[str]) -> str:
    """``parquet``/``csv``/``jsonl`` when every data file has that format, else ``files``."""
    found = {format_of(rel) for rel in rels if not _is_bookkeeping(rel)}
    if len(found) == 1:
        (only,) = found
        if only is not None:
            return only
    return "files"


def data_files(rels: Iterable[str], fmt: str) -> list[str]:
    """The relative paths holding the table's rows, in a stable order."""
    if fmt not in TABULAR_FORMATS:
        return []
    return sorted(rel for rel in rels if not _is_bookkeeping(rel) and format_of(rel) == fmt)


def is_frame(obj: Any) -> bool:
    """A pandas DataFrame or a pyarrow Table/RecordBatch (checked without importing pandas)."""
    module = type(obj).__module__ or ""
    return (module.startswith("pandas") and type(obj).__name__ == "DataFrame") or (
        module.startswith("pyarrow") and type(obj).__name__ in ("Table", "RecordBatch")
    )


def write_frame(obj: Any, directory: str) -> str:
    """Write a DataFrame or Table as one Parquet file; the same frame always gives the same bytes."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    if type(obj).__name__ == "DataFrame":
        try:
            table = pa.Table.from_pandas(obj)
        except (pa.ArrowException, TypeError, ValueError) as exc:
            raise InvalidInput(f"cannot store this DataFrame as Parquet: {exc}", field="source") from None
    elif isinstance(obj, pa.RecordBatch):
        table = pa.Table.from_batches([obj])
    else:
        table = obj
    path = os.path.join(directory, FRAME_FILE)
    # Fixed options (not library defaults that may drift) so a frame's digest is stable.
    pq.write_table(
        table,
        path,
        row_group_size=ROW_GROUP,
        compression="zstd",
        compression_level=3,
        use_dictionary=True,
        write_statistics=True,
        version="2.6",
    )
    return path


def read_table(paths: Sequence[str], fmt: str) -> Any:
    """Read the data files (local paths, in order) as one pyarrow Table."""
    import pyarrow as pa

    if fmt not in TABULAR_FORMATS:
        raise InvalidInput(f"dataset format {fmt!r} is not tabular; use get_dataset_files instead", field="format")
    tables = []
    for path in paths:
        try:
            if fmt == "parquet":
                import pyarrow.parquet as pq

                tables.append(pq.read_table(path))
            elif fmt == "csv":
                import pyarrow.csv as pcsv

                tables.append(pcsv.read_csv(path))
            else:
                import pyarrow.json as pjson

                tables.append(pjson.read_json(path))
        except (pa.ArrowException, OSError) as exc:
            raise InvalidInput(f"cannot read {fmt} file {path}: {exc}", field="path") from None
    if not tables:
        return pa.table({})
    if len(tables) == 1:
        return tables[0]
    try:
        return pa.concat_tables(tables, promote_options="permissive")
    except pa.ArrowException as exc:
        raise InvalidInput(f"the {fmt} files do not share one schema: {exc}", field="path") from None
