//! The plain CSV reader: the csv crate, one record at a time. Slower; kept as
//! the reference the fast reader must agree with (tests/fast_vs_plain.rs) and
//! selectable with `--engine plain`.

use std::path::Path;

use std::io::Read;

use super::csv_fast::{header, open};
use super::input::Format;
use super::sink::{FileOutput, RowSink, ScanSpec};
use crate::error::{Error, Result};

pub fn read(path: &Path, format: Format, file_idx: u32, spec: &ScanSpec) -> Result<FileOutput> {
    let mut r = open(path, format)?;
    let mut all = Vec::new();
    r.read_to_end(&mut all).map_err(|e| Error::input(path, format!("read failed: {e}")))?;
    read_bytes(&all, path, file_idx, spec)
}

/// The plain reader over bytes in memory (`path` names it in errors).
pub fn read_bytes(all: &[u8], path: &Path, file_idx: u32, spec: &ScanSpec) -> Result<FileOutput> {
    let spec = &spec.for_file(all);
    let (names, header_raw, _, _) = header(path, all, spec.delim(), true)?;
    let resolved = spec.columns.resolve(path, &names)?;
    let start = if all.starts_with(b"\xEF\xBB\xBF") { 3 } else { 0 };
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .delimiter(spec.delim())
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
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        // The csv crate starts a record's position after the previous one's
        // terminator; skip the blank lines it jumped over.
        let lead = raw.iter().take_while(|&&b| b == b'\n').count();
        // Physical line of the record's start. The csv crate does not count
        // the blank lines it skips, so count newlines ourselves.
        let rec_start = begin + lead;
        line_no += memchr::memchr_iter(b'\n', &all[counted..rec_start]).count() as u64;
        counted = rec_start;
        let line = line_no;
        // A line holding only "\r" is blank, as in the fast reader.
        if raw.iter().all(|&b| b == b'\r' || b == b'\n') {
            continue;
        }
        let mut fields: Vec<&[u8]> = rec.iter().collect();
        let n = fields.len();
        if let Some(last) = fields.last_mut() {
            *last = last.strip_suffix(b"\r").unwrap_or(last);
        }
        sink.row(line, n, |i| fields[i], &raw[lead..]);
    }
    Ok(sink.out)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::columns::ColumnMap;
    use crate::ingest::{ScanSpec, csv_fast};
    use crate::policy::Policy;

    /// Inputs the fuzzer found the two readers disagreeing on, plus kin.
    #[test]
    fn fast_and_plain_readers_agree_on_edge_cases() {
        let policy = Policy::default_policy().unwrap();
        let columns = ColumnMap::default();
        let spec = ScanSpec::new(&policy, &columns);
        let h = "claim_id,claim_line_number,person_id,claim_line_start_date,hcpcs_code,service_unit_quantity,diagnosis_code_1\n";
        let cases = [
            format!("{h}A,1,P1,2025-11-03,J2350,600,G35.A\n\n\n\nB,1,P1,2025-11-03,J2350,x\n"),
            format!("{h}A,1,P1,2025-11-03,J2350,600,G35.A\nB,1,\"P1,2025-11-03,J2350,600\n"),
            format!("{h}A,1,P1,2025-11-03,J2350,600\r\nB,1,P1,\"2025\n11\",J2350,600,G35\r\n\r\n"),
            h.to_string(),
            format!("{h}A,1,P1,2025-11-03,j2350 ,600,g35a"),
            format!("{h}\r\r\ns\n"),
            format!("{h}A,\"x\r\r"),
            format!("{h}A,1,P1\r\r\nB\r"),
            format!("{h}\r\r\r\r"),
        ];
        let dir = tempfile::tempdir().unwrap();
        for c in cases {
            let path = Path::new("t.csv");
            let b = super::read_bytes(c.as_bytes(), path, 0, &spec).unwrap();
            // The fast reader over a stream, and over the same bytes mapped.
            let file = dir.path().join("t.csv");
            std::fs::write(&file, &c).unwrap();
            let streamed = csv_fast::read_from(&mut c.as_bytes(), path, 0, &spec, &|_| {}).unwrap();
            let mapped = csv_fast::read(&file, crate::ingest::Format::Csv, 0, &spec, &|_| {}).unwrap();
            for a in [streamed, mapped] {
                assert_eq!(a.stats.counts.rows_read, b.stats.counts.rows_read, "{c:?}");
                assert_eq!(a.rejects, b.rejects, "{c:?}");
                assert_eq!(a.all_lines().collect::<Vec<_>>(), b.all_lines().collect::<Vec<_>>(), "{c:?}");
            }
        }
    }
}
