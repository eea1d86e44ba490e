//! The plain Parquet reader: polars reads the columns the run uses, whole,
//! and every row goes through the row sink, which decides its scope. Kept as
//! the reference the fast reader (`parquet_fast`, arrow-rs) is tested
//! against; selectable with `--engine plain`.

use std::borrow::Cow;
use std::path::Path;

use polars::prelude::*;
use rayon::prelude::*;

use super::sink::{FileOutput, RowSink, ScanSpec, join};
use crate::error::{Error, Result};

/// Rows per parallel normalization task.
const PAR_ROWS: usize = 8192;

fn perr(path: &Path, e: PolarsError) -> Error {
    let msg = e.to_string();
    let first = msg.lines().next().unwrap_or("unreadable").trim().to_string();
    Error::input(path, format!("cannot read as Parquet: {first}"))
}

fn open(path: &Path) -> Result<ParquetReader<std::fs::File>> {
    let f = std::fs::File::open(path).map_err(|e| Error::input(path, format!("cannot open: {e}")))?;
    Ok(ParquetReader::new(f))
}

pub fn read(path: &Path, file_idx: u32, spec: &ScanSpec) -> Result<FileOutput> {
    let names: Vec<String> = open(path)?.schema().map_err(|e| perr(path, e))?.iter_names().map(|n| n.to_string()).collect();
    let resolved = spec.columns.resolve(path, &names)?;
    let slots: Vec<usize> = (0..resolved.idx.len()).filter(|&s| resolved.idx[s].is_some()).collect();
    let mut used: Vec<String> = slots.iter().filter_map(|&s| resolved.idx[s]).map(|i| names[i].clone()).collect();
    used.dedup();
    let df = open(path)?.with_columns(Some(used)).finish().map_err(|e| perr(path, e))?;
    // Field k of a row is slot slots[k], as text.
    let mut columns: Vec<StringChunked> = Vec::with_capacity(slots.len());
    for &s in &slots {
        let name = &names[resolved.idx[s].unwrap_or(0)];
        let c = df.column(name).and_then(|c| c.cast(&DataType::String)).map_err(|e| perr(path, e))?;
        columns.push(c.str().map_err(|e| perr(path, e))?.clone());
    }
    let cell = |k: usize, r: usize| -> &str { columns[k].get(r).unwrap_or("") };
    let mut pos = [None; crate::columns::col::COUNT];
    for (k, &s) in slots.iter().enumerate() {
        pos[s] = Some(k);
    }
    let local = crate::columns::Resolved { idx: pos, width: slots.len(), kind: resolved.kind };
    let header: Vec<String> = slots.iter().map(|&s| crate::columns::canonical_name(s)).collect();
    let n = df.height();
    let parts: Vec<FileOutput> = (0..n)
        .step_by(PAR_ROWS)
        .collect::<Vec<_>>()
        .into_par_iter()
        .map(|a| {
            let mut sink = RowSink::new(spec, &local, file_idx, &header, b"\x00never-a-header\x00");
            // Parquet strings are UTF-8 already.
            sink.utf8_checked = true;
            for r in a..(a + PAR_ROWS).min(n) {
                let field = |k: usize| cell(k, r).as_bytes();
                let raw = || Cow::Owned((0..slots.len()).map(|k| cell(k, r)).collect::<Vec<_>>().join(",").into_bytes());
                sink.row_lazy(r as u64 + 1, slots.len(), field, raw);
            }
            sink.out
        })
        .collect();
    join(resolved.kind, parts.into_iter().map(Ok))
}
