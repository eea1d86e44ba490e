"""The output tables are what schemas/outputs.md says (column names, order
and Parquet types), and the tools analysts use open them: pandas, polars
and DuckDB, each with the row counts the manifest gives."""

import json
import re
import subprocess
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from test_spark import REPO, cli

# The dictionary's type names as (physical type, logical type) of a column.
TYPES = {
    "STRING": ("BYTE_ARRAY", "String"),
    "DATE": ("INT32", "Date"),
    "INT64": ("INT64", "None"),
    "INT32": ("INT32", "None"),
    "DOUBLE": ("DOUBLE", "None"),
}
TABLES = ["findings", "episodes", "rejects", "resolved", "timeline"]


def dictionary() -> dict:
    """{table: [(column, (physical, logical))]} from the data dictionary."""
    out, table = {}, None
    for line in (REPO / "schemas" / "outputs.md").read_text().splitlines():
        m = re.match(r"## (\w+)\.parquet", line)
        if m:
            table = m.group(1)
            # resolved.parquet: the columns of findings.parquet, plus its own.
            out[table] = list(out["findings"]) if table == "resolved" else []
            continue
        if line.startswith("## "):
            table = None
        m = re.match(r"\| (\w+) \| (STRING|DATE|INT64|INT32|DOUBLE)[^|]*\|", line)
        if table and m:
            out[table].append((m.group(1), TYPES[m.group(2)]))
    return out


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("outputs") / "out"
    subprocess.run([cli(), "run", "--quiet", "--out", str(out), str(REPO / "sample_data")], check=True)
    return out


def test_tables_have_the_columns_and_types_of_the_data_dictionary(run):
    want = dictionary()
    assert set(want) == set(TABLES)
    for t in TABLES:
        schema = pq.ParquetFile(run / f"{t}.parquet").schema
        cols = [schema.column(i) for i in range(len(schema))]
        # A plain integer may carry an Int(bitWidth, signed) annotation.
        logical = lambda c: "None" if str(c.logical_type).startswith("Int(") else str(c.logical_type)  # noqa: E731
        assert [(c.name, (c.physical_type, logical(c))) for c in cols] == want[t], t


def test_pandas_polars_and_duckdb_open_every_table(run):
    import duckdb
    import pandas as pd
    import polars as pl

    rows = {o["path"]: o["rows"] for o in json.loads((run / "manifest.json").read_text())["outputs"]}
    for t in TABLES:
        path = run / f"{t}.parquet"
        n = rows[f"{t}.parquet"]
        assert len(pd.read_parquet(path)) == n, t
        assert pl.read_parquet(path).height == n, t
        assert duckdb.sql(f"SELECT count(*) FROM '{path}'").fetchall()[0][0] == n, t
    # Dates are dates and money is numeric in each of them.
    f = run / "findings.parquet"
    assert pl.read_parquet(f).schema["service_date"] == pl.Date
    assert str(pd.read_parquet(f)["amount_at_stake"].dtype) == "float64"
    at_stake = duckdb.sql(f"SELECT sum(amount_at_stake) FROM '{f}' WHERE service_date >= DATE '2020-01-01'").fetchall()[0][0]
    assert at_stake > 0
