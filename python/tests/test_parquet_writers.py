"""The fast Parquet reader (its own page reader, arrow-rs for the rest), the
plain one (arrow-rs's record batch reader) and polars' own Parquet reader
(each file read by polars, audited as a table by the Python package) give
the same findings on files from each writer payers use: pyarrow, DuckDB,
Spark and polars; typed and all-string; dictionary, plain and delta
encoded; v1 and v2 data pages. All agree with the CSV the files were made
from."""

import subprocess
from pathlib import Path

import pyarrow as pa
import pyarrow.compute  # noqa: F401
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

import claims_audit
from test_spark import cli  # the Spark session is conftest.py's `spark`

LINES = 40000


def run(out: Path, engine: str, *inputs: Path) -> list:
    subprocess.run([cli(), "run", "--quiet", "--engine", engine, "--out", str(out), *map(str, inputs)], check=True)
    t = pq.read_table(out / "findings.parquet")
    return t.drop_columns(["run_id", "source_file"]).to_pylist()


def strings(path: Path) -> pa.Table:
    names = pacsv.read_csv(path).column_names
    return pacsv.read_csv(path, convert_options=pacsv.ConvertOptions(column_types={n: pa.string() for n in names}))


def typed(t: pa.Table) -> pa.Table:
    """Dates as DATE, units and money as DOUBLE where every value converts
    (the generator mixes date formats, as real extracts do); codes as text."""
    cols = []
    for name in t.column_names:
        c = t.column(name)
        to = None
        if name.endswith("_date"):
            to = pa.date32()
        elif name.endswith("_amount") or name in ("service_unit_quantity", "quantity", "days_supply"):
            to = pa.float64()
        if to is not None:
            try:
                c = pa.compute.cast(pa.compute.if_else(pa.compute.equal(c, ""), None, c), to)
            except pa.ArrowInvalid:
                pass
        cols.append(c)
    return pa.table(cols, names=t.column_names)


@pytest.fixture(scope="module")
def extract(tmp_path_factory):
    d = tmp_path_factory.mktemp("writers")
    med, rx = d / "medical.csv", d / "pharmacy.csv"
    subprocess.run(
        [cli(), "generate", "--lines", str(LINES), "--cohort", "300", "--seed", "11", "--out", str(med), "--pharmacy", str(rx)], check=True
    )
    return d, med, rx


def writers(d: Path, med: Path, rx: Path, spark_session):
    """(label, medical parquet, pharmacy parquet) for each writer and layout."""
    out = []
    tm, tr = strings(med), strings(rx)
    # pyarrow: all strings (dictionary), typed, and plain encoded.
    for label, m, r, kw in [
        ("pyarrow-strings", tm, tr, {}),
        ("pyarrow-typed", typed(tm), typed(tr), {"compression": "zstd"}),
        ("pyarrow-plain", tm, tr, {"use_dictionary": False, "compression": "gzip", "row_group_size": 7000}),
        # v2 data pages, small pages (chosen rows fall on many page edges).
        ("pyarrow-v2", typed(tm), typed(tr), {"data_page_version": "2.0", "compression": "lz4", "data_page_size": 2048}),
        # An encoding the page reader leaves to arrow-rs.
        ("pyarrow-delta", tm, tr, {"use_dictionary": False, "column_encoding": "DELTA_LENGTH_BYTE_ARRAY"}),
    ]:
        pm, pr = d / f"{label}-medical.parquet", d / f"{label}-pharmacy.parquet"
        pq.write_table(m, pm, **kw)
        pq.write_table(r, pr, **kw)
        out.append((label, pm, pr))
    # polars: typed dates, zstd, its own string types.
    import polars as pl

    for src, dst in ((med, "polars-medical.parquet"), (rx, "polars-pharmacy.parquet")):
        df = pl.read_csv(src, infer_schema=False)
        for c in [c for c in df.columns if c.endswith("_date")]:
            try:
                df = df.with_columns(pl.col(c).str.to_date("%Y-%m-%d", strict=True))
            except pl.exceptions.PolarsError:
                pass
        df.write_parquet(d / dst, row_group_size=9000)
    out.append(("polars", d / "polars-medical.parquet", d / "polars-pharmacy.parquet"))
    # DuckDB: all text as read, its default writer (snappy, dictionary).
    import duckdb

    for src, dst in ((med, "duckdb-medical.parquet"), (rx, "duckdb-pharmacy.parquet")):
        duckdb.sql(f"COPY (SELECT * FROM read_csv('{src}', all_varchar = true)) TO '{d / dst}' (FORMAT parquet)")
    out.append(("duckdb", d / "duckdb-medical.parquet", d / "duckdb-pharmacy.parquet"))
    # Spark: a directory with a part file (snappy), rows in the CSV's order.
    for src, dst in ((med, "spark-medical"), (rx, "spark-pharmacy")):
        spark_session.read.option("header", True).option("multiLine", True).option("escape", "\"").csv(str(src)).coalesce(1).write.mode("overwrite").parquet(str(d / dst))
    out.append(("spark", d / "spark-medical", d / "spark-pharmacy"))
    return out


def key(rows: list) -> list:
    """What a finding is, whatever the file format: no source line."""
    return [{k: v for k, v in r.items() if k != "source_line"} for r in rows]


def by_polars(path: Path) -> "object":
    """The file (or a Spark directory's part files) as polars reads it."""
    import polars as pl

    return pl.read_parquet(path / "*.parquet" if path.is_dir() else path)


def what(rows: list) -> list:
    """What a finding says, whatever the reader: its id, rule and message."""
    return sorted((r["finding_id"], r["rule_id"], r["message"]) for r in rows)


def test_fast_and_plain_readers_agree_on_every_writer(extract, spark, tmp_path):
    d, med, rx = extract
    from_csv = key(run(tmp_path / "csv", "fast", med, rx))
    assert len(from_csv) > 20
    for label, pm, pr in writers(d, med, rx, spark):
        fast = run(tmp_path / f"{label}-fast", "fast", pm, pr)
        plain = run(tmp_path / f"{label}-plain", "plain", pm, pr)
        assert fast == plain, label
        assert key(fast) == from_csv, label
        # polars' Parquet decoder, independent of arrow-rs.
        ref = claims_audit.audit(by_polars(pm), by_polars(pr)).findings.to_pylist()
        assert what(ref) == what(fast), label
