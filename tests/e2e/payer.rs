//! Extracts shaped like a payer's own (issue 8): institutional claims with
//! revenue-code-only lines and bill types, pharmacy claims beside medical
//! ones, and the cross-benefit duplicate. Each case names the exact findings.

use std::path::{Path, PathBuf};

use crate::common::*;

/// Tuva medical_claim columns of an institutional extract.
const INST: &str = "claim_id,claim_line_number,claim_type,person_id,payer,claim_line_start_date,bill_type_code,revenue_center_code,place_of_service_code,hcpcs_code,service_unit_quantity,ndc_code,diagnosis_code_1,paid_amount";
/// Tuva pharmacy_claim columns.
const RX: &str = "claim_id,claim_line_number,person_id,payer,dispensing_date,ndc_code,quantity,days_supply,paid_amount";

fn write(dir: &Path, name: &str, header: &str, rows: &[String]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, format!("{header}\n{}\n", rows.join("\n"))).unwrap();
    p
}

/// One institutional line: (claim, line, person, date, bill type, revenue, POS, code, units).
#[allow(clippy::too_many_arguments)]
fn inst(claim: &str, n: u32, person: &str, date: &str, bill: &str, rev: &str, pos: &str, code: &str, units: &str) -> String {
    let ndc = if code == "J2350" { "50242-0150-01" } else { "" };
    format!("{claim},{n},institutional,{person},Aetna,{date},{bill},{rev},{pos},{code},{units},{ndc},G35.A,100.00")
}

/// A professional line at home (POS 12).
fn prof(claim: &str, n: u32, person: &str, date: &str, code: &str, units: &str) -> String {
    let ndc = if code == "J2350" { "50242-0150-01" } else { "" };
    // The MS code valid on the date (G35 before FY2026): a wrong one is DX_CODE_INVALID.
    let dx = if date < "2025-10-01" { "G35" } else { "G35.A" };
    format!("{claim},{n},professional,{person},Aetna,{date},,,12,{code},{units},{ndc},{dx},100.00")
}

/// A full home infusion visit on professional claims, with or without the drug.
fn visit(claim: &str, person: &str, date: &str, drug: Option<&str>) -> Vec<String> {
    let mut v = vec![
        prof(claim, 1, person, date, "S9379", "1"),
        prof(claim, 2, person, date, "99601", "1"),
        prof(claim, 3, person, date, "J2930", "1"),
        prof(claim, 4, person, date, "J1200", "1"),
    ];
    if let Some(units) = drug {
        v.push(prof(claim, 5, person, date, "J2350", units));
    }
    v
}

fn rx(claim: &str, person: &str, date: &str, ndc: &str, quantity: &str) -> String {
    format!("{claim},1,{person},Aetna,{date},{ndc},{quantity},1,37200.00")
}

/// A finding as (rule_id, claim_id, claim_line_number, hcpcs_code, service_date).
type Found = (String, String, String, String, String);

/// Runs on the given files; returns the findings and the output dir.
fn audit(dir: &Path, inputs: &[&Path]) -> (Vec<Found>, PathBuf) {
    let out = dir.join("out");
    let args: Vec<&str> = inputs.iter().map(|p| p.to_str().unwrap()).collect();
    run_ok(&out, &args);
    let (names, rows) = read_table(&out.join("findings.parquet"));
    let c: Vec<usize> = ["rule_id", "claim_id", "claim_line_number", "hcpcs_code", "service_date"].iter().map(|k| col(&names, k)).collect();
    let f = rows.into_iter().map(|r| (r[c[0]].clone(), r[c[1]].clone(), r[c[2]].clone(), r[c[3]].clone(), r[c[4]].clone())).collect();
    (f, out)
}

fn rules_of(f: &[Found]) -> Vec<&str> {
    f.iter().map(|x| x.0.as_str()).collect()
}

fn rule_counts(out: &Path, rule: &str) -> (u64, u64, u64) {
    let m = manifest(out);
    let r = m["rules"].as_array().unwrap().iter().find(|r| r["rule_id"] == rule).unwrap().clone();
    (r["evaluated"].as_u64().unwrap(), r["flagged"].as_u64().unwrap(), r["not_evaluable"].as_u64().unwrap())
}

