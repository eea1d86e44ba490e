"""The Spark job in local mode gives the command line's findings and episodes,
whatever the partition count."""

import json
import os
import subprocess
from pathlib import Path

import pyarrow.parquet as pq
import pytest

pyspark = pytest.importorskip("pyspark")

from claims_audit import spark as job  # noqa: E402

REPO = Path(__file__).resolve().parents[2]


def cli() -> str:
    """The command line built by `cargo test --release` (`.ci/run` names it)."""
    b = os.environ.get("CLAIMS_AUDIT_BIN")
    if b:
        return b
    target = os.environ.get("CARGO_TARGET_DIR", str(REPO / "target"))
    return str(Path(target) / "release" / "claims-audit")


def run_cli(out: Path, *inputs: Path) -> None:
    subprocess.run([cli(), "run", "--quiet", "--out", str(out), *map(str, inputs)], check=True)


def rows(d: Path, name: str) -> list:
    """A table's rows without what differs by design: run_id, source_file."""
    t = pq.read_table(d / name)
    return t.drop_columns([c for c in ("run_id", "source_file") if c in t.column_names]).to_pylist()


@pytest.fixture(scope="module")
def spark():
    os.environ.setdefault("PYSPARK_PYTHON", os.sys.executable)
    from pyspark.sql import SparkSession

    s = (
        SparkSession.builder.master("local[2]")
        .appName("claims-audit-tests")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "4")
        .getOrCreate()
    )
    yield s
    s.stop()


@pytest.fixture(scope="module")
def extract(tmp_path_factory):
    """A generated extract with pharmacy claims, and the command line's run of it."""
    d = tmp_path_factory.mktemp("extract")
    med, rx = d / "medical.parquet", d / "pharmacy.parquet"
    subprocess.run(
        [cli(), "generate", "--lines", "60000", "--cohort", "400", "--seed", "7", "--format", "parquet", "--out", str(med), "--pharmacy", str(rx)],
        check=True,
    )
    out = d / "cli"
    run_cli(out, med, rx)
    return med, rx, out


@pytest.mark.parametrize("partitions", [1, 3, 8])
def test_spark_equals_command_line(spark, extract, tmp_path, partitions):
    med, rx, cli_out = extract
    out = tmp_path / f"spark{partitions}"
    m = job.run(spark, [str(med), str(rx)], str(out), partitions=partitions)
    for name in ("findings.parquet", "episodes.parquet", "rejects.parquet", "manifest.json", "summary.md", "_SUCCESS"):
        assert (out / name).exists(), name
    want = rows(cli_out, "findings.parquet")
    assert len(want) > 50
    assert {r["rule_id"] for r in want} >= {"CROSS_BENEFIT_DUPLICATE"}
    assert rows(out, "findings.parquet") == want
    assert rows(out, "episodes.parquet") == rows(cli_out, "episodes.parquet")
    cli_m = json.loads((cli_out / "manifest.json").read_text())
    for k in ("rows_read", "rows_rejected", "rows_in_scope", "rows_kept", "persons", "episodes", "findings"):
        assert m["totals"][k] == cli_m["totals"][k], k
    assert m["pharmacy"] == cli_m["pharmacy"]
    assert [r["flagged"] for r in m["rules"]] == [r["flagged"] for r in cli_m["rules"]]


def test_csv_inputs_keep_line_numbers(spark, tmp_path):
    """The sample CSV extracts: same findings, source lines included."""
    cli_out, out = tmp_path / "cli", tmp_path / "spark"
    run_cli(cli_out, REPO / "sample_data")
    job.run(spark, [str(REPO / "sample_data")], str(out), partitions=2)
    assert rows(out, "findings.parquet") == rows(cli_out, "findings.parquet")
    assert rows(out, "episodes.parquet") == rows(cli_out, "episodes.parquet")


def test_missing_column_is_a_value_error_naming_it(spark, tmp_path):
    t = pq.read_table(REPO / "tests" / "fixtures" / "sample_parquet" / "claims.parquet").drop_columns(["hcpcs_code"])
    bad = tmp_path / "bad.parquet"
    pq.write_table(t, bad)
    with pytest.raises(ValueError, match="hcpcs_code"):
        job.run(spark, [str(bad)], str(tmp_path / "out"))
    assert not (tmp_path / "out").exists()


def test_command_line_entry_point(tmp_path):
    """`python -m claims_audit.spark run` in its own process, exit 0, then 2 on bad input."""
    out = tmp_path / "out"
    env = dict(os.environ, PYSPARK_PYTHON=os.sys.executable)
    src = REPO / "tests" / "fixtures" / "sample_parquet"
    ok = subprocess.run(
        [os.sys.executable, "-m", "claims_audit.spark", "run", "--master", "local[2]", "--partitions", "2", "--out", str(out), str(src)],
        env=env,
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert ok.returncode == 0, ok.stderr[-2000:]
    assert (out / "_SUCCESS").exists()
    assert "findings" in ok.stderr.splitlines()[-1]
    bad = subprocess.run(
        [os.sys.executable, "-m", "claims_audit.spark", "run", "--master", "local[1]", "--out", str(tmp_path / "x"), "--from", "2025-13-01", str(src)],
        env=env,
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert bad.returncode == 2, bad.stderr[-2000:]
    assert bad.stderr.strip().splitlines()[-1].startswith("claims-audit: ")
