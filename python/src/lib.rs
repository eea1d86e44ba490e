//! `claims_audit._core`: the audit core for Python. Tables cross as Arrow
//! (the C data interface), never as text. The Python modules around it are
//! the public API (`claims_audit.audit`, `claims_audit.spark`).

use std::path::{Path, PathBuf};

use arrow_array::ffi_stream::RecordBatchStreamReader;
use arrow_array::{RecordBatch, RecordBatchReader};
use arrow_pyarrow::{FromPyArrow, IntoPyArrow, Table as PaTable};
use pyo3::exceptions::{PyOSError, PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict};
use serde::{Deserialize, Serialize};

use claims_audit::columns::ColumnMap;
use claims_audit::error::Error;
use claims_audit::ingest::{Engine, FileStats, Format, InputFile, RejectLimit, RejectRow, arrow as arrow_in};
use claims_audit::model::Date;
use claims_audit::pipeline::{Evaluated, Extract, RunOptions, RunResult, audit_extract, evaluate_extract};
use claims_audit::policy::Policy;
use claims_audit::progress::Progress;
use claims_audit::report::{self, RunInfo, table};
use claims_audit::rules::{Ctx, RULES};
use claims_audit::spill::Spool;

/// The command line's one-line messages, as Python exceptions: bad input or
/// configuration is a ValueError, a failed write an OSError.
fn py_err(e: Error) -> PyErr {
    let msg = e.to_string();
    match e {
        Error::Config(_) | Error::Input { .. } => PyValueError::new_err(msg),
        Error::Output { .. } => PyOSError::new_err(msg),
        _ => PyRuntimeError::new_err(msg),
    }
}

fn date_arg(v: Option<&str>, what: &str) -> PyResult<Option<Date>> {
    v.map(|s| Date::parse(s).ok_or_else(|| PyValueError::new_err(format!("{what}: invalid date {s:?}, expected YYYY-MM-DD")))).transpose()
}

fn today() -> Date {
    use chrono::Datelike;
    let t = chrono::Utc::now().date_naive();
    Date::from_ymd(t.year(), t.month(), t.day()).unwrap_or_default()
}

/// Every batch of an Arrow stream (a pyarrow Table, a polars DataFrame,
/// anything with `__arrow_c_stream__`).
fn batches(obj: &Bound<PyAny>) -> PyResult<(arrow_schema::SchemaRef, Vec<RecordBatch>)> {
    let reader = RecordBatchStreamReader::from_pyarrow_bound(obj)?;
    let schema = reader.schema();
    let batches = reader.collect::<Result<Vec<_>, _>>().map_err(|e| PyValueError::new_err(format!("reading the table: {e}")))?;
    Ok((schema, batches))
}

fn to_py<'py>(py: Python<'py>, t: table::Table) -> PyResult<Bound<'py, PyAny>> {
    let b = table::to_record_batch(t).map_err(py_err)?;
    let schema = b.schema();
    PaTable::try_new(vec![b], schema).map_err(|e| PyRuntimeError::new_err(e.to_string()))?.into_pyarrow(py)
}

fn load_policy(path: Option<&str>) -> PyResult<Policy> {
    match path {
        Some(p) => Policy::load(Path::new(p)),
        None => Policy::default_policy(),
    }
    .map_err(py_err)
}

fn options(from: Option<Date>, to: Option<Date>, lookback_days: i32, policy_path: Option<&str>, inputs: Vec<String>) -> RunOptions {
    RunOptions {
        inputs,
        out: PathBuf::new(),
        from,
        to,
        lookback_days,
        delimiter: None,
        engine: Engine::Fast,
        quiet: true,
        scan_only: false,
        policy_path: policy_path.map(PathBuf::from),
        columns_path: None,
        threads: None,
        run_date: today(),
        previous: None,
        memory_limit: None,
        // Tables in memory come back to the caller with their rejects, who
        // decides (spec-note 81); the command line's guard is for files.
        reject_limit: RejectLimit::OFF,
    }
}

fn in_memory(name: &str) -> InputFile {
    InputFile { path: PathBuf::from(name), format: Format::Arrow, bytes: 0, mtime: None }
}

