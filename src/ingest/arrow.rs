//! Arrow record batches as input: a table handed over in memory (pyarrow,
//! polars or pandas through the Python package) or one partition of a Spark
//! job. Rows are treated like Parquet rows: the key columns (HCPCS and
//! revenue code, or NDC) decide which rows some rule reads; only those rows'
//! other columns are taken and cast to text for the row sink. The others are
//! counted, as INPUT.md "Out-of-scope rows" allows. Number and date columns
//! in the slots normalization reads as such go to it as typed cells. Column
//! types are checked when the columns are resolved (`arrow_types`), and
//! every error names the file.

use std::borrow::Cow;
use std::path::{Path, PathBuf};

use arrow_array::builder::StringBuilder;
use arrow_array::cast::AsArray;
use arrow_array::types::{Date32Type, Float64Type, Int32Type, Int64Type};
use arrow_array::{Array, ArrayRef, Date32Array, Float64Array, Int32Array, Int64Array, RecordBatch, StringArray, UInt32Array};
use arrow_schema::{DataType, Schema};
use rayon::prelude::*;

use super::arrow_types::{calendar_dates, refusal, type_name};
use super::sink::{FileOutput, FileStats, Key, RowSink, ScanSpec, join, key_scope, revenue_in_scope};
use crate::columns::{ColumnMap, FileKind, Resolved, canonical_name, col};
use crate::error::{Error, Result};
use crate::model::Date;
use crate::normalize::{Cell, TypedSlot, typed_slot};

/// How one source's columns sit in the batches: the slots it has, in slot
/// order, each with its batch column, and the row sink's view of them.
pub(crate) struct Layout {
    pub kind: FileKind,
    /// The file (or table) the batches come from, for errors.
    pub file: PathBuf,
    /// Batch column (by name) of each present slot, in slot order.
    pub names: Vec<String>,
    /// The slot of each of `names`.
    slots: Vec<usize>,
    /// Slot -> position in `columns` (what the row sink indexes).
    local: Resolved,
    pub header: Vec<String>,
    /// Positions in `names` of the key columns.
    code: Option<usize>,
    revenue: Option<usize>,
    ndc: Option<usize>,
}

impl Layout {
    /// `resolved` maps slots to columns of `schema`, a table of `file`.
    pub fn new(file: &Path, resolved: &Resolved, schema: &Schema) -> Layout {
        let slots: Vec<usize> = (0..col::COUNT).filter(|&s| resolved.idx[s].is_some()).collect();
        let mut idx = [None; col::COUNT];
        for (k, &s) in slots.iter().enumerate() {
            idx[s] = Some(k);
        }
        Layout {
            kind: resolved.kind,
            file: file.to_path_buf(),
            names: slots.iter().filter_map(|&s| resolved.idx[s]).map(|i| schema.field(i).name().clone()).collect(),
            slots: slots.clone(),
            local: Resolved { idx, width: slots.len(), kind: resolved.kind },
            header: slots.iter().map(|&s| canonical_name(s)).collect(),
            code: idx[col::HCPCS],
            revenue: idx[col::REVENUE],
            ndc: idx[col::NDC],
        }
    }
}

/// Column `column` of `file` as text, as a CSV cell would hold it: dates
/// (and timestamps, as their date in their zone) as YYYY-MM-DD, numbers in
/// decimal, null as empty.
pub(crate) fn text(a: &ArrayRef, file: &Path, column: &str) -> Result<StringArray> {
    let bad = |e: String| Error::input(file, format!("column {column}: cannot read as text: {e}"));
    if let Some(d) = calendar_dates(a).map_err(bad)? {
        return text(&d, file, column);
    }
    let cast = match a.data_type() {
        DataType::Utf8 => a.clone(),
        DataType::Date32 if let Some(t) = iso_dates(a.as_primitive::<Date32Type>()) => return Ok(t),
        // Strings without the UTF-8 annotation (older Hive and Impala
        // writers): a value that is not UTF-8 is read as Windows-1252, as a
        // CSV field is, where arrow's cast would make it a null.
        DataType::Binary => return Ok(binary_text(a.as_binary::<i32>().iter())),
        DataType::LargeBinary => return Ok(binary_text(a.as_binary::<i64>().iter())),
        DataType::BinaryView => return Ok(binary_text(a.as_binary_view().iter())),
        _ => arrow_cast::cast(a, &DataType::Utf8).map_err(|e| bad(e.to_string()))?,
    };
    cast.as_any()
        .downcast_ref::<StringArray>()
        .cloned()
        .ok_or_else(|| Error::Internal(format!("{}: {column}: cast to text gave no strings", file.display())))
}

