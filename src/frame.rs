//! Polars entry point (feature `polars`): audit polars LazyFrames and get the
//! result tables as DataFrames, for Rust users who hold their claims in
//! polars. Tables cross as Arrow: each frame is collected and handed over as
//! an Arrow IPC stream, which the core reads as the Python package's tables
//! (`ingest::arrow`); results come back the same way. polars is not on the
//! hot path (spec-note 120): the crate's own readers stay the fast ones.

use std::io::Cursor;
use std::path::PathBuf;

use arrow_array::RecordBatch;
use polars::prelude::{CompatLevel, DataFrame, IpcReader, IpcWriter, LazyFrame, SerReader, SerWriter};

use crate::columns::ColumnMap;
use crate::error::{Error, Result};
use crate::ingest::{Engine, Format, InputFile, arrow as arrow_in};
use crate::model::Date;
use crate::pipeline::{Extract, RunOptions, RunResult, audit_extract};
use crate::policy::Policy;
use crate::progress::Progress;
use crate::report::{self, table};

/// What `audit` takes besides the frames: the command line's `--from`,
/// `--to`, `--lookback-days`, `--policy` and `--run-date`.
#[derive(Debug, Clone)]
pub struct FrameOptions {
    pub from: Option<Date>,
    pub to: Option<Date>,
    pub lookback_days: i32,
    /// A policy TOML file; the embedded policy when `None`.
    pub policy: Option<PathBuf>,
    /// The night's date (`first_seen`); today (UTC) when `None`.
    pub run_date: Option<Date>,
}

impl Default for FrameOptions {
    fn default() -> Self {
        FrameOptions { from: None, to: None, lookback_days: 400, policy: None, run_date: None }
    }
}

/// The result tables, with the columns of the output files.
pub struct AuditFrames {
    pub findings: DataFrame,
    pub episodes: DataFrame,
    pub rejects: DataFrame,
    /// One row per rule: lines examined, findings, money at stake.
    pub tallies: DataFrame,
    pub run_id: String,
}

fn polars_err(what: &str, e: impl std::fmt::Display) -> Error {
    Error::input(what, e.to_string())
}

/// A polars frame as Arrow record batches (through an IPC stream in
/// memory; the oldest compat level writes plain Utf8 strings).
fn to_arrow(name: &str, lf: LazyFrame) -> Result<(arrow_schema::SchemaRef, Vec<RecordBatch>)> {
    let mut df = lf.collect().map_err(|e| polars_err(name, e))?;
    let mut buf = Vec::new();
    IpcWriter::new(&mut buf).with_compat_level(CompatLevel::oldest()).finish(&mut df).map_err(|e| polars_err(name, e))?;
    let reader = arrow_ipc::reader::FileReader::try_new(Cursor::new(buf), None).map_err(|e| polars_err(name, e))?;
    let schema = reader.schema();
    let batches = reader.collect::<std::result::Result<Vec<_>, _>>().map_err(|e| polars_err(name, e))?;
    Ok((schema, batches))
}

/// An output table as a polars DataFrame.
fn to_polars(t: table::Table) -> Result<DataFrame> {
    let b = table::to_record_batch(t)?;
    let mut buf = Vec::new();
    {
        let mut w =
            arrow_ipc::writer::FileWriter::try_new(&mut buf, &b.schema()).map_err(|e| Error::Internal(format!("arrow ipc: {e}")))?;
        w.write(&b).map_err(|e| Error::Internal(format!("arrow ipc: {e}")))?;
        w.finish().map_err(|e| Error::Internal(format!("arrow ipc: {e}")))?;
    }
    IpcReader::new(Cursor::new(buf)).finish().map_err(|e| Error::Internal(format!("polars ipc: {e}")))
}

fn today() -> Date {
    use chrono::Datelike;
    let t = chrono::Utc::now().date_naive();
    Date::from_ymd(t.year(), t.month(), t.day()).unwrap_or_default()
}