/// The result tables of a run as pyarrow Tables, plus its id and counts.
fn results<'py>(py: Python<'py>, r: &RunResult, policy: &Policy, run_id: &str) -> PyResult<Bound<'py, PyDict>> {
    let rows = report::finding_rows(r, policy);
    let refs: Vec<_> = rows.iter().collect();
    let d = PyDict::new(py);
    d.set_item("findings", to_py(py, table::findings(run_id, &refs))?)?;
    // The Python package keeps results in memory (it never spills).
    let episodes = r.episodes.in_memory_rows().ok_or_else(|| PyRuntimeError::new_err("episodes were spilled to disk"))?;
    d.set_item("episodes", to_py(py, table::episodes(episodes))?)?;
    d.set_item("rejects", to_py(py, table::rejects(&r.rejects, |i| r.source_name(i)))?)?;
    d.set_item("tallies", to_py(py, table::tallies(policy, &r.tallies))?)?;
    d.set_item("run_id", run_id)?;
    let totals = report::totals(r);
    d.set_item("totals", serde_json::to_string(&totals).map_err(|e| PyRuntimeError::new_err(e.to_string()))?)?;
    Ok(d)
}

/// Audits named tables (medical and pharmacy, told apart by their columns
/// as files are), each read as one input.
#[pyfunction]
#[pyo3(signature = (tables, policy=None, date_from=None, date_to=None, lookback_days=400))]
fn audit<'py>(
    py: Python<'py>,
    tables: Vec<(String, Bound<'py, PyAny>)>,
    policy: Option<&str>,
    date_from: Option<&str>,
    date_to: Option<&str>,
    lookback_days: i32,
) -> PyResult<Bound<'py, PyDict>> {
    let pol = load_policy(policy)?;
    let (from, to) = (date_arg(date_from, "date_from")?, date_arg(date_to, "date_to")?);
    if let (Some(f), Some(t)) = (from, to)
        && f > t
    {
        return Err(py_err(Error::Config(format!("--from {f} is after --to {t}"))));
    }
    let tables = tables.iter().map(|(name, t)| Ok((name.clone(), batches(t)?))).collect::<PyResult<Vec<_>>>()?;
    let names: Vec<String> = tables.iter().map(|t| t.0.to_string()).collect();
    let opts = options(from, to, lookback_days, policy, names);
    let columns = ColumnMap::default();
    let r = py.detach(|| -> Result<RunResult, Error> {
        let spec = opts.scan_spec(&pol, &columns);
        let mut extract = Extract::default();
        let mut inputs = Vec::new();
        for (k, (name, (schema, b))) in tables.iter().enumerate() {
            extract.push(arrow_in::read_table(name, k as u32, schema, b, &spec)?);
            inputs.push(in_memory(name));
        }
        audit_extract(extract, inputs, &opts, &pol, &Progress::new(true), None, 0.0)
    });
    let r = r.map_err(py_err)?;
    let run_id = report::run_id(&opts, &pol, &r);
    results(py, &r, &pol, &run_id)
}

/// The rule catalogue: id, category, default severity and what it flags.
#[pyfunction]
fn rules(py: Python<'_>) -> PyResult<Vec<Bound<'_, PyDict>>> {
    RULES
        .iter()
        .map(|r| {
            let d = PyDict::new(py);
            d.set_item("rule_id", r.id)?;
            d.set_item("category", r.category)?;
            d.set_item("severity", r.severity.as_str())?;
            d.set_item("summary", r.summary)?;
            Ok(d)
        })
        .collect()
}

/// What a Spark scan may keep: policy codes (upper case; J-codes are all
/// kept), policy NDCs, pharmacy revenue code ranges.
#[pyfunction]
#[pyo3(signature = (policy=None))]
fn scope<'py>(py: Python<'py>, policy: Option<&str>) -> PyResult<Bound<'py, PyDict>> {
    let pol = load_policy(policy)?;
    let d = PyDict::new(py);
    let mut codes: Vec<String> = pol.policy_codes.iter().map(|c| c.to_ascii_uppercase()).collect();
    codes.sort();
    d.set_item("codes", codes)?;
    let mut ndcs: Vec<String> = pol.ndc_products.keys().cloned().collect();
    ndcs.sort();
    d.set_item("ndcs", ndcs)?;
    d.set_item("toml", pol.text.clone())?;
    d.set_item("source", pol.source.clone())?;
    Ok(d)
}

