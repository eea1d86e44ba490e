//! Parquet files of our own with arrow-rs: the run's tables, the `diff`
//! output and generated extracts are written here; output tables of an
//! earlier run (`--previous`, `diff`, `explain`) are read back here.

use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};

use arrow_array::cast::AsArray;
use arrow_array::types::Float64Type;
use arrow_array::{Array, ArrayRef, RecordBatch, RecordBatchReader, StringArray};
use arrow_schema::{DataType, SchemaRef};
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;
use parquet::schema::types::ColumnPath;

use crate::error::{Error, Result};

/// A Parquet file being written: zstd, each batch its own row group, so
/// that writing holds one batch at a time.
pub struct ParquetOut {
    // Buffered: page headers and the footer are thrift, written a field at
    // a time (thousands of `write` calls per table unbuffered).
    w: ArrowWriter<BufWriter<File>>,
    path: PathBuf,
}

/// Output columns with a value per row, or nearly (ids, claim lists, texts).
/// Written plain: a dictionary of them overflows its page and falls back,
/// after hashing every value, and plain pages compress smaller under zstd
/// (a 2M-line dense run's timeline 5.8 -> 3.9 MB, episodes 3.8 -> 2.6 MB).
/// Every other column keeps its dictionary (rule ids, codes, roles).
const PLAIN_OUTPUT_COLUMNS: [&str; 10] =
    ["finding_id", "person_id", "claim_id", "claim_ids", "episode_id", "dispense_claim_id", "message", "evidence", "reason", "raw_text"];

impl ParquetOut {
    /// Writes into `file` (created by the caller, who chose its permissions);
    /// `path` names it in errors. Dictionary encoded where the writer finds
    /// it pays, as warehouse unloads are (the generator's extracts).
    pub fn new(file: File, path: &Path, schema: SchemaRef) -> Result<ParquetOut> {
        ParquetOut::with_plain(file, path, schema, &[])
    }

    /// An output table: `PLAIN_OUTPUT_COLUMNS` written without a dictionary.
    pub fn output(file: File, path: &Path, schema: SchemaRef) -> Result<ParquetOut> {
        ParquetOut::with_plain(file, path, schema, &PLAIN_OUTPUT_COLUMNS)
    }

    fn with_plain(file: File, path: &Path, schema: SchemaRef, plain: &[&str]) -> Result<ParquetOut> {
        let mut props = WriterProperties::builder()
            .set_compression(Compression::ZSTD(ZstdLevel::default()))
            // Row groups end where the caller's batches do (`write`).
            .set_max_row_group_row_count(None);
        for f in schema.fields().iter().filter(|f| plain.contains(&f.name().as_str())) {
            props = props.set_column_dictionary_enabled(ColumnPath::from(f.name().as_str()), false);
        }
        let props = props.build();
        let w = ArrowWriter::try_new(BufWriter::with_capacity(1 << 20, file), schema, Some(props))
            .map_err(|e| Error::output(path, format!("write failed: {e}")))?;
        Ok(ParquetOut { w, path: path.to_path_buf() })
    }

    /// Writes `batch` as one row group.
    pub fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        self.w.write(batch).and_then(|_| self.w.flush()).map_err(|e| self.failed(e))
    }

    /// Writes the footer and syncs the file: complete once this returns.
    pub fn finish(self) -> Result<()> {
        let path = self.path;
        let buf = self.w.into_inner().map_err(|e| Error::output(&path, format!("write failed: {e}")))?;
        let file = buf.into_inner().map_err(|e| Error::output(&path, format!("write failed: {}", e.error())))?;
        file.sync_all().map_err(|e| Error::output(&path, format!("sync failed: {e}")))
    }

    /// A whole file of one batch (one row group).
    pub fn write_one(file: File, path: &Path, batch: &RecordBatch) -> Result<()> {
        ParquetOut::new(file, path, batch.schema())?.write_last(batch)
    }

    fn write_last(mut self, batch: &RecordBatch) -> Result<()> {
        self.write(batch)?;
        self.finish()
    }

    fn failed(&self, e: parquet::errors::ParquetError) -> Error {
        Error::output(&self.path, format!("write failed: {e}"))
    }
}

