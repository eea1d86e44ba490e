"""One extract through every Parquet writer and option this environment
has (issue 27): pyarrow with every codec, data page v2, no dictionary, the
delta encodings and byte-stream-split; DuckDB (TIMESTAMPTZ, DECIMAL);
polars and pandas (UTC and named-zone datetimes); column types large and
view strings, dictionary strings, timestamps in every unit with and without
a zone, INT96, decimal units and money; a partitioned layout. Each variant,
read by the command line's fast and plain engines, gives the CSV's findings
exactly. The partitioned layout is given as its table directory, with the
part files in `year=...` folders beside a `_SUCCESS` marker."""

import datetime as dt
import decimal
import os
import subprocess
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

REPO = Path(__file__).resolve().parents[2]
LINES = 20000
DATES = ("claim_start_date", "claim_end_date", "claim_line_start_date", "claim_line_end_date")
MONEY = ("paid_amount", "allowed_amount", "charge_amount")
UNITS = ("service_unit_quantity",)


def cli() -> str:
    """The command line `cargo test --release` built (scripts/test_python.sh names it)."""
    b = os.environ.get("CLAIMS_AUDIT_BIN")
    if b:
        return b
    return str(Path(os.environ.get("CARGO_TARGET_DIR", str(REPO / "target"))) / "release" / "claims-audit")


