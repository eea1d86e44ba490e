//! Damaged inputs: bad rows become rejects and the run goes on; bad files
//! fail with one line and a distinct exit code; output is atomic.

use std::path::Path;

use crate::common::*;

/// Runs on one file; returns (rejects as (line, reason_code, raw), manifest file entry).
fn audit_one(dir: &Path, input: &Path) -> (Vec<(i64, String, String)>, serde_json::Value) {
    let out = dir.join(format!("out-{}", input.file_name().unwrap().to_string_lossy()));
    run_ok(&out, &[input.to_str().unwrap()]);
    let (names, rows) = read_table(&out.join("rejects.parquet"));
    let (l, c, r) = (col(&names, "source_line"), col(&names, "reason_code"), col(&names, "raw_text"));
    let rejects = rows.iter().map(|x| (x[l].parse().unwrap(), x[c].clone(), x[r].clone())).collect();
    let m = manifest(&out);
    let f = m["inputs"][0].clone();
    assert_eq!(f["rows_read"].as_u64().unwrap(), f["rows_accepted"].as_u64().unwrap() + f["rows_rejected"].as_u64().unwrap(), "{f}");
    (rejects, f)
}

const OK: &str = "A,1,P1,Aetna,2025-11-03,12,J2350,,600,50242-0150-01,G35.A,100";
const OFFICE: &str = "B,1,P2,Aetna,2025-11-03,11,99213,,1,,I10,90";

#[test]
fn row_damage_goes_to_rejects_with_line_numbers() {
    let t = tmp();
    let p = write_csv(
        t.path(),
        "damaged.csv",
        &[
            OK,
            "C,1,P1,Aetna,2025-11-03,12,J2930,,1,,G35.A,5,EXTRA", // line 3: too many fields
            "D,1,P1,Aetna,2025-11-03,12,J1200",                   // line 4: too few
            "E,1,P1,Aetna,2025-13-45,12,J2930,,1,,G35.A,5",       // line 5: bad date
            "F,1,P1,Aetna,2025-11-03,12,S9379,,one,,G35.A,5",     // line 6: units
            "G,1,,Aetna,2025-11-03,12,S9379,,1,,G35.A,5",         // line 7: empty person
            "H,1,P1,Aetna,2025-11-03,12,,,1,,G35.A,5",            // line 8: empty code: accepted, out of scope
            HEADER,                                               // line 9: repeated header
            "I,1,P1,\"Aetna, \"\"Choice\"\"\nPOS II\",2025-11-03,12,99601,,1,,G35.A,5", // lines 10-11: quoted, accepted
            "J,1,P1,Aetna,2025-11-03,12,99602,,x,,G35.A,5",       // line 12: units, after a 2-line row
            "K,1,P3,Aetna,2025-11-03,12,J2350,,-600,,G35.A,5",    // line 13: reversal of nothing
            OFFICE,
        ],
    );
    let (rejects, f) = audit_one(t.path(), &p);
    let got: Vec<(i64, &str)> = rejects.iter().map(|(l, c, _)| (*l, c.as_str())).collect();
    assert_eq!(
        got,
        vec![
            (3, "field_count"),
            (4, "field_count"),
            (5, "bad_date"),
            (6, "bad_units"),
            (7, "empty_person"),
            (9, "repeated_header"),
            (12, "bad_units"),
            (13, "reversal_unmatched"),
        ]
    );
    assert_eq!(f["rows_read"], 12, "the quoted two-line row is one row");
    assert_eq!(f["rows_rejected"], 8);
    assert_eq!(f["rows_without_hcpcs"], 1);
    assert!(rejects[0].2.ends_with(",5,EXTRA"), "raw text kept: {}", rejects[0].2);
}

