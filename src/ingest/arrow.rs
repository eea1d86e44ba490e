//! Arrow record batches as input: a table handed over in memory (pyarrow,
//! polars or pandas through the Python package) or one partition of a Spark
//! job. Rows are treated like Parquet rows: the key columns (HCPCS and
//! revenue code, or NDC) decide which rows some rule reads; only those rows'
//! other columns are taken and cast to text for the row sink. The others are
//! counted, as INPUT.md "Out-of-scope rows" allows.

use std::borrow::Cow;
use std::path::Path;

use arrow_array::builder::StringBuilder;
use arrow_array::cast::AsArray;
use arrow_array::types::Date32Type;
use arrow_array::{Array, ArrayRef, Date32Array, RecordBatch, StringArray, UInt32Array};
use arrow_schema::{DataType, Schema};
use rayon::prelude::*;

use super::sink::{FileOutput, FileStats, Key, RowSink, ScanSpec, join, key_scope, revenue_in_scope};
use crate::columns::{ColumnMap, FileKind, Resolved, canonical_name, col};
use crate::error::{Error, Result};
use crate::model::Date;

/// How one source's columns sit in the batches: the slots it has, in slot
/// order, each with its batch column, and the row sink's view of them.
pub(crate) struct Layout {
    pub kind: FileKind,
    /// Batch column (by name) of each present slot, in slot order.
    pub names: Vec<String>,
    /// Slot -> position in `columns` (what the row sink indexes).
    local: Resolved,
    pub header: Vec<String>,
    /// Positions in `names` of the key columns.
    code: Option<usize>,
    revenue: Option<usize>,
    ndc: Option<usize>,
}

impl Layout {
    /// `resolved` maps slots to columns of `schema`.
    pub fn new(resolved: &Resolved, schema: &Schema) -> Layout {
        let slots: Vec<usize> = (0..col::COUNT).filter(|&s| resolved.idx[s].is_some()).collect();
        let mut idx = [None; col::COUNT];
        for (k, &s) in slots.iter().enumerate() {
            idx[s] = Some(k);
        }
        Layout {
            kind: resolved.kind,
            names: slots.iter().filter_map(|&s| resolved.idx[s]).map(|i| schema.field(i).name().clone()).collect(),
            local: Resolved { idx, width: slots.len(), kind: resolved.kind },
            header: slots.iter().map(|&s| canonical_name(s)).collect(),
            code: idx[col::HCPCS],
            revenue: idx[col::REVENUE],
            ndc: idx[col::NDC],
        }
    }
}

/// A column as text, as a CSV cell would hold it: dates as YYYY-MM-DD,
/// numbers in decimal, null as empty.
pub(crate) fn text(a: &ArrayRef, name: &str) -> Result<StringArray> {
    let cast = match a.data_type() {
        DataType::Utf8 => a.clone(),
        DataType::Date32 if let Some(t) = iso_dates(a.as_primitive::<Date32Type>()) => return Ok(t),
        _ => arrow_cast::cast(a, &DataType::Utf8).map_err(|e| Error::input(Path::new(name), format!("cannot read as text: {e}")))?,
    };
    cast.as_any().downcast_ref::<StringArray>().cloned().ok_or_else(|| Error::Internal(format!("{name}: cast to text gave no strings")))
}

/// A date column as `YYYY-MM-DD` text, as arrow's cast writes it, without a
/// formatter per value (the cast took a tenth of a Parquet scan). None when a
/// year is outside 0-9999: the cast handles those.
fn iso_dates(a: &Date32Array) -> Option<StringArray> {
    let mut b = StringBuilder::with_capacity(a.len(), a.len() * 10);
    for v in a.iter() {
        match v {
            // ASCII digits and dashes.
            Some(d) => b.append_value(std::str::from_utf8(&Date(d).iso_bytes()?).ok()?),
            None => b.append_null(),
        }
    }
    Some(b.finish())
}

fn cell(a: &StringArray, i: usize) -> &str {
    if a.is_null(i) { "" } else { a.value(i) }
}