/// Byte strings as text: UTF-8 as it is, anything else through
/// `encoding::decode` (Windows-1252).
fn binary_text<'v>(values: impl Iterator<Item = Option<&'v [u8]>>) -> StringArray {
    let mut b = StringBuilder::new();
    for v in values {
        match v.map(|v| std::str::from_utf8(v).map(Cow::Borrowed).unwrap_or_else(|_| Cow::Owned(super::encoding::decode(v)))) {
            Some(t) => b.append_value(t),
            None => b.append_null(),
        }
    }
    b.finish()
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

/// One column of the rows fed to the sink: text, or the values of a typed
/// column in a slot normalization reads as a number or a date, when every
/// value reads as its text would (`normalize::Cell`).
pub(crate) enum Col {
    Text(StringArray),
    Int32(Int32Array),
    Int64(Int64Array),
    Float64(Float64Array),
    Date32(Date32Array),
}

impl Col {
    /// Column `a` of slot `slot` (`file` and `name` for errors).
    pub fn new(a: &ArrayRef, slot: usize, file: &Path, name: &str) -> Result<Col> {
        if let Some(d) = calendar_dates(a).map_err(|e| Error::input(file, format!("column {name}: {e}")))? {
            return Col::new(&d, slot, file, name);
        }
        Ok(match (typed_slot(slot), a.data_type()) {
            (TypedSlot::Number { .. }, DataType::Int32) => Col::Int32(a.as_primitive::<Int32Type>().clone()),
            (TypedSlot::Number { .. }, DataType::Int64) => Col::Int64(a.as_primitive::<Int64Type>().clone()),
            // What would not read back as its value goes as text, and is
            // rejected as text is: a batch with a non-finite double, any
            // double line number (a fractional one is rejected with its
            // text), a date `parse` would not accept.
            (TypedSlot::Number { integer_only: false }, DataType::Float64)
                if a.as_primitive::<Float64Type>().iter().flatten().all(f64::is_finite) =>
            {
                Col::Float64(a.as_primitive::<Float64Type>().clone())
            }
            (TypedSlot::Date, DataType::Date32) if a.as_primitive::<Date32Type>().iter().flatten().all(|d| Date(d).parses_back()) => {
                Col::Date32(a.as_primitive::<Date32Type>().clone())
            }
            _ => Col::Text(text(a, file, name)?),
        })
    }

    fn array(&self) -> &dyn Array {
        match self {
            Col::Text(a) => a,
            Col::Int32(a) => a,
            Col::Int64(a) => a,
            Col::Float64(a) => a,
            Col::Date32(a) => a,
        }
    }

    pub fn len(&self) -> usize {
        self.array().len()
    }

    /// Row `j` as text bytes; empty for a typed column (see `cell`).
    pub fn bytes(&self, j: usize) -> &[u8] {
        match self {
            Col::Text(a) => cell(a, j).as_bytes(),
            _ => b"",
        }
    }

    /// Row `j` as the sink's cell: text as it is (Arrow strings are UTF-8,
    /// a null is empty), a typed value as itself; None for a typed null.
    pub fn cell(&self, j: usize) -> Option<Cell<'_>> {
        match self {
            Col::Text(a) => Some(Cell::Text(cell(a, j))),
            Col::Int32(a) => a.is_valid(j).then(|| Cell::Int(a.value(j) as i64)),
            Col::Int64(a) => a.is_valid(j).then(|| Cell::Int(a.value(j))),
            Col::Float64(a) => a.is_valid(j).then(|| Cell::Num(a.value(j))),
            Col::Date32(a) => a.is_valid(j).then(|| Cell::Date(Date(a.value(j)))),
        }
    }

    /// Row `j` as the text a reject or reversal shows: what `text` gives.
    fn raw(&self, j: usize) -> String {
        match self {
            Col::Text(a) => cell(a, j).to_string(),
            typed => text(&typed.array().slice(j, 1), Path::new(""), "").map(|t| cell(&t, 0).to_string()).unwrap_or_default(),
        }
    }
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

    /// Position in `names` of the column that decides a row's scope: the
    /// HCPCS code (medical) or the NDC (pharmacy).
    #[cfg(feature = "parquet")]
    pub fn key(&self) -> Option<usize> {
        if self.kind == FileKind::Medical { self.code } else { self.ndc }
    }

    /// The key columns of a batch as text (absent ones as None).
    pub fn keys(&self, batch: &RecordBatch) -> Result<[Option<StringArray>; 3]> {
        let key = |k: Option<usize>| -> Result<Option<StringArray>> {
            k.map(|k| text(self.column(batch, k)?, &self.file, &self.header[k])).transpose()
        };
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
            cols.push(self.col(c, k)?);
        }
        self.feed_cols(sink, &cols, row_no, &[]);
        Ok(())
    }

    /// Position in `names` of slot `slot`'s column, if the source has it.
    #[cfg(feature = "parquet")]
    pub fn position(&self, slot: usize) -> Option<usize> {
        self.local.idx[slot]
    }

    /// The slot of the `k`-th of `names`.
    #[cfg(feature = "parquet")]
    pub fn slot(&self, k: usize) -> usize {
        self.slots[k]
    }

    /// The `k`-th of `names` in `batch`, for `feed_cols`.
    #[cfg(feature = "parquet")]
    pub fn batch_col(&self, batch: &RecordBatch, k: usize) -> Result<Col> {
        self.col(self.column(batch, k)?, k)
    }

    /// Column `a` as the `k`-th of `names`, for `feed_cols`.
    pub fn col(&self, a: &ArrayRef, k: usize) -> Result<Col> {
        Col::new(a, self.slots[k], &self.file, &self.header[k])
    }

    /// Feeds rows given as one column per name in `names`, in order. A row
    /// `partial` marks (some column left empty) gets an empty raw text.
    pub fn feed_cols(&self, sink: &mut RowSink, cols: &[Col], row_no: &dyn Fn(usize) -> u64, partial: &[bool]) {
        let width = cols.len();
        for j in 0..cols.first().map_or(0, |c| c.len()) {
            let field = |k: usize| cols[k].bytes(j);
            let cell = |k: usize| cols[k].cell(j);
            let raw = || if partial.get(j) == Some(&true) { Cow::Borrowed(&b""[..]) } else { Cow::Owned(raw_row(cols, j)) };
            sink.row_typed(row_no(j), width, field, cell, raw);
        }
    }
}

