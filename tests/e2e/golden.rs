//! The sample extracts' findings, pinned; CSV and Parquet copies agree.

use crate::common::*;

/// The stable columns of findings.parquet as TSV, in file order.
fn findings_tsv(out: &std::path::Path) -> String {
    let (names, rows) = read_table(&out.join("findings.parquet"));
    let keep = [
        "rule_id",
        "severity",
        "person_id",
        "claim_id",
        "claim_line_number",
        "service_date",
        "hcpcs_code",
        "episode_id",
        "amount_at_stake",
        "message",
    ];
    let idx: Vec<usize> = keep.iter().map(|k| col(&names, k)).collect();
    let mut s = keep.join("\t") + "\n";
    for r in rows {
        s.push_str(&idx.iter().map(|&i| r[i].as_str()).collect::<Vec<_>>().join("\t"));
        s.push('\n');
    }
    s
}

#[test]
fn sample_data_matches_golden_findings() {
    let t = tmp();
    let out = t.path().join("out");
    run_ok(&out, &[sample_dir().to_str().unwrap()]);
    let got = findings_tsv(&out);
    let golden = repo().join("tests/golden/sample_findings.tsv");
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&golden, &got).unwrap();
    }
    let want = std::fs::read_to_string(&golden).expect("golden file (UPDATE_GOLDEN=1 to create)");
    assert_eq!(got, want, "findings differ from tests/golden/sample_findings.tsv (UPDATE_GOLDEN=1 to accept)");
    // Every rule of the catalogue fires on the sample.
    for r in claims_audit::rules::RULES {
        assert!(got.lines().any(|l| l.starts_with(&format!("{}\t", r.id))), "{} does not fire on sample_data", r.id);
    }
}

#[test]
fn csv_and_parquet_copies_give_identical_findings() {
    let t = tmp();
    let (a, b) = (t.path().join("csv"), t.path().join("pq"));
    run_ok(&a, &[sample_dir().to_str().unwrap()]);
    run_ok(&b, &[sample_parquet_dir().to_str().unwrap()]);
    assert_eq!(findings_tsv(&a), findings_tsv(&b));
    let (ea, eb) = (read_table(&a.join("episodes.parquet")), read_table(&b.join("episodes.parquet")));
    assert_eq!(ea, eb);
    let (ma, mb) = (manifest(&a), manifest(&b));
    for k in ["kind", "rows_read", "rows_accepted", "rows_rejected", "rows_in_scope", "rows_without_hcpcs", "rows_uncoded_drug"] {
        for i in 0..3 {
            assert_eq!(ma["inputs"][i][k], mb["inputs"][i][k], "{k} of input {i}");
        }
    }
    assert_eq!(ma["pharmacy"], mb["pharmacy"]);
}

#[test]
fn typical_case_is_caught() {
    let t = tmp();
    let out = t.path().join("out");
    run_ok(&out, &[sample_csv().to_str().unwrap()]);
    let tsv = findings_tsv(&out);
    let p3: Vec<&str> = tsv.lines().filter(|l| l.contains("\tP0003\t")).collect();
    assert!(p3.iter().any(|l| l.starts_with("DX_NOT_VALID_ON_DOS\t") && l.contains("diagnosis G35 not valid")), "{p3:?}");
    assert!(p3.iter().any(|l| l.starts_with("DUPLICATE_PER_DIEM\t") && l.contains("\tS9490\t")), "{p3:?}");
}
