//! The plain Parquet reader: arrow-rs's record batch reader decodes the
//! columns the run uses, whole, and every row goes through the row sink as
//! text, which decides its scope. Kept as the reference the fast reader
//! (`parquet_fast`: its own page decoding, rows chosen by their codes before
//! the rest is decoded) is tested against; selectable with `--engine plain`.

use std::borrow::Cow;
use std::fs::File;
use std::path::Path;

use arrow_array::{Array, RecordBatch, StringArray};
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use rayon::prelude::*;

use super::arrow::text;
use super::sink::{FileOutput, RowSink, ScanSpec, join};
use crate::error::{Error, Result};

/// Rows per batch, and per parallel normalization task.
const PAR_ROWS: usize = 8192;

fn perr(path: &Path, e: impl std::fmt::Display) -> Error {
    let msg = e.to_string();
    let first = msg.lines().next().unwrap_or("unreadable").trim().to_string();
    Error::input(path, format!("cannot read as Parquet: {first}"))
}

pub fn read(path: &Path, file_idx: u32, spec: &ScanSpec) -> Result<FileOutput> {
    let f = File::open(path).map_err(|e| Error::input(path, format!("cannot open: {e}")))?;
    let builder = ParquetRecordBatchReaderBuilder::try_new(f).map_err(|e| perr(path, e))?;
    let names: Vec<String> = builder.schema().fields().iter().map(|f| f.name().clone()).collect();
    let resolved = spec.columns.resolve(path, &names)?;
    let slots: Vec<usize> = (0..resolved.idx.len()).filter(|&s| resolved.idx[s].is_some()).collect();
    // Top-level fields are the file's root columns, in order.
    let roots: Vec<usize> = slots.iter().filter_map(|&s| resolved.idx[s]).collect();
    let mask = ProjectionMask::roots(builder.parquet_schema(), roots);
    let reader = builder.with_projection(mask).with_batch_size(PAR_ROWS).build().map_err(|e| perr(path, e))?;
    let batches = reader.collect::<std::result::Result<Vec<RecordBatch>, _>>().map_err(|e| perr(path, e))?;
    let mut pos = [None; crate::columns::col::COUNT];
    for (k, &s) in slots.iter().enumerate() {
        pos[s] = Some(k);
    }
    let local = crate::columns::Resolved { idx: pos, width: slots.len(), kind: resolved.kind };
    let header: Vec<String> = slots.iter().map(|&s| crate::columns::canonical_name(s)).collect();
    // Each batch's first row number (batches may end at row group edges).
    let firsts: Vec<usize> = batches.iter().scan(0, |n, b| Some(std::mem::replace(n, *n + b.num_rows()))).collect();
    let parts: Vec<Result<FileOutput>> = batches
        .par_iter()
        .zip(firsts)
        .map(|(b, first)| {
            // Field k of a row is slot slots[k], as text.
            let columns = slots
                .iter()
                .map(|&s| {
                    let name = &names[resolved.idx[s].unwrap_or(0)];
                    let a = b.column_by_name(name).ok_or_else(|| perr(path, format!("no column {name}")))?;
                    text(a, name)
                })
                .collect::<Result<Vec<StringArray>>>()?;
            let cell = |k: usize, r: usize| -> &str { if columns[k].is_null(r) { "" } else { columns[k].value(r) } };
            let mut sink = RowSink::new(spec, &local, file_idx, &header, b"\x00never-a-header\x00");
            // Parquet strings are UTF-8 already.
            sink.utf8_checked = true;
            for r in 0..b.num_rows() {
                let field = |k: usize| cell(k, r).as_bytes();
                let raw = || Cow::Owned((0..slots.len()).map(|k| cell(k, r)).collect::<Vec<_>>().join(",").into_bytes());
                sink.row_lazy((first + r) as u64 + 1, slots.len(), field, raw);
            }
            Ok(sink.out)
        })
        .collect();
    join(resolved.kind, parts)
}
