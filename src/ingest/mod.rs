//! Reading extracts: which reader a file needs. Input discovery lives in
//! `input`, the per-row checks and accounting every reader shares in `sink`.

#[cfg(feature = "arrow")]
pub mod arrow;
pub mod csv_fast;
pub mod csv_plain;
pub mod input;
#[cfg(feature = "parquet")]
pub mod parquet_fast;
#[cfg(feature = "parquet")]
mod parquet_pages;
#[cfg(feature = "parquet")]
pub mod parquet_plain;
mod record;
pub mod sink;

pub use input::{Format, InputFile, expand_inputs};
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