/// Writes one batch as a Parquet file outside a run's directory (the `diff`
/// output): owner-only, complete or absent.
pub fn write_private(path: &Path, batch: &RecordBatch) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(|e| Error::output(path, format!("cannot create: {e}")))?;
    let written = ParquetOut::output(file, path, batch.schema())
        .and_then(|w| w.write_last(batch))
        .and_then(|_| std::fs::rename(&tmp, path).map_err(|e| Error::output(path, format!("cannot move into place: {e}"))));
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

/// The files of output table `path` (`DIR/NAME.parquet`): the file, or,
/// where the Spark job wrote the dataset `DIR/NAME/` instead, its part files
/// in name order (hidden and `_` files skipped).
pub(crate) fn table_files(path: &Path) -> std::result::Result<Vec<PathBuf>, String> {
    let dataset = path.with_extension("");
    if path.exists() || !dataset.is_dir() {
        return Ok(vec![path.to_path_buf()]);
    }
    let entries = std::fs::read_dir(&dataset).map_err(|e| format!("cannot open {}: {e}", dataset.display()))?;
    let mut parts: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            p.is_file() && !name.starts_with(['.', '_']) && name.ends_with(".parquet")
        })
        .collect();
    parts.sort();
    Ok(parts)
}

/// Whether output table `path` (`DIR/NAME.parquet`) exists, as a file or a
/// dataset directory.
pub(crate) fn table_exists(path: &Path) -> bool {
    path.exists() || path.with_extension("").is_dir()
}

/// An output table read back whole, its columns taken by name as text or
/// numbers whatever type the writer gave them (older releases wrote with
/// polars: large or view strings).
pub(crate) struct TableIn {
    batch: RecordBatch,
}

impl TableIn {
    /// `NAME.parquet`, or the Spark job's dataset `NAME/` in its place.
    pub fn read(path: &Path) -> std::result::Result<TableIn, String> {
        let unreadable = |e: &dyn std::fmt::Display| format!("unreadable: {}", e.to_string().lines().next().unwrap_or(""));
        let mut schema = None;
        let mut batches = Vec::new();
        for part in table_files(path)? {
            let file = File::open(&part).map_err(|e| format!("cannot open: {e}"))?;
            let reader = ParquetRecordBatchReaderBuilder::try_new(file).and_then(|b| b.build()).map_err(|e| unreadable(&e))?;
            let s = schema.get_or_insert_with(|| reader.schema()).clone();
            for b in reader {
                let b = b.map_err(|e| unreadable(&e))?;
                // Parts of one dataset agree on columns; their metadata may not.
                batches.push(RecordBatch::try_new(s.clone(), b.columns().to_vec()).map_err(|e| unreadable(&e))?);
            }
        }
        let schema = schema.ok_or_else(|| "no part files".to_string())?;
        let batch = arrow_select::concat::concat_batches(&schema, &batches).map_err(|e| unreadable(&e))?;
        Ok(TableIn { batch })
    }

    pub fn height(&self) -> usize {
        self.batch.num_rows()
    }

    fn column(&self, name: &str) -> Option<&ArrayRef> {
        self.batch.column_by_name(name)
    }

    fn strings(&self, name: &str) -> Option<StringArray> {
        let a = arrow_cast::cast(self.column(name)?, &DataType::Utf8).ok()?;
        a.as_any().downcast_ref::<StringArray>().cloned()
    }

    /// Column `name` as text (dates as YYYY-MM-DD); None when it is missing
    /// or cannot be read as text.
    pub fn text(&self, name: &str) -> Option<Vec<Option<String>>> {
        Some(self.strings(name)?.iter().map(|v| v.map(str::to_string)).collect())
    }

    /// Column `name` as numbers; None when it is missing or not numeric.
    pub fn num(&self, name: &str) -> Option<Vec<Option<f64>>> {
        let a = arrow_cast::cast(self.column(name)?, &DataType::Float64).ok()?;
        Some(a.as_primitive::<Float64Type>().iter().collect())
    }

    /// `text`, with a column an older release did not write read as nulls.
    pub fn text_or_nulls(&self, name: &str) -> Vec<Option<String>> {
        self.text(name).unwrap_or_else(|| vec![None; self.height()])
    }

    /// `num`, with a column an older release did not write read as nulls.
    pub fn num_or_nulls(&self, name: &str) -> Vec<Option<f64>> {
        self.num(name).unwrap_or_else(|| vec![None; self.height()])
    }