#[test]
fn revenue_only_institutional_lines_are_accepted_not_rejected() {
    let t = tmp();
    let rows: Vec<String> = vec![
        inst("I1", 1, "Q1", "2025-08-11", "0111", "0120", "", "", "3"),
        inst("I1", 2, "Q1", "2025-08-11", "0111", "0250", "", "", "1"),
        inst("I1", 3, "Q1", "2025-08-11", "0111", "0300", "", "", "1"),
        inst("I1", 4, "Q1", "2025-08-11", "0111", "0270", "", " ", "1"),
        inst("I1", 5, "Q1", "2025-08-11", "0111", "0305", "", "85025", "1"),
    ];
    let p = write(t.path(), "inst.csv", INST, &rows);
    let (f, out) = audit(t.path(), &[&p]);
    assert!(f.is_empty());
    let m = manifest(&out);
    let i = &m["inputs"][0];
    assert_eq!((i["rows_read"].as_u64(), i["rows_rejected"].as_u64()), (Some(5), Some(0)), "{i}");
    assert_eq!((i["rows_without_hcpcs"].as_u64(), i["rows_uncoded_drug"].as_u64()), (Some(4), Some(1)), "{i}");
    assert_eq!(read_table(&out.join("rejects.parquet")).1.len(), 0);
}

#[test]
fn site_of_care_comes_from_the_bill_type() {
    let t = tmp();
    // Home health (034x, both written forms), no POS: home.
    let home = [
        inst("H1", 1, "Q1", "2025-11-03", "0341", "0551", "", "99601", "1"),
        inst("H1", 2, "Q1", "2025-11-03", "0341", "0260", "", "S9379", "1"),
        inst("H2", 1, "Q2", "2025-11-03", "341", "0551", "", "99601", "1"),
        inst("H2", 2, "Q2", "2025-11-03", "341", "0260", "", "S9379", "1"),
    ];
    let p = write(t.path(), "home.csv", INST, &home);
    let (f, out) = audit(t.path(), &[&p]);
    assert!(!rules_of(&f).contains(&"POS_NOT_HOME"), "{f:?}");
    assert_eq!(rule_counts(&out, "POS_NOT_HOME"), (4, 0, 0));

    // Hospital outpatient (013x): one finding per home-infusion line.
    let t = tmp();
    let hopd = [
        inst("O1", 1, "Q3", "2025-11-03", "0131", "0551", "", "99601", "1"),
        inst("O1", 2, "Q3", "2025-11-03", "0131", "0260", "", "S9379", "1"),
        inst("O1", 3, "Q3", "2025-11-03", "0131", "0636", "", "J2930", "1"),
    ];
    let p = write(t.path(), "hopd.csv", INST, &hopd);
    let (f, _) = audit(t.path(), &[&p]);
    let pos: Vec<(&str, &str)> = f.iter().filter(|x| x.0 == "POS_NOT_HOME").map(|x| (x.1.as_str(), x.2.as_str())).collect();
    assert_eq!(pos, [("O1", "1"), ("O1", "2")]);

    // No bill type and no POS: not evaluable, never clean.
    let t = tmp();
    let none = [inst("N1", 1, "Q4", "2025-11-03", "", "", "", "99601", "1"), inst("N1", 2, "Q4", "2025-11-03", "", "", "", "S9379", "1")];
    let p = write(t.path(), "none.csv", INST, &none);
    let (f, out) = audit(t.path(), &[&p]);
    assert!(!rules_of(&f).contains(&"POS_NOT_HOME"));
    assert_eq!(rule_counts(&out, "POS_NOT_HOME"), (0, 0, 2));
}

#[test]
fn a_pharmacy_revenue_line_without_hcpcs_excuses_premedication() {
    let t = tmp();
    let day = |rev_line: Option<String>| {
        let mut v = vec![
            inst("P1", 1, "Q1", "2025-11-03", "0341", "0636", "", "J2350", "600"),
            inst("P1", 2, "Q1", "2025-11-03", "0341", "0260", "", "S9379", "1"),
            inst("P1", 3, "Q1", "2025-11-03", "0341", "0551", "", "99601", "1"),
        ];
        v.extend(rev_line);
        v
    };
    let with = write(t.path(), "with.csv", INST, &day(Some(inst("P1", 4, "Q1", "2025-11-03", "0341", "0250", "", "", "1"))));
    let (f, out) = audit(t.path(), &[&with]);
    assert!(f.is_empty(), "{f:?}");
    assert_eq!(rule_counts(&out, "PREMED_NOT_BILLED"), (0, 0, 1));
    // Near misses: the 0250 line on another day, or a supplies revenue code.
    for (name, other) in [
        ("otherday.csv", inst("P1", 4, "Q1", "2025-11-04", "0341", "0250", "", "", "1")),
        ("supplies.csv", inst("P1", 4, "Q1", "2025-11-03", "0341", "0270", "", "", "1")),
    ] {
        let t = tmp();
        let p = write(t.path(), name, INST, &day(Some(other)));
        let (f, _) = audit(t.path(), &[&p]);
        assert_eq!(
            f.iter().map(|x| (x.0.as_str(), x.1.as_str(), x.2.as_str())).collect::<Vec<_>>(),
            [("PREMED_NOT_BILLED", "P1", "1")],
            "{name}"
        );
    }
}