#[test]
fn invalid_utf8_in_one_field() {
    let t = tmp();
    let p = t.path().join("utf8.csv");
    let mut bytes = format!("{HEADER}\n{OK}\n").into_bytes();
    // In scope (a steroid line): read fully, the field as Windows-1252
    // (INPUT.md "Files"), not a reject.
    bytes.extend_from_slice(b"B,1,P2,Aet\xffna,2025-11-03,12,J2930,,1,,G35.A,5\n");
    // Out of scope (an office visit): counted and shape-checked only (INPUT.md).
    bytes.extend_from_slice(b"C,1,P2,Aet\xffna,2025-11-03,11,99213,,1,,I10,90\n");
    // In scope with a bad unit count: the reject's raw text reads the byte
    // as Windows-1252 too.
    bytes.extend_from_slice(b"D,1,P2,Aet\xffna,2025-11-03,12,J2930,,x,,G35.A,5\n");
    bytes.extend_from_slice(format!("{OFFICE}\n").as_bytes());
    std::fs::write(&p, bytes).unwrap();
    let (rejects, f) = audit_one(t.path(), &p);
    assert_eq!(rejects.len(), 1, "{rejects:?}");
    assert_eq!((rejects[0].0, rejects[0].1.as_str()), (5, "bad_units"));
    assert!(rejects[0].2.contains("Aet\u{ff}na"), "raw text kept, the byte read as Windows-1252: {}", rejects[0].2);
    assert_eq!(f["rows_read"], 5);
    assert_eq!(f["fields_transcoded"], 2, "the in-scope rows' payer fields; out-of-scope rows are not decoded");
}

#[test]
fn bom_crlf_no_trailing_newline_and_header_only() {
    let t = tmp();
    let p = t.path().join("bom.csv");
    std::fs::write(&p, format!("\u{feff}{HEADER}\r\n{OK}\r\n{OFFICE}")).unwrap();
    let (rejects, f) = audit_one(t.path(), &p);
    assert!(rejects.is_empty(), "{rejects:?}");
    assert_eq!(f["rows_read"], 2);
    assert_eq!(f["rows_in_scope"], 1);

    let h = t.path().join("header_only.csv");
    std::fs::write(&h, format!("{HEADER}\n")).unwrap();
    let (rejects, f) = audit_one(t.path(), &h);
    assert!(rejects.is_empty());
    assert_eq!(f["rows_read"], 0);
}

#[test]
fn two_megabyte_field() {
    let t = tmp();
    let big = "x".repeat(2 << 20);
    let p = write_csv(
        t.path(),
        "big.csv",
        &[
            OK,
            &format!("B,1,P1,{big},2025-11-03,12,J2930,,1,,G35.A,5"),
            &format!("C,1,P1,\"{big}\",2025-11-03,12,J2930,,bad,,G35.A,5"),
            OFFICE,
        ],
    );
    let (rejects, f) = audit_one(t.path(), &p);
    assert_eq!(f["rows_read"], 4);
    assert_eq!(rejects.len(), 1);
    assert_eq!((rejects[0].0, rejects[0].1.as_str()), (4, "bad_units"));
    assert_eq!(rejects[0].2.len(), 64 * 1024, "raw text is cut at 64 KiB");
}

#[test]
fn parquet_rows_are_rejected_too() {
    let t = tmp();
    let csv = write_csv(
        t.path(),
        "rows.csv",
        &[
            OK,
            "E,1,P1,Aetna,2025-13-45,12,J2930,,1,,G35.A,5",
            "F,1,P1,Aetna,2025-11-03,12,S9379,,one,,G35.A,5",
            "G,1,,Aetna,2025-11-03,12,S9379,,1,,G35.A,5",
            "H,1,P1,Aetna,2025-11-03,12,,,1,,G35.A,5",
            OFFICE,
        ],
    );
    let pq = t.path().join("rows.parquet");
    let o = bin().args(["convert", csv.to_str().unwrap(), pq.to_str().unwrap()]).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let (rejects, f) = audit_one(t.path(), &pq);
    let got: Vec<(i64, &str)> = rejects.iter().map(|(l, c, _)| (*l, c.as_str())).collect();
    assert_eq!(got, vec![(2, "bad_date"), (3, "bad_units"), (4, "empty_person")]);
    assert_eq!(f["rows_read"], 6);
    assert_eq!(f["rows_without_hcpcs"], 1);
}

fn fails(args: &[&str], inputs: &[&Path], code: i32, needle: &str) {
    let t = tmp();
    let out = t.path().join("out");
    let mut all: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    all.extend(inputs.iter().map(|p| p.display().to_string()));
    let refs: Vec<&str> = all.iter().map(String::as_str).collect();
    let o = run(&out, &refs);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(code), "stderr: {err}");
    assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
    assert!(err.contains(needle), "{needle:?} not in {err}");
    assert!(!err.contains("panicked") && !err.contains("RUST_BACKTRACE"));
    assert!(!out.join("_SUCCESS").exists());
}