/// Audits a medical frame and an optional pharmacy frame (the columns of
/// `schemas/input.md`, codes as strings), as the command line audits two
/// files named `medical` and `pharmacy`.
pub fn audit(medical: LazyFrame, pharmacy: Option<LazyFrame>, options: &FrameOptions) -> Result<AuditFrames> {
    if let (Some(f), Some(t)) = (options.from, options.to)
        && f > t
    {
        return Err(Error::Config(format!("--from {f} is after --to {t}")));
    }
    let policy = match &options.policy {
        Some(p) => Policy::load(p)?,
        None => Policy::default_policy()?,
    };
    let mut tables = vec![("medical", to_arrow("medical", medical)?)];
    if let Some(p) = pharmacy {
        tables.push(("pharmacy", to_arrow("pharmacy", p)?));
    }
    let opts = RunOptions {
        inputs: tables.iter().map(|t| t.0.to_string()).collect(),
        out: PathBuf::new(),
        from: options.from,
        to: options.to,
        lookback_days: options.lookback_days,
        delimiter: None,
        reject_limit: crate::ingest::RejectLimit::OFF,
        engine: Engine::Fast,
        quiet: true,
        scan_only: false,
        policy_path: options.policy.clone(),
        columns_path: None,
        threads: None,
        run_date: options.run_date.unwrap_or_else(today),
        previous: None,
        memory_limit: None,
    };
    let columns = ColumnMap::default();
    let spec = opts.scan_spec(&policy, &columns);
    let mut extract = Extract::default();
    let mut inputs = Vec::new();
    for (k, (name, (schema, batches))) in tables.iter().enumerate() {
        extract.push(arrow_in::read_table(name, k as u32, schema, batches, &spec)?);
        inputs.push(InputFile { path: PathBuf::from(name), format: Format::Arrow, bytes: 0, mtime: None });
    }
    let r: RunResult = audit_extract(extract, inputs, &opts, &policy, &Progress::new(true), None, 0.0)?;
    let run_id = report::run_id(&opts, &policy, &r);
    let rows = report::finding_rows(&r, &policy);
    let refs: Vec<_> = rows.iter().collect();
    // In memory: this run has no memory limit, so it never spills.
    let episodes = r.episodes.in_memory_rows().ok_or_else(|| Error::Internal("episodes were spilled to disk".into()))?;
    Ok(AuditFrames {
        findings: to_polars(table::findings(&run_id, &refs))?,
        episodes: to_polars(table::episodes(episodes))?,
        rejects: to_polars(table::rejects(&r.rejects, |i| r.source_name(i)))?,
        tallies: to_polars(table::tallies(&policy, &r.tallies))?,
        run_id,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use polars::prelude::IntoLazy;

    fn sample(name: &str) -> std::path::PathBuf {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/sample_parquet").join(name)
    }

    /// A Parquet file as a polars frame (read by arrow-rs: the feature
    /// does not build polars' own Parquet reader).
    fn frame(name: &str) -> LazyFrame {
        let f = std::fs::File::open(sample(name)).unwrap();
        let r = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(f).unwrap().build().unwrap();
        let batches: Vec<RecordBatch> = r.map(|b| b.unwrap()).collect();
        let mut buf = Vec::new();
        {
            let mut w = arrow_ipc::writer::FileWriter::try_new(&mut buf, &batches[0].schema()).unwrap();
            for b in &batches {
                w.write(b).unwrap();
            }
            w.finish().unwrap();
        }
        IpcReader::new(Cursor::new(buf)).finish().unwrap().lazy()
    }

    fn strings(df: &DataFrame, col: &str) -> Vec<String> {
        let c = df.column(col).unwrap().as_materialized_series().cast(&polars::prelude::DataType::String).unwrap();
        c.str().unwrap().iter().map(|v| v.unwrap_or("").to_string()).collect()
    }

    /// The golden sample (professional claims and pharmacy) through polars
    /// gives the command line's findings on the same two files.
    #[test]
    fn frame_audit_matches_the_command_line_on_the_sample() {
        let got = audit(frame("claims.parquet"), Some(frame("pharmacy.parquet")), &FrameOptions::default()).unwrap();
        // The command line's run of the same two files.
        let run_date = today();
        let opts = RunOptions {
            inputs: vec![sample("claims.parquet").display().to_string(), sample("pharmacy.parquet").display().to_string()],
            out: PathBuf::new(),
            from: None,
            to: None,
            lookback_days: 400,
            delimiter: None,
            reject_limit: crate::ingest::RejectLimit::OFF,
            engine: Engine::Fast,
            quiet: true,
            scan_only: false,
            policy_path: None,
            columns_path: None,
            threads: None,
            run_date,
            previous: None,
            memory_limit: None,
        };
        let policy = Policy::default_policy().unwrap();
        let r = crate::pipeline::audit(&opts, &policy, &ColumnMap::default(), &Progress::new(true), None).unwrap();
        let want = report::finding_rows(&r, &policy);
        assert!(want.len() > 5);
        let key = |df: &DataFrame| -> Vec<String> {
            let cols: Vec<Vec<String>> =
                ["finding_id", "rule_id", "person_id", "claim_id", "service_date", "message"].iter().map(|c| strings(df, c)).collect();
            (0..df.height()).map(|i| cols.iter().map(|c| c[i].as_str()).collect::<Vec<_>>().join("|")).collect()
        };
        let want_keys: Vec<String> = want
            .iter()
            .map(|f| format!("{}|{}|{}|{}|{}|{}", f.finding_id, f.rule_id, f.person_id, f.claim_id, f.service_date, f.message))
            .collect();
        assert_eq!(key(&got.findings), want_keys);
        let rule_ids = strings(&got.findings, "rule_id");
        let persons = strings(&got.findings, "person_id");
        // The seed case: G35 after 2025-10-01 and the S9490 per diem on P0003.
        assert!(rule_ids.iter().zip(&persons).any(|(r, p)| r == "DX_NOT_VALID_ON_DOS" && p == "P0003"));
        assert!(rule_ids.iter().zip(&persons).any(|(r, p)| r == "DUPLICATE_PER_DIEM" && p == "P0003"));
        assert!(got.episodes.height() > 0);
        assert_eq!(got.tallies.height(), crate::rules::RULES.len());
    }
}
