//! Reading extracts: input expansion, per-format readers, and the accounting
//! every reader keeps (rows read = accepted + rejected).

pub mod csv_fast;
pub mod csv_plain;
#[cfg(feature = "polars")]
pub mod parquet;
mod record;

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::columns::{ColumnMap, Resolved, col};
use crate::date::Date;
use crate::error::{Error, Result};
use crate::normalize::{Line, Reject, RowContext, normalize_row};
use crate::policy::Policy;

pub const RAW_TEXT_MAX: usize = 64 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Csv,
    #[serde(rename = "csv.gz")]
    CsvGz,
    Parquet,
}

#[derive(Debug, Clone)]
pub struct InputFile {
    pub path: PathBuf,
    pub format: Format,
    pub bytes: u64,
}

/// Which CSV reader to use. `Plain` is the straightforward csv-crate reader
/// kept as the reference the fast path is tested against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CsvEngine {
    Fast,
    Plain,
}

/// What a reader needs besides the file: policy (scope), date window, column map.
pub struct ScanSpec<'a> {
    pub policy: &'a Policy,
    pub columns: &'a ColumnMap,
    /// Lines dated before `lo` or after `hi` are counted but not kept.
    pub lo: Option<Date>,
    pub hi: Option<Date>,
    pub delimiter: u8,
    pub engine: CsvEngine,
    /// Count in-scope rows only; keep no lines (the bench floor).
    pub scan_only: bool,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct FileStats {
    pub path: String,
    pub format: Option<Format>,
    pub bytes: u64,
    pub rows_read: u64,
    pub rows_accepted: u64,
    pub rows_rejected: u64,
    /// Accepted rows whose code some rule reads (policy codes and J-codes).
    pub rows_in_scope: u64,
    /// In-scope rows inside the read window (`--from` - lookback .. `--to`).
    pub rows_kept: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RejectRow {
    pub file: u32,
    pub source_line: u64,
    pub code: &'static str,
    pub reason: String,
    pub raw_text: String,
}

#[derive(Debug, Default)]
pub struct FileOutput {
    pub stats: FileStats,
    /// Kept lines of the piece being read.
    pub lines: Vec<Line>,
    /// Kept lines of finished pieces, in order. Pieces stay separate so no
    /// line is moved again after it is built.
    pub chunks: Vec<Vec<Line>>,
    pub rejects: Vec<RejectRow>,
}

impl FileOutput {
    /// All kept lines in file order, as chunks.
    pub fn into_chunks(mut self) -> Vec<Vec<Line>> {
        if !self.lines.is_empty() {
            self.chunks.push(std::mem::take(&mut self.lines));
        }
        self.chunks
    }

    /// All kept lines in file order (tests and the fuzz target).
    pub fn all_lines(&self) -> impl Iterator<Item = &Line> {
        self.chunks.iter().flatten().chain(&self.lines)
    }
}

/// Expands files, directories (their .csv, .csv.gz, .parquet files) and
/// globs into a sorted, de-duplicated list.
pub fn expand_inputs(inputs: &[String]) -> Result<Vec<InputFile>> {
    let mut paths: Vec<PathBuf> = Vec::new();
    for raw in inputs {
        let p = Path::new(raw);
        if p.is_dir() {
            let rd = std::fs::read_dir(p).map_err(|e| Error::input(p, format!("cannot list directory: {e}")))?;
            let mut found: Vec<PathBuf> =
                rd.filter_map(|e| e.ok().map(|e| e.path())).filter(|f| f.is_file() && format_of(f).is_some()).collect();
            if found.is_empty() {
                return Err(Error::input(p, "directory holds no .csv, .csv.gz or .parquet file"));
            }
            found.sort();
            paths.extend(found);
        } else if p.exists() {
            paths.push(p.to_path_buf());
        } else if raw.contains(['*', '?', '[']) {
            let g = glob::glob(raw).map_err(|e| Error::Config(format!("{raw}: invalid glob: {e}")))?;
            let mut found: Vec<PathBuf> = g.filter_map(|r| r.ok()).filter(|f| f.is_file()).collect();
            if found.is_empty() {
                return Err(Error::input(p, "glob matches no file"));
            }
            found.sort();
            paths.extend(found);
        } else {
            return Err(Error::input(p, "no such file or directory"));
        }
    }
    let mut seen = std::collections::HashSet::new();
    paths.retain(|p| seen.insert(p.clone()));
    paths
        .into_iter()
        .map(|path| {
            let format = format_of(&path).ok_or_else(|| Error::input(&path, "unknown format: expected .csv, .csv.gz or .parquet"))?;
            let meta = std::fs::metadata(&path).map_err(|e| Error::input(&path, format!("cannot open: {e}")))?;
            Ok(InputFile { path, format, bytes: meta.len() })
        })
        .collect()
}

fn format_of(p: &Path) -> Option<Format> {
    let name = p.file_name()?.to_string_lossy().to_ascii_lowercase();
    if name.ends_with(".csv.gz") || name.ends_with(".tsv.gz") || name.ends_with(".txt.gz") {
        Some(Format::CsvGz)
    } else if name.ends_with(".csv") || name.ends_with(".tsv") || name.ends_with(".txt") {
        Some(Format::Csv)
    } else if name.ends_with(".parquet") || name.ends_with(".pq") {
        Some(Format::Parquet)
    } else {
        None
    }
}

/// Reads one file with the reader its format calls for.
pub fn read_file(input: &InputFile, file_idx: u32, spec: &ScanSpec, progress: &(dyn Fn(u64) + Sync)) -> Result<FileOutput> {
    let mut out = match input.format {
        #[cfg(feature = "polars")]
        Format::Parquet => parquet::read(&input.path, file_idx, spec)?,
        #[cfg(not(feature = "polars"))]
        Format::Parquet => return Err(Error::input(&input.path, "built without Parquet support")),
        Format::Csv | Format::CsvGz => match spec.engine {
            CsvEngine::Fast => csv_fast::read(&input.path, input.format, file_idx, spec, progress)?,
            CsvEngine::Plain => csv_plain::read(&input.path, input.format, file_idx, spec)?,
        },
    };
    out.stats.path = input.path.display().to_string();
    out.stats.format = Some(input.format);
    out.stats.bytes = input.bytes;
    Ok(out)
}

/// Whether a trimmed code is read by some rule. Case-insensitive, no
/// allocation or hashing: it runs on every row of the extract.
pub fn code_in_scope(policy: &Policy, code: &[u8]) -> bool {
    match code.first() {
        None => false,
        Some(b'J') | Some(b'j') => true,
        Some(_) => policy.policy_codes_upper.iter().any(|c| c.len() == code.len() && c.eq_ignore_ascii_case(code)),
    }
}

/// Shared per-row handling after a reader has split a row into fields:
/// cheap checks for every row, full normalization for in-scope rows.
pub(crate) struct RowSink<'a> {
    pub spec: &'a ScanSpec<'a>,
    pub resolved: &'a Resolved,
    pub ctx: RowContext<'a>,
    pub header_first: Vec<u8>,
    pub header_raw: Vec<u8>,
    pub out: FileOutput,
    /// Set when the caller has validated the UTF-8 of every row it will pass.
    pub utf8_checked: bool,
}

