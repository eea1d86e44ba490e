//! `claims-audit explain --out DIR --person ID`: one person's dosing
//! timeline from a finished run, in the terminal or as one HTML page.

use std::fmt::Write as _;
use std::path::Path;

use super::html::{DoseView, FindingView, LineView, PersonView, render_person, short_message};
use super::parquet_io::TableIn;
use super::previous::load_run;
use crate::error::{Error, Result};
use crate::model::Date;

/// Loads one person's view from `dir` (a complete output directory).
pub fn load_person(dir: &Path, person: &str) -> Result<PersonView> {
    let run = load_run(dir, "explain --out")?;
    let findings: Vec<FindingView> = run
        .findings
        .iter()
        .filter(|f| f.person_id == person)
        .map(|f| FindingView {
            date: f.service_date,
            rule_id: f.rule_id.clone(),
            severity: f.severity.clone(),
            status: f.status.clone(),
            code: f.hcpcs_code.clone(),
            claim_id: f.claim_id.clone(),
            claim_line_number: f.claim_line_number,
            message: f.message.clone(),
            short: short_message(&f.message),
            amount: f.amount_at_stake.map_or("unknown".into(), super::summary::money),
        })
        .collect();
    let bad = |what: &str, e: String| Error::Config(format!("explain --out {}: {what}: {e}", dir.display()));
    let e = person_rows(&dir.join("episodes.parquet"), person).map_err(|e| bad("episodes.parquet", e))?;
    let dispense = e.text_or_nulls("dispense_claim_id");
    let (date, drug, dose, phase, since, supply) = (
        dates(&e, "administration_date"),
        e.text_or_nulls("drug_code"),
        e.num_or_nulls("dose_units"),
        e.text_or_nulls("phase"),
        e.num_or_nulls("days_since_previous"),
        e.text_or_nulls("supply"),
    );
    let doses: Vec<DoseView> = (0..e.height())
        .map(|i| DoseView {
            date: date[i].unwrap_or_default(),
            drug: drug[i].clone().unwrap_or_default(),
            dose: dose[i].unwrap_or(0.0),
            phase: phase[i].clone().unwrap_or_default(),
            days_since_previous: since[i].map(|v| v as i32),
            supply: supply[i].clone().unwrap_or_else(|| "medical".into()),
            dispense_claim_id: dispense[i].clone(),
        })
        .collect();
    // Directories written before timeline.parquet existed have no lines to show.
    let timeline_path = dir.join("timeline.parquet");
    let mut lines = Vec::new();
    if super::parquet_io::table_exists(&timeline_path) {
        let t = person_rows(&timeline_path, person).map_err(|e| bad("timeline.parquet", e))?;
        let (date, end, code, units, role, claim, line) = (
            dates(&t, "service_date"),
            dates(&t, "end_date"),
            t.text_or_nulls("hcpcs_code"),
            t.num_or_nulls("units"),
            t.text_or_nulls("role"),
            t.text_or_nulls("claim_id"),
            t.num_or_nulls("claim_line_number"),
        );
        lines = (0..t.height())
            .map(|i| LineView {
                date: date[i].unwrap_or_default(),
                end: end[i],
                code: code[i].clone().unwrap_or_default(),
                units: units[i].unwrap_or(0.0),
                role: role[i].clone().unwrap_or_default(),
                claim_id: claim[i].clone().unwrap_or_default(),
                claim_line_number: line[i].unwrap_or(0.0) as i64,
            })
            .collect();
    }
    if findings.is_empty() && doses.is_empty() && lines.is_empty() {
        return Err(Error::Config(format!(
            "explain: no person {person:?} in {}: not among its findings, administrations or home-infusion lines",
            dir.display()
        )));
    }
    Ok(PersonView { person_id: person.to_string(), doses, lines, findings })
}

/// Rows of one person from an output Parquet file.
fn person_rows(path: &Path, person: &str) -> std::result::Result<TableIn, String> {
    TableIn::read(path)?.rows_where("person_id", person)
}

/// A date column (a missing one reads as nulls).
fn dates(t: &TableIn, name: &str) -> Vec<Option<Date>> {
    t.text_or_nulls(name).iter().map(|v| v.as_deref().and_then(Date::parse)).collect()
}

