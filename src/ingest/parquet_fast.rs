//! Parquet input on the `parquet` crate (arrow-rs), in passes per row group:
//! the key column (HCPCS, or NDC) first, as a dictionary so each distinct
//! value is decided once, and kept; the revenue code of rows without a code;
//! then every other column the run uses, for the chosen rows only, a batch
//! of rows at a time: read from the pages by `parquet_pages` (only chosen
//! values are copied), or with arrow-rs and a row selection for a column in
//! a form that module does not read. The chosen rows' keys come from pass
//! one, so the key column is decompressed once. Other rows are counted,
//! never decoded further (INPUT.md, "Out-of-scope rows"). Row groups are
//! read in parallel, each with its own file handle, the footer parsed once.

use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::{Array, ArrayRef, RecordBatch, RecordBatchReader, UInt32Array};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::{
    ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder, RowSelection,
};
use rayon::prelude::*;

use super::arrow::{Col, Layout, new_sink, raw_row, resolve, text};
use super::parquet_pages::Column;
use super::sink::{FileOutput, Key, RowSink, ScanSpec, join, key_scope, raw_text, revenue_in_scope};
use crate::columns::{ColumnMap, FileKind, Resolved, col};
use crate::error::{Error, Result};
use crate::normalize::{FALLBACK_SLOTS, reads_fallback};

pub(crate) fn perr(path: &Path, e: impl std::fmt::Display) -> Error {
    let msg = e.to_string();
    Error::input(path, format!("cannot read as Parquet: {}", msg.lines().next().unwrap_or("unreadable")))
}

/// Top-level columns of the file by name, as a projection.
fn mask(meta: &ArrowReaderMetadata, names: &[&str]) -> ProjectionMask {
    let schema = meta.schema();
    let roots: Vec<usize> = names.iter().filter_map(|n| schema.index_of(n).ok()).collect();
    ProjectionMask::roots(meta.parquet_schema(), roots)
}

/// Decides every row of a key column. A dictionary column (the usual case:
/// a few hundred distinct codes) is decided once per dictionary value.
fn decide_rows(a: &ArrayRef, file: &Path, name: &str, decide: &dyn Fn(&str) -> Key) -> Result<Vec<Key>> {
    if let Some(d) = a.as_any_dictionary_opt() {
        let values = text(d.values(), file, name)?;
        let per_value: Vec<Key> = (0..values.len()).map(|i| decide(if values.is_null(i) { "" } else { values.value(i) })).collect();
        let null = decide("");
        let keys = d.keys();
        return Ok(d.normalized_keys().into_iter().enumerate().map(|(i, k)| if keys.is_null(i) { null } else { per_value[k] }).collect());
    }
    let t = text(a, file, name)?;
    Ok((0..t.len()).map(|i| decide(if t.is_null(i) { "" } else { t.value(i) })).collect())
}

/// The file's schema with string columns read as plain `Utf8`, what the row
/// sink takes (a polars or Spark file's embedded schema asks for views or
/// large strings, which a cast would copy once more), and the key columns
/// as dictionaries.
fn read_hint(schema: &Schema, keys: &[&str]) -> SchemaRef {
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .map(|f| match f.data_type() {
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View if keys.contains(&f.name().as_str()) => {
                Field::new(f.name(), DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8)), true)
            }
            DataType::LargeUtf8 | DataType::Utf8View => f.as_ref().clone().with_data_type(DataType::Utf8),
            _ => f.as_ref().clone(),
        })
        .collect();
    Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone()))
}

/// The leaf column of each of `names` (top-level, unnested columns only).
fn leaves(meta: &ArrowReaderMetadata, names: &[String]) -> Vec<Option<usize>> {
    let descr = meta.parquet_schema();
    names.iter().map(|n| (0..descr.num_columns()).find(|&i| descr.column(i).path().parts() == std::slice::from_ref(n))).collect()
}

/// A file's footer, its columns resolved to slots, and how to read it.
struct Opened {
    file: File,
    meta: ArrowReaderMetadata,
    resolved: Resolved,
    layout: Layout,
}

