//! Reading extracts: which reader a file needs. Input discovery lives in
//! `input`, the per-row checks and accounting every reader shares in `sink`.

#[cfg(feature = "arrow")]
pub mod arrow;
#[cfg(feature = "arrow")]
pub mod arrow_types;
pub mod csv_fast;
pub mod csv_plain;
pub mod encoding;
pub mod input;
#[cfg(feature = "parquet")]
pub mod parquet_fast;
#[cfg(feature = "parquet")]
mod parquet_pages;
#[cfg(feature = "parquet")]
pub mod parquet_plain;
mod record;
pub mod reject_rate;
pub mod sink;

pub use input::{Format, InputFile, expand_inputs};
pub use reject_rate::RejectLimit;
pub use sink::{Engine, FileOutput, FileStats, RAW_TEXT_MAX, RejectRow, RowCounts, ScanSpec, code_in_scope, raw_text};

use crate::error::Error;
use crate::error::Result;

/// Reads one file with the reader its format calls for.
pub fn read_file(input: &InputFile, file_idx: u32, spec: &ScanSpec, progress: &(dyn Fn(u64) + Sync)) -> Result<FileOutput> {
    let mut out = match input.format {
        #[cfg(feature = "parquet")]
        Format::Parquet if spec.engine == Engine::Fast => parquet_fast::read(&input.path, file_idx, spec, progress)?,
        #[cfg(feature = "parquet")]
        Format::Parquet => parquet_plain::read(&input.path, file_idx, spec)?,
        #[cfg(not(feature = "parquet"))]
        Format::Parquet => return Err(Error::input(&input.path, "built without Parquet support")),
        Format::Arrow => return Err(Error::input(&input.path, "an in-memory table is read with ingest::arrow")),
        Format::Csv | Format::CsvGz => match spec.engine {
            Engine::Fast => csv_fast::read(&input.path, input.format, file_idx, spec, progress)?,
            Engine::Plain => csv_plain::read(&input.path, input.format, file_idx, spec)?,
        },
    };
    out.stats.path = input.path.display().to_string();
    out.stats.format = Some(input.format);
    out.stats.bytes = input.bytes;
    Ok(out)
}

/// Fills in the raw text of rejects that a reader left empty: the fast
/// Parquet reader reads a fallback column (member_id, the claim dates, the
/// charge) only for the rows that use it, so a reject or reversal from
/// another row is shown once the run is done, from a read of those rows.
/// Rejects are few; this reads only their rows' pages.
pub fn complete_raw_texts(inputs: &[InputFile], columns: &crate::columns::ColumnMap, rejects: &mut [RejectRow]) -> Result<()> {
    #[cfg(feature = "parquet")]
    for (k, input) in inputs.iter().enumerate() {
        let mine = |r: &RejectRow| r.file as usize == k && r.raw_text.is_empty();
        if input.format != Format::Parquet || !rejects.iter().any(mine) {
            continue;
        }
        let mut lines: Vec<u64> = rejects.iter().filter(|r| mine(r)).map(|r| r.source_line).collect();
        lines.sort_unstable();
        lines.dedup();
        input.check_unchanged()?;
        let raw = parquet_fast::raw_rows(&input.path, columns, &lines)?;
        for r in rejects.iter_mut().filter(|r| mine(r)) {
            if let Ok(i) = lines.binary_search(&r.source_line) {
                r.raw_text = raw[i].clone();
            }
        }
    }
    #[cfg(not(feature = "parquet"))]
    let _ = (inputs, columns, rejects);
    Ok(())
}