pub(crate) enum RowVerdict {
    Accepted,
    Rejected(Reject),
}

impl<'a> RowSink<'a> {
    pub fn new(spec: &'a ScanSpec<'a>, resolved: &'a Resolved, file: u32, header_fields: &[String], header_raw: &[u8]) -> RowSink<'a> {
        RowSink {
            spec,
            resolved,
            ctx: RowContext::new(spec.policy, resolved.presence(), file),
            header_first: header_fields.first().map(|s| s.as_bytes().to_vec()).unwrap_or_default(),
            header_raw: header_raw.to_vec(),
            out: FileOutput::default(),
            utf8_checked: false,
        }
    }

    /// Handles one row. `field(i)` is the i-th field's bytes; `raw` the row's
    /// text as read (for rejects).
    pub fn row<'f>(&mut self, line: u64, nfields: usize, field: impl Fn(usize) -> &'f [u8], raw: &[u8]) {
        self.row_lazy(line, nfields, field, || std::borrow::Cow::Borrowed(raw))
    }

    /// `row` for readers that have no row text and build it only when needed
    /// (a reject or a reversal).
    pub fn row_lazy<'f, 'r>(
        &mut self,
        line: u64,
        nfields: usize,
        field: impl Fn(usize) -> &'f [u8],
        raw: impl Fn() -> std::borrow::Cow<'r, [u8]>,
    ) {
        self.out.stats.rows_read += 1;
        match self.check(line, nfields, &field, &raw) {
            RowVerdict::Accepted => self.out.stats.rows_accepted += 1,
            RowVerdict::Rejected(r) => {
                self.out.stats.rows_rejected += 1;
                self.out.rejects.push(RejectRow {
                    file: self.ctx.file,
                    source_line: line,
                    code: r.code,
                    reason: r.detail,
                    raw_text: raw_text(&raw()),
                });
            }
        }
    }