/// A file's footer as arrow-rs reads it, with each timestamp column in the
/// zone its writer gave it. Parquet has no second unit: pyarrow stores a
/// `timestamp[s, tz=America/New_York]` column in milliseconds, UTC-adjusted,
/// with the zone only in the Arrow schema it embeds, and arrow-rs takes a
/// zone from that schema only when the units match, so the column would
/// read as UTC and its dates shift by a day. The embedded zone is put back
/// (the instants are the same); a schema that does not decode is ignored,
/// as arrow-rs ignores it.
pub(crate) fn load(path: &Path, file: &File) -> Result<ArrowReaderMetadata> {
    let meta = ArrowReaderMetadata::load(file, ArrowReaderOptions::new()).map_err(|e| perr(path, e))?;
    let Some(embedded) = embedded_schema(&meta) else { return Ok(meta) };
    let mut changed = false;
    let fields: Vec<Field> = meta
        .schema()
        .fields()
        .iter()
        .map(|f| match (f.data_type(), embedded.field_with_name(f.name()).map(|e| e.data_type())) {
            // Only a UTC-adjusted column: its instants are the same in any zone.
            (DataType::Timestamp(unit, Some(tz)), Ok(DataType::Timestamp(_, Some(own)))) if tz != own => {
                changed = true;
                f.as_ref().clone().with_data_type(DataType::Timestamp(*unit, Some(Arc::clone(own))))
            }
            _ => f.as_ref().clone(),
        })
        .collect();
    if !changed {
        return Ok(meta);
    }
    let schema = Arc::new(Schema::new_with_metadata(fields, meta.schema().metadata().clone()));
    ArrowReaderMetadata::try_new(Arc::clone(meta.metadata()), ArrowReaderOptions::new().with_schema(schema)).map_err(|e| perr(path, e))
}

/// The Arrow schema the writer embedded (`ARROW:schema`), if it decodes.
fn embedded_schema(meta: &ArrowReaderMetadata) -> Option<Schema> {
    use base64::Engine as _;
    let kv = meta.metadata().file_metadata().key_value_metadata()?;
    let encoded = kv.iter().find(|kv| kv.key == parquet::arrow::ARROW_SCHEMA_META_KEY)?.value.as_deref()?;
    let bytes = base64::engine::general_purpose::STANDARD.decode(encoded).ok()?;
    arrow_ipc::convert::try_schema_from_ipc_buffer(&bytes).ok()
}

impl Opened {
    fn new(path: &Path, columns: &ColumnMap) -> Result<Opened> {
        let file = File::open(path).map_err(|e| Error::input(path, format!("cannot open: {e}")))?;
        let meta = load(path, &file)?;
        let resolved = resolve(columns, &path.display().to_string(), meta.schema())?;
        let layout = Layout::new(path, &resolved, meta.schema());
        Ok(Opened { file, meta, resolved, layout })
    }

    /// The file read with `keys` as dictionaries and strings as `Utf8` when
    /// it allows that; as stored when not.
    fn hint(&self, keys: &[&str]) -> ArrowReaderMetadata {
        let schema = read_hint(self.meta.schema(), keys);
        ArrowReaderMetadata::try_new(Arc::clone(self.meta.metadata()), ArrowReaderOptions::new().with_schema(schema))
            .unwrap_or_else(|_| self.meta.clone())
    }
}

/// Reads one file; `progress` gets each row group's compressed bytes when it is done.
pub fn read(path: &Path, file_idx: u32, spec: &ScanSpec, progress: &(dyn Fn(u64) + Sync)) -> Result<FileOutput> {
    let opened = Opened::new(path, spec.columns)?;
    let (resolved, schema) = (&opened.resolved, opened.meta.schema());
    let medical = resolved.kind == FileKind::Medical;
    let col_name = |slot: usize| resolved.idx[slot].map(|i| schema.field(i).name().clone());
    let key_name = col_name(if medical { col::HCPCS } else { col::NDC }).unwrap_or_default();
    let rev_name = if medical { col_name(col::REVENUE) } else { None };
    let hinted = opened.hint(&[key_name.as_str()]);
    let plain = opened.hint(&[]);
    let meta = &opened.meta;
    let layout = opened.layout;
    let mut starts = Vec::new();
    let mut n = 0u64;
    for g in meta.metadata().row_groups() {
        starts.push(n);
        n += g.num_rows().max(0) as u64;
    }
    let r = Reader {
        path,
        spec,
        file_idx,
        leaf: leaves(&plain, &layout.names),
        key_mask: mask(&hinted, &[key_name.as_str()]),
        rev_mask: rev_name.as_deref().map(|r| mask(&plain, &[r])),
        layout,
        key_name,
        rev_name,
        hinted,
        plain,
        starts,
    };
    let parts: Vec<Result<FileOutput>> = (0..r.starts.len())
        .into_par_iter()
        .map(|g| {
            let out = r.row_group(g);
            progress(r.plain.metadata().row_group(g).compressed_size().max(0) as u64);
            out
        })
        .collect();
    join(resolved.kind, parts)
}

