//! The plain CSV reader: the csv crate, one record at a time. Slower; kept as
//! the reference the fast reader must agree with (tests/fast_vs_plain.rs) and
//! selectable with `--csv-engine plain`.

use std::path::Path;

use std::io::Read;

use super::csv_fast::{header, open};
use super::{FileOutput, Format, RowSink, ScanSpec};
use crate::error::{Error, Result};

pub fn read(path: &Path, format: Format, file_idx: u32, spec: &ScanSpec) -> Result<FileOutput> {
    let mut r = open(path, format)?;
    let mut all = Vec::new();
    r.read_to_end(&mut all).map_err(|e| Error::input(path, format!("read failed: {e}")))?;
    read_bytes(&all, path, file_idx, spec)
}

/// The plain reader over bytes in memory (`path` names it in errors).
pub fn read_bytes(all: &[u8], path: &Path, file_idx: u32, spec: &ScanSpec) -> Result<FileOutput> {
    let (names, header_raw, _, _) = header(path, all, spec.delimiter, true)?;
    let resolved = spec.columns.resolve(path, &names)?;
    let start = if all.starts_with(b"\xEF\xBB\xBF") { 3 } else { 0 };
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .delimiter(spec.delimiter)
        .terminator(csv::Terminator::Any(b'\n'))
        .from_reader(&all[start..]);
    // Read the header now so the first record's start position is after it.
    rdr.byte_headers().map_err(|e| Error::input(path, format!("CSV error: {e}")))?;
    let mut sink = RowSink::new(spec, &resolved, file_idx, &names, &header_raw);
    let mut rec = csv::ByteRecord::new();
    let (mut line_no, mut counted) = (1u64, 0usize);
    loop {
        let pos = rdr.position().clone();
        match rdr.read_byte_record(&mut rec) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => return Err(Error::input(path, format!("CSV error: {e}"))),
        }
        let (begin, end) = (pos.byte() as usize + start, rdr.position().byte() as usize + start);
        let raw = all[begin..end].strip_suffix(b"\n").unwrap_or(&all[begin..end]);
        // The csv crate starts a record's position after the previous one's
        // terminator; skip the blank lines it jumped over.
        let lead = raw.iter().take_while(|&&b| b == b'\n' || b == b'\r').count();
        // Physical line of the record's start. The csv crate does not count
        // the blank lines it skips, so count newlines ourselves.
        let rec_start = begin + lead;
        line_no += memchr::memchr_iter(b'\n', &all[counted..rec_start]).count() as u64;
        counted = rec_start;
        let line = line_no;
        let mut fields: Vec<&[u8]> = rec.iter().collect();
        let n = fields.len();
        if let Some(last) = fields.last_mut() {
            *last = last.strip_suffix(b"\r").unwrap_or(last);
        }
        sink.row(line, n, |i| fields[i], &raw[lead..]);
    }
    Ok(sink.out)
}
