"""The Spark job on a standalone cluster (conftest.py: a master and two
workers on 127.0.0.1) gives the command line's findings, episodes, rejects
and timeline, writing each as a Parquet dataset from the executors."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

pyspark = pytest.importorskip("pyspark")

from claims_audit import spark as job  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
RUN_DATE = "2026-12-01"
TABLES = ("findings", "episodes", "rejects", "timeline")


def cli() -> str:
    """The command line built by `cargo test --release` (`.ci/run` names it)."""
    b = os.environ.get("CLAIMS_AUDIT_BIN")
    if b:
        return b
    target = os.environ.get("CARGO_TARGET_DIR", str(REPO / "target"))
    return str(Path(target) / "release" / "claims-audit")


def run_cli(out: Path, *inputs: Path, extra=()) -> None:
    subprocess.run([cli(), "run", "--quiet", "--run-date", RUN_DATE, *extra, "--out", str(out), *map(str, inputs)], check=True)


def rows(d: Path, name: str, drop=("run_id", "source_file")) -> list:
    """A table's rows (a file or a dataset directory) as a sorted list,
    without what differs by design. Spark's parts are each in the command
    line's order; the parts' order is the shuffle's, so compare as sets."""
    p = d / f"{name}.parquet"
    t = pq.read_table(p if p.exists() else d / name)
    t = t.drop_columns([c for c in drop if c in t.column_names])
    return sorted(t.to_pylist(), key=lambda r: json.dumps(r, sort_keys=True, default=str))


def spark_run(spark, inputs, out, **kw):
    return job.run(spark, [str(i) for i in inputs], str(out), run_date=RUN_DATE, **kw)


@pytest.fixture(scope="module")
def extract(tmp_path_factory):
    """The h2-like generated extract (medical + pharmacy), and the command
    line's run of it."""
    d = tmp_path_factory.mktemp("extract")
    med, rx = d / "medical.parquet", d / "pharmacy.parquet"
    subprocess.run(
        [cli(), "generate", "--lines", "60000", "--cohort", "400", "--seed", "7", "--format", "parquet", "--out", str(med), "--pharmacy", str(rx)],
        check=True,
    )
    out = d / "cli"
    run_cli(out, med, rx)
    return med, rx, out


def test_cluster_run_equals_command_line_written_to_a_file_uri(spark, extract, tmp_path):
    med, rx, cli_out = extract
    out = tmp_path / "spark"
    m = spark_run(spark, [med, rx], out.as_uri(), partitions=3)
    for name in ("manifest.json", "summary.md", "_SUCCESS"):
        assert (out / name).is_file(), name
    for name in TABLES:
        assert (out / name).is_dir() and list((out / name).glob("part-*.parquet")), name
    want = rows(cli_out, "findings")
    assert len(want) > 50
    assert {r["rule_id"] for r in want} >= {"CROSS_BENEFIT_DUPLICATE"}
    for name in TABLES:
        assert rows(out, name) == rows(cli_out, name), name
    cli_m = json.loads((cli_out / "manifest.json").read_text())
    for k in ("rows_read", "rows_rejected", "rows_in_scope", "rows_kept", "persons", "episodes", "findings"):
        assert m["totals"][k] == cli_m["totals"][k], k
    assert m["pharmacy"] == cli_m["pharmacy"]
    assert [r["flagged"] for r in m["rules"]] == [r["flagged"] for r in cli_m["rules"]]
    # Each part is in the command line's order (person, date, rule, line).
    part = pq.read_table(sorted((out / "findings").glob("part-*.parquet"))[0]).to_pylist()
    keys = [(r["person_id"], r["service_date"]) for r in part]
    assert keys == sorted(keys)


def test_driver_gathers_aggregates_only(spark, tmp_path):
    """1.5M lines: the old job collected about 3.3 bytes per line (5 MB, over
    the session's spark.driver.maxResultSize of 4 MiB); this one passes."""
    assert spark.sparkContext.getConf().get("spark.driver.maxResultSize") == "4m"
    med, rx = tmp_path / "m.parquet", tmp_path / "rx.parquet"
    subprocess.run(
        [cli(), "generate", "--lines", "1500000", "--cohort", "3000", "--seed", "11", "--format", "parquet", "--out", str(med), "--pharmacy", str(rx)],
        check=True,
    )
    cli_out, out = tmp_path / "cli", tmp_path / "spark"
    run_cli(cli_out, med, rx)
    m = spark_run(spark, [med, rx], out, partitions=4)
    cli_m = json.loads((cli_out / "manifest.json").read_text())
    assert m["totals"]["rows_read"] == cli_m["totals"]["rows_read"]
    assert m["totals"]["findings"] == cli_m["totals"]["findings"]
    assert rows(out, "findings") == rows(cli_out, "findings")


def test_csv_inputs_split_and_keep_line_numbers(spark, tmp_path):
    """The sample CSV extracts read in many small splits: the same findings
    and rejects, source lines included."""
    cli_out, out = tmp_path / "cli", tmp_path / "spark"
    run_cli(cli_out, REPO / "sample_data")
    spark.conf.set("spark.sql.files.maxPartitionBytes", "2048")
    try:
        spark_run(spark, [REPO / "sample_data"], out, partitions=2)
    finally:
        spark.conf.unset("spark.sql.files.maxPartitionBytes")
    for name in ("findings", "episodes", "rejects"):
        assert rows(out, name, drop=("run_id", "source_file", "raw_text")) == rows(cli_out, name, drop=("run_id", "source_file", "raw_text")), name