#[test]
fn cross_benefit_duplicate_end_to_end() {
    let medical = |t: &Path| write(t, "med.csv", INST, &visit("M1", "R1", "2025-11-03", Some("600")));
    // Dispensed 4 days before the medical J2350.
    let t = tmp();
    let p = write(t.path(), "rx.csv", RX, &[rx("RX1", "R1", "2025-10-30", "50242-0150-01", "20")]);
    let (f, out) = audit(t.path(), &[&medical(t.path()), &p]);
    assert_eq!(f, [("CROSS_BENEFIT_DUPLICATE".into(), "M1".into(), "5".into(), "J2350".into(), "2025-11-03".into())]);
    let (names, rows) = read_table(&out.join("findings.parquet"));
    let ev = &rows[0][col(&names, "evidence")];
    for needle in [
        "\"claim_id\":\"RX1\"",
        "\"dispensing_date\":\"2025-10-30\"",
        "\"ndc\":[\"50242-0150-01\"]",
        "\"quantity\":20.0",
        "\"mg\":600.0",
        "\"paid_amount\":37200.0",
    ] {
        assert!(ev.contains(needle), "{needle} not in {ev}");
    }
    // Money at stake: the smaller payment (medical 100.00).
    assert_eq!(rows[0][col(&names, "amount_at_stake")], "100.0");
    assert!(std::fs::read_to_string(out.join("summary.md")).unwrap().contains("| CROSS_BENEFIT_DUPLICATE | cross_benefit | error | 1 |"));
    let (names, eps) = read_table(&out.join("episodes.parquet"));
    assert_eq!((eps[0][col(&names, "supply")].as_str(), eps[0][col(&names, "dispense_claim_id")].as_str()), ("medical", "RX1"));

    // A reversed dispense, and a dispense 60 days before: none.
    for (name, rows) in [
        ("reversed.csv", vec![rx("RX1", "R1", "2025-10-30", "50242-0150-01", "20"), rx("RX2", "R1", "2025-10-30", "50242015001", "-20")]),
        ("early.csv", vec![rx("RX1", "R1", "2025-09-04", "50242-0150-01", "20")]),
    ] {
        let t = tmp();
        let p = write(t.path(), name, RX, &rows);
        let (f, _) = audit(t.path(), &[&medical(t.path()), &p]);
        assert!(f.is_empty(), "{name}: {f:?}");
    }
}

#[test]
fn a_dispense_and_a_nursing_visit_make_a_pharmacy_supplied_administration() {
    let t = tmp();
    let med = write(t.path(), "med.csv", INST, &visit("V1", "R2", "2025-11-03", None));
    let p = write(t.path(), "rx.csv", RX, &[rx("RX9", "R2", "2025-11-01", "50242-150-01", "20")]);
    let (f, out) = audit(t.path(), &[&med, &p]);
    assert!(f.is_empty(), "no PER_DIEM_WITHOUT_DRUG: {f:?}");
    let (names, eps) = read_table(&out.join("episodes.parquet"));
    assert_eq!(eps.len(), 1);
    let get = |k: &str| eps[0][col(&names, k)].clone();
    assert_eq!(
        (get("supply"), get("dispense_claim_id"), get("drug_code"), get("dose_units")),
        ("pharmacy".into(), "RX9".into(), "J2350".into(), "600.0".into())
    );
    assert_eq!(manifest(&out)["pharmacy"]["supplied_administrations"], 1);
    // Near miss: without the pharmacy extract the per diem has no drug.
    let t = tmp();
    let med = write(
        t.path(),
        "med.csv",
        INST,
        &[prof("V1", 1, "R2", "2025-11-03", "S9379", "1"), prof("V1", 2, "R2", "2025-11-03", "99601", "1")],
    );
    let (f, _) = audit(t.path(), &[&med]);
    assert_eq!(rules_of(&f), ["PER_DIEM_WITHOUT_DRUG"]);
}

#[test]
fn pharmacy_supplied_doses_are_checked_against_the_schedule() {
    // Two 600 mg doses 67 days apart: INTERVAL_TOO_SHORT on the second visit's 99601.
    let t = tmp();
    let mut lines = visit("V1", "R3", "2025-11-03", None);
    lines.extend(visit("V2", "R3", "2026-01-09", None));
    let med = write(t.path(), "med.csv", INST, &lines);
    let p = write(
        t.path(),
        "rx.csv",
        RX,
        &[rx("RX1", "R3", "2025-11-01", "50242015001", "20"), rx("RX2", "R3", "2026-01-07", "50242015001", "20")],
    );
    let (f, _) = audit(t.path(), &[&med, &p]);
    assert_eq!(f, [("INTERVAL_TOO_SHORT".into(), "V2".into(), "2".into(), "99601".into(), "2026-01-09".into())]);

    // 300 mg + 300 mg 14 days apart: a clean initiation.
    let t = tmp();
    let mut lines = visit("V1", "R4", "2025-09-03", None);
    lines.extend(visit("V2", "R4", "2025-09-17", None));
    let med = write(t.path(), "med.csv", INST, &lines);
    let p = write(
        t.path(),
        "rx.csv",
        RX,
        &[rx("RX1", "R4", "2025-09-01", "50242015001", "10"), rx("RX2", "R4", "2025-09-15", "50242015001", "10")],
    );
    let (f, out) = audit(t.path(), &[&med, &p]);
    assert!(f.is_empty(), "{f:?}");
    let (names, eps) = read_table(&out.join("episodes.parquet"));
    let phases: Vec<&str> = eps.iter().map(|e| e[col(&names, "phase")].as_str()).collect();
    assert_eq!(phases, ["initiation_first", "initiation_second"]);
}