/// Row `j` of `cols` as a reject or reversal shows it: every column's text,
/// comma-separated.
pub(crate) fn raw_row(cols: &[Col], j: usize) -> Vec<u8> {
    cols.iter().map(|c| c.raw(j)).collect::<Vec<_>>().join(",").into_bytes()
}

pub(crate) fn new_sink<'a>(spec: &'a ScanSpec<'a>, l: &'a Layout, file: u32) -> RowSink<'a> {
    let mut sink = RowSink::new(spec, &l.local, file, &l.header, b"\x00never-a-header\x00");
    // Arrow strings are UTF-8.
    sink.utf8_checked = true;
    sink
}

/// Resolves a table's column names like a file header: aliases from the
/// column map, then canonical names; a missing required column is an error
/// that names it, and so is a column whose type cannot hold its values
/// (`check_types`).
pub fn resolve(columns: &ColumnMap, name: &str, schema: &Schema) -> Result<Resolved> {
    let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    let resolved = columns.resolve(Path::new(name), &names)?;
    check_types(Path::new(name), &resolved, schema)?;
    Ok(resolved)
}

/// Refuses the table when a column the audit reads has a type that cannot
/// hold its values (a list, struct or map; see `arrow_types`), in one line
/// naming the file, the column and its type. Before any row is read: such a
/// column is never read "somehow".
pub fn check_types(file: &Path, resolved: &Resolved, schema: &Schema) -> Result<()> {
    for (slot, at) in resolved.idx.iter().enumerate() {
        let Some(field) = at.and_then(|i| schema.fields().get(i)) else { continue };
        if let Some(what) = refusal(slot, field.data_type()) {
            let canonical = canonical_name(slot);
            let name = if field.name().eq_ignore_ascii_case(&canonical) {
                field.name().clone()
            } else {
                format!("{} ({canonical})", field.name())
            };
            return Err(Error::input(
                file,
                format!(
                    "column {name} has type {}, which cannot hold {what}: write it as one value per row (text, a number or a date)",
                    type_name(field.data_type())
                ),
            ));
        }
    }
    Ok(())
}