def _messy(src: Path, dst: Path, code_col: str, person_col: str) -> None:
    """Codes lower-cased and padded with tabs, person ids with a trailing tab."""
    t = pq.read_table(src)
    cols = {}
    for name in t.column_names:
        v = t.column(name).to_pylist()
        if name == code_col:
            v = [None if x is None else f"\t{str(x).lower()} \t" for x in v]
        if name == person_col:
            v = [None if x is None else f"{x}\t" for x in v]
        cols[name] = pa.array(v, type=t.schema.field(name).type if name not in (code_col, person_col) else pa.string())
    pq.write_table(pa.table(cols), dst)


def test_tab_padded_lower_case_codes_and_person_ids(spark, tmp_path):
    src = REPO / "tests" / "fixtures" / "sample_parquet"
    med, rx = tmp_path / "claims.parquet", tmp_path / "pharmacy.parquet"
    _messy(src / "claims.parquet", med, "hcpcs_code", "person_id")
    _messy(src / "pharmacy.parquet", rx, "ndc_code", "person_id")
    cli_out, out = tmp_path / "cli", tmp_path / "spark"
    run_cli(cli_out, med, rx)
    spark_run(spark, [med, rx], out, partitions=2)
    want = rows(cli_out, "findings")
    assert len(want) > 5
    assert rows(out, "findings") == want
    assert rows(out, "episodes") == rows(cli_out, "episodes")


def test_table_on_a_view(spark, tmp_path):
    """`table:NAME` reads a view; source_line is null (Spark cannot number
    a view's rows)."""
    src = REPO / "tests" / "fixtures" / "sample_parquet"
    # A union: Spark cannot say which file or row a view's row came from.
    claims = spark.read.parquet(str(src / "claims.parquet"))
    claims.unionByName(claims.limit(0)).createOrReplaceTempView("claims_view")
    cli_out, out = tmp_path / "cli", tmp_path / "spark"
    run_cli(cli_out, src / "claims.parquet", src / "pharmacy.parquet")
    spark_run(spark, ["table:claims_view", src / "pharmacy.parquet"], out, partitions=2)
    got = pq.read_table(out / "findings").to_pylist()
    assert got
    medical = [r for r in got if r["source_file"] == "table:claims_view"]
    assert medical and all(r["source_line"] is None for r in medical)
    drop = ("run_id", "source_file", "source_line", "evidence")
    assert rows(out, "findings", drop=drop) == rows(cli_out, "findings", drop=drop)


def test_missing_column_is_a_value_error_naming_it(spark, tmp_path):
    t = pq.read_table(REPO / "tests" / "fixtures" / "sample_parquet" / "claims.parquet").drop_columns(["hcpcs_code"])
    bad = tmp_path / "bad.parquet"
    pq.write_table(t, bad)
    with pytest.raises(ValueError, match="hcpcs_code"):
        job.run(spark, [str(bad)], str(tmp_path / "out"))
    assert not (tmp_path / "out" / "_SUCCESS").exists()


def _job(args, cwd, master="local[1]"):
    env = dict(os.environ, PYSPARK_PYTHON=sys.executable)
    return subprocess.run(
        [sys.executable, "-m", "claims_audit.spark", "run", "--master", master, *args], env=env, capture_output=True, text=True, cwd=cwd
    )


def _one_line(p) -> str:
    lines = [x for x in p.stderr.strip().splitlines() if x.startswith("claims-audit:") or "Traceback" in x or "py4j" in x.lower()]
    assert len(lines) == 1, p.stderr[-3000:]
    assert "Traceback" not in p.stderr, p.stderr[-3000:]
    return lines[0]


def test_error_lines(tmp_path):
    """One line each, with the command line's exit codes; a bad date is
    refused before the JVM starts."""
    src = str(REPO / "tests" / "fixtures" / "sample_parquet")
    t0 = time.monotonic()
    bad = _job(["--out", str(tmp_path / "x"), "--from", "2025-13-01", src], tmp_path)
    assert bad.returncode == 2 and "invalid date" in _one_line(bad)
    assert time.monotonic() - t0 < 10 and "SparkContext" not in bad.stderr
    missing = _job(["--out", str(tmp_path / "y"), str(tmp_path / "nope.parquet")], tmp_path)
    assert missing.returncode == 3, missing.stderr[-3000:]
    assert "nope.parquet" in _one_line(missing)
    s3 = _job(["--out", "s3a://audit-bucket/runs/2026-12-04", src], tmp_path)
    assert s3.returncode == 4, s3.stderr[-3000:]
    assert "s3a" in _one_line(s3)
    assert not (tmp_path / "s3a:").exists()


def test_command_line_entry_point(tmp_path):
    """`python -m claims_audit.spark run` in its own process, exit 0."""
    out = tmp_path / "out"
    ok = _job(["--partitions", "2", "--out", str(out), str(REPO / "tests" / "fixtures" / "sample_parquet")], tmp_path, master="local[2]")
    assert ok.returncode == 0, ok.stderr[-2000:]
    assert (out / "_SUCCESS").exists()
    assert "findings" in ok.stderr.splitlines()[-1]