/// What reading a file's row groups shares.
struct Reader<'a> {
    path: &'a Path,
    spec: &'a ScanSpec<'a>,
    file_idx: u32,
    layout: Layout,
    /// The key column (HCPCS, or NDC), read as a dictionary when it can be.
    key_name: String,
    key_mask: ProjectionMask,
    hinted: ArrowReaderMetadata,
    /// The revenue code (medical files that have one).
    rev_name: Option<String>,
    rev_mask: Option<ProjectionMask>,
    /// Strings as `Utf8`, the other columns as stored.
    plain: ArrowReaderMetadata,
    /// The leaf column of each of the layout's columns.
    leaf: Vec<Option<usize>>,
    /// Each row group's first row in the file.
    starts: Vec<u64>,
}

/// A row group's key column as pass one read it, kept so pass two takes
/// the chosen rows' keys from it instead of reading the column again.
struct KeyBatches {
    batches: Vec<ArrayRef>,
    /// The row group's row where each batch starts.
    starts: Vec<usize>,
}

impl KeyBatches {
    /// The values at `rows` (ascending row positions in the row group).
    fn take(&self, rows: &[usize]) -> Result<ArrayRef> {
        let mut parts: Vec<ArrayRef> = Vec::new();
        let mut k = 0;
        while k < rows.len() {
            let b = self.starts.partition_point(|&s| s <= rows[k]).saturating_sub(1);
            let end = self.starts.get(b + 1).copied().unwrap_or(usize::MAX);
            let n = rows[k..].partition_point(|&r| r < end);
            let at = UInt32Array::from_iter_values(rows[k..k + n].iter().map(|&r| (r - self.starts[b]) as u32));
            let batch = self.batches.get(b).ok_or_else(|| Error::Internal("a chosen row past the key column".into()))?;
            parts.push(arrow_select::take::take(batch, &at, None).map_err(|e| Error::Internal(format!("take key: {e}")))?);
            k += n;
        }
        let parts: Vec<&dyn Array> = parts.iter().map(|p| p.as_ref()).collect();
        arrow_select::concat::concat(&parts).map_err(|e| Error::Internal(format!("concat key: {e}")))
    }
}