/// The rows of `rows` (batch positions) some rule may read; every other one
/// is counted here as read and accepted.
pub(crate) fn select(l: &Layout, keys: &[Option<StringArray>; 3], rows: &[u32], spec: &ScanSpec, stats: &mut FileStats) -> Vec<u32> {
    let [code, rev, ndc] = keys;
    fn get(a: &Option<StringArray>, i: u32) -> &[u8] {
        a.as_ref().map_or("", |a| cell(a, i as usize)).as_bytes()
    }
    let key = if l.kind == FileKind::Medical { code } else { ndc };
    let mut keep = Vec::new();
    for &i in rows {
        match key_scope(spec.policy, l.kind, get(key, i)) {
            Key::In => keep.push(i),
            Key::Blank if revenue_in_scope(spec.policy, get(rev, i)) => keep.push(i),
            k => stats.count_out_of_scope(k == Key::Blank),
        }
    }
    keep
}

/// Feeds the rows `rows` of `batch` that some rule may read through `sink`;
/// `row_no` gives each its source line (1-based row number).
fn feed(l: &Layout, sink: &mut RowSink, batch: &RecordBatch, rows: &[u32], spec: &ScanSpec, row_no: &dyn Fn(u32) -> u64) -> Result<()> {
    let keys = l.keys(batch)?;
    let chosen = select(l, &keys, rows, spec, &mut sink.out.stats);
    l.feed_rows(sink, batch, Some(&chosen), &|j| row_no(chosen[j]))
}

impl Layout {
    fn column<'b>(&self, batch: &'b RecordBatch, k: usize) -> Result<&'b ArrayRef> {
        batch.column_by_name(&self.names[k]).ok_or_else(|| Error::Internal(format!("batch has no column {}", self.names[k])))
    }

    /// The key columns of a batch as text (absent ones as None).
    pub fn keys(&self, batch: &RecordBatch) -> Result<[Option<StringArray>; 3]> {
        let key =
            |k: Option<usize>| -> Result<Option<StringArray>> { k.map(|k| text(self.column(batch, k)?, &self.header[k])).transpose() };
        Ok([key(self.code)?, key(self.revenue)?, key(self.ndc)?])
    }

    /// Feeds rows of `batch` through `sink`: the rows `take` lists, or every
    /// row. `row_no(j)` is the source line of the j-th row fed.
    pub fn feed_rows(&self, sink: &mut RowSink, batch: &RecordBatch, take: Option<&[u32]>, row_no: &dyn Fn(usize) -> u64) -> Result<()> {
        if take.is_some_and(|t| t.is_empty()) || batch.num_rows() == 0 {
            return Ok(());
        }
        let take = take.map(|t| UInt32Array::from(t.to_vec()));
        let mut cols = Vec::with_capacity(self.names.len());
        for k in 0..self.names.len() {
            let c = self.column(batch, k)?;
            let taken;
            let c = match &take {
                Some(t) => {
                    taken = arrow_select::take::take(c, t, None).map_err(|e| Error::Internal(format!("take {}: {e}", self.header[k])))?;
                    &taken
                }
                None => c,
            };
            cols.push(text(c, &self.header[k])?);
        }
        self.feed_text(sink, &cols, row_no);
        Ok(())
    }

    /// Feeds rows given as one text column per name in `names`, in order.
    pub fn feed_text(&self, sink: &mut RowSink, cols: &[StringArray], row_no: &dyn Fn(usize) -> u64) {
        let width = cols.len();
        for j in 0..cols.first().map_or(0, |c| c.len()) {
            let field = |k: usize| cell(&cols[k], j).as_bytes();
            let raw = || Cow::Owned(cols.iter().map(|c| cell(c, j)).collect::<Vec<_>>().join(",").into_bytes());
            sink.row_lazy(row_no(j), width, field, raw);
        }
    }
}

pub(crate) fn new_sink<'a>(spec: &'a ScanSpec<'a>, l: &'a Layout, file: u32) -> RowSink<'a> {
    let mut sink = RowSink::new(spec, &l.local, file, &l.header, b"\x00never-a-header\x00");
    // Arrow strings are UTF-8.
    sink.utf8_checked = true;
    sink
}

/// Resolves a table's column names like a file header: aliases from the
/// column map, then canonical names; a missing required column is an error
/// that names it.
pub fn resolve(columns: &ColumnMap, name: &str, schema: &Schema) -> Result<Resolved> {
    let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    columns.resolve(Path::new(name), &names)
}

