//! Parquet input through a polars lazy scan: only the needed columns are
//! read (projection pushdown) and rows whose code no rule reads are dropped
//! inside the scan (predicate pushdown), so memory follows in-scope rows.

use std::borrow::Cow;
use std::path::Path;

use polars::prelude::*;

use rayon::prelude::*;

use super::sink::{FileOutput, RowSink, ScanSpec, append, ndc_in_scope};
use crate::columns::{FileKind, col as slot};
use crate::error::{Error, Result};

/// Rows per parallel normalization task.
const PAR_ROWS: usize = 8192;

fn perr(path: &Path, e: PolarsError) -> Error {
    let msg = e.to_string();
    let first = msg.lines().next().unwrap_or("unreadable").trim().to_string();
    Error::input(path, format!("cannot read as Parquet: {first}"))
}

fn scan(path: &Path) -> Result<LazyFrame> {
    let p = path.to_string_lossy().to_string();
    // The row index is the scan's own, so the filter is still pushed into it.
    let args = ScanArgsParquet { row_index: Some(RowIndex { name: "__row".into(), offset: 1 }), ..ScanArgsParquet::default() };
    LazyFrame::scan_parquet(PlRefPath::new(p), args).map_err(|e| perr(path, e))
}

pub fn read(path: &Path, file_idx: u32, spec: &ScanSpec) -> Result<FileOutput> {
    let t0 = std::time::Instant::now();
    let mut lf = scan(path)?;
    let schema = lf.collect_schema().map_err(|e| perr(path, e))?;
    let names: Vec<String> = schema.iter_names().filter(|n| n.as_str() != "__row").map(|n| n.to_string()).collect();
    let resolved = spec.columns.resolve(path, &names)?;
    let total = lf.clone().select([len().alias("n")]).collect().map_err(|e| perr(path, e))?;
    let rows_read =
        total.column("n").and_then(|c| c.cast(&DataType::UInt64)).ok().and_then(|c| c.u64().ok().and_then(|ca| ca.get(0))).unwrap_or(0);

    tracing::debug!(seconds = t0.elapsed().as_secs_f64(), "parquet schema and row count");
    let as_str = |name: &str| col(name).cast(DataType::String);
    let name_of = |s: usize| resolved.idx[s].map(|i| names[i].clone());
    let key_slot = if resolved.kind == FileKind::Pharmacy { slot::NDC } else { slot::HCPCS };
    let code_name = name_of(key_slot).unwrap_or_default();
    let code = as_str(&code_name);
    // The key column (HCPCS, or NDC in a pharmacy extract) holds a few
    // hundred distinct values: decide each one exactly here (as the row sink
    // will), then filter with one hashed membership test instead of string
    // tests on every row.
    // Each distinct value with its row count (null as None), in one pass.
    let distinct_of = |name: &str| -> Result<Vec<(Option<String>, u64)>> {
        let df = lf
            .clone()
            .group_by([as_str(name).alias("v")])
            .agg([len().alias("n")])
            .collect_with_engine(Engine::Streaming)
            .map_err(|e| perr(path, e))?
            .unwrap_single();
        let v = df.column("v").and_then(|c| c.str().cloned()).map_err(|e| perr(path, e))?;
        let n = df.column("n").and_then(|c| c.cast(&DataType::UInt64)).map_err(|e| perr(path, e))?;
        let n = n.u64().map_err(|e| perr(path, e))?;
        Ok(v.iter().zip(n.iter()).map(|(v, n)| (v.map(str::to_string), n.unwrap_or(0))).collect())
    };
    let present_values = |v: Vec<(Option<String>, u64)>| -> Vec<String> { v.into_iter().filter_map(|(v, _)| v).collect() };
    // Medical rows without a code, all of them (the scan drops most).
    let mut blank_rows = 0u64;
    let values = |v: Vec<String>| lit(Series::new("values".into(), v)).implode(false);
    // The main scan: rows whose code (or NDC) some rule reads, every column.
    let mut uncoded: Option<(Vec<usize>, Expr)> = None;
    let wanted = match resolved.kind {
        FileKind::Medical => {
            let codes = distinct_of(&code_name)?;
            tracing::debug!(seconds = t0.elapsed().as_secs_f64(), distinct = codes.len(), "parquet code values");
            let (blank, coded): (Vec<_>, Vec<_>) =
                codes.into_iter().partition(|(v, _)| v.as_deref().is_none_or(|v| v.trim_ascii().is_empty()));
            blank_rows = blank.iter().map(|(_, n)| n).sum();
            let blank = present_values(blank);
            let in_scope: Vec<String> =
                present_values(coded).into_iter().filter(|v| super::sink::code_in_scope(spec.policy, v.trim_ascii().as_bytes())).collect();
            // Rows without a code matter only with a pharmacy revenue code,
            // and only their person and date: a second, narrow scan.
            if let (Some(rev_name), true) = (name_of(slot::REVENUE), blank_rows > 0) {
                let rev: Vec<String> =
                    present_values(distinct_of(&rev_name)?).into_iter().filter(|r| spec.policy.is_pharmacy_revenue(r)).collect();
                tracing::debug!(seconds = t0.elapsed().as_secs_f64(), "parquet revenue values");
                let no_code = code.clone().is_null().or(code.clone().is_in(values(blank), false));
                let slots = [slot::PERSON_ID, slot::MEMBER_ID, slot::LINE_START, slot::CLAIM_START, slot::HCPCS, slot::REVENUE];
                let slots: Vec<usize> = slots.into_iter().filter(|&s| resolved.idx[s].is_some()).collect();
                uncoded = Some((slots, no_code.and(as_str(&rev_name).is_in(values(rev), false))));
            }
            code.clone().is_in(values(in_scope), false)
        }
        FileKind::Pharmacy => {
            let ndcs: Vec<String> =
                present_values(distinct_of(&code_name)?).into_iter().filter(|v| ndc_in_scope(spec.policy, v.as_bytes())).collect();
            code.clone().is_in(values(ndcs), false)
        }
    };
    let present: Vec<usize> = (0..resolved.idx.len()).filter(|&s| resolved.idx[s].is_some()).collect();
    let scan = Scan { lf: &lf, names: &names, resolved: &resolved, spec, file_idx, path };
    let mut out = scan.rows(&present, wanted)?;
    tracing::debug!(seconds = t0.elapsed().as_secs_f64(), rows = out.stats.rows_read, "parquet in-scope rows normalized");
    if let Some((slots, filter)) = uncoded {
        let part = scan.rows(&slots, filter)?;
        // Every row of this scan has no code; the sink counted the accepted ones.
        let blank_seen = part.stats.rows_read;
        append(&mut out, part, 0);
        out.stats.rows_without_hcpcs += blank_rows.saturating_sub(blank_seen);
        tracing::debug!(seconds = t0.elapsed().as_secs_f64(), rows = blank_seen, "parquet uncoded revenue rows");
    } else if resolved.kind == FileKind::Medical {
        out.stats.rows_without_hcpcs += blank_rows;
    }
    out.stats.kind = Some(resolved.kind);
    // Rows the scans filtered out were read and accepted, out of scope.
    let filtered = rows_read.saturating_sub(out.stats.rows_read);
    out.stats.rows_read += filtered;
    out.stats.rows_accepted += filtered;
    Ok(out)
}

