//! Reading a complete output directory back: `--previous DIR` and `diff`.
//! Directories written before findings had ids still load: the id is
//! computed from the columns it hashes.

use std::path::Path;

use super::parquet_io::TableIn;
use crate::error::{Error, Result};
use crate::history::{FindingRow, PreviousRun};
use crate::model::{CATALOGUE_VERSION, Date, finding_id};

/// Loads `dir` as an earlier run. `what` names the option in errors
/// (`--previous`, `diff OLD`). Every failure is a usage error (exit 2): one
/// line that says whether the directory is missing, incomplete or written by
/// an incompatible catalogue.
pub fn load_run(dir: &Path, what: &str) -> Result<PreviousRun> {
    let bad = |msg: String| Error::Config(format!("{what} {}: {msg}", dir.display()));
    if !dir.is_dir() {
        return Err(bad("no such output directory".into()));
    }
    if !dir.join("_SUCCESS").is_file() {
        return Err(bad("incomplete output (no _SUCCESS): the run that wrote it did not finish".into()));
    }
    let manifest: serde_json::Value = std::fs::read(dir.join("manifest.json"))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or_else(|| bad("not a claims-audit output directory (manifest.json missing or unreadable)".into()))?;
    // The build's catalogue when recorded, else the policy's (older outputs).
    let catalogue = manifest["tool"]["catalogue_version"]
        .as_u64()
        .or_else(|| manifest["rule_catalogue_version"].as_str().and_then(|v| v.trim().parse().ok()));
    match catalogue {
        Some(v) if v >= 1 && v <= CATALOGUE_VERSION as u64 => {}
        Some(v) => {
            return Err(bad(format!(
                "written by rule catalogue v{v}, which this build (catalogue v{CATALOGUE_VERSION}) cannot compare with"
            )));
        }
        None => return Err(bad("written by an incompatible version: its manifest names no rule catalogue".into())),
    }
    let run_date = manifest["run_date"]
        .as_str()
        .or_else(|| manifest["started_at"].as_str().and_then(|s| s.get(..10)))
        .and_then(Date::parse)
        .ok_or_else(|| bad("its manifest has no run date".into()))?;
    let run_id = manifest["run_id"].as_str().unwrap_or_default().to_string();
    let findings = read_findings(&dir.join("findings.parquet"), run_date).map_err(|m| bad(format!("findings.parquet: {m}")))?;
    Ok(PreviousRun { dir: dir.to_path_buf(), run_id, run_date, findings })
}

fn read_findings(path: &Path, run_date: Date) -> std::result::Result<Vec<FindingRow>, String> {
    let df = TableIn::read(path)?;
    let n = df.height();
    let required = |name: &str| df.text(name).ok_or_else(|| format!("no {name} column: written by an incompatible version"));
    let (rule, person, claim, line, date) =
        (required("rule_id")?, required("person_id")?, required("claim_id")?, required("claim_line_number")?, required("service_date")?);
    let opt = |name: &str| df.text_or_nulls(name);
    let (id, category, severity, hcpcs, episode, message, evidence, version, src, src_line) = (
        opt("finding_id"),
        opt("category"),
        opt("severity"),
        opt("hcpcs_code"),
        opt("episode_id"),
        opt("message"),
        opt("evidence"),
        opt("rule_version"),
        opt("source_file"),
        opt("source_line"),
    );
    let (program, rendering, billing, first_seen, status) =
        (opt("payer_program"), opt("rendering_npi"), opt("billing_npi"), opt("first_seen"), opt("status"));
    let numeric = |name: &str| df.num_or_nulls(name);
    let (units, paid, allowed, at_stake) = (numeric("units"), numeric("paid_amount"), numeric("allowed_amount"), df.num("amount_at_stake"));
    let s = |v: &Option<String>| v.clone().unwrap_or_default();
    let mut rows = Vec::with_capacity(n);
    for i in 0..n {
        let claim_line_number = line[i].as_deref().and_then(|v| v.parse::<i64>().ok()).ok_or("a claim_line_number is not an integer")?;
        let service_date = date[i].as_deref().and_then(Date::parse).ok_or("a service_date is not a date")?;
        let (rule_id, person_id, claim_id) = (s(&rule[i]), s(&person[i]), s(&claim[i]));
        let finding_id = id[i].clone().unwrap_or_else(|| finding_id(&rule_id, &person_id, &claim_id, claim_line_number, service_date));
        rows.push(FindingRow {
            finding_id,
            rule_id,
            category: s(&category[i]),
            severity: s(&severity[i]),
            person_id,
            claim_id,
            claim_line_number,
            service_date,
            hcpcs_code: s(&hcpcs[i]),
            episode_id: episode[i].clone(),
            message: s(&message[i]),
            evidence: s(&evidence[i]),
            rule_version: s(&version[i]),
            source_file: s(&src[i]),
            source_line: src_line[i].as_deref().and_then(|v| v.parse().ok()).unwrap_or(0),
            units: units[i].unwrap_or(0.0),
            paid_amount: paid[i],
            allowed_amount: allowed[i],
            amount_at_stake: at_stake.as_ref().map_or(paid[i].or(allowed[i]), |a| a[i]),
            payer_program: program[i].clone(),
            rendering_npi: rendering[i].clone(),
            billing_npi: billing[i].clone(),
            status: status[i].clone().unwrap_or_else(|| "new".into()),
            first_seen: first_seen[i].as_deref().and_then(Date::parse).unwrap_or(run_date),
        });
    }
    Ok(rows)
}
