//! Output contract: logical types, permissions, determinism, manifest.

use std::fs::File;
use std::os::unix::fs::PermissionsExt;

use parquet::basic::{ConvertedType, LogicalType, Type as Physical};
use parquet::file::reader::{FileReader, SerializedFileReader};

use crate::common::*;

fn schema(path: &std::path::Path) -> Vec<(String, Physical, Option<LogicalType>, ConvertedType)> {
    let r = SerializedFileReader::new(File::open(path).unwrap()).unwrap();
    r.metadata()
        .file_metadata()
        .schema_descr()
        .columns()
        .iter()
        .map(|c| (c.name().to_string(), c.physical_type(), c.logical_type_ref().cloned(), c.converted_type()))
        .collect()
}

fn assert_type(
    s: &[(String, Physical, Option<LogicalType>, ConvertedType)],
    name: &str,
    check: impl Fn(Physical, &Option<LogicalType>) -> bool,
) {
    let c = s.iter().find(|c| c.0 == name).unwrap_or_else(|| panic!("missing column {name}"));
    assert!(check(c.1, &c.2), "{name}: physical {:?}, logical {:?}", c.1, c.2);
}

fn is_date(p: Physical, l: &Option<LogicalType>) -> bool {
    p == Physical::INT32 && matches!(l, Some(LogicalType::Date))
}
fn is_utf8(p: Physical, l: &Option<LogicalType>) -> bool {
    p == Physical::BYTE_ARRAY && matches!(l, Some(LogicalType::String))
}
fn is_int(p: Physical, _: &Option<LogicalType>) -> bool {
    p == Physical::INT32 || p == Physical::INT64
}

#[test]
fn outputs_have_proper_logical_types() {
    let t = tmp();
    let out = t.path().join("out");
    run_ok(&out, &[sample_csv().to_str().unwrap()]);
    let f = schema(&out.join("findings.parquet"));
    assert_type(&f, "service_date", is_date);
    for c in [
        "run_id",
        "rule_id",
        "category",
        "severity",
        "person_id",
        "claim_id",
        "hcpcs_code",
        "episode_id",
        "message",
        "evidence",
        "rule_version",
        "source_file",
    ] {
        assert_type(&f, c, is_utf8);
    }
    assert_type(&f, "claim_line_number", is_int);
    assert_type(&f, "source_line", is_int);
    assert_type(&f, "paid_amount", |p, _| p == Physical::DOUBLE);
    let e = schema(&out.join("episodes.parquet"));
    assert_type(&e, "administration_date", is_date);
    assert_type(&e, "previous_administration_date", is_date);
    for c in ["dose_sequence", "days_since_previous", "line_count", "finding_count"] {
        assert_type(&e, c, is_int);
    }
    for c in ["episode_id", "person_id", "drug_code", "phase", "claim_ids", "max_severity"] {
        assert_type(&e, c, is_utf8);
    }
    let j = schema(&out.join("rejects.parquet"));
    assert_type(&j, "source_line", is_int);
    for c in ["source_file", "reason", "raw_text"] {
        assert_type(&j, c, is_utf8);
    }
    // Evidence is JSON.
    let (names, rows) = read_table(&out.join("findings.parquet"));
    let ev = col(&names, "evidence");
    for r in &rows {
        serde_json::from_str::<serde_json::Value>(&r[ev]).expect("evidence is JSON");
    }
}

#[test]
fn outputs_are_private_and_complete() {
    let t = tmp();
    let out = t.path().join("out");
    run_ok(&out, &[sample_csv().to_str().unwrap()]);
    assert_eq!(std::fs::metadata(&out).unwrap().permissions().mode() & 0o777, 0o700);
    for f in ["findings.parquet", "episodes.parquet", "rejects.parquet", "resolved.parquet", "manifest.json", "summary.md", "_SUCCESS"] {
        let m = std::fs::metadata(out.join(f)).unwrap_or_else(|_| panic!("{f} missing"));
        assert_eq!(m.permissions().mode() & 0o777, 0o600, "{f}");
    }
    // Nothing stays beside the target: no staging, and no lock file once the run ended.
    let leftovers: Vec<_> = std::fs::read_dir(t.path()).unwrap().flatten().map(|e| e.file_name()).filter(|n| n != "out").collect();
    assert!(leftovers.is_empty(), "staging left behind: {leftovers:?}");
}

