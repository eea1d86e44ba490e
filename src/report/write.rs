//! Writing the run's tables as Parquet with polars, all into a staging
//! directory that is moved into place at the end.

use std::borrow::Cow;

use polars::prelude::*;

use super::table::{self, Table, Values};
use super::{RunInfo, Staging, finding_rows_in, html, manifest_json, summary};
use crate::error::{Error, Result};
use crate::history::FindingRow;
use crate::pipeline::{RunOptions, RunResult};
use crate::policy::Policy;
use crate::spill::{Record, Spool};

/// A table as a polars frame: dates as `Date`, strings as `String`.
pub(crate) fn frame(t: Table) -> PolarsResult<DataFrame> {
    let mut cols = Vec::with_capacity(t.columns.len());
    for (name, v) in t.columns {
        let name: PlSmallStr = name.into();
        cols.push(match v {
            Values::Str(v) => Column::new(name, v.iter().map(|x| x.as_deref()).collect::<Vec<_>>()),
            Values::I64(v) => Column::new(name, v),
            Values::I32(v) => Column::new(name, v),
            Values::F64(v) => Column::new(name, v),
            Values::Date(v) => Column::new(name, v).cast(&DataType::Date)?,
        });
    }
    DataFrame::new_infer_height(cols)
}

/// A column of owned strings (the diff's extra columns).
pub(crate) fn strings<'a>(v: impl IntoIterator<Item = &'a str>) -> Values<'a> {
    Values::Str(v.into_iter().map(|s| Some(Cow::Borrowed(s))).collect())
}

/// Rows per row group of the run's tables. Each batch's frame is built,
/// written and dropped before the next, so writing holds one batch of
/// strings at a time, whatever the table's size. Finding rows carry a
/// message and evidence (over a kilobyte each), so their batches are smaller.
const BATCH_ROWS: usize = 32 * 1024;
const FINDING_BATCH_ROWS: usize = 4 * 1024;

/// Writes every output into a staging directory and moves it into place.
pub fn write_all(opts: &RunOptions, policy: &Policy, r: &RunResult, info: &mut RunInfo, bar: &indicatif::ProgressBar) -> Result<()> {
    let st = Staging::new(&opts.out)?;
    // The Parquet files are independent: the timeline (the largest) is
    // written on a second thread while the others are written here.
    let (timeline, rest) = std::thread::scope(|scope| {
        let timeline = scope.spawn(|| write_parquet(&st, "timeline.parquet", &r.timeline, |t| frame(table::timeline(t, policy))));
        let rest = (|| -> Result<(usize, usize, usize, usize)> {
            // Rows are built a batch at a time, from the findings' positions.
            let at: Vec<usize> = (0..r.findings.len()).collect();
            let n_findings = write_parquet_in(&st, "findings.parquet", &at, FINDING_BATCH_ROWS, |ks| {
                let rows = finding_rows_in(r, policy, ks.first().map_or(0..0, |&a| a..a + ks.len()));
                let refs: Vec<&FindingRow> = rows.iter().collect();
                frame(table::findings(&info.run_id, &refs))
            })?;
            crate::signals::check()?;
            bar.inc(1);
            let n_resolved = write_parquet_in(&st, "resolved.parquet", &r.lifecycle.resolved, FINDING_BATCH_ROWS, |res| {
                let rows: Vec<&FindingRow> = res.iter().map(|x| &x.row).collect();
                let reasons = res.iter().map(|x| x.reason.as_str()).collect();
                frame(table::resolved(&info.run_id, &rows, reasons, opts.run_date))
            })?;
            let n_episodes = write_parquet(&st, "episodes.parquet", &r.episodes, |e| frame(table::episodes(e)))?;
            crate::signals::check()?;
            bar.inc(1);
            let n_rejects = write_parquet(&st, "rejects.parquet", &r.rejects, |j| frame(table::rejects(j, |i| r.source_name(i))))?;
            crate::signals::check()?;
            bar.inc(1);
            Ok((n_findings, n_resolved, n_episodes, n_rejects))
        })();
        (timeline.join().unwrap_or_else(|_| Err(Error::Internal("timeline writer panicked".into()))), rest)
    });
    let n_timeline = timeline?;
    let (n_findings, n_resolved, n_episodes, n_rejects) = rest?;
    info.finished_at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let outputs = [
        ("findings.parquet", Some(n_findings)),
        ("episodes.parquet", Some(n_episodes)),
        ("rejects.parquet", Some(n_rejects)),
        ("resolved.parquet", Some(n_resolved)),
        ("timeline.parquet", Some(n_timeline)),
        ("report.html", None),
        ("summary.md", None),
        ("_SUCCESS", None),
    ];
    let json = manifest_json(opts, policy, r, info, &outputs)?;
    st.write("manifest.json", &json)?;
    st.write("summary.md", summary::render(opts, policy, r, &info.run_id).as_bytes())?;
    let t_report = std::time::Instant::now();
    st.write("report.html", html::render(opts, policy, r, &info.run_id)?.as_bytes())?;
    tracing::debug!(seconds = t_report.elapsed().as_secs_f64(), peak_rss_mib = crate::util::peak_rss_mib(), "report.html");
    bar.inc(1);
    crate::signals::check()?;
    st.commit()
}