/// One file's lazy scan and what its rows are fed to.
struct Scan<'a> {
    lf: &'a LazyFrame,
    names: &'a [String],
    resolved: &'a crate::columns::Resolved,
    spec: &'a ScanSpec<'a>,
    file_idx: u32,
    path: &'a Path,
}

impl Scan<'_> {
    /// Collects the rows `filter` selects, with the columns of `slots` as
    /// text, and passes each through the row sink (in parallel, in row
    /// order). A reject's raw text holds those columns.
    fn rows(&self, slots: &[usize], filter: Expr) -> Result<FileOutput> {
        let path = self.path;
        let mut exprs: Vec<Expr> = vec![col("__row").cast(DataType::UInt64)];
        // Field i of the selected frame is slot slots[i]; a slot may share a column.
        for (k, &s) in slots.iter().enumerate() {
            exprs.push(col(self.names[self.resolved.idx[s].unwrap_or(0)].as_str()).cast(DataType::String).alias(format!("__c{k}")));
        }
        // The streaming engine keeps memory to a few row groups at a time. A
        // plan with one sink always yields a single frame.
        let df =
            self.lf.clone().filter(filter).select(exprs).collect_with_engine(Engine::Streaming).map_err(|e| perr(path, e))?.unwrap_single();
        let rows: Vec<u64> =
            df.column("__row").and_then(|c| c.u64().map(|ca| ca.iter().map(|v| v.unwrap_or(0)).collect())).map_err(|e| perr(path, e))?;
        // Cells are read in place by row index: no copies of the frame.
        let mut columns: Vec<&StringChunked> = Vec::with_capacity(slots.len());
        for k in 0..slots.len() {
            columns.push(df.column(&format!("__c{k}")).and_then(|c| c.str()).map_err(|e| perr(path, e))?);
        }
        let cell = |k: usize, r: usize| -> &str { columns[k].get(r).unwrap_or("") };
        // Parquet rows have no field-count problems: present every column as
        // its own field, in slot order, with a width that always matches.
        let mut pos = vec![None; self.resolved.idx.len()];
        for (k, &s) in slots.iter().enumerate() {
            pos[s] = Some(k);
        }
        let local =
            crate::columns::Resolved { idx: pos.try_into().unwrap_or(self.resolved.idx), width: slots.len(), kind: self.resolved.kind };
        let header: Vec<String> = slots.iter().map(|&s| crate::columns::canonical_name(s)).collect();
        let ranges: Vec<(usize, usize)> = (0..rows.len()).step_by(PAR_ROWS).map(|a| (a, (a + PAR_ROWS).min(rows.len()))).collect();
        let parts: Vec<FileOutput> = ranges
            .into_par_iter()
            .map(|(a, b)| {
                let mut sink = RowSink::new(self.spec, &local, self.file_idx, &header, b"\x00never-a-header\x00");
                // Parquet strings are UTF-8 already.
                sink.utf8_checked = true;
                for (r, &row) in rows.iter().enumerate().take(b).skip(a) {
                    let field = |k: usize| cell(k, r).as_bytes();
                    let raw = || Cow::Owned((0..slots.len()).map(|k| cell(k, r)).collect::<Vec<_>>().join(",").into_bytes());
                    sink.row_lazy(row, slots.len(), field, raw);
                }
                sink.out
            })
            .collect();
        let mut out = FileOutput::default();
        for part in parts {
            append(&mut out, part, 0);
        }
        Ok(out)
    }
}