#[test]
fn manifest_accounts_for_every_row_and_rule() {
    let t = tmp();
    let out = t.path().join("out");
    run_ok(&out, &[sample_csv().to_str().unwrap()]);
    let m = manifest(&out);
    let f = &m["inputs"][0];
    let (read, acc, rej) = (f["rows_read"].as_u64().unwrap(), f["rows_accepted"].as_u64().unwrap(), f["rows_rejected"].as_u64().unwrap());
    assert_eq!(read, acc + rej);
    let data_lines = std::fs::read_to_string(sample_csv()).unwrap().lines().count() as u64 - 1;
    assert_eq!(read, data_lines);
    assert_eq!(m["rules"].as_array().unwrap().len(), claims_audit::rules::RULES.len());
    assert!(m["policy"]["version"].is_string() && m["run_id"].is_string());
    let (names, rows) = read_table(&out.join("findings.parquet"));
    let flagged: u64 = m["rules"].as_array().unwrap().iter().map(|r| r["flagged"].as_u64().unwrap()).sum();
    assert_eq!(flagged, rows.len() as u64);
    let rv = col(&names, "rule_version");
    assert!(
        rows.iter().all(
            |r| r[rv] == format!("{}@{}/catalogue-v3", m["policy"]["name"].as_str().unwrap(), m["policy"]["version"].as_str().unwrap())
        )
    );
    let summary = std::fs::read_to_string(out.join("summary.md")).unwrap();
    assert!(summary.contains("DUPLICATE_PER_DIEM") && summary.contains("money at stake"));
}

#[test]
fn reruns_are_byte_identical_across_thread_counts() {
    let t = tmp();
    let (a, b, c) = (t.path().join("a"), t.path().join("b"), t.path().join("c"));
    let input = sample_csv();
    run_ok(&a, &["--threads", "1", input.to_str().unwrap()]);
    run_ok(&b, &["--threads", "2", input.to_str().unwrap()]);
    run_ok(&c, &["--threads", "2", input.to_str().unwrap()]);
    for f in ["findings.parquet", "episodes.parquet", "rejects.parquet"] {
        let x = std::fs::read(a.join(f)).unwrap();
        assert_eq!(x, std::fs::read(b.join(f)).unwrap(), "{f} differs between 1 and 2 threads");
        assert_eq!(x, std::fs::read(c.join(f)).unwrap(), "{f} differs between runs");
    }
}

#[test]
fn date_range_with_lookback() {
    let t = tmp();
    // Previous dose 2025-06-02 is before --from; the dose 2025-09-02 is 92 days later.
    let csv = write_csv(
        t.path(),
        "x.csv",
        &[
            "A,1,P1,Aetna,2025-06-02,12,J2350,,600,50242-0150-01,G35,1",
            "B,1,P1,Aetna,2025-09-02,12,J2350,,600,50242-0150-01,G35,1",
            "C,1,P1,Aetna,2026-03-02,12,J2350,,450,50242-0150-01,G35.A,1",
        ],
    );
    let out = t.path().join("out");
    run_ok(&out, &["--from", "2025-09-01", "--to", "2025-12-31", csv.to_str().unwrap()]);
    let (names, rows) = read_table(&out.join("findings.parquet"));
    let (rule, date) = (col(&names, "rule_id"), col(&names, "service_date"));
    assert!(rows.iter().any(|r| r[rule] == "INTERVAL_TOO_SHORT" && r[date] == "2025-09-02"), "{rows:?}");
    assert!(rows.iter().all(|r| r[date].as_str() >= "2025-09-01" && r[date].as_str() <= "2025-12-31"), "finding outside range");
    let m = manifest(&out);
    assert_eq!(m["inputs"][0]["rows_kept"], 2, "the line after --to is not read");
}