/// Reads one in-memory table as input file `file_idx`. Rows are numbered
/// from 1 in table order, as Parquet rows are.
pub fn read_table(name: &str, file_idx: u32, schema: &Schema, batches: &[RecordBatch], spec: &ScanSpec) -> Result<FileOutput> {
    let resolved = resolve(spec.columns, name, schema)?;
    let l = Layout::new(Path::new(name), &resolved, schema);
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
        let resolved = Resolved { idx, width: names.len(), kind: own.kind };
        let file = PathBuf::from(format!("input {i}"));
        check_types(&file, &resolved, schema)?;
        layouts.push(Layout::new(&file, &resolved, schema));
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::policy::Policy;
    use arrow_schema::Field;

    fn batch(cols: Vec<(&str, ArrayRef)>) -> RecordBatch {
        let schema = Schema::new(cols.iter().map(|(n, a)| Field::new(*n, a.data_type().clone(), true)).collect::<Vec<_>>());
        RecordBatch::try_new(Arc::new(schema), cols.into_iter().map(|(_, a)| a).collect()).unwrap()
    }

    /// The same batch with every column as text, as a CSV copy holds it.
    fn as_text(b: &RecordBatch) -> RecordBatch {
        let schema = b.schema();
        let cols = schema
            .fields()
            .iter()
            .zip(b.columns())
            .map(|(f, a)| (f.name().as_str(), Arc::new(text(a, Path::new(""), "").unwrap()) as ArrayRef));
        batch(cols.collect())
    }

    fn read(b: &RecordBatch) -> FileOutput {
        let policy = Policy::default_policy().unwrap();
        let columns = ColumnMap::default();
        read_table("t", 0, &b.schema(), std::slice::from_ref(b), &ScanSpec::new(&policy, &columns)).unwrap()
    }

    /// Typed columns give what their text gives: values, reversal text and
    /// rejects, including the values only text can express (non-finite
    /// numbers, fractional line numbers, dates `parse` refuses).
    #[test]
    fn typed_columns_read_as_their_text() {
        let dates = |v: &[Option<i32>]| Arc::new(Date32Array::from(v.to_vec())) as ArrayRef;
        let floats = |v: &[Option<f64>]| Arc::new(Float64Array::from(v.to_vec())) as ArrayRef;
        let base = |n: usize| -> Vec<(&'static str, ArrayRef)> {
            vec![
                ("claim_id", Arc::new(StringArray::from_iter_values((0..n).map(|i| format!("C{i}"))))),
                ("person_id", Arc::new(StringArray::from_iter_values((0..n).map(|i| format!("P{}", i % 2))))),
                ("hcpcs_code", Arc::new(StringArray::from_iter_values((0..n).map(|_| "J2350")))),
                ("diagnosis_code_1", Arc::new(StringArray::from_iter_values((0..n).map(|_| "G35.A")))),
            ]
        };
        let day = Date::from_ymd(2025, 3, 4).unwrap().0;
        let typed = [
            // Every value typed: reversal (negative units), nulls.
            vec![
                ("claim_line_number", Arc::new(Int64Array::from(vec![1, 2, 3])) as ArrayRef),
                ("claim_line_start_date", dates(&[Some(day), None, Some(day + 30)])),
                ("claim_start_date", dates(&[Some(day), Some(day + 1), None])),
                ("service_unit_quantity", Arc::new(Int32Array::from(vec![300, -300, 600]))),
                ("paid_amount", floats(&[Some(123.45), None, Some(-0.0)])),
                ("charge_amount", floats(&[Some(1e21), Some(0.1), Some(5e-324)])),
            ],
            // What only text expresses: each column is read as text.
            vec![
                ("claim_line_number", floats(&[Some(1.0), Some(2.5), Some(3.0)])),
                ("claim_line_start_date", dates(&[Some(day), Some(Date::from_ymd(1800, 1, 1).unwrap().0 - 1), Some(day)])),
                ("claim_start_date", dates(&[None, None, None])),
                ("service_unit_quantity", floats(&[Some(300.0), Some(f64::NAN), Some(-600.0)])),
                ("paid_amount", floats(&[Some(f64::INFINITY), None, Some(1.5)])),
                ("charge_amount", floats(&[None, None, None])),
            ],
        ];
        for cols in typed {
            let mut all = base(3);
            all.extend(cols);
            let b = batch(all);
            let (t, s) = (read(&b), read(&as_text(&b)));
            assert_eq!(t.all_lines().collect::<Vec<_>>(), s.all_lines().collect::<Vec<_>>());
            assert_eq!(t.rejects, s.rejects);
            assert_eq!(t.stats.counts, s.stats.counts);
        }
    }

    /// Unannotated byte-string columns read as text, a value that is not
    /// UTF-8 as Windows-1252 (not a null).
    #[test]
    fn byte_strings_read_as_text_latin1_included() {
        let vals: Vec<Option<&[u8]>> = vec![Some(b"Aetna"), Some(b"Sant\xe9"), None, Some("Müller".as_bytes())];
        let want: Vec<Option<&str>> = vec![Some("Aetna"), Some("Santé"), None, Some("Müller")];
        let arrays: [ArrayRef; 3] = [
            Arc::new(arrow_array::BinaryArray::from(vals.clone())),
            Arc::new(arrow_array::LargeBinaryArray::from(vals.clone())),
            Arc::new(arrow_array::BinaryViewArray::from(vals)),
        ];
        for a in arrays {
            let t = text(&a, Path::new("f.parquet"), "plan").unwrap();
            assert_eq!(t.iter().collect::<Vec<_>>(), want, "{}", a.data_type());
        }
    }

    /// A table from Python (or a Spark partition) is checked as a Parquet
    /// file is: a list where a code belongs is refused naming the table, the
    /// column and the type; a zoned timestamp is its date in its own zone.
    #[test]
    fn tables_are_type_checked_and_zoned_dates_read() {
        use arrow_array::TimestampMicrosecondArray;
        use arrow_array::builder::ListBuilder;
        let cols = |code: ArrayRef, date: ArrayRef| -> RecordBatch {
            batch(vec![
                ("claim_id", Arc::new(StringArray::from(vec!["C1"])) as ArrayRef),
                ("claim_line_number", Arc::new(Int64Array::from(vec![1]))),
                ("person_id", Arc::new(StringArray::from(vec!["P1"]))),
                ("claim_line_start_date", date),
                ("hcpcs_code", code),
                ("service_unit_quantity", Arc::new(Float64Array::from(vec![300.0]))),
                ("diagnosis_code_1", Arc::new(StringArray::from(vec!["G35"]))),
            ])
        };
        // 2025-03-04T02:00Z: 3 March in New York.
        let at = Date::from_ymd(2025, 3, 4).unwrap().0 as i64 * 86_400 + 2 * 3600;
        let ts = Arc::new(TimestampMicrosecondArray::from(vec![at * 1_000_000]).with_timezone("America/New_York")) as ArrayRef;
        let code = Arc::new(StringArray::from(vec!["J2350"])) as ArrayRef;
        let out = read(&cols(code, ts.clone()));
        let dates: Vec<Date> = out.all_lines().map(|l| l.service_date).collect();
        assert_eq!(dates, vec![Date::from_ymd(2025, 3, 3).unwrap()]);
        let mut list = ListBuilder::new(StringBuilder::new());
        list.values().append_value("J2350");
        list.append(true);
        let b = cols(Arc::new(list.finish()), ts);
        let (policy, columns) = (Policy::default_policy().unwrap(), ColumnMap::default());
        let err = read_table("t", 0, &b.schema(), &[b], &ScanSpec::new(&policy, &columns)).unwrap_err();
        assert_eq!(err.exit_code(), crate::error::INPUT_EXIT);
        let msg = err.to_string();
        assert!(msg.starts_with("t: column hcpcs_code has type list<string>"), "{msg}");
    }
}
