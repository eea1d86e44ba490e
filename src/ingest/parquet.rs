//! Parquet input through a polars lazy scan: only the needed columns are
//! read (projection pushdown) and rows whose code no rule reads are dropped
//! inside the scan (predicate pushdown), so memory follows in-scope rows.

use std::path::Path;

use polars::prelude::*;

use super::{FileOutput, RowSink, ScanSpec};
use crate::columns::col as slot;
use crate::error::{Error, Result};

fn perr(path: &Path, e: PolarsError) -> Error {
    let msg = e.to_string();
    let first = msg.lines().next().unwrap_or("unreadable").trim().to_string();
    Error::input(path, format!("cannot read as Parquet: {first}"))
}

fn scan(path: &Path) -> Result<LazyFrame> {
    let p = path.to_string_lossy().to_string();
    LazyFrame::scan_parquet(PlRefPath::new(p), ScanArgsParquet::default()).map_err(|e| perr(path, e))
}

pub fn read(path: &Path, file_idx: u32, spec: &ScanSpec) -> Result<FileOutput> {
    let mut lf = scan(path)?;
    let schema = lf.collect_schema().map_err(|e| perr(path, e))?;
    let names: Vec<String> = schema.iter_names().map(|n| n.to_string()).collect();
    let resolved = spec.columns.resolve(path, &names)?;
    let total = lf.clone().select([len().alias("n")]).collect().map_err(|e| perr(path, e))?;
    let rows_read =
        total.column("n").and_then(|c| c.cast(&DataType::UInt64)).ok().and_then(|c| c.u64().ok().and_then(|ca| ca.get(0))).unwrap_or(0);

    let as_str = |name: &str| col(name).cast(DataType::String);
    let trimmed = |name: &str| as_str(name).str().strip_chars(lit(NULL));
    let name_of = |s: usize| resolved.idx[s].map(|i| names[i].clone());
    let code_name = name_of(slot::HCPCS).unwrap_or_default();
    let code = trimmed(&code_name).str().to_uppercase();
    let mut wanted = code.clone().str().starts_with(lit("J"));
    let mut policy_codes: Vec<&String> = spec.policy.policy_codes.iter().collect();
    policy_codes.sort();
    for c in policy_codes {
        wanted = wanted.or(code.clone().eq(lit(c.as_str())));
    }
    // Rows that will be rejected are read too, so they reach rejects.parquet.
    wanted = wanted.or(code.clone().is_null()).or(code.eq(lit("")));
    let mut person_empty: Option<Expr> = None;
    for s in [slot::PERSON_ID, slot::MEMBER_ID] {
        if let Some(n) = name_of(s) {
            let e = trimmed(&n).is_null().or(trimmed(&n).eq(lit("")));
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
    let df = lf.with_row_index("__row", Some(1)).filter(wanted).select(exprs).collect().map_err(|e| perr(path, e))?;

    let rows: Vec<u64> =
        df.column("__row").and_then(|c| c.u64().map(|ca| ca.iter().map(|v| v.unwrap_or(0)).collect())).map_err(|e| perr(path, e))?;
    let mut cols: Vec<Vec<Option<&str>>> = Vec::with_capacity(present.len());
    for k in 0..present.len() {
        let c = df.column(&format!("__c{k}")).and_then(|c| c.str()).map_err(|e| perr(path, e))?;
        cols.push(c.iter().collect());
    }
    // Parquet rows have no field-count problems: present every column as its
    // own field, in slot order, with a width that always matches.
    let mut pos = vec![None; resolved.idx.len()];
    for (k, &s) in present.iter().enumerate() {
        pos[s] = Some(k);
    }
    let local = crate::columns::Resolved { idx: pos.try_into().unwrap_or(resolved.idx), width: present.len() };
    let header: Vec<String> = present.iter().map(|&s| crate::columns::canonical_name(s)).collect();
    let mut sink = RowSink::new(spec, &local, file_idx, &header, b"\x00never-a-header\x00");
    for (r, &row) in rows.iter().enumerate() {
        let field = |k: usize| cols[k][r].unwrap_or("").as_bytes();
        let raw = (0..present.len()).map(|k| cols[k][r].unwrap_or("")).collect::<Vec<_>>().join(",");
        sink.row(row, present.len(), field, raw.as_bytes());
    }
    let mut out = sink.out;
    // Rows the scan filtered out were read and accepted, out of scope.
    let filtered = rows_read.saturating_sub(out.stats.rows_read);
    out.stats.rows_read += filtered;
    out.stats.rows_accepted += filtered;
    Ok(out)
}