/// Resolves column names as the command line resolves a header: the kind
/// (`medical` or `pharmacy`) and, per canonical column, the name it has.
/// `columns` is a column map file (`--columns`).
#[pyfunction]
#[pyo3(signature = (names, source, columns=None))]
fn resolve_columns<'py>(py: Python<'py>, names: Vec<String>, source: &str, columns: Option<&str>) -> PyResult<Bound<'py, PyDict>> {
    let map = match columns {
        Some(p) => ColumnMap::load(Path::new(p)).map_err(py_err)?,
        None => ColumnMap::default(),
    };
    let r = map.resolve(Path::new(source), &names).map_err(py_err)?;
    let d = PyDict::new(py);
    d.set_item("kind", r.kind.as_str())?;
    let map = PyDict::new(py);
    for (slot, at) in r.idx.iter().enumerate() {
        if let Some(i) = at {
            map.set_item(claims_audit::columns::canonical_name(slot), &names[*i])?;
        }
    }
    d.set_item("columns", map)?;
    Ok(d)
}

/// What every partition of a Spark job is told.
#[derive(Deserialize)]
struct PartitionArgs {
    /// Canonical columns of each input file, by file index.
    files: Vec<Vec<String>>,
    policy_toml: String,
    policy_source: String,
    from: Option<Date>,
    to: Option<Date>,
    lookback_days: i32,
    /// Set for the evaluation pass: `--to`, else the latest date of the run.
    horizon: Option<Date>,
    pharmacy_input: bool,
    /// The run's id (the driver computes it before evaluation) and date.
    #[serde(default)]
    run_id: String,
    run_date: Option<Date>,
    /// Each input file's name in outputs (`source_file`), by file index.
    #[serde(default)]
    sources: Vec<String>,
}

fn read_partition(args: &PartitionArgs, pol: &Policy, data: &Bound<PyAny>) -> PyResult<Extract> {
    let (schema, b) = batches(data)?;
    let columns = ColumnMap::default();
    let opts = options(args.from, args.to, args.lookback_days, None, Vec::new());
    let spec = opts.scan_spec(pol, &columns);
    let outs = arrow_in::read_partition(&args.files, &schema, &b, &spec).map_err(py_err)?;
    let mut extract = Extract::default();
    for o in outs {
        extract.push(o);
    }
    Ok(extract)
}

fn partition_args(args: &str) -> PyResult<(PartitionArgs, Policy)> {
    let a: PartitionArgs = serde_json::from_str(args).map_err(|e| PyValueError::new_err(format!("partition arguments: {e}")))?;
    let pol = Policy::from_toml(&a.policy_toml, &a.policy_source).map_err(py_err)?;
    Ok((a, pol))
}

/// First pass of a Spark job: the latest date this partition keeps (the
/// run's horizon is the latest over all partitions).
#[pyfunction]
fn partition_horizon(data: &Bound<PyAny>, args: &str) -> PyResult<Option<String>> {
    let (a, pol) = partition_args(args)?;
    let extract = read_partition(&a, &pol, data)?;
    Ok(extract.max_date().map(|d| d.to_string()))
}

/// What a partition sends the driver: its counts and findings (the summary
/// and manifest draw on them) and the reason of each reject, never episodes,
/// timeline lines or rejected rows' text, which the executors write.
#[derive(Serialize, Deserialize)]
struct Partial {
    ev: Evaluated,
    episodes: usize,
    timeline: usize,
}

