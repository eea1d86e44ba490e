//! The plain Parquet reader: arrow-rs's record batch reader decodes the
//! columns the run uses, whole, and every row goes through the row sink as
//! text, which decides its scope. Kept as the reference the fast reader
//! (`parquet_fast`: its own page decoding, rows chosen by their codes before
//! the rest is decoded) is tested against; selectable with `--engine plain`.

use std::borrow::Cow;
use std::fs::File;
use std::path::Path;

use arrow_array::RecordBatch;
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use rayon::prelude::*;

use super::arrow::{Col, Layout, new_sink, raw_row, resolve, text};
use super::parquet_fast::{load, perr};
use super::sink::{FileOutput, ScanSpec, join};
use crate::error::{Error, Result};

/// Rows per batch, and per parallel normalization task.
const PAR_ROWS: usize = 8192;

pub fn read(path: &Path, file_idx: u32, spec: &ScanSpec) -> Result<FileOutput> {
    let f = File::open(path).map_err(|e| Error::input(path, format!("cannot open: {e}")))?;
    let meta = load(path, &f)?;
    let builder = ParquetRecordBatchReaderBuilder::new_with_metadata(f, meta);
    let schema = std::sync::Arc::clone(builder.schema());
    let resolved = resolve(spec.columns, &path.display().to_string(), &schema)?;
    let l = Layout::new(path, &resolved, &schema);
    // Top-level fields are the file's root columns, in order.
    let roots: Vec<usize> = l.names.iter().filter_map(|n| schema.index_of(n).ok()).collect();
    let mask = ProjectionMask::roots(builder.parquet_schema(), roots);
    let reader = builder.with_projection(mask).with_batch_size(PAR_ROWS).build().map_err(|e| perr(path, e))?;
    let batches = reader.collect::<std::result::Result<Vec<RecordBatch>, _>>().map_err(|e| perr(path, e))?;
    // Each batch's first row number (batches may end at row group edges).
    let firsts: Vec<usize> = batches.iter().scan(0, |n, b| Some(std::mem::replace(n, *n + b.num_rows()))).collect();
    let parts: Vec<Result<FileOutput>> = batches
        .par_iter()
        .zip(firsts)
        .map(|(b, first)| {
            // Field k of a row is the layout's column k, as text.
            let columns = l
                .names
                .iter()
                .map(|name| {
                    Ok(Col::Text(text(b.column_by_name(name).ok_or_else(|| perr(path, format!("no column {name}")))?, path, name)?))
                })
                .collect::<Result<Vec<Col>>>()?;
            let width = columns.len();
            let mut sink = new_sink(spec, &l, file_idx);
            for r in 0..b.num_rows() {
                let field = |k: usize| columns[k].bytes(r);
                let raw = || Cow::Owned(raw_row(&columns, r));
                sink.row_lazy((first + r) as u64 + 1, width, field, raw);
            }
            Ok(sink.out)
        })
        .collect();
    join(resolved.kind, parts)
}