    /// The rows whose `key` column holds `value` (one person's rows).
    pub fn rows_where(&self, key: &str, value: &str) -> std::result::Result<TableIn, String> {
        let keys = self.strings(key).ok_or_else(|| format!("no {key} column"))?;
        let mask: arrow_array::BooleanArray = keys.iter().map(|v| Some(v == Some(value))).collect();
        let batch = arrow_select::filter::filter_record_batch(&self.batch, &mask).map_err(|e| e.to_string())?;
        Ok(TableIn { batch })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::{Date32Array, Int64Array, LargeStringArray};

    use super::*;

    fn file(dir: &Path, batch: &RecordBatch) -> PathBuf {
        let path = dir.join("t.parquet");
        let mut w = ParquetOut::new(File::create(&path).unwrap(), &path, batch.schema()).unwrap();
        w.write(batch).unwrap();
        w.write(&batch.slice(0, 1)).unwrap();
        w.finish().unwrap();
        path
    }

    #[test]
    fn written_tables_read_back_as_text_and_numbers_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let batch = RecordBatch::try_from_iter([
            ("person_id", Arc::new(LargeStringArray::from(vec![Some("P1"), Some("P2"), None])) as ArrayRef),
            ("service_date", Arc::new(Date32Array::from(vec![Some(20089), None, Some(0)])) as ArrayRef),
            ("claim_line_number", Arc::new(Int64Array::from(vec![1, 2, 3])) as ArrayRef),
        ])
        .unwrap();
        let path = file(dir.path(), &batch);
        let groups = ParquetRecordBatchReaderBuilder::try_new(File::open(&path).unwrap()).unwrap().metadata().num_row_groups();
        assert_eq!(groups, 2, "a row group per batch written");

        let t = TableIn::read(&path).unwrap();
        assert_eq!(t.height(), 4);
        let s = |v: &[Option<&str>]| v.iter().map(|x| x.map(str::to_string)).collect::<Vec<_>>();
        assert_eq!(t.text("person_id").unwrap(), s(&[Some("P1"), Some("P2"), None, Some("P1")]));
        assert_eq!(t.text("service_date").unwrap(), s(&[Some("2025-01-01"), None, Some("1970-01-01"), Some("2025-01-01")]));
        assert_eq!(t.text("claim_line_number").unwrap(), s(&[Some("1"), Some("2"), Some("3"), Some("1")]));
        assert_eq!(t.num("claim_line_number").unwrap(), vec![Some(1.0), Some(2.0), Some(3.0), Some(1.0)]);
        // A column an older release did not write.
        assert!(t.text("status").is_none());
        assert_eq!(t.text_or_nulls("status"), vec![None; 4]);
        assert_eq!(t.num_or_nulls("units"), vec![None; 4]);

        let p1 = t.rows_where("person_id", "P1").unwrap();
        assert_eq!(p1.num_or_nulls("claim_line_number"), vec![Some(1.0), Some(1.0)]);
        assert!(t.rows_where("nobody", "P1").is_err());
    }

    #[test]
    fn a_private_file_is_owner_only_and_complete() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let batch = RecordBatch::try_from_iter([("x", Arc::new(Int64Array::from(vec![7])) as ArrayRef)]).unwrap();
        let path = dir.path().join("diff.parquet");
        write_private(&path, &batch).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(TableIn::read(&path).unwrap().num("x").unwrap(), vec![Some(7.0)]);
        // Nothing is left beside it.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        // A directory that does not exist: an error, and no file.
        assert!(write_private(&dir.path().join("no/such/dir.parquet"), &batch).is_err());
    }

    #[test]
    fn a_spark_dataset_reads_as_its_table() {
        let dir = tempfile::tempdir().unwrap();
        let batch =
            RecordBatch::try_from_iter([("person_id", Arc::new(arrow_array::StringArray::from(vec!["P1", "P2"])) as ArrayRef)]).unwrap();
        std::fs::create_dir(dir.path().join("findings")).unwrap();
        for (k, b) in [(1, batch.slice(1, 1)), (0, batch.slice(0, 1))] {
            let path = dir.path().join(format!("findings/part-0000{k}-x.snappy.parquet"));
            ParquetOut::write_one(File::create(&path).unwrap(), &path, &b).unwrap();
        }
        std::fs::write(dir.path().join("findings/_SUCCESS"), b"").unwrap();
        let path = dir.path().join("findings.parquet");
        assert!(table_exists(&path));
        let t = TableIn::read(&path).unwrap();
        assert_eq!(t.text("person_id").unwrap(), vec![Some("P1".to_string()), Some("P2".to_string())]);
    }
}
