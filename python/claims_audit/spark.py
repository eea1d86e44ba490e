"""The audit as a Spark job, on Spark's own partitioning.

    python -m claims_audit.spark run --out DIR [--partitions N] [--from D] [--to D]
        [--policy FILE] [--lookback-days N] INPUT...

INPUT is a Parquet file or directory, a CSV file (header row), or
``table:NAME`` for a catalog table (Databricks). Spark reads the inputs with
the columns the rules use and the scope filter (policy codes, J-codes, policy
NDCs) applied in the scan stage, repartitions the rows by person, and runs
the audit core on each partition with ``mapInArrow``. The driver merges the
partitions' results in the command line's order and writes the command
line's output directory: findings, episodes and rejects Parquet,
manifest.json and summary.md, ``_SUCCESS`` last. The same code runs with
``spark-submit`` on a cluster.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import sys
import time
from typing import Iterator, List, Optional

import pyarrow as pa
import pyarrow.parquet as pq

# Absolute, so spark-submit can run this file as the application.
from claims_audit import _core

FILE, ROW, PERSON = "__file", "__row", "__person"


def _ndc_variants(ndc11: str) -> List[str]:
    """Digit strings a policy NDC (5-4-2, 11 digits) may arrive as: itself,
    or a 10-digit form (4-4-2, 5-3-2, 5-4-1) that drops one padding zero.
    A superset: the core decides each row exactly."""
    out = {ndc11}
    for at in (0, 5, 9):
        if ndc11[at] == "0":
            out.add(ndc11[:at] + ndc11[at + 1 :])
    return sorted(out)


def _date_arg(v: Optional[str], what: str) -> Optional[str]:
    if v is None:
        return None
    try:
        return dt.date.fromisoformat(str(v)).isoformat()
    except ValueError:
        raise ValueError(f"{what}: invalid date {v!r}, expected YYYY-MM-DD") from None


def _norm(uri: str) -> str:
    """One spelling of a local file URI (Spark writes both file:/ and file:///)."""
    return re.sub(r"^file:/+", "file:/", uri)


def _input_format(path: str) -> str:
    if path.startswith("table:"):
        return "table"
    low = path.lower()
    if low.endswith(".csv") or low.endswith(".csv.gz"):
        return "csv"
    return "parquet"


def _header(path: str) -> tuple:
    if path.lower().endswith(".parquet"):
        return tuple(pq.read_schema(path).names)
    import gzip

    opener = gzip.open if path.lower().endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8", errors="replace") as f:
        return tuple(c.strip().strip('"').lower() for c in f.readline().rstrip("\r\n").split(","))


def _expand(path: str) -> List[tuple]:
    """An INPUT as (format, paths) groups that Spark reads as one table each.
    A local directory is expanded as the command line expands it (searched
    recursively, partition folders included; names starting with `.` or `_`
    and files that are not .csv, .csv.gz or .parquet skipped), grouped by
    format and columns: a table's part files read together, medical and
    pharmacy files apart."""
    fmt = _input_format(path)
    if fmt == "table" or not os.path.isdir(path):
        return [(fmt, [path])]
    found = []
    for root, dirs, files in os.walk(path):
        dirs[:] = [d for d in dirs if not d.startswith((".", "_"))]
        found.extend(os.path.join(root, n) for n in files if not n.startswith((".", "_")))
    groups: dict = {}
    for f in sorted(found):
        low = f.lower()
        if not os.path.isfile(f):
            continue
        if low.endswith(".parquet"):
            kind = "parquet"
        elif low.endswith(".csv") or low.endswith(".csv.gz"):
            kind = "csv"
        else:
            continue
        groups.setdefault((kind, _header(f)), []).append(f)
    if not groups:
        raise ValueError(f"{path}: no .csv, .csv.gz or .parquet files")
    return [(k[0], v) for k, v in sorted(groups.items(), key=lambda kv: kv[1][0])]


class _Input:
    """One table as Spark reads it: its files, kind and columns."""

    def __init__(self, spark, fmt: str, paths: List[str]):
        from pyspark.sql import functions as F

        self.path = paths[0] if len(paths) == 1 else os.path.dirname(paths[0])
        self.format = fmt
        if fmt == "table":
            df = spark.table(paths[0][len("table:") :])
        elif fmt == "csv":
            # Every column as text. Each file is its own scan, and multiLine
            # keeps it in one split: its rows are numbered in file order.
            # RFC 4180 quoting: a quote inside a quoted field is doubled.
            reader = spark.read.option("header", True).option("multiLine", True).option("escape", '"').option("inferSchema", False)
            parts = [reader.csv(f) for f in sorted(reader.csv(paths).inputFiles())]
            df = parts[0]
            for p in parts[1:]:
                df = df.unionByName(p, allowMissingColumns=True)
        else:
            df = spark.read.parquet(*paths)
        names = list(df.columns)
        resolved = _core.resolve_columns(names, self.path)
        self.kind = resolved["kind"]
        # Canonical name -> the table's column.
        self.columns = resolved["columns"]
        self.files = sorted({_norm(f) for f in df.inputFiles()})
        if fmt == "csv":
            # The header is line 1; a record's line is its place in the split
            # (the low 33 bits of the id) plus 2.
            row = (F.monotonically_increasing_id().bitwiseAND(F.lit((1 << 33) - 1)) + F.lit(2)).cast("long")
        else:
            # Parquet rows are numbered from 1, as the command line numbers them.
            row = (F.col("_metadata.row_index") + F.lit(1)).cast("long")
        self.df = df.select(*[F.col(f"`{c}`") for c in names], F.regexp_replace(F.col("_metadata.file_path"), "^file:/+", "file:/").alias("__path"), row.alias(ROW))


def _scope_filter(kind: str, scope: dict):
    """Rows some rule may read, on canonical columns. Medical rows without a
    code stay: the core keeps those with a pharmacy revenue code."""
    from pyspark.sql import functions as F

    if kind == "medical":
        code = F.upper(F.trim(F.col("hcpcs_code")))
        return code.isin(scope["codes"]) | code.startswith("J") | F.col("hcpcs_code").isNull() | (code == F.lit(""))
    digits = F.regexp_replace(F.col("ndc_code"), "[^0-9]", "")
    variants = sorted({v for n in scope["ndcs"] for v in _ndc_variants(n)})
    return digits.isin(variants)


def _partition_fn(kind: str, args: str, schema: pa.Schema):
    """The function mapInArrow runs on each partition."""

    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        from claims_audit import _core as core

        items = list(batches)
        if not items or sum(b.num_rows for b in items) == 0:
            return
        table = pa.Table.from_batches(items)
        if kind == "horizon":
            d = core.partition_horizon(table, args)
            yield pa.RecordBatch.from_pydict({"d": [d]}, schema=schema)
        else:
            yield pa.RecordBatch.from_pydict({"payload": [core.partition_audit(table, args)]}, schema=schema)

    return run


def _parquet_bytes(t: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    pq.write_table(t, sink, compression="zstd")
    return sink.getvalue().to_pybytes()


def run(
    spark,
    inputs: List[str],
    out: str,
    partitions: Optional[int] = None,
    date_from: Optional[str] = None,
    date_to: Optional[str] = None,
    policy: Optional[str] = None,
    lookback_days: int = 400,
    argv: Optional[List[str]] = None,
) -> dict:
    """Runs the audit on `spark` and writes `out`. Returns the manifest."""
    from pyspark.sql import functions as F

    date_from, date_to = _date_arg(date_from, "--from"), _date_arg(date_to, "--to")
    if date_from and date_to and date_from > date_to:
        raise ValueError(f"--from {date_from} is after --to {date_to}")
    # --out replaces only an earlier output, checked before anything is read.
    _core.check_out(out, list(inputs))
    started = dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    t0 = time.monotonic()
    scope = _core.scope(policy)
    ins = [_Input(spark, fmt, paths) for p in inputs for fmt, paths in _expand(p)]
    # File indices in argument order, each input's files sorted.
    files: List[dict] = []
    index = {}
    for inp in ins:
        for f in inp.files:
            if f not in index:
                index[f] = len(files)
                files.append({"path": f, "input": inp})
    if not files:
        raise ValueError("no input files")
    file_of = F.create_map(*[x for f, i in index.items() for x in (F.lit(f), F.lit(i))])
    frames = []
    file_columns: List[List[str]] = [[] for _ in files]
    for inp in ins:
        for f in inp.files:
            file_columns[index[f]] = sorted(inp.columns.keys())
        df = inp.df.withColumn(FILE, file_of[F.col("__path")].cast("int"))
        # Rows per file, before the scope filter: the manifest's rows_read.
        inp.counts = {r[FILE]: r["n"] for r in df.groupBy(FILE).agg(F.count(F.lit(1)).alias("n")).collect()}
        kept = df.select(
            *[F.col(f"`{actual}`").cast("string").alias(canon) for canon, actual in sorted(inp.columns.items())],
            F.col(FILE),
            F.col(ROW),
        )
        person_cols = [c for c in ("person_id", "member_id") if c in inp.columns]
        person = F.coalesce(*[F.when(F.trim(F.col(c)) != "", F.trim(F.col(c))) for c in person_cols], F.lit(""))
        frames.append(kept.filter(_scope_filter(inp.kind, scope)).withColumn(PERSON, person))
    union = frames[0]
    for f in frames[1:]:
        union = union.unionByName(f, allowMissingColumns=True)
    n = partitions or spark.sparkContext.defaultParallelism
    data = union.repartition(n, PERSON).drop(PERSON).persist()
    pharmacy_input = any(inp.kind == "pharmacy" for inp in ins)
    args = {
        "files": file_columns,
        "policy_toml": scope["toml"],
        "policy_source": scope["source"],
        "from": date_from,
        "to": date_to,
        "lookback_days": lookback_days,
        "horizon": date_to,
        "pharmacy_input": pharmacy_input,
    }
    try:
        t1 = time.monotonic()
        if date_to is None:
            # The horizon is the latest date kept anywhere in the run.
            schema = pa.schema([("d", pa.string())])
            dates = data.mapInArrow(_partition_fn("horizon", json.dumps(args), schema), "d string").collect()
            args["horizon"] = max((r["d"] for r in dates if r["d"]), default=None)
        schema = pa.schema([("payload", pa.binary())])
        partials = [bytes(r["payload"]) for r in data.mapInArrow(_partition_fn("audit", json.dumps(args), schema), "payload binary").collect()]
        t2 = time.monotonic()
    finally:
        data.unpersist()
    finish_args = {
        "files": [
            {
                "path": f["path"],
                "format": "csv" if f["input"].format == "csv" else "parquet",
                "bytes": 0,
                "rows": int(f["input"].counts.get(i, 0)),
            }
            for i, f in enumerate(files)
        ],
        "inputs": inputs,
        "policy_path": policy,
        "from": date_from,
        "to": date_to,
        "lookback_days": lookback_days,
        "horizon": args["horizon"],
        "argv": argv if argv is not None else sys.argv,
        "started_at": started,
        "read_seconds": t1 - t0,
        "eval_seconds": t2 - t1,
    }
    res = _core.finish(partials, json.dumps(finish_args))
    _core.write_outputs(
        out,
        [
            ("findings.parquet", _parquet_bytes(res["findings"])),
            ("episodes.parquet", _parquet_bytes(res["episodes"])),
            ("rejects.parquet", _parquet_bytes(res["rejects"])),
            ("manifest.json", res["manifest"].encode()),
            ("summary.md", res["summary"].encode()),
        ],
    )
    return json.loads(res["manifest"])


def _session(master: Optional[str]):
    from pyspark.sql import SparkSession

    # Local workers run this interpreter (with this package) unless told otherwise.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    b = SparkSession.builder.appName("claims-audit")
    if master:
        b = b.master(master)
    return b.getOrCreate()


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(prog="python -m claims_audit.spark", description="Runs the claims audit on Spark.")
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="audit INPUTs and write the output directory")
    r.add_argument("--out", required=True, help="output directory (replaced atomically)")
    r.add_argument("--partitions", type=int, help="partitions by person (default: Spark's default parallelism)")
    r.add_argument("--from", dest="date_from", help="first date of service to report (YYYY-MM-DD)")
    r.add_argument("--to", dest="date_to", help="last date of service to report (YYYY-MM-DD)")
    r.add_argument("--lookback-days", type=int, default=400, help="history read before --from (default 400)")
    r.add_argument("--policy", help="policy TOML file (default: the embedded policy)")
    r.add_argument("--master", help="Spark master when not started by spark-submit (e.g. local[2])")
    r.add_argument("inputs", nargs="+", metavar="INPUT")
    a = p.parse_args(argv)
    spark = _session(a.master)
    try:
        m = run(
            spark,
            a.inputs,
            a.out,
            partitions=a.partitions,
            date_from=a.date_from,
            date_to=a.date_to,
            policy=a.policy,
            lookback_days=a.lookback_days,
            argv=["python -m claims_audit.spark"] + (argv if argv is not None else sys.argv[1:]),
        )
    except ValueError as e:
        print(f"claims-audit: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        print(f"claims-audit: {e}", file=sys.stderr)
        return 4
    t = m["totals"]
    print(f"claims-audit: {t['rows_read']} rows, {t['persons']} persons, {t['findings']} findings -> {a.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