impl Reader<'_> {
    fn open(&self) -> Result<File> {
        File::open(self.path).map_err(|e| Error::input(self.path, format!("cannot open: {e}")))
    }

    /// An arrow-rs reader of row group `g`'s columns `mask`.
    fn builder(&self, g: usize, m: &ArrowReaderMetadata, mask: &ProjectionMask) -> Result<ParquetRecordBatchReaderBuilder<File>> {
        Ok(ParquetRecordBatchReaderBuilder::new_with_metadata(self.open()?, m.clone())
            .with_row_groups(vec![g])
            .with_projection(mask.clone())
            .with_batch_size(BATCH))
    }

    fn err(&self, e: impl std::fmt::Display) -> Error {
        perr(self.path, e)
    }

    fn row_group(&self, g: usize) -> Result<FileOutput> {
        let mut sink = new_sink(self.spec, &self.layout, self.file_idx);
        let (mut keys, key_batches) = self.keys(g)?;
        self.revenue(g, &mut keys)?;
        let mut chosen: Vec<usize> = Vec::new();
        for (i, &k) in keys.iter().enumerate() {
            match k {
                Key::In => chosen.push(i),
                k => sink.out.stats.count_out_of_scope(k == Key::Blank),
            }
        }
        if !chosen.is_empty() {
            self.chosen_rows(g, &mut sink, &chosen, keys.len(), &key_batches)?;
        }
        Ok(sink.out)
    }

    /// Pass one: the key column alone, each row decided.
    fn keys(&self, g: usize) -> Result<(Vec<Key>, KeyBatches)> {
        let decide = |v: &str| key_scope(self.spec.policy, self.layout.kind, v.as_bytes());
        let rows = self.plain.metadata().row_group(g).num_rows().max(0) as usize;
        let mut keys: Vec<Key> = Vec::with_capacity(rows);
        let mut kept = KeyBatches { batches: Vec::new(), starts: Vec::new() };
        for batch in self.builder(g, &self.hinted, &self.key_mask)?.build().map_err(|e| self.err(e))? {
            let batch = batch.map_err(|e| self.err(e))?;
            kept.starts.push(keys.len());
            keys.extend(decide_rows(batch.column(0), self.path, &self.key_name, &decide)?);
            kept.batches.push(Arc::clone(batch.column(0)));
        }
        Ok((keys, kept))
    }

    /// Rows without a code are kept when their revenue code is a pharmacy
    /// one: that column is read for those rows only.
    fn revenue(&self, g: usize, keys: &mut [Key]) -> Result<()> {
        let blank: Vec<usize> = (0..keys.len()).filter(|&i| keys[i] == Key::Blank).collect();
        let (Some(rev_mask), false) = (&self.rev_mask, blank.is_empty()) else { return Ok(()) };
        let name = self.rev_name.as_deref().unwrap_or_default();
        let sel = selection(&blank, keys.len());
        let mut at = blank.iter();
        for batch in self.builder(g, &self.plain, rev_mask)?.with_row_selection(sel).build().map_err(|e| self.err(e))? {
            let batch = batch.map_err(|e| self.err(e))?;
            let t = text(batch.column(0), self.path, name)?;
            for i in 0..t.len() {
                let row = *at.next().ok_or_else(|| Error::Internal("more revenue codes than rows".into()))?;
                if !t.is_null(i) && revenue_in_scope(self.spec.policy, t.value(i).as_bytes()) {
                    keys[row] = Key::In;
                }
            }
        }
        Ok(())
    }

    /// Pass two: every column the run uses, for the chosen rows only, a
    /// batch of rows at a time: the key from pass one; the others from the
    /// pages, or with arrow-rs for a column in a form `parquet_pages` does
    /// not read. A fallback column (member_id, the claim dates, the charge)
    /// read from the pages is taken only for the rows that read it
    /// (`normalize::reads_fallback`), so its other pages are never
    /// decompressed. A row read without one gets an empty raw text, which
    /// `raw_rows` completes where a reject shows it.
    fn chosen_rows(&self, g: usize, sink: &mut RowSink, chosen: &[usize], rows: usize, key: &KeyBatches) -> Result<()> {
        let l = &self.layout;
        let group = self.plain.metadata().row_group(g);
        let bad = |name: &str, e: String| self.err(format!("column {name}: {e}"));
        let mut paged: Vec<Option<Column>> = Vec::with_capacity(l.names.len());
        for (k, name) in l.names.iter().enumerate() {
            let dt = self.plain.schema().field_with_name(name).map(|f| f.data_type().clone()).unwrap_or(DataType::Null);
            paged.push(match self.leaf[k] {
                Some(_) if Some(k) == l.key() => None,
                // A handle per column: columns may be read on two threads,
                // and cloned handles would share one file offset.
                Some(c) => Column::open(&Arc::new(self.open()?), group.column(c), &dt, rows).map_err(|e| bad(name, e))?,
                None => None,
            });
        }
        let others: Vec<usize> = (0..l.names.len()).filter(|&k| paged[k].is_none() && Some(k) != l.key()).collect();
        let mut fallbacks: Vec<(usize, Column)> =
            FALLBACK_SLOTS.iter().filter_map(|&s| l.position(s)).filter_map(|k| paged[k].take().map(|c| (k, c))).collect();
        let mut arrow_rows = if others.is_empty() {
            None
        } else {
            let names: Vec<&str> = others.iter().map(|&k| l.names[k].as_str()).collect();
            let sel = selection(chosen, rows);
            let reader = self.builder(g, &self.plain, &mask(&self.plain, &names))?.with_row_selection(sel);
            Some(Rows::new(reader.build().map_err(|e| self.err(e))?))
        };
        let start = self.starts[g];
        for (b, batch_rows) in chosen.chunks(BATCH).enumerate() {
            sink.out.lines.reserve(batch_rows.len());
            let taken = take_columns(&mut paged, &l.names, batch_rows, &bad)?;
            let mut cols: Vec<Option<Col>> =
                taken.iter().enumerate().map(|(k, c)| c.as_ref().map(|c| l.col(c, k)).transpose()).collect::<Result<_>>()?;
            if let Some(k) = l.key() {
                cols[k] = Some(l.col(&key.take(batch_rows)?, k)?);
            }
            if let Some(reader) = arrow_rows.as_mut() {
                let batch = reader.take(batch_rows.len()).map_err(|e| self.err(e))?;
                for &k in &others {
                    cols[k] = Some(l.batch_col(&batch, k)?);
                }
            }
            let without = self.take_fallbacks(&mut fallbacks, &mut cols, batch_rows)?;
            let cols: Vec<Col> = cols.into_iter().flatten().collect();
            if cols.len() != l.names.len() || cols.iter().any(|c| c.len() != batch_rows.len()) {
                return Err(Error::Internal(format!("{}: columns of unequal length", self.path.display())));
            }
            let first = b * BATCH;
            l.feed_cols(sink, &cols, &|j| start + chosen[first + j] as u64 + 1, &without);
            // A batch at a time, so the store's limit holds (a dense row
            // group keeps every row: about 100 MB of lines), without the
            // room reserved for chosen rows that were not lines.
            sink.out.lines.shrink_to_fit();
            self.spec.hand_over(&mut sink.out)?;
        }
        Ok(())
    }

    /// Takes each fallback column for the batch's rows that read it, and
    /// sets it in `cols` with the other rows empty. Returns, per row,
    /// whether some fallback was left out.
    fn take_fallbacks(&self, fallbacks: &mut [(usize, Column)], cols: &mut [Option<Col>], batch_rows: &[usize]) -> Result<Vec<bool>> {
        let l = &self.layout;
        let n = batch_rows.len();
        let mut without = vec![false; n];
        // Which rows read each fallback, from the other columns alone.
        let wants: Vec<Vec<bool>> = {
            let cols = &*cols;
            let get = |j: usize| move |s: usize| l.position(s).and_then(|k| cols[k].as_ref()).and_then(|c| c.cell(j));
            fallbacks.iter().map(|(k, _)| (0..n).map(|j| reads_fallback(l.slot(*k), get(j))).collect()).collect()
        };
        for ((k, column), want) in fallbacks.iter_mut().zip(wants) {
            let rows: Vec<usize> = (0..n).filter(|&j| want[j]).map(|j| batch_rows[j]).collect();
            let values = column.take(&rows).map_err(|e| self.err(format!("column {}: {e}", l.names[*k])))?;
            for (left, &w) in without.iter_mut().zip(&want) {
                *left |= !w;
            }
            // Row j of the batch takes the next value where it wants one.
            let mut next = 0u32..;
            let spread: UInt32Array = want.iter().map(|&w| if w { next.next() } else { None }).collect();
            let full =
                arrow_select::take::take(&values, &spread, None).map_err(|e| Error::Internal(format!("spread {}: {e}", l.names[*k])))?;
            cols[*k] = Some(l.col(&full, *k)?);
        }
        Ok(without)
    }
}