def findings(out: Path, engine: str, *inputs) -> list:
    """The run's findings without what names the file or row: run_id,
    source_file, source_line."""
    r = subprocess.run([cli(), "run", "--quiet", "--engine", engine, "--out", str(out), *map(str, inputs)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    t = pq.read_table(out / "findings.parquet")
    return t.drop_columns(["run_id", "source_file", "source_line"]).to_pylist()


def parse_date(s):
    """The generator's date forms (INPUT.md: YYYY-MM-DD, YYYYMMDD, MM/DD/YYYY)."""
    if s is None or s == "":
        return None
    for f in ("%Y-%m-%d", "%Y%m%d", "%m/%d/%Y"):
        try:
            return dt.datetime.strptime(s, f).date()
        except ValueError:
            pass
    raise ValueError(f"date {s!r}")


@pytest.fixture(scope="module")
def extract(tmp_path_factory):
    """The generated extract as text (CSV), as a table of strings, and its findings."""
    d = tmp_path_factory.mktemp("corpus")
    csv = d / "medical.csv"
    subprocess.run([cli(), "generate", "--lines", str(LINES), "--cohort", "200", "--seed", "27", "--out", str(csv)], check=True)
    names = pacsv.read_csv(csv).column_names
    t = pacsv.read_csv(csv, convert_options=pacsv.ConvertOptions(column_types={n: pa.string() for n in names}))
    want = findings(d / "csv-out", "fast", csv)
    assert len(want) > 20
    return d, t, want


def replace(t: pa.Table, names, fn) -> pa.Table:
    for n in names:
        if n in t.column_names:
            t = t.set_column(t.column_names.index(n), n, fn(t.column(n).to_pylist()))
    return t


def dates(t: pa.Table) -> pa.Table:
    return replace(t, DATES, lambda v: pa.array([parse_date(x) for x in v], pa.date32()))


def stamps(t: pa.Table, unit: str, tz, hour: int = 21) -> pa.Table:
    """Date columns as timestamps at `hour` o'clock local time in `tz` (none:
    wall-clock). At 21:00 in New York the UTC date is the next day's: only
    the column's own zone gives the CSV's date."""

    def conv(v):
        naive = pa.array([None if x is None else dt.datetime.combine(parse_date(x), dt.time(hour)) for x in v], pa.timestamp(unit))
        return naive if tz is None else pc.assume_timezone(naive, tz)

    return replace(t, DATES, conv)


def decimals(t: pa.Table) -> pa.Table:
    def conv(v):
        return pa.array([None if x in (None, "") else decimal.Decimal(x) for x in v], pa.decimal128(18, 4))

    return replace(t, UNITS + MONEY, conv)


def retype(t: pa.Table, ty) -> pa.Table:
    """Every string column as `ty` (large_string, string_view, dictionary)."""
    cols = [c.cast(ty) if c.type == pa.string() else c for c in t.columns]
    return pa.table(cols, names=t.column_names)


def pyarrow_variants(d: Path, t: pa.Table):
    """(label, path) of each pyarrow file."""
    out = []

    def write(label, table, **kw):
        p = d / f"pyarrow-{label}.parquet"
        pq.write_table(table, p, **kw)
        out.append((label, p))

    typed = dates(t)
    for codec in ("none", "snappy", "gzip", "brotli", "lz4", "zstd"):
        write(f"codec-{codec}", typed, compression=codec)
    write("page-v2", typed, data_page_version="2.0", compression="zstd", data_page_size=4096)
    write("no-dictionary", t, use_dictionary=False)
    write(
        "delta",
        decimals(t).set_column(t.column_names.index("claim_line_number"), "claim_line_number", pc.cast(t.column("claim_line_number"), pa.int64())),
        use_dictionary=False,
        column_encoding={
            "claim_id": "DELTA_BYTE_ARRAY",
            "person_id": "DELTA_LENGTH_BYTE_ARRAY",
            "hcpcs_code": "DELTA_BYTE_ARRAY",
            "diagnosis_code_1": "DELTA_LENGTH_BYTE_ARRAY",
            "claim_line_number": "DELTA_BINARY_PACKED",
        },
    )
    floats = replace(t, UNITS + MONEY, lambda v: pa.array([None if x in (None, "") else float(x) for x in v], pa.float64()))
    write("byte-stream-split", floats, use_dictionary=False, column_encoding={n: "BYTE_STREAM_SPLIT" for n in UNITS + MONEY})
    write("large-string", retype(t, pa.large_string()))
    write("string-view", retype(t, pa.string_view()))
    write("dictionary", retype(t, pa.dictionary(pa.int32(), pa.string())))
    write("decimal", decimals(typed))
    for unit in ("s", "ms", "us", "ns"):
        for tz in (None, "UTC", "America/New_York"):
            write(f"timestamp-{unit}-{tz or 'naive'}".replace("/", "_"), stamps(t, unit, tz))
    # INT96 (Spark's and Impala's old timestamps): UTC instants, UTC dates.
    write("int96", stamps(t, "ns", "UTC", hour=12), use_deprecated_int96_timestamps=True)
    return out


def duckdb_variants(d: Path, typed: Path):
    """DuckDB from the DATE-typed file: TIMESTAMPTZ (UTC session), TIMESTAMP,
    DECIMAL units and money; its codecs."""
    import duckdb

    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    cols = con.execute(f"SELECT * FROM read_parquet('{typed}') LIMIT 0").description
    names = [c[0] for c in cols]
    out = []
    for label, date_to, codec in (("timestamptz", "TIMESTAMPTZ", "snappy"), ("timestamp", "TIMESTAMP", "zstd"), ("date", "DATE", "gzip")):
        sel = []
        for n in names:
            if n in DATES:
                sel.append(f"CAST(CAST({n} AS TIMESTAMP) + INTERVAL 10 HOUR AS {date_to}) AS {n}")
            elif n in UNITS + MONEY:
                sel.append(f"CAST(NULLIF({n}, '') AS DECIMAL(18, 4)) AS {n}")
            else:
                sel.append(n)
        p = d / f"duckdb-{label}.parquet"
        con.execute(f"COPY (SELECT {', '.join(sel)} FROM read_parquet('{typed}')) TO '{p}' (FORMAT parquet, COMPRESSION {codec})")
        out.append((f"duckdb-{label}", p))
    return out


def polars_variants(d: Path, t: pa.Table):
    """polars: its own string views; datetimes in UTC and New York, ms to ns."""
    import polars as pl

    out = []
    for unit, tz, codec in (("ms", "UTC", "zstd"), ("us", "America/New_York", "brotli"), ("ns", None, "lz4")):
        df = pl.from_arrow(stamps(t, unit, tz))
        p = d / f"polars-{unit}.parquet"
        df.write_parquet(p, compression=codec)
        out.append((f"polars-{unit}-{tz}", p))
    return out


def pandas_variants(d: Path, t: pa.Table):
    """pandas: tz-aware datetime64[ns] columns, UTC and named."""
    out = []
    for tz in ("UTC", "America/New_York"):
        df = stamps(t, "ns", tz).to_pandas()
        p = d / f"pandas-{tz.replace('/', '_')}.parquet"
        df.to_parquet(p, index=False)
        out.append((f"pandas-{tz}", p))
    return out


def test_every_writer_and_option_gives_the_csvs_findings(extract):
    d, t, want = extract
    variants = pyarrow_variants(d, t)
    variants += duckdb_variants(d, d / "pyarrow-codec-snappy.parquet")
    variants += polars_variants(d, t)
    variants += pandas_variants(d, t)
    # A partitioned layout: two part files under year=... folders.
    half = t.num_rows // 2
    for k, (year, part) in enumerate((("2025", t.slice(0, half)), ("2026", t.slice(half)))):
        (d / "medical" / f"year={year}").mkdir(parents=True, exist_ok=True)
        pq.write_table(dates(part), d / "medical" / f"year={year}" / f"part-{k}.parquet")
    (d / "medical" / "_SUCCESS").write_bytes(b"")
    variants.append(("partitioned", str(d / "medical")))
    failed = []
    for label, path in variants:
        for engine in ("fast", "plain"):
            try:
                got = findings(d / f"out-{label}-{engine}", engine, path)
            except AssertionError as e:
                failed.append(f"{label} ({engine}): {str(e).strip()}")
                continue
            if got != want:
                failed.append(f"{label} ({engine}): {len(got)} findings, the CSV gives {len(want)}")
    assert not failed, "\n".join(failed)


def test_nested_columns_are_refused_naming_file_column_and_type(extract):
    d, t, _ = extract
    i = t.column_names.index("hcpcs_code")
    listed = t.set_column(i, "hcpcs_code", pa.array([[v] for v in t.column("hcpcs_code").to_pylist()], pa.list_(pa.string())))
    p = d / "list.parquet"
    pq.write_table(listed, p)
    for engine in ("fast", "plain"):
        r = subprocess.run([cli(), "run", "--quiet", "--engine", engine, "--out", str(d / f"list-{engine}"), str(p)], capture_output=True, text=True)
        assert r.returncode == 3, r.stderr
        assert str(p) in r.stderr and "hcpcs_code" in r.stderr and "list<string>" in r.stderr
        assert len(r.stderr.strip().splitlines()) == 1


def test_arrow_tables_from_python_are_checked_and_zoned(extract):
    """Tables handed to the package: a zoned timestamp column (pandas'
    datetime64[ns, America/New_York], polars' UTC datetimes) gives the CSV's
    findings; a list<string> code column is refused with ValueError naming
    the table, the column and the type."""
    claims_audit = pytest.importorskip("claims_audit")
    import polars as pl

    d, t, want = extract

    def what(rows):
        return sorted((r["finding_id"], r["rule_id"], r["message"]) for r in rows)

    expected = what(want)
    for table in (stamps(t, "ns", "America/New_York").to_pandas(), pl.from_arrow(stamps(t, "us", "UTC"))):
        assert what(claims_audit.audit(table).findings.to_pylist()) == expected
    i = t.column_names.index("hcpcs_code")
    listed = t.set_column(i, "hcpcs_code", pa.array([[v] for v in t.column("hcpcs_code").to_pylist()], pa.list_(pa.string())))
    with pytest.raises(ValueError, match=r"medical.*hcpcs_code.*list<string>"):
        claims_audit.audit(listed)