/// Second pass, on an executor: this partition's persons evaluated. Returns
/// its row tables (findings, episodes, rejects, timeline) as pyarrow Tables,
/// each in the command line's order, and `partial`, the bytes `finish`
/// takes on the driver.
#[pyfunction]
fn partition_audit<'py>(py: Python<'py>, data: &Bound<'py, PyAny>, args: &str) -> PyResult<Bound<'py, PyDict>> {
    let (a, pol) = partition_args(args)?;
    let mut extract = read_partition(&a, &pol, data)?;
    let ctx = Ctx { policy: &pol, from: a.from, to: a.to, horizon: a.horizon.unwrap_or_default(), pharmacy_input: a.pharmacy_input };
    let mut ev = py.detach(|| evaluate_extract(&mut extract, &ctx, &Progress::new(true)));
    ev.sort();
    let (episodes, timeline) = (std::mem::take(&mut ev.episodes), std::mem::take(&mut ev.timeline));
    let rejects = std::mem::take(&mut ev.rejects);
    // The driver counts rejects by reason; their text stays here.
    ev.rejects = rejects
        .iter()
        .map(|j| RejectRow { file: j.file, source_line: j.source_line, code: j.code, reason: String::new(), raw_text: String::new() })
        .collect();
    let partial = Partial { ev, episodes: episodes.len(), timeline: timeline.len() };
    let bytes = serde_json::to_vec(&partial).map_err(|e| PyRuntimeError::new_err(format!("partition result: {e}")))?;
    let mut ev = partial.ev;
    ev.episodes = episodes;
    ev.timeline = timeline;
    ev.rejects = rejects;
    let run_date = a.run_date.unwrap_or_else(today);
    let lifecycle = claims_audit::history::reconcile(None, &ev.findings, &[], &Default::default(), &Default::default(), &pol, run_date);
    let inputs: Vec<InputFile> =
        a.sources.iter().map(|p| InputFile { path: PathBuf::from(p), format: Format::Arrow, bytes: 0, mtime: None }).collect();
    let r = ev.into_run(inputs, lifecycle, a.horizon, 0.0, 0.0);
    let d = results(py, &r, &pol, &a.run_id)?;
    let timeline = r.timeline.in_memory_rows().ok_or_else(|| PyRuntimeError::new_err("timeline was spilled to disk"))?;
    d.set_item("timeline", to_py(py, table::timeline(timeline, &pol))?)?;
    d.set_item("partial", PyBytes::new(py, &bytes))?;
    Ok(d)
}

/// One input file of a Spark job, as the driver saw it.
#[derive(Deserialize)]
struct SparkFile {
    path: String,
    format: Format,
    bytes: u64,
    /// Rows in the file, and rows with an empty HCPCS code (medical).
    rows: u64,
}

#[derive(Deserialize)]
struct FinishArgs {
    files: Vec<SparkFile>,
    inputs: Vec<String>,
    policy_path: Option<String>,
    from: Option<Date>,
    to: Option<Date>,
    lookback_days: i32,
    horizon: Option<Date>,
    run_date: Option<Date>,
    argv: Vec<String>,
    started_at: String,
    read_seconds: f64,
    eval_seconds: f64,
    /// Rows each table's dataset holds (the executors wrote them).
    #[serde(default)]
    written: Vec<(String, usize)>,
}

fn spark_inputs(files: &[SparkFile]) -> Vec<InputFile> {
    files.iter().map(|s| InputFile { path: PathBuf::from(&s.path), format: s.format, bytes: s.bytes, mtime: None }).collect()
}

/// The run id of a Spark job, on the driver before evaluation: the command
/// line's key (version, policy, range, run date, inputs).
#[pyfunction]
fn spark_run_id(args: &str) -> PyResult<String> {
    let a: FinishArgs = serde_json::from_str(args).map_err(|e| PyValueError::new_err(format!("finish arguments: {e}")))?;
    let pol = load_policy(a.policy_path.as_deref())?;
    let mut opts = options(a.from, a.to, a.lookback_days, a.policy_path.as_deref(), a.inputs.clone());
    opts.run_date = a.run_date.unwrap_or(opts.run_date);
    let r = Evaluated::default().into_run(spark_inputs(&a.files), Default::default(), a.horizon, 0.0, 0.0);
    Ok(report::run_id(&opts, &pol, &r))
}