/// Reads one in-memory table as input file `file_idx`. Rows are numbered
/// from 1 in table order, as Parquet rows are.
pub fn read_table(name: &str, file_idx: u32, schema: &Schema, batches: &[RecordBatch], spec: &ScanSpec) -> Result<FileOutput> {
    let resolved = resolve(spec.columns, name, schema)?;
    let l = Layout::new(&resolved, schema);
    let mut bases = Vec::with_capacity(batches.len());
    let mut n = 0u64;
    for b in batches {
        bases.push(n);
        n += b.num_rows() as u64;
    }
    let parts: Vec<Result<FileOutput>> = batches
        .par_iter()
        .zip(bases)
        .map(|(b, base)| {
            let mut sink = new_sink(spec, &l, file_idx);
            let rows: Vec<u32> = (0..b.num_rows() as u32).collect();
            feed(&l, &mut sink, b, &rows, spec, &|i| base + i as u64 + 1)?;
            Ok(sink.out)
        })
        .collect();
    join(resolved.kind, parts)
}

/// Column names a distributed job adds to each row: the input file's index
/// and the row's 1-based number in that file.
pub const FILE_COLUMN: &str = "__file";
pub const ROW_COLUMN: &str = "__row";

/// Reads one partition of a distributed job. Its batches hold rows of many
/// files under canonical column names, with `__file` and `__row`; `files[i]`
/// lists the canonical columns file `i` has (which decides its kind and what
/// it can be evaluated for). Returns one output per file, in file order.
pub fn read_partition(files: &[Vec<String>], schema: &Schema, batches: &[RecordBatch], spec: &ScanSpec) -> Result<Vec<FileOutput>> {
    let index_of = |n: &str| schema.index_of(n).map_err(|_| Error::Internal(format!("partition has no column {n}")));
    let (file_col, row_col) = (index_of(FILE_COLUMN)?, index_of(ROW_COLUMN)?);
    let mut layouts = Vec::with_capacity(files.len());
    for (i, names) in files.iter().enumerate() {
        let own = ColumnMap::default().resolve(Path::new(&format!("input {i}")), names)?;
        let mut idx = [None; col::COUNT];
        for (slot, at) in own.idx.iter().enumerate() {
            if let Some(&p) = at.as_ref() {
                idx[slot] = Some(index_of(&names[p])?);
            }
        }
        layouts.push(Layout::new(&Resolved { idx, width: names.len(), kind: own.kind }, schema));
    }
    let mut sinks: Vec<RowSink> = layouts.iter().enumerate().map(|(i, l)| new_sink(spec, l, i as u32)).collect();
    for b in batches {
        let as_i64 = |c: usize, what: &str| -> Result<Vec<i64>> {
            let a = arrow_cast::cast(b.column(c), &DataType::Int64).map_err(|e| Error::Internal(format!("{what}: {e}")))?;
            let a =
                a.as_any().downcast_ref::<arrow_array::Int64Array>().ok_or_else(|| Error::Internal(format!("{what} is not integer")))?;
            Ok((0..a.len()).map(|i| if a.is_null(i) { -1 } else { a.value(i) }).collect())
        };
        let (file, row) = (as_i64(file_col, FILE_COLUMN)?, as_i64(row_col, ROW_COLUMN)?);
        let mut by_file: Vec<Vec<u32>> = vec![Vec::new(); files.len()];
        for (i, &f) in file.iter().enumerate() {
            let f =
                usize::try_from(f).ok().filter(|&f| f < files.len()).ok_or_else(|| Error::Internal(format!("row with file index {f}")))?;
            by_file[f].push(i as u32);
        }
        for (f, rows) in by_file.iter().enumerate() {
            if !rows.is_empty() {
                feed(&layouts[f], &mut sinks[f], b, rows, spec, &|i| row[i as usize].max(0) as u64)?;
            }
        }
    }
    Ok(sinks
        .into_iter()
        .zip(&layouts)
        .map(|(s, l)| {
            let mut out = s.out;
            out.stats.kind = Some(l.kind);
            out
        })
        .collect())
}
