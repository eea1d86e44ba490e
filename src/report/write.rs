//! Writing the run's tables as Parquet (arrow-rs), all into a staging
//! directory that is moved into place at the end.

use arrow_array::RecordBatch;

use super::parquet_io::ParquetOut;
use super::table;
use super::{RunInfo, Staging, finding_rows_in, html, manifest_json, summary};
use crate::error::{Error, Result};
use crate::history::FindingRow;
use crate::pipeline::{RunOptions, RunResult};
use crate::policy::Policy;
use crate::spill::{Record, Spool};

/// Rows per row group of the run's tables. Each batch of rows is built as a
/// record batch, written and dropped before the next, so writing holds one batch of
/// strings at a time, whatever the table's size. Finding rows carry a
/// message and evidence (over a kilobyte each), so their batches are smaller.
const BATCH_ROWS: usize = 32 * 1024;
const FINDING_BATCH_ROWS: usize = 4 * 1024;

/// Writes every output into a staging directory and moves it into place.
pub fn write_all(opts: &RunOptions, policy: &Policy, r: &RunResult, info: &mut RunInfo, bar: &indicatif::ProgressBar) -> Result<()> {
    let st = Staging::new(&opts.out)?;
    // The outputs are independent: the timeline (the largest) is written on
    // a second thread while the other tables are written, and the summary
    // and report rendered, here.
    let (timeline, rest) = std::thread::scope(|scope| {
        let timeline =
            scope.spawn(|| write_parquet(&st, "timeline.parquet", &r.timeline, |t| table::to_record_batch(table::timeline(t, policy))));
        let rest = (|| -> Result<(usize, usize, usize, usize, String, String)> {
            // Rows are built a batch at a time, from the findings' positions.
            let at: Vec<usize> = (0..r.findings.len()).collect();
            let n_findings = write_parquet_in(&st, "findings.parquet", &at, FINDING_BATCH_ROWS, |ks| {
                let rows = finding_rows_in(r, policy, ks.first().map_or(0..0, |&a| a..a + ks.len()));
                let refs: Vec<&FindingRow> = rows.iter().collect();
                table::to_record_batch(table::findings(&info.run_id, &refs))
            })?;
            crate::signals::check()?;
            bar.inc(1);
            let n_resolved = write_parquet_in(&st, "resolved.parquet", &r.lifecycle.resolved, FINDING_BATCH_ROWS, |res| {
                let rows: Vec<&FindingRow> = res.iter().map(|x| &x.row).collect();
                let reasons = res.iter().map(|x| x.reason.as_str()).collect();
                table::to_record_batch(table::resolved(&info.run_id, &rows, reasons, opts.run_date))
            })?;
            let n_episodes = write_parquet(&st, "episodes.parquet", &r.episodes, |e| table::to_record_batch(table::episodes(e)))?;
            crate::signals::check()?;
            bar.inc(1);
            let n_rejects =
                write_parquet(&st, "rejects.parquet", &r.rejects, |j| table::to_record_batch(table::rejects(j, |i| r.source_name(i))))?;
            crate::signals::check()?;
            bar.inc(1);
            let summary = summary::render(opts, policy, r, &info.run_id);
            let t_report = std::time::Instant::now();
            let report = html::render(opts, policy, r, &info.run_id)?;
            tracing::debug!(seconds = t_report.elapsed().as_secs_f64(), peak_rss_mib = crate::util::peak_rss_mib(), "report.html");
            Ok((n_findings, n_resolved, n_episodes, n_rejects, summary, report))
        })();
        (timeline.join().unwrap_or_else(|_| Err(Error::Internal("timeline writer panicked".into()))), rest)
    });
    let n_timeline = timeline?;
    let (n_findings, n_resolved, n_episodes, n_rejects, summary, report) = rest?;
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
    st.write("summary.md", summary.as_bytes())?;
    st.write("report.html", report.as_bytes())?;
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
/// makes the record batch of a slice of rows (its schema from the empty slice).
fn write_parquet<T>(st: &Staging, name: &str, rows: &impl Batches<T>, batch: impl Fn(&[T]) -> Result<RecordBatch>) -> Result<usize> {
    write_parquet_in(st, name, rows, BATCH_ROWS, batch)
}

fn write_parquet_in<T>(
    st: &Staging,
    name: &str,
    rows: &impl Batches<T>,
    batch_rows: usize,
    batch: impl Fn(&[T]) -> Result<RecordBatch>,
) -> Result<usize> {
    let t0 = std::time::Instant::now();
    let path = st.dir.join(name);
    let mut out = ParquetOut::output(st.create(name)?, &path, batch(&[])?.schema())?;
    rows.each(batch_rows, &mut |chunk| out.write(&batch(chunk)?))?;
    out.finish()?;
    let n = rows.count();
    tracing::debug!(file = name, rows = n, seconds = t0.elapsed().as_secs_f64(), peak_rss_mib = crate::util::peak_rss_mib(), "written");
    Ok(n)
}