/// Rows to write, in output order, a batch at a time: in memory, or merged
/// from a spilled run's files.
trait Batches<T> {
    fn count(&self) -> usize;
    fn each(&self, n: usize, f: &mut dyn FnMut(&[T]) -> Result<()>) -> Result<()>;
}

impl<T> Batches<T> for Vec<T> {
    fn count(&self) -> usize {
        self.len()
    }
    fn each(&self, n: usize, f: &mut dyn FnMut(&[T]) -> Result<()>) -> Result<()> {
        self.chunks(n).try_for_each(f)
    }
}

impl<T: Record> Batches<T> for Spool<T> {
    fn count(&self) -> usize {
        self.len()
    }
    fn each(&self, n: usize, f: &mut dyn FnMut(&[T]) -> Result<()>) -> Result<()> {
        self.batches(n, f)
    }
}

/// Writes `rows` as one Parquet file of `BATCH_ROWS`-row row groups; `batch`
/// makes the frame of a slice of rows (its schema from the empty slice).
fn write_parquet<T>(st: &Staging, name: &str, rows: &impl Batches<T>, batch: impl Fn(&[T]) -> PolarsResult<DataFrame>) -> Result<usize> {
    write_parquet_in(st, name, rows, BATCH_ROWS, batch)
}

fn write_parquet_in<T>(
    st: &Staging,
    name: &str,
    rows: &impl Batches<T>,
    batch_rows: usize,
    batch: impl Fn(&[T]) -> PolarsResult<DataFrame>,
) -> Result<usize> {
    let t0 = std::time::Instant::now();
    let path = st.dir.join(name);
    let building = |e: PolarsError| Error::Internal(format!("building {name}: {e}"));
    let failed = |e: PolarsError| Error::output(&path, format!("write failed: {e}"));
    let schema = batch(&[]).map_err(building)?.schema().as_ref().clone();
    let file = st.create(name)?;
    // Buffered: the writer's page headers and footer are thrift, written a
    // field at a time (13k `write` calls for a 5M-line run's tables).
    let mut out = std::io::BufWriter::with_capacity(1 << 20, &file);
    let mut w = ParquetWriter::new(&mut out).with_compression(ParquetCompression::Zstd(None)).batched(&schema).map_err(failed)?;
    rows.each(batch_rows, &mut |chunk| w.write_batch(&batch(chunk).map_err(building)?).map_err(failed))?;
    w.finish().map_err(failed)?;
    drop(w);
    std::io::Write::flush(&mut out).map_err(|e| Error::output(&path, format!("write failed: {e}")))?;
    drop(out);
    file.sync_all().map_err(|e| Error::output(&path, format!("sync failed: {e}")))?;
    let n = rows.count();
    tracing::debug!(file = name, rows = n, seconds = t0.elapsed().as_secs_f64(), peak_rss_mib = crate::util::peak_rss_mib(), "written");
    Ok(n)
}

/// Writes one Parquet file outside a run's directory (the `diff` output):
/// owner-only, complete or absent.
pub(crate) fn write_private_parquet(path: &std::path::Path, df: &mut DataFrame) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(|e| Error::output(path, format!("cannot create: {e}")))?;
    let mut out = std::io::BufWriter::new(&file);
    let written = ParquetWriter::new(&mut out)
        .with_compression(ParquetCompression::Zstd(None))
        .finish(df)
        .map_err(|e| e.to_string())
        .and_then(|_| std::io::Write::flush(&mut out).map_err(|e| e.to_string()))
        .and_then(|_| file.sync_all().map_err(|e| e.to_string()))
        .and_then(|_| std::fs::rename(&tmp, path).map_err(|e| e.to_string()));
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(Error::output(path, format!("write failed: {e}")));
    }
    Ok(())
}