    fn check<'f, 'r>(
        &mut self,
        line: u64,
        nfields: usize,
        field: &impl Fn(usize) -> &'f [u8],
        raw: &impl Fn() -> std::borrow::Cow<'r, [u8]>,
    ) -> RowVerdict {
        let width = self.resolved.width;
        if nfields != width {
            if nfields == 1 && field(0).iter().all(|b| b.is_ascii_whitespace()) {
                return RowVerdict::Rejected(Reject::new("blank_row", "row is blank"));
            }
            return RowVerdict::Rejected(Reject::new("field_count", format!("expected {width} fields as in the header, found {nfields}")));
        }
        let idx = &self.resolved.idx;
        let get_bytes = |slot: usize| idx[slot].map(field);
        if field(0) == self.header_first.as_slice() && trim_cr(&raw()) == trim_cr(&self.header_raw) {
            return RowVerdict::Rejected(Reject::new("repeated_header", "a repeated header row"));
        }
        let code = get_bytes(col::HCPCS).map(|b| b.trim_ascii()).unwrap_or(b"");
        if code.is_empty() {
            return RowVerdict::Rejected(Reject::new("empty_code", "hcpcs_code is empty"));
        }
        let person_empty = get_bytes(col::PERSON_ID).is_none_or(|b| b.trim_ascii().is_empty())
            && get_bytes(col::MEMBER_ID).is_none_or(|b| b.trim_ascii().is_empty());
        if person_empty {
            return RowVerdict::Rejected(Reject::new("empty_person", "person_id (and member_id) is empty"));
        }
        let in_scope = code_in_scope(self.spec.policy, code);
        // Readers validate whole pieces and clear `utf8_checked` when one fails.
        if !self.utf8_checked
            && let Err(e) = std::str::from_utf8(&raw())
        {
            let at = e.valid_up_to();
            let col = (0..nfields).find(|&i| {
                let f = field(i);
                std::str::from_utf8(f).is_err()
            });
            let name = col.map(|c| format!("field {}", c + 1)).unwrap_or_else(|| format!("byte {at}"));
            return RowVerdict::Rejected(Reject::new("bad_utf8", format!("invalid UTF-8 in {name}")));
        }
        if !in_scope {
            return RowVerdict::Accepted;
        }
        if self.spec.scan_only {
            self.out.stats.rows_in_scope += 1;
            return RowVerdict::Accepted;
        }
        let checked = self.utf8_checked;
        let get = |slot: usize| -> Option<&str> {
            idx[slot].and_then(|i| {
                let f = field(i);
                if checked {
                    // SAFETY: the reader validated the whole piece as UTF-8,
                    // and fields are cut from it at ASCII delimiters and
                    // quotes, so each is valid UTF-8 too. This runs ~35 times
                    // per in-scope row.
                    Some(unsafe { std::str::from_utf8_unchecked(f) })
                } else {
                    std::str::from_utf8(f).ok()
                }
            })
        };
        match normalize_row(&mut self.ctx, line, get) {
            Err(r) => RowVerdict::Rejected(r),
            Ok(mut l) => {
                self.out.stats.rows_in_scope += 1;
                if self.spec.lo.is_some_and(|lo| l.service_date < lo) || self.spec.hi.is_some_and(|hi| l.service_date > hi) {
                    return RowVerdict::Accepted;
                }
                if l.raw.is_some() {
                    l.raw = Some(raw_text(&raw()).into_boxed_str());
                }
                self.out.stats.rows_kept += 1;
                self.out.lines.push(l);
                RowVerdict::Accepted
            }
        }
    }
}

fn trim_cr(b: &[u8]) -> &[u8] {
    b.strip_suffix(b"\r").unwrap_or(b)
}

/// Raw row text for rejects: lossy UTF-8, cut at 64 KiB. Readers pass the
/// row without its line terminator (`\n` or `\r\n`).
pub fn raw_text(raw: &[u8]) -> String {
    let cut = &raw[..raw.len().min(RAW_TEXT_MAX)];
    String::from_utf8_lossy(cut).into_owned()
}

/// Merges per-chunk outputs in order, shifting line numbers by each chunk's base.
pub(crate) fn append(into: &mut FileOutput, mut part: FileOutput, line_base: u64) {
    for l in part.chunks.iter_mut().flatten().chain(&mut part.lines) {
        l.source_line += line_base;
    }
    for r in &mut part.rejects {
        r.source_line += line_base;
    }
    let (s, p) = (&mut into.stats, &part.stats);
    s.rows_read += p.rows_read;
    s.rows_accepted += p.rows_accepted;
    s.rows_rejected += p.rows_rejected;
    s.rows_in_scope += p.rows_in_scope;
    s.rows_kept += p.rows_kept;
    // Appending keeps order: `into`'s open piece is older than `part`.
    if !into.lines.is_empty() {
        into.chunks.push(std::mem::take(&mut into.lines));
    }
    into.rejects.append(&mut part.rejects);
    // Chunks are held to the end of the run: drop the growth slack (up to half).
    into.chunks.extend(part.into_chunks().into_iter().filter(|c| !c.is_empty()).map(|mut c| {
        c.shrink_to_fit();
        c
    }));
}
