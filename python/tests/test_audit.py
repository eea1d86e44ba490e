"""claims_audit.audit() and rules(): the same findings as the command line."""

from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pytest

import claims_audit

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "sample_data"
TWINS = REPO / "tests" / "fixtures" / "sample_parquet"
GOLDEN = REPO / "tests" / "golden" / "sample_findings.tsv"
KEEP = ["rule_id", "severity", "person_id", "claim_id", "claim_line_number", "service_date", "hcpcs_code", "episode_id", "amount_at_stake", "message"]


def read_csv(path: Path) -> pa.Table:
    """Every column as text, as an extract holds it (codes keep leading zeros)."""
    names = pacsv.read_csv(path, read_options=pacsv.ReadOptions(block_size=1 << 20)).column_names
    types = {n: pa.string() for n in names}
    return pacsv.read_csv(path, convert_options=pacsv.ConvertOptions(column_types=types, strings_can_be_null=False))


def findings_tsv(findings: pa.Table) -> str:
    """The golden file's columns, rendered as tests/e2e/golden.rs renders them."""
    cols = [findings.column(k).to_pylist() for k in KEEP]
    lines = ["\t".join(KEEP)]
    for row in zip(*cols):
        lines.append("\t".join("" if v is None else str(v) for v in row))
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def sample():
    medical = [read_csv(SAMPLE / "claims.csv"), read_csv(SAMPLE / "institutional.csv")]
    return medical, read_csv(SAMPLE / "pharmacy.csv")


def test_golden_sample_equals_golden_findings(sample):
    medical, pharmacy = sample
    r = claims_audit.audit(medical, pharmacy)
    assert findings_tsv(r.findings) == GOLDEN.read_text()
    assert r.findings.column("source_file").to_pylist()[0].startswith("medical")
    assert r.episodes.num_rows > 0
    assert r.tallies.num_rows == 21
    assert r.totals["findings"] == r.findings.num_rows


def test_typed_parquet_tables_give_the_same_findings(sample):
    """The Parquet twins, read with their own types (dates, numbers)."""
    import pyarrow.parquet as pq

    medical = [pq.read_table(TWINS / "claims.parquet"), pq.read_table(TWINS / "institutional.parquet")]
    r = claims_audit.audit(medical, pq.read_table(TWINS / "pharmacy.parquet"))
    assert findings_tsv(r.findings) == GOLDEN.read_text()


def test_polars_and_pandas_frames_are_accepted(sample):
    import pandas as pd
    import polars as pl

    medical, pharmacy = sample
    want = findings_tsv(claims_audit.audit(medical, pharmacy).findings)
    by_polars = claims_audit.audit([pl.from_arrow(t) for t in medical], pl.from_arrow(pharmacy))
    assert findings_tsv(by_polars.findings) == want
    by_pandas = claims_audit.audit([t.to_pandas() for t in medical], pharmacy.to_pandas())
    assert findings_tsv(by_pandas.findings) == want
    assert isinstance(by_pandas.findings, pa.Table) and not isinstance(by_pandas.findings, pd.DataFrame)


def test_date_window_and_lookback_are_applied(sample):
    medical, pharmacy = sample
    all_dates = claims_audit.audit(medical, pharmacy)
    window = claims_audit.audit(medical, pharmacy, date_from="2025-11-01", date_to="2025-12-31")
    dates = window.findings.column("service_date").to_pylist()
    assert dates and all(str(d) >= "2025-11-01" and str(d) <= "2025-12-31" for d in dates)
    assert window.findings.num_rows < all_dates.findings.num_rows


def test_missing_column_raises_value_error_naming_it(sample):
    medical, _ = sample
    broken = medical[0].drop_columns(["hcpcs_code"])
    with pytest.raises(ValueError, match="hcpcs_code"):
        claims_audit.audit(broken)


def test_bad_policy_and_dates_raise_value_error(tmp_path, sample):
    medical, _ = sample
    bad = tmp_path / "policy.toml"
    bad.write_text("[policy\n")
    with pytest.raises(ValueError, match="invalid policy"):
        claims_audit.audit(medical, policy=bad)
    with pytest.raises(ValueError, match="after"):
        claims_audit.audit(medical, date_from="2025-12-01", date_to="2025-01-01")
    with pytest.raises(TypeError):
        claims_audit.audit(object())


def test_rules_is_the_catalogue():
    t = claims_audit.rules()
    assert t.num_rows == 21
    ids = t.column("rule_id").to_pylist()
    assert ids[0] == "DX_NOT_MS" and "CROSS_BENEFIT_DUPLICATE" in ids
    assert set(t.column_names) == {"rule_id", "category", "severity", "summary"}
