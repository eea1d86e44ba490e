//! Parquet input through a polars lazy scan: only the needed columns are
//! read (projection pushdown) and rows whose code no rule reads are dropped
//! inside the scan (predicate pushdown), so memory follows in-scope rows.

use std::borrow::Cow;
use std::path::Path;

use polars::prelude::*;

use rayon::prelude::*;

use super::{FileOutput, RowSink, ScanSpec, append};
use crate::columns::col as slot;
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
    let code_name = name_of(slot::HCPCS).unwrap_or_default();
    // Person checks are a cheap superset on the raw text (trimming 5M
    // strings in the scan costs seconds); the row sink checks exactly.
    let code = as_str(&code_name);
    let padded = |e: Expr| {
        e.clone()
            .str()
            .starts_with(lit(" "))
            .or(e.clone().str().ends_with(lit(" ")))
            .or(e.clone().str().starts_with(lit("\t")))
            .or(e.str().ends_with(lit("\t")))
    };
    // The code column holds a few hundred distinct values: decide each one
    // exactly here (as the row sink will), then filter with one hashed
    // membership test instead of string tests on every row.
    let distinct = lf
        .clone()
        .select([code.clone().unique().alias("code")])
        .collect_with_engine(Engine::Streaming)
        .map_err(|e| perr(path, e))?
        .unwrap_single();
    let wanted_codes: Vec<String> = distinct
        .column("code")
        .and_then(|c| c.str().map(|ca| ca.iter().flatten().map(str::to_string).collect::<Vec<_>>()))
        .map_err(|e| perr(path, e))?
        .into_iter()
        .filter(|v| {
            // Exactly the row sink's test: empty after trimming (a reject) or in scope.
            let t = v.as_bytes().trim_ascii();
            t.is_empty() || super::code_in_scope(spec.policy, t)
        })
        .collect();
    tracing::debug!(seconds = t0.elapsed().as_secs_f64(), distinct = distinct.height(), wanted = wanted_codes.len(), "parquet code values");
    let mut wanted = code.clone().is_in(lit(Series::new("codes".into(), wanted_codes)).implode(false), false);
    // Rows that will be rejected are read too, so they reach rejects.parquet.
    wanted = wanted.or(code.clone().is_null()).or(code.eq(lit("")));
    let mut person_empty: Option<Expr> = None;
    for s in [slot::PERSON_ID, slot::MEMBER_ID] {
        if let Some(n) = name_of(s) {
            let p = as_str(&n);
            let e = p.clone().is_null().or(p.clone().eq(lit(""))).or(padded(p));
            person_empty = Some(match person_empty {
                None => e,
                Some(p) => p.and(e),
            });
        }
    }
    if let Some(p) = person_empty {
        wanted = wanted.or(p);
    }
    let present: Vec<usize> = (0..resolved.idx.len()).filter(|&s| resolved.idx[s].is_some()).collect();
    let mut exprs: Vec<Expr> = vec![col("__row").cast(DataType::UInt64)];
    // Field i of the selected frame is slot present[i]; a slot may share a column.
    for (k, &s) in present.iter().enumerate() {
        exprs.push(as_str(&names[resolved.idx[s].unwrap_or(0)]).alias(format!("__c{k}")));
    }
    // The streaming engine keeps memory to a few row groups at a time. A
    // plan with one sink always yields a single frame.
    let df = lf.filter(wanted).select(exprs).collect_with_engine(Engine::Streaming).map_err(|e| perr(path, e))?.unwrap_single();

    tracing::debug!(seconds = t0.elapsed().as_secs_f64(), rows = df.height(), "parquet scan collected");
    let rows: Vec<u64> =
        df.column("__row").and_then(|c| c.u64().map(|ca| ca.iter().map(|v| v.unwrap_or(0)).collect())).map_err(|e| perr(path, e))?;
    // Cells are read in place by row index: no copies of the frame.
    let mut columns: Vec<&StringChunked> = Vec::with_capacity(present.len());
    for k in 0..present.len() {
        columns.push(df.column(&format!("__c{k}")).and_then(|c| c.str()).map_err(|e| perr(path, e))?);
    }
    let cell = |k: usize, r: usize| -> &str { columns[k].get(r).unwrap_or("") };
    // Parquet rows have no field-count problems: present every column as its
    // own field, in slot order, with a width that always matches.
    let mut pos = vec![None; resolved.idx.len()];
    for (k, &s) in present.iter().enumerate() {
        pos[s] = Some(k);
    }
    let local = crate::columns::Resolved { idx: pos.try_into().unwrap_or(resolved.idx), width: present.len() };
    let header: Vec<String> = present.iter().map(|&s| crate::columns::canonical_name(s)).collect();
    // Normalize in parallel, in row order: one sink per range of rows.
    let ranges: Vec<(usize, usize)> = (0..rows.len()).step_by(PAR_ROWS).map(|a| (a, (a + PAR_ROWS).min(rows.len()))).collect();
    let parts: Vec<FileOutput> = ranges
        .into_par_iter()
        .map(|(a, b)| {
            let mut sink = RowSink::new(spec, &local, file_idx, &header, b"\x00never-a-header\x00");
            // Parquet strings are UTF-8 already.
            sink.utf8_checked = true;
            for (r, &row) in rows.iter().enumerate().take(b).skip(a) {
                let field = |k: usize| cell(k, r).as_bytes();
                let raw = || Cow::Owned((0..present.len()).map(|k| cell(k, r)).collect::<Vec<_>>().join(",").into_bytes());
                sink.row_lazy(row, present.len(), field, raw);
            }
            sink.out
        })
        .collect();
    let mut out = FileOutput::default();
    for part in parts {
        append(&mut out, part, 0);
    }
    tracing::debug!(seconds = t0.elapsed().as_secs_f64(), "parquet rows normalized");
    // Rows the scan filtered out were read and accepted, out of scope.
    let filtered = rows_read.saturating_sub(out.stats.rows_read);
    out.stats.rows_read += filtered;
    out.stats.rows_accepted += filtered;
    Ok(out)
}