#[test]
fn bad_pharmacy_input() {
    let t = tmp();
    // A pharmacy file missing a required column: exit 3, naming file and column.
    let p = write(
        t.path(),
        "rx.csv",
        "claim_id,claim_line_number,person_id,dispensing_date,ndc_code",
        &["A,1,R1,2025-11-01,50242015001".into()],
    );
    let o = run(&t.path().join("out"), &[p.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(3));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("rx.csv") && err.contains("missing required column(s) of a pharmacy extract: quantity"), "{err}");

    // Bad rows are rejects with reasons; another drug's NDC is out of scope.
    let t = tmp();
    let rows = [
        rx("RX1", "R1", "2025-11-01", "50242-0150-01", "20"),
        rx("RX2", "R1", "2025-13-01", "50242-0150-01", "20"),
        rx("RX3", "R1", "2025-11-02", "50242-0150-01", "ten"),
        rx("RX4", "", "2025-11-02", "50242-0150-01", "20"),
        rx("RX5", "R1", "2025-13-01", "00002-1433-80", "abc"),
    ];
    let p = write(t.path(), "rx.csv", RX, &rows);
    let (_, out) = audit(t.path(), &[&p]);
    let (names, rejects) = read_table(&out.join("rejects.parquet"));
    let got: Vec<(&str, &str)> =
        rejects.iter().map(|r| (r[col(&names, "source_line")].as_str(), r[col(&names, "reason_code")].as_str())).collect();
    assert_eq!(got, [("3", "bad_date"), ("4", "bad_quantity"), ("5", "empty_person")]);
    let i = &manifest(&out)["inputs"][0];
    assert_eq!((i["kind"].as_str(), i["rows_read"].as_u64(), i["rows_in_scope"].as_u64()), (Some("pharmacy"), Some(5), Some(1)), "{i}");
}

#[test]
fn pharmacy_headers_map_through_the_column_map_and_read_from_parquet() {
    let t = tmp();
    let header = "RX_CLM_ID,RX_LINE,MBR,FILL_DT,PROD_NDC,QTY_DISPENSED,PAID";
    let p = write(t.path(), "rx_mapped.csv", header, &["RX1,1,R1,20251030,50242-0150-01,20,37200".into()]);
    let map = t.path().join("map.toml");
    std::fs::write(
        &map,
        "claim_id = \"RX_CLM_ID\"\nclaim_line_number = \"RX_LINE\"\nperson_id = \"MBR\"\ndispensing_date = \"FILL_DT\"\nndc_code = \"PROD_NDC\"\nquantity = \"QTY_DISPENSED\"\npaid_amount = \"PAID\"\n",
    )
    .unwrap();
    let med = write(t.path(), "med.csv", INST, &visit("M1", "R1", "2025-11-03", Some("600")));
    let out = t.path().join("out");
    run_ok(&out, &["--columns", map.to_str().unwrap(), med.to_str().unwrap(), p.to_str().unwrap()]);
    let (names, rows) = read_table(&out.join("findings.parquet"));
    assert_eq!(rows.iter().map(|r| r[col(&names, "rule_id")].as_str()).collect::<Vec<_>>(), ["CROSS_BENEFIT_DUPLICATE"]);

    // The same pharmacy claim as typed Parquet.
    let t = tmp();
    let csv = write(t.path(), "rx.csv", RX, &[rx("RX1", "R1", "2025-10-30", "50242-0150-01", "20")]);
    let pq = t.path().join("rx.parquet");
    let o = bin().args(["convert", csv.to_str().unwrap(), pq.to_str().unwrap()]).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let med = write(t.path(), "med.csv", INST, &visit("M1", "R1", "2025-11-03", Some("600")));
    let (f, out) = audit(t.path(), &[&med, &pq]);
    assert_eq!(rules_of(&f), ["CROSS_BENEFIT_DUPLICATE"]);
    assert_eq!(manifest(&out)["inputs"][1]["kind"], "pharmacy");
}