/// The raw text of rows of a file (1-based source lines, ascending), as the
/// reader shows a row read whole: every column the run reads, as text,
/// comma-joined (`arrow::raw_row`), cut as a reject's (`raw_text`).
pub fn raw_rows(path: &Path, columns: &ColumnMap, lines: &[u64]) -> Result<Vec<String>> {
    let opened = Opened::new(path, columns)?;
    let plain = opened.hint(&[]);
    let Opened { file, meta, layout, .. } = opened;
    let total = meta.metadata().file_metadata().num_rows().max(0) as usize;
    let rows: Vec<usize> = lines.iter().map(|&n| n.saturating_sub(1) as usize).filter(|&r| r < total).collect();
    if rows.len() != lines.len() {
        return Err(Error::Internal(format!("{}: a reject past the file's rows", path.display())));
    }
    let names: Vec<&str> = layout.names.iter().map(String::as_str).collect();
    let reader = ParquetRecordBatchReaderBuilder::new_with_metadata(file, plain.clone())
        .with_projection(mask(&plain, &names))
        .with_row_selection(selection(&rows, total))
        .with_batch_size(BATCH)
        .build()
        .map_err(|e| perr(path, e))?;
    let mut out = Vec::with_capacity(rows.len());
    for batch in reader {
        let batch = batch.map_err(|e| perr(path, e))?;
        let cols: Vec<Col> = (0..layout.names.len()).map(|k| layout.batch_col(&batch, k)).collect::<Result<_>>()?;
        out.extend((0..batch.num_rows()).map(|j| raw_text(&raw_row(&cols, j))));
    }
    if out.len() != rows.len() {
        return Err(Error::Internal(format!("{}: {} rows re-read of {}", path.display(), out.len(), rows.len())));
    }
    Ok(out)
}