/// Rows as columns padded to their widest cell, two spaces apart, indented.
fn columns(s: &mut String, rows: &[Vec<String>]) {
    let n = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..n).map(|c| rows.iter().filter_map(|r| r.get(c)).map(|x| x.chars().count()).max().unwrap_or(0)).collect();
    for r in rows {
        let mut line = String::from(" ");
        for (c, cell) in r.iter().enumerate() {
            let pad = if c + 1 == r.len() { 0 } else { widths[c].saturating_sub(cell.chars().count()) };
            line.push(' ');
            line.push_str(cell);
            line.push_str(&" ".repeat(pad + 1));
        }
        let _ = writeln!(s, "{}", line.trim_end());
    }
}

/// The timeline as terminal text.
pub fn render_text(p: &PersonView) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "Person {}", p.person_id);
    let _ = writeln!(s, "\nAdministrations ({}):", p.doses.len());
    if p.doses.is_empty() {
        let _ = writeln!(s, "  none in range");
    } else {
        let mut rows = vec![["date", "drug", "dose", "phase", "since the previous dose", "supplied by"].map(String::from).to_vec()];
        for d in &p.doses {
            let since = d.days_since_previous.map_or("first dose seen".to_string(), |n| format!("{n} days after the previous"));
            let supply = match (d.supply.as_str(), &d.dispense_claim_id) {
                ("pharmacy", Some(c)) => format!("pharmacy dispense, claim {c}"),
                ("pharmacy", None) => "pharmacy dispense".to_string(),
                (_, Some(c)) => format!("medical claim (also dispensed: pharmacy claim {c})"),
                _ => "medical claim".to_string(),
            };
            rows.push(vec![
                d.date.to_string(),
                d.drug.clone(),
                format!("{} mg", crate::rules::units(d.dose)),
                d.phase.clone(),
                since,
                supply,
            ]);
        }
        columns(&mut s, &rows);
    }
    let _ = writeln!(s, "\nPer diem and nursing lines ({}):", p.lines.len());
    if !p.lines.is_empty() {
        let mut rows = vec![["date", "code", "units", "role", "claim / line"].map(String::from).to_vec()];
        for l in &p.lines {
            let span = match l.end {
                Some(e) if e != l.date => format!("{} to {e}", l.date),
                _ => l.date.to_string(),
            };
            rows.push(vec![
                span,
                l.code.clone(),
                crate::rules::units(l.units),
                l.role.clone(),
                format!("{} / {}", l.claim_id, l.claim_line_number),
            ]);
        }
        columns(&mut s, &rows);
    }
    let _ = writeln!(s, "\nFindings ({}):", p.findings.len());
    if p.findings.is_empty() {
        let _ = writeln!(s, "  none: this person's claims pass every rule");
    }
    let widths = |f: fn(&FindingView) -> usize| p.findings.iter().map(f).max().unwrap_or(0);
    let (wr, wc, wa) =
        (widths(|f| f.rule_id.len()), widths(|f| f.claim_id.len() + 3 + f.claim_line_number.to_string().len()), widths(|f| f.amount.len()));
    for f in &p.findings {
        let claim = format!("{} / {}", f.claim_id, f.claim_line_number);
        let _ = writeln!(
            s,
            "  {}  {:<7}  {:<wr$}  {:<6}  {claim:<wc$}  {:>wa$} at stake  ({})\n      {}",
            f.date, f.severity, f.rule_id, f.code, f.amount, f.status, f.message
        );
    }
    s
}

/// `explain`: prints the person's timeline, or writes it as one page.
pub fn explain(dir: &Path, person: &str, html: Option<&Path>) -> Result<()> {
    let view = load_person(dir, person)?;
    match html {
        None => print!("{}", render_text(&view)),
        Some(path) => {
            let page = render_person(&view, &dir.display().to_string())?;
            use std::io::Write;
            use std::os::unix::fs::OpenOptionsExt;
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(path)
                .map_err(|e| Error::output(path, format!("cannot create: {e}")))?;
            f.write_all(page.as_bytes()).map_err(|e| Error::output(path, format!("write failed: {e}")))?;
            println!("claims-audit: wrote {}", path.display());
        }
    }
    Ok(())
}