#[test]
fn file_damage_fails_clearly() {
    let t = tmp();
    let d = t.path();
    fails(&[], &[&d.join("missing.csv")], 3, "missing.csv: no such file");
    std::fs::write(d.join("empty.csv"), "").unwrap();
    fails(&[], &[&d.join("empty.csv")], 3, "empty.csv: empty file");
    std::fs::write(d.join("nocols.csv"), "claim_id,person_id,claim_line_start_date\nA,P1,2025-01-01\n").unwrap();
    fails(
        &[],
        &[&d.join("nocols.csv")],
        3,
        "missing required column(s): claim_line_number, hcpcs_code, service_unit_quantity, diagnosis_code_1",
    );
    std::fs::write(d.join("fake.parquet"), "this is not parquet").unwrap();
    fails(&[], &[&d.join("fake.parquet")], 3, "fake.parquet: cannot read as Parquet");
    let whole = std::fs::read(sample_parquet()).unwrap();
    std::fs::write(d.join("truncated.parquet"), &whole[..whole.len() / 2]).unwrap();
    fails(&[], &[&d.join("truncated.parquet")], 3, "truncated.parquet: cannot read as Parquet");
    let nocol = d.join("nocol.parquet");
    std::fs::write(
        d.join("nocol.csv"),
        "claim_id,claim_line_number,person_id,claim_line_start_date,service_unit_quantity,diagnosis_code_1\nA,1,P1,2025-01-01,1,G35\n",
    )
    .unwrap();
    assert!(bin().args(["convert", d.join("nocol.csv").to_str().unwrap(), nocol.to_str().unwrap()]).status().unwrap().success());
    fails(&[], &[&nocol], 3, "nocol.parquet: missing required column(s): hcpcs_code");
    // Output under a regular file cannot be created (root ignores permission bits).
    std::fs::write(d.join("afile"), "").unwrap();
    let o =
        bin().args(["run", "--quiet", "--out", d.join("afile/out").to_str().unwrap(), sample_csv().to_str().unwrap()]).output().unwrap();
    assert_eq!(o.status.code(), Some(4), "{}", String::from_utf8_lossy(&o.stderr));
    fails(&["--from", "2025-13-01"], &[&sample_csv()], 2, "not a date");
    fails(&["--from", "2026-01-01", "--to", "2025-01-01"], &[&sample_csv()], 2, "after --to");
}

#[test]
fn logs_carry_no_identifiers() {
    let t = tmp();
    let out = t.path().join("out");
    let o = bin()
        .env("CLAIMS_AUDIT_LOG", "debug")
        .args(["run", "--out", out.to_str().unwrap(), sample_csv().to_str().unwrap()])
        .output()
        .unwrap();
    assert!(o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("rows_read"), "logs say counts: {err}");
    for needle in ["P0001", "P0003", "J2350", "G35", "2025-", "CLM0"] {
        assert!(!err.contains(needle), "log leaks {needle}: {err}");
    }
}

#[test]
fn cclf5_layout_audits_like_tuva_names() {
    let t = tmp();
    let cclf = repo().join("examples/cclf5/claims.csv");
    let map = repo().join("examples/cclf5/columns.toml");
    // The same rows under Tuva names: rename the header through the map.
    let aliases: std::collections::BTreeMap<String, String> = toml::from_str(&std::fs::read_to_string(&map).unwrap()).unwrap();
    let text = std::fs::read_to_string(&cclf).unwrap();
    let (head, body) = text.split_once('\n').unwrap();
    let renamed: Vec<String> = head
        .split(',')
        .map(|h| aliases.iter().find(|(_, v)| v.eq_ignore_ascii_case(h)).map(|(k, _)| k.clone()).unwrap_or_else(|| h.to_string()))
        .collect();
    let tuva = t.path().join("tuva.csv");
    std::fs::write(&tuva, format!("{}\n{body}", renamed.join(","))).unwrap();
    let (a, b) = (t.path().join("a"), t.path().join("b"));
    run_ok(&a, &["--columns", map.to_str().unwrap(), cclf.to_str().unwrap()]);
    run_ok(&b, &[tuva.to_str().unwrap()]);
    let strip = |p: &Path| {
        let (names, rows) = read_table(&p.join("findings.parquet"));
        let keep: Vec<usize> = ["rule_id", "person_id", "claim_id", "claim_line_number", "service_date", "message", "evidence"]
            .iter()
            .map(|k| col(&names, k))
            .collect();
        rows.into_iter().map(|r| keep.iter().map(|&i| r[i].clone()).collect::<Vec<_>>()).collect::<Vec<_>>()
    };
    let fa = strip(&a);
    assert!(!fa.is_empty());
    assert_eq!(fa, strip(&b));
}

