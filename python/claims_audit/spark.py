"""The audit as a Spark job, on Spark's own partitioning.

    python -m claims_audit.spark run --out URI [--partitions N] [--from D] [--to D]
        [--run-date D] [--policy FILE] [--columns FILE] [--delimiter comma|pipe|tab]
        [--csv-multiline] [--lookback-days N] INPUT...

INPUT is a Parquet file or directory, a CSV file (header row), any Hadoop
file system URI, or ``table:NAME`` for a catalog table or view. Spark reads
the inputs with the columns the rules use and a scope filter that keeps a
superset of the core's rows, repartitions the rows by person, and runs the
audit core on each partition with ``mapInArrow``. The executors write the
row tables (findings/, episodes/, rejects/, timeline/) as Parquet datasets
with Spark's writer; the driver gathers counts, tallies and findings and
writes manifest.json, summary.md and ``_SUCCESS`` (last) through Hadoop's
FileSystem. The same code runs with ``spark-submit`` on a cluster.
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


class JobError(Exception):
    """A failure the job reports in one line with the command line's exit
    code: 2 bad option, 3 unreadable input, 4 unwritable output."""

    def __init__(self, message: str, code: int):
        super().__init__(message)
        self.code = code


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


def _java_message(e: BaseException) -> str:
    """The first line of a JVM exception's message, without py4j's trace."""
    java = getattr(e, "java_exception", None)
    if java is not None:
        try:
            msg = java.toString()
        except Exception:  # the JVM is gone
            msg = str(e)
    else:
        msg = str(e)
    lines = [x.strip() for x in str(msg).splitlines() if x.strip()]
    return lines[0] if lines else type(e).__name__


class _Out:
    """The output directory on any Hadoop file system Spark reaches (local
    path, file://, hdfs://, s3a://, abfss://, gs://): the small files are
    written through Hadoop's FileSystem in the JVM, never the driver's disk."""

    def __init__(self, spark, uri: str):
        self.jvm = spark._jvm
        Path = self.jvm.org.apache.hadoop.fs.Path
        try:
            self.root = Path(uri)
            self.fs = self.root.getFileSystem(spark._jsc.hadoopConfiguration())
            self.uri = str(self.fs.makeQualified(self.root).toString())
            self.fs.mkdirs(self.root)
        except Exception as e:  # py4j's Py4JJavaError, IllegalArgumentException
            raise JobError(f"{uri}: cannot write output: {_java_message(e)}", 4) from None

    def child(self, name: str) -> str:
        return self.uri.rstrip("/") + "/" + name

    def _path(self, name: str):
        return self.jvm.org.apache.hadoop.fs.Path(self.child(name))

    def write(self, name: str, data: bytes) -> None:
        try:
            s = self.fs.create(self._path(name), True)
            try:
                s.write(bytearray(data))
            finally:
                s.close()
        except Exception as e:
            raise JobError(f"{self.child(name)}: cannot write: {_java_message(e)}", 4) from None

    def delete(self, name: str) -> None:
        try:
            self.fs.delete(self._path(name), True)
        except Exception as e:
            raise JobError(f"{self.child(name)}: cannot delete: {_java_message(e)}", 4) from None


def _input_format(path: str) -> str:
    if path.startswith("table:"):
        return "table"
    low = path.lower()
    if low.endswith(".csv") or low.endswith(".csv.gz"):
        return "csv"
    return "parquet"


def _header(path: str, sep: str = ",") -> tuple:
    if path.lower().endswith(".parquet"):
        return tuple(pq.read_schema(path).names)
    import gzip

    opener = gzip.open if path.lower().endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8", errors="replace") as f:
        return tuple(c.strip().strip('"').lower() for c in f.readline().rstrip("\r\n").split(sep))


def _expand(path: str, sep: str = ",") -> List[tuple]:
    """An INPUT as (format, paths) groups that Spark reads as one table each.
    A local directory is expanded as the command line expands it (searched
    recursively, partition folders included; names starting with `.` or `_`
    and files that are not .csv, .csv.gz or .parquet skipped), grouped by
    format and columns: a table's part files read together, medical and
    pharmacy files apart. A URI (file://, s3a://, ...) is one table, as
    Spark reads it."""
    fmt = _input_format(path)
    if fmt == "table" or "://" in path or not os.path.isdir(path):
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
        groups.setdefault((kind, _header(f, sep)), []).append(f)
    if not groups:
        raise JobError(f"{path}: no .csv, .csv.gz or .parquet files", 3)
    return [(k[0], v) for k, v in sorted(groups.items(), key=lambda kv: kv[1][0])]


# Whitespace as Rust's str::trim sees it (Java's \s is ASCII only).
_WS = r"[\s\p{Z}\x{85}\x{FEFF}]"


def _trim(c):
    from pyspark.sql import functions as F

    return F.regexp_replace(c, f"^{_WS}+|{_WS}+$", "")


class _Input:
    """One table as Spark reads it: its files, kind and columns, each row
    with its file (`__path`) and 1-based line or row number (`__row`, null
    where Spark cannot number rows: views)."""

    def __init__(self, spark, fmt: str, paths: List[str], sep: str, multiline: bool, columns: Optional[str]):
        from pyspark.sql import functions as F

        self.path = paths[0] if len(paths) == 1 else os.path.dirname(paths[0])
        self.format = fmt
        self.counts: Optional[dict] = None
        meta_path = F.regexp_replace(F.col("_metadata.file_path"), "^file:/+", "file:/")
        if fmt == "table":
            df = spark.table(paths[0][len("table:") :])
            names = list(df.columns)
            try:
                # A table over files: its files and, for Parquet, row numbers.
                self.df = df.select(*[F.col(f"`{c}`") for c in names], meta_path.alias("__path"), (F.col("_metadata.row_index") + F.lit(1)).cast("long").alias(ROW))
            except Exception:
                try:
                    self.df = df.select(*[F.col(f"`{c}`") for c in names], meta_path.alias("__path"), F.lit(None).cast("long").alias(ROW))
                except Exception:
                    # A view: one input named after it, rows unnumbered.
                    self.df = df.select(*[F.col(f"`{c}`") for c in names], F.lit(paths[0]).alias("__path"), F.lit(None).cast("long").alias(ROW))
                    self.counts = {}
        elif fmt == "csv":
            # Every column as text. RFC 4180 quoting: a quote inside a quoted
            # field is doubled.
            reader = spark.read.option("header", True).option("escape", '"').option("inferSchema", False).option("sep", sep)
            if multiline:
                # Quoted line breaks: each file is one split, rows numbered in
                # file order (the low 33 bits of the id, plus the header).
                reader = reader.option("multiLine", True)
                parts = [reader.csv(f) for f in sorted(reader.csv(paths).inputFiles())]
                df = parts[0]
                for p in parts[1:]:
                    df = df.unionByName(p, allowMissingColumns=True)
                names = list(df.columns)
                row = (F.monotonically_increasing_id().bitwiseAND(F.lit((1 << 33) - 1)) + F.lit(2)).cast("long")
                self.df = df.select(*[F.col(f"`{c}`") for c in names], meta_path.alias("__path"), row.alias(ROW))
            else:
                df = reader.csv(paths)
                names = list(df.columns)
                self.df = self._split_lines(spark, df, names, meta_path)
        else:
            df = spark.read.parquet(*paths)
            names = list(df.columns)
            # Parquet rows are numbered from 1, as the command line numbers them.
            self.df = df.select(*[F.col(f"`{c}`") for c in names], meta_path.alias("__path"), (F.col("_metadata.row_index") + F.lit(1)).cast("long").alias(ROW))
        resolved = _core.resolve_columns(names, self.path, columns)
        self.kind = resolved["kind"]
        # Canonical name -> the table's column.
        self.columns = resolved["columns"]
        if fmt == "table" and self.counts == {}:
            # A view: counted with the others, below.
            self.counts = None
            self.files = [paths[0]]
        elif self.counts is not None:
            self.files = sorted(self.counts)
        else:
            self.files = sorted({_norm(f) for f in df.inputFiles()})

    def _split_lines(self, spark, df, names, meta_path):
        """A CSV read in splits (many tasks per file). A row's line is its
        place in its split plus the rows of the file's earlier splits: one
        small aggregate per split (which also gives the rows per file), joined
        back by broadcast. Blank lines, which Spark drops, are not counted."""
        from pyspark.sql import functions as F

        base = df.select(
            *[F.col(f"`{c}`") for c in names],
            meta_path.alias("__path"),
            F.col("_metadata.file_block_start").alias("__block"),
            F.monotonically_increasing_id().alias("__mid"),
        )
        splits = base.groupBy("__path", "__block").agg(F.min("__mid").alias("__first"), F.count(F.lit(1)).alias("__n")).collect()
        counts, rows = {}, []
        for r in sorted(splits, key=lambda r: (r["__path"], r["__block"])):
            p = r["__path"]
            seen = counts.get(p, 0)
            rows.append((p, r["__block"], r["__first"], seen))
            counts[p] = seen + r["__n"]
        self.counts = {_norm(p): n for p, n in counts.items()}
        at = spark.createDataFrame(rows, "__path string, __block long, __first long, __before long")
        line = (F.col("__mid") - F.col("__first") + F.col("__before") + F.lit(2)).cast("long")
        return base.join(F.broadcast(at), ["__path", "__block"]).select(*[F.col(f"`{c}`") for c in names], F.col("__path"), line.alias(ROW))


def _scope_filter(kind: str, scope: dict):
    """Rows some rule may read, on canonical columns: a superset of what the
    core keeps. Codes lose any whitespace (tabs, no-break spaces) and case;
    NDCs are compared on their digits in every 10- and 11-digit form; medical
    rows without a code stay (the core keeps those with a pharmacy revenue
    code)."""
    from pyspark.sql import functions as F

    if kind == "medical":
        code = F.upper(F.regexp_replace(F.col("hcpcs_code"), f"{_WS}+", ""))
        return code.isin(scope["codes"]) | code.startswith("J") | F.col("hcpcs_code").isNull() | (code == F.lit(""))
    digits = F.regexp_replace(F.col("ndc_code"), "[^0-9]", "")
    variants = sorted({v for n in scope["ndcs"] for v in _ndc_variants(n)})
    return digits.isin(variants)


# The row tables the executors write, each a Parquet dataset under --out.
TABLES = ("findings", "episodes", "rejects", "timeline")
# What the audit pass yields per partition: a table's name, its row count
# and one Arrow IPC stream of up to CHUNK rows; or ("partial", 0, bytes).
_PAYLOAD = "t string, n long, b binary"
CHUNK = 65536


def _ipc(batch_or_table) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, batch_or_table.schema) as w:
        w.write(batch_or_table)
    return sink.getvalue().to_pybytes()


def _horizon_fn(args: str):
    """First pass: the latest date each partition keeps."""

    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        from claims_audit import _core as core

        items = list(batches)
        if not items or sum(b.num_rows for b in items) == 0:
            return
        d = core.partition_horizon(pa.Table.from_batches(items), args)
        yield pa.RecordBatch.from_pydict({"d": [d]}, schema=pa.schema([("d", pa.string())]))

    return run


def _audit_fn(args: str):
    """The audit of one partition's persons, on the executor: its row tables
    as IPC chunks, and its partial for the driver."""
    schema = pa.schema([("t", pa.string()), ("n", pa.int64()), ("b", pa.binary())])

    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        from claims_audit import _core as core

        items = list(batches)
        if not items or sum(b.num_rows for b in items) == 0:
            return
        d = core.partition_audit(pa.Table.from_batches(items), args)
        del items
        for name in TABLES:
            t = d[name]
            for b in t.to_batches(max_chunksize=CHUNK):
                if b.num_rows:
                    yield pa.RecordBatch.from_pydict({"t": [name], "n": [b.num_rows], "b": [_ipc(b)]}, schema=schema)
        yield pa.RecordBatch.from_pydict({"t": ["partial"], "n": [0], "b": [d["partial"]]}, schema=schema)

    return run


def _unpack_fn():
    """A table's IPC chunks back as record batches, for Spark's writer.
    A row Spark could not number (a view's) has source_line 0 in the core,
    written as null: lines and rows are numbered from 1."""

    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        import pyarrow.compute as pc

        for b in batches:
            for blob in b.column(0).to_pylist():
                with pa.ipc.open_stream(blob) as r:
                    for rb in r:
                        at = rb.schema.get_field_index("source_line")
                        if at >= 0:
                            col = rb.column(at)
                            col = pc.if_else(pc.equal(col, 0), pa.scalar(None, col.type), col)
                            schema = rb.schema.set(at, rb.schema.field(at).with_nullable(True))
                            rb = pa.RecordBatch.from_arrays([col if i == at else c for i, c in enumerate(rb.columns)], schema=schema)
                        yield rb

    return run


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
    run_date: Optional[str] = None,
    columns: Optional[str] = None,
    delimiter: str = "comma",
    csv_multiline: bool = False,
    previous: Optional[str] = None,
) -> dict:
    """Runs the audit on `spark` and writes `out` (a path or any Hadoop file
    system URI). Returns the manifest. Raises JobError (with its exit code)
    or ValueError (bad input or option, as the command line words it)."""
    from pyspark.sql import functions as F
    from pyspark.sql.pandas.types import from_arrow_schema, to_arrow_schema
    from pyspark import StorageLevel
    from pyspark.sql.types import StructField, StructType

    date_from, date_to = _date_arg(date_from, "--from"), _date_arg(date_to, "--to")
    run_date = _date_arg(run_date, "--run-date")
    if date_from and date_to and date_from > date_to:
        raise ValueError(f"--from {date_from} is after --to {date_to}")
    sep = {"comma": ",", "pipe": "|", "tab": "\t"}.get(delimiter)
    if sep is None:
        raise ValueError(f"--delimiter: {delimiter!r} is not comma, pipe or tab")
    # --out replaces only an earlier output, checked before anything is read
    # (a local path; a URI is checked on its own file system when written).
    if "://" not in out:
        _core.check_out(out, list(inputs))
    if previous is not None:
        raise JobError("--previous is not supported by the Spark job yet: run `claims-audit diff` on two nights' outputs", 2)
    started = dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    t0 = time.monotonic()
    scope = _core.scope(policy)
    # The output first: an unreachable file system fails before any work.
    dest = _Out(spark, out)
    for p in inputs:
        if not p.startswith("table:"):
            _check_input(spark, p)
    try:
        ins = [_Input(spark, fmt, paths, sep, csv_multiline, columns) for p in inputs for fmt, paths in _expand(p, sep)]
    except _analysis_errors() as e:
        raise JobError(_java_message(e), 3) from None
    # File indices in argument order, each input's files sorted.
    files: List[dict] = []
    index = {}
    for inp in ins:
        for f in inp.files:
            if f not in index:
                index[f] = len(files)
                files.append({"path": f, "input": inp})
    if not files:
        raise JobError("no input files", 3)
    file_of = F.create_map(*[x for f, i in index.items() for x in (F.lit(f), F.lit(i))])
    frames = []
    file_columns: List[List[str]] = [[] for _ in files]
    for inp in ins:
        for f in inp.files:
            file_columns[index[f]] = sorted(inp.columns.keys())
        df = inp.df.withColumn(FILE, file_of[F.col("__path")].cast("int"))
        if inp.counts is None:
            # Rows per file, before the scope filter: the manifest's rows_read.
            inp.counts = {files[r[FILE]]["path"]: r["n"] for r in df.groupBy(FILE).agg(F.count(F.lit(1)).alias("n")).collect() if r[FILE] is not None}
        kept = df.select(
            *[F.col(f"`{actual}`").cast("string").alias(canon) for canon, actual in sorted(inp.columns.items())],
            F.col(FILE),
            F.col(ROW),
        )
        person_cols = [c for c in ("person_id", "member_id") if c in inp.columns]
        trimmed = [_trim(F.col(c)) for c in person_cols]
        person = F.coalesce(*[F.when(t != "", t) for t in trimmed], F.lit(None).cast("string"))
        # Rows without a person spread over all partitions (the core rejects
        # each on its own), instead of all hashing to one.
        # Deterministic (a retried task must send each row where it went).
        spread = F.xxhash64(F.col(FILE), F.col(ROW), *[F.col(c) for c in sorted(inp.columns)]).cast("string")
        person = F.coalesce(person, F.concat(F.lit("\u0000"), spread))
        frames.append(kept.filter(_scope_filter(inp.kind, scope)).withColumn(PERSON, person))
    union = frames[0]
    for f in frames[1:]:
        union = union.unionByName(f, allowMissingColumns=True)
    n = partitions or spark.sparkContext.defaultParallelism
    data = union.repartition(n, PERSON).drop(PERSON).persist(StorageLevel.MEMORY_AND_DISK)
    pharmacy_input = any(inp.kind == "pharmacy" for inp in ins)
    spark_files = [
        {
            "path": f["path"],
            "format": "csv" if f["input"].format == "csv" else "parquet",
            "bytes": 0,
            "rows": int(f["input"].counts.get(f["path"], 0)),
        }
        for f in files
    ]
    finish_args = {
        "files": spark_files,
        "inputs": inputs,
        "policy_path": policy,
        "from": date_from,
        "to": date_to,
        "lookback_days": lookback_days,
        "horizon": date_to,
        "run_date": run_date,
        "argv": argv if argv is not None else sys.argv,
        "started_at": started,
        "read_seconds": 0.0,
        "eval_seconds": 0.0,
    }
    args = {
        "files": file_columns,
        "policy_toml": scope["toml"],
        "policy_source": scope["source"],
        "from": date_from,
        "to": date_to,
        "lookback_days": lookback_days,
        "horizon": date_to,
        "pharmacy_input": pharmacy_input,
        "run_date": run_date,
        "sources": [f["path"] for f in files],
    }
    try:
        t1 = time.monotonic()
        if date_to is None:
            # The horizon is the latest date kept anywhere in the run.
            dates = data.mapInArrow(_horizon_fn(json.dumps(args)), "d string").agg(F.max("d").alias("d")).collect()
            args["horizon"] = dates[0]["d"] if dates else None
        finish_args["horizon"] = args["horizon"]
        args["run_id"] = _core.spark_run_id(json.dumps(finish_args))
        # Each table's Spark schema, from the core's empty tables.
        empty = _core.partition_audit(to_arrow_schema(data.schema).empty_table(), json.dumps(args))
        res = data.mapInArrow(_audit_fn(json.dumps(args)), _PAYLOAD).persist(StorageLevel.MEMORY_AND_DISK)
        try:
            # A crashed run must not look complete: _SUCCESS goes first.
            dest.delete("_SUCCESS")
            for stale in ("resolved", "findings.parquet", "episodes.parquet", "rejects.parquet", "timeline.parquet", "resolved.parquet", "report.html"):
                dest.delete(stale)
            for name in TABLES:
                # Nullable throughout (a view's rows have no source_line).
                schema = StructType([StructField(f.name, f.dataType, True) for f in from_arrow_schema(empty[name].schema)])
                res.filter(F.col("t") == name).select("b").mapInArrow(_unpack_fn(), schema).write.mode("overwrite").parquet(dest.child(name))
            written = {r["t"]: int(r["n"]) for r in res.groupBy("t").agg(F.sum("n").alias("n")).collect()}
            # One partition at a time: spark.driver.maxResultSize bounds each.
            partials = [bytes(r["b"]) for r in res.filter(F.col("t") == "partial").select("b").toLocalIterator()]
        finally:
            res.unpersist()
        t2 = time.monotonic()
    finally:
        data.unpersist()
    finish_args["read_seconds"] = t1 - t0
    finish_args["eval_seconds"] = t2 - t1
    finish_args["written"] = [[f"{t}/", written.get(t, 0)] for t in TABLES]
    res = _core.finish(partials, json.dumps(finish_args))
    dest.write("manifest.json", res["manifest"].encode())
    dest.write("summary.md", res["summary"].encode())
    dest.write("_SUCCESS", b"")
    return json.loads(res["manifest"])


def _check_input(spark, uri: str) -> None:
    """An input path or glob exists on its file system (exit 3 otherwise),
    checked before Spark's reader logs a trace for it."""
    try:
        path = spark._jvm.org.apache.hadoop.fs.Path(uri)
        found = path.getFileSystem(spark._jsc.hadoopConfiguration()).globStatus(path)
    except Exception as e:
        raise JobError(f"{uri}: cannot read input: {_java_message(e)}", 3) from None
    if found is None or len(found) == 0:
        raise JobError(f"{uri}: no such file or directory", 3)


def _analysis_errors() -> tuple:
    """Errors that mean an input cannot be read (exit 3)."""
    errs: list = []
    try:
        from pyspark.errors import AnalysisException

        errs.append(AnalysisException)
    except ImportError:
        from pyspark.sql.utils import AnalysisException

        errs.append(AnalysisException)
    try:
        from py4j.protocol import Py4JJavaError

        errs.append(Py4JJavaError)
    except ImportError:
        pass
    return tuple(errs)


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
    r.add_argument("--out", required=True, help="output directory: a path or any Hadoop file system URI (s3a://, hdfs://, file://)")
    r.add_argument("--partitions", type=int, help="partitions by person (default: Spark's default parallelism)")
    r.add_argument("--from", dest="date_from", help="first date of service to report (YYYY-MM-DD)")
    r.add_argument("--to", dest="date_to", help="last date of service to report (YYYY-MM-DD)")
    r.add_argument("--run-date", dest="run_date", help="the night's date for first_seen (default: today, UTC)")
    r.add_argument("--lookback-days", type=int, default=400, help="history read before --from (default 400)")
    r.add_argument("--policy", help="policy TOML file (default: the embedded policy)")
    r.add_argument("--columns", help="column map TOML: canonical name = header name")
    r.add_argument("--delimiter", default="comma", choices=["comma", "pipe", "tab"], help="CSV field delimiter")
    r.add_argument("--csv-multiline", action="store_true", help="CSV fields may hold quoted line breaks (each file read by one task)")
    r.add_argument("--previous", help="previous night's output (not yet supported on Spark)")
    r.add_argument("--master", help="Spark master when not started by spark-submit (e.g. local[2])")
    r.add_argument("inputs", nargs="+", metavar="INPUT")
    a = p.parse_args(argv)
    # Options are checked before the JVM starts.
    try:
        for v, what in ((a.date_from, "--from"), (a.date_to, "--to"), (a.run_date, "--run-date")):
            _date_arg(v, what)
        if a.previous is not None:
            raise JobError("--previous is not supported by the Spark job yet: run `claims-audit diff` on two nights' outputs", 2)
    except ValueError as e:
        print(f"claims-audit: {e}", file=sys.stderr)
        return 2
    except JobError as e:
        print(f"claims-audit: {e}", file=sys.stderr)
        return e.code
    try:
        spark = _session(a.master)
    except Exception as e:
        print(f"claims-audit: cannot start Spark: {_java_message(e)}", file=sys.stderr)
        return 1
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
            run_date=a.run_date,
            columns=a.columns,
            delimiter=a.delimiter,
            csv_multiline=a.csv_multiline,
        )
    except JobError as e:
        print(f"claims-audit: {e}", file=sys.stderr)
        return e.code
    except ValueError as e:
        print(f"claims-audit: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        print(f"claims-audit: {e}", file=sys.stderr)
        return 4
    except _analysis_errors() as e:
        print(f"claims-audit: {_java_message(e)}", file=sys.stderr)
        return 3
    t = m["totals"]
    print(f"claims-audit: {t['rows_read']} rows, {t['persons']} persons, {t['findings']} findings -> {a.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
