//! `claims-audit explain --out DIR --person ID`: one person's dosing
//! timeline from a finished run, in the terminal or as one HTML page.

use std::fmt::Write as _;
use std::path::Path;

use polars::prelude::*;

use super::html::{DoseView, FindingView, LineView, PersonView, render_person, short_message};
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
        })
        .collect();
    let bad = |what: &str, e: PolarsError| {
        Error::Config(format!("explain --out {}: {what}: {}", dir.display(), e.to_string().lines().next().unwrap_or("")))
    };
    let episodes = person_rows(&dir.join("episodes.parquet"), person).map_err(|e| bad("episodes.parquet", e))?;
    let doses = (0..episodes.height())
        .map(|i| -> PolarsResult<DoseView> {
            Ok(DoseView {
                date: date_at(&episodes, "administration_date", i)?.unwrap_or_default(),
                drug: text_at(&episodes, "drug_code", i)?.unwrap_or_default(),
                dose: num_at(&episodes, "dose_units", i)?.unwrap_or(0.0),
                phase: text_at(&episodes, "phase", i)?.unwrap_or_default(),
                days_since_previous: num_at(&episodes, "days_since_previous", i)?.map(|v| v as i32),
                supply: text_at(&episodes, "supply", i)?.unwrap_or_else(|| "medical".into()),
            })
        })
        .collect::<PolarsResult<Vec<_>>>()
        .map_err(|e| bad("episodes.parquet", e))?;
    // Directories written before timeline.parquet existed have no lines to show.
    let timeline_path = dir.join("timeline.parquet");
    let mut lines = Vec::new();
    if timeline_path.exists() {
        let t = person_rows(&timeline_path, person).map_err(|e| bad("timeline.parquet", e))?;
        for i in 0..t.height() {
            let role = text_at(&t, "role", i).map_err(|e| bad("timeline.parquet", e))?.unwrap_or_default();
            let get = || -> PolarsResult<LineView> {
                Ok(LineView {
                    date: date_at(&t, "service_date", i)?.unwrap_or_default(),
                    end: date_at(&t, "end_date", i)?,
                    code: text_at(&t, "hcpcs_code", i)?.unwrap_or_default(),
                    units: num_at(&t, "units", i)?.unwrap_or(0.0),
                    role: role.clone(),
                    claim_id: text_at(&t, "claim_id", i)?.unwrap_or_default(),
                    claim_line_number: num_at(&t, "claim_line_number", i)?.unwrap_or(0.0) as i64,
                })
            };
            lines.push(get().map_err(|e| bad("timeline.parquet", e))?);
        }
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
fn person_rows(path: &Path, person: &str) -> PolarsResult<DataFrame> {
    let file = std::fs::File::open(path)?;
    let df = ParquetReader::new(file).finish()?;
    let mask: BooleanChunked = df.column("person_id")?.str()?.iter().map(|v| v == Some(person)).collect();
    df.filter(&mask)
}

fn text_at(df: &DataFrame, name: &str, i: usize) -> PolarsResult<Option<String>> {
    let c = df.column(name)?.cast(&DataType::String)?;
    Ok(c.str()?.get(i).map(str::to_string))
}

fn num_at(df: &DataFrame, name: &str, i: usize) -> PolarsResult<Option<f64>> {
    let c = df.column(name)?.cast(&DataType::Float64)?;
    Ok(c.f64()?.get(i))
}

fn date_at(df: &DataFrame, name: &str, i: usize) -> PolarsResult<Option<Date>> {
    Ok(text_at(df, name, i)?.as_deref().and_then(Date::parse))
}

/// The timeline as terminal text.
pub fn render_text(p: &PersonView) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "Person {}", p.person_id);
    let _ = writeln!(s, "\nAdministrations ({}):", p.doses.len());
    if p.doses.is_empty() {
        let _ = writeln!(s, "  none in range");
    }
    for d in &p.doses {
        let since = d.days_since_previous.map_or("first dose seen".to_string(), |n| format!("{n} days after the previous"));
        let _ = writeln!(
            s,
            "  {}  {} {:>4} mg  {:<18} {:<26} {}",
            d.date,
            d.drug,
            crate::rules::units(d.dose),
            d.phase,
            since,
            if d.supply == "pharmacy" { "dispensed by a pharmacy" } else { "medical claim" }
        );
    }
    let _ = writeln!(s, "\nPer diem and nursing lines ({}):", p.lines.len());
    for l in &p.lines {
        let span = match l.end {
            Some(e) if e != l.date => format!("{} to {e}", l.date),
            _ => l.date.to_string(),
        };
        let _ = writeln!(
            s,
            "  {span:<24} {:<6} x{:<4} {:<14} claim {} line {}",
            l.code,
            crate::rules::units(l.units),
            l.role,
            l.claim_id,
            l.claim_line_number
        );
    }
    let _ = writeln!(s, "\nFindings ({}):", p.findings.len());
    if p.findings.is_empty() {
        let _ = writeln!(s, "  none: this person's claims pass every rule");
    }
    for f in &p.findings {
        let _ = writeln!(
            s,
            "  {}  {:<7} {:<24} {} claim {} line {} ({})\n      {}",
            f.date, f.severity, f.rule_id, f.code, f.claim_id, f.claim_line_number, f.status, f.message
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
        }
    }
    Ok(())
}