/// The fast Parquet reader reads member_id, the claim dates and the charge
/// only for rows that use them (person_id, line dates, paid and allowed
/// empty). A reject or an unmatched reversal from another row still shows
/// every column in its raw text, as the plain reader does.
#[test]
fn parquet_rejects_show_fallback_columns_the_reader_skipped() {
    let t = tmp();
    let header = "claim_id,claim_line_number,person_id,member_id,claim_line_start_date,claim_start_date,claim_line_end_date,claim_end_date,\
                  hcpcs_code,service_unit_quantity,diagnosis_code_1,paid_amount,allowed_amount,charge_amount";
    let rows = [
        "A,1,P1,M1,2025-11-03,2025-11-01,2025-11-03,2025-11-30,J2350,600,G35.A,100,90,5000",
        // Rejected: units not a number, and a bad line date.
        "B,1,P1,M1,2025-11-03,2025-11-01,2025-11-03,2025-11-30,S9379,one,G35.A,5,4,70",
        "C,1,P1,M1,2025-13-45,2025-11-01,,2025-11-30,J2930,1,G35.A,5,4,70",
        // A reversal of nothing.
        "D,1,P1,M1,2025-12-03,2025-12-01,2025-12-03,2025-12-30,J2350,-600,G35.A,-100,-90,-5000",
        // Fallbacks in use: no person_id, no line dates, no paid or allowed.
        "E,1,,M2,,2025-11-05,,2025-11-06,J2350,600,G35.A,,,4800",
        "F,1,,,2025-11-03,,,,J2350,600,G35.A,,,",
    ];
    let mut text = format!("{header}\n");
    for r in rows {
        text.push_str(r);
        text.push('\n');
    }
    let csv = t.path().join("fb.csv");
    std::fs::write(&csv, text).unwrap();
    let pq = t.path().join("fb.parquet");
    let o = bin().args(["convert", csv.to_str().unwrap(), pq.to_str().unwrap()]).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let (fast, plain) = (t.path().join("fast"), t.path().join("plain"));
    run_ok(&fast, &[pq.to_str().unwrap()]);
    run_ok(&plain, &["--engine", "plain", pq.to_str().unwrap()]);
    let (names, rejects) = read_table(&fast.join("rejects.parquet"));
    assert_eq!(read_table(&plain.join("rejects.parquet")), (names.clone(), rejects.clone()));
    let (l, c, r) = (col(&names, "source_line"), col(&names, "reason_code"), col(&names, "raw_text"));
    let got: Vec<(&str, &str)> = rejects.iter().map(|x| (x[l].as_str(), x[c].as_str())).collect();
    // Parquet rows are numbered from 1.
    assert_eq!(got, [("2", "bad_units"), ("3", "bad_date"), ("4", "reversal_unmatched"), ("6", "empty_person")]);
    // member_id, claim start and end dates are in the raw text.
    for x in &rejects[..3] {
        let raw = &x[r];
        assert!(raw.contains(",M1,") && raw.contains("-01,") && raw.contains("-30,"), "{raw}");
    }
    // The rows that use their fallbacks are kept with them.
    let m = manifest(&fast);
    assert_eq!(m["inputs"][0]["rows_kept"], 2, "A and E: {}", m["inputs"][0]);
    let (names, eps) = read_table(&fast.join("episodes.parquet"));
    let id = col(&names, "episode_id");
    assert!(eps.iter().any(|x| x[id].starts_with("M2:2025-11-05:")), "{eps:?}");
    assert_eq!(read_table(&plain.join("episodes.parquet")), (names, eps));
}