/// The values at `rows` of each column read from the pages (None where
/// arrow-rs reads the column). Columns are split between the pool's
/// threads when one is free (a file of few row groups, or its last one);
/// otherwise both halves run here, one after the other.
fn take_columns(
    cols: &mut [Option<Column>],
    names: &[String],
    rows: &[usize],
    bad: &(dyn Fn(&str, String) -> Error + Sync),
) -> Result<Vec<Option<ArrayRef>>> {
    if cols.len() > 3 {
        let mid = cols.len() / 2;
        let (a, b) = cols.split_at_mut(mid);
        let (x, y) = rayon::join(|| take_columns(a, &names[..mid], rows, bad), || take_columns(b, &names[mid..], rows, bad));
        let mut x = x?;
        x.extend(y?);
        return Ok(x);
    }
    cols.iter_mut()
        .enumerate()
        .map(|(k, c)| match c {
            Some(c) => Ok(Some(c.take(rows).map_err(|e| bad(&names[k], e))?)),
            None => Ok(None),
        })
        .collect()
}

/// Record batches re-cut to the sizes asked for.
struct Rows {
    reader: ParquetRecordBatchReader,
    held: Option<RecordBatch>,
}

impl Rows {
    fn new(reader: ParquetRecordBatchReader) -> Rows {
        Rows { reader, held: None }
    }

    /// The next `n` rows (fewer only at the end).
    fn take(&mut self, n: usize) -> std::result::Result<RecordBatch, String> {
        let mut parts: Vec<RecordBatch> = Vec::new();
        let mut got = 0usize;
        while got < n {
            let b = match self.held.take() {
                Some(b) => b,
                None => match self.reader.next() {
                    Some(b) => b.map_err(|e| e.to_string())?,
                    None => break,
                },
            };
            let want = n - got;
            if b.num_rows() > want {
                self.held = Some(b.slice(want, b.num_rows() - want));
                parts.push(b.slice(0, want));
                got = n;
            } else {
                got += b.num_rows();
                parts.push(b);
            }
        }
        let schema = parts.first().map(|b| b.schema()).unwrap_or_else(|| self.reader.schema());
        arrow_select::concat::concat_batches(&schema, &parts).map_err(|e| e.to_string())
    }
}

/// Rows per decoded batch.
const BATCH: usize = 8192;

/// A row selection of the sorted row positions `rows` out of `total`.
fn selection(rows: &[usize], total: usize) -> RowSelection {
    let mut ranges: Vec<std::ops::Range<usize>> = Vec::new();
    for &r in rows {
        match ranges.last_mut() {
            Some(last) if last.end == r => last.end = r + 1,
            _ => ranges.push(r..r + 1),
        }
    }
    RowSelection::from_consecutive_ranges(ranges.into_iter(), total)
}