/// Last step of a Spark job, on the driver: merges the partitions' counts
/// and findings into the manifest and summary. The row tables are already
/// written; `written` gives their row counts.
#[pyfunction]
fn finish<'py>(py: Python<'py>, partials: Vec<Vec<u8>>, args: &str) -> PyResult<Bound<'py, PyDict>> {
    let a: FinishArgs = serde_json::from_str(args).map_err(|e| PyValueError::new_err(format!("finish arguments: {e}")))?;
    let pol = load_policy(a.policy_path.as_deref())?;
    let mut ev = Evaluated::default();
    let (mut episodes, mut timeline) = (0, 0);
    for p in &partials {
        let part: Partial = serde_json::from_slice(p).map_err(|e| PyRuntimeError::new_err(format!("partition result: {e}")))?;
        ev.merge(part.ev);
        episodes += part.episodes;
        timeline += part.timeline;
    }
    ev.sort();
    let mut files = std::mem::take(&mut ev.files);
    files.resize_with(a.files.len(), FileStats::default);
    for (f, s) in files.iter_mut().zip(&a.files) {
        // Rows the scan filtered out were read and accepted, out of scope.
        let unseen = s.rows.saturating_sub(f.counts.rows_read);
        f.counts.rows_read += unseen;
        f.counts.rows_accepted += unseen;
        f.path = s.path.clone();
        f.format = Some(s.format);
        f.bytes = s.bytes;
    }
    let inputs = spark_inputs(&a.files);
    let mut opts = options(a.from, a.to, a.lookback_days, a.policy_path.as_deref(), a.inputs.clone());
    opts.run_date = a.run_date.unwrap_or(opts.run_date);
    let lifecycle =
        claims_audit::history::reconcile(None, &ev.findings, &[], &Default::default(), &Default::default(), &pol, opts.run_date);
    ev.files = files;
    let mut r = ev.into_run(inputs, lifecycle, a.horizon, a.read_seconds, a.eval_seconds);
    r.episodes = Spool::counted(episodes);
    r.timeline = Spool::counted(timeline);
    let run_id = report::run_id(&opts, &pol, &r);
    let d = PyDict::new(py);
    d.set_item("run_id", &run_id)?;
    d.set_item("tallies", to_py(py, table::tallies(&pol, &r.tallies))?)?;
    let info = RunInfo {
        run_id: run_id.clone(),
        started_at: a.started_at.clone(),
        finished_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        argv: a.argv.clone(),
    };
    let mut outputs: Vec<(&str, Option<usize>)> = a.written.iter().map(|(k, n)| (k.as_str(), Some(*n))).collect();
    outputs.extend([("summary.md", None), ("_SUCCESS", None)]);
    let manifest = report::manifest_json(&opts, &pol, &r, &info, &outputs).map_err(py_err)?;
    d.set_item("manifest", String::from_utf8_lossy(&manifest).into_owned())?;
    d.set_item("summary", report::summary::render(&opts, &pol, &r, &run_id))?;
    Ok(d)
}

/// The command line's `--out` check (spec-note 79): the target must be
/// absent, empty or an earlier output, and neither hold nor lie inside an
/// input. The Spark job calls it before it reads anything.
#[pyfunction]
fn check_out(out: &str, inputs: Vec<String>) -> PyResult<()> {
    report::check_out(Path::new(out), &inputs).map_err(py_err)
}

/// Writes a run's output files the way the command line does: under its
/// lock, into a private staging directory, `_SUCCESS` last, moved into place.
#[pyfunction]
fn write_outputs(out: &str, files: Vec<(String, Vec<u8>)>) -> PyResult<()> {
    let target = Path::new(out);
    // Replaces only an earlier output, as the command line's --out.
    report::check_out(target, &[]).map_err(py_err)?;
    let _lock = report::OutputLock::acquire(target).map_err(py_err)?;
    let st = report::Staging::new(target).map_err(py_err)?;
    for (name, bytes) in &files {
        st.write(name, bytes).map_err(py_err)?;
    }
    st.commit().map_err(py_err)
}

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(audit, m)?)?;
    m.add_function(wrap_pyfunction!(rules, m)?)?;
    m.add_function(wrap_pyfunction!(scope, m)?)?;
    m.add_function(wrap_pyfunction!(resolve_columns, m)?)?;
    m.add_function(wrap_pyfunction!(partition_horizon, m)?)?;
    m.add_function(wrap_pyfunction!(partition_audit, m)?)?;
    m.add_function(wrap_pyfunction!(finish, m)?)?;
    m.add_function(wrap_pyfunction!(spark_run_id, m)?)?;
    m.add_function(wrap_pyfunction!(write_outputs, m)?)?;
    m.add_function(wrap_pyfunction!(check_out, m)?)?;
    m.add("VERSION", claims_audit::VERSION)?;
    Ok(())
}
