//! What every reader shares once it has split a row into fields: the scan
//! settings, per-file accounting (rows read = accepted + rejected), the
//! checks every row gets, and normalization of the rows some rule reads.

use serde::{Deserialize, Serialize};

use super::input::Format;
use crate::columns::{ColumnMap, FileKind, Resolved, col};
use crate::model::codes::normalize_ndc_bytes;
use crate::model::{Date, Dispense, Line, UncodedDrugDay};
use crate::normalize::{Cell, Reject, RowContext, normalize_dispense, normalize_row, normalize_uncoded_drug};
use crate::policy::Policy;
use crate::spill::{Batch, KeptStore};

pub const RAW_TEXT_MAX: usize = 64 * 1024;

/// Which readers to use. `Plain` are the straightforward readers kept as the
/// reference the fast ones are tested against: the csv crate for CSV,
/// arrow-rs's whole-column record batch reader for Parquet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Engine {
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
    /// The CSV delimiter; None: each file's, sniffed from its header
    /// (`csv_fast::sniff_delimiter`).
    pub delimiter: Option<u8>,
    pub engine: Engine,
    /// Count in-scope rows only; keep no lines (the bench floor).
    pub scan_only: bool,
    /// Where fast readers hand kept rows as they go (a run's store, which
    /// spills past its budget). Without one, rows stay in the output.
    pub store: Option<&'a KeptStore>,
}

impl<'a> ScanSpec<'a> {
    /// The whole extract, comma-separated, fast readers, rows kept in the
    /// output (tests, benches and the fuzz target).
    pub fn new(policy: &'a Policy, columns: &'a ColumnMap) -> ScanSpec<'a> {
        ScanSpec { policy, columns, lo: None, hi: None, delimiter: Some(b','), engine: Engine::Fast, scan_only: false, store: None }
    }

    /// The delimiter once a reader has settled it (comma until then).
    pub(crate) fn delim(&self) -> u8 {
        self.delimiter.unwrap_or(b',')
    }

    /// These settings with the delimiter of one file: the one given, else
    /// the one its header uses.
    pub(crate) fn for_file(&self, head: &[u8]) -> ScanSpec<'a> {
        ScanSpec { delimiter: Some(self.delimiter.unwrap_or_else(|| super::csv_fast::sniff_delimiter(head))), ..*self }
    }

    /// Hands the kept rows of `out` to the run's store, if there is one.
    pub(crate) fn hand_over(&self, out: &mut FileOutput) -> crate::error::Result<()> {
        match self.store {
            Some(store) => store.put(out.take_kept()),
            None => Ok(()),
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct FileStats {
    pub path: String,
    pub format: Option<Format>,
    /// `medical` or `pharmacy`, from the header.
    pub kind: Option<FileKind>,
    pub bytes: u64,
    #[serde(flatten)]
    pub counts: RowCounts,
}

/// What became of a file's rows (or a run's): the manifest's per-input and
/// total counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RowCounts {
    pub rows_read: u64,
    pub rows_accepted: u64,
    pub rows_rejected: u64,
    /// Accepted rows some rule reads: policy codes and J-codes (medical),
    /// policy NDCs with a strength (pharmacy).
    pub rows_in_scope: u64,
    /// In-scope rows inside the read window (`--from` - lookback .. `--to`).
    pub rows_kept: u64,
    /// Accepted medical rows with an empty HCPCS code (institutional
    /// revenue-code-only lines): out of scope, never rejects.
    pub rows_without_hcpcs: u64,
    /// Of those, pharmacy revenue lines (025x, 063x) in the read window, kept
    /// for PREMED_NOT_BILLED.
    pub rows_uncoded_drug: u64,
    /// Fields of rows some rule reads that were not UTF-8 and were read as
    /// Windows-1252.
    #[serde(default)]
    pub fields_transcoded: u64,
    /// Kept rows that repeat a row of an earlier input file (the same
    /// extract delivered twice): read once, counted here against the later
    /// file.
    #[serde(default)]
    pub rows_duplicate: u64,
}

impl FileStats {
    /// Counts a row no rule reads: read and accepted; `blank` when it has
    /// no HCPCS code.
    pub(crate) fn count_out_of_scope(&mut self, blank: bool) {
        self.counts.rows_read += 1;
        self.counts.rows_accepted += 1;
        self.counts.rows_without_hcpcs += u64::from(blank);
    }

    /// Adds another piece's (or file's) row counts to these.
    pub fn add_counts(&mut self, o: &FileStats) {
        self.counts.add(&o.counts);
    }
}

impl RowCounts {
    pub fn add(&mut self, o: &RowCounts) {
        self.rows_read += o.rows_read;
        self.rows_accepted += o.rows_accepted;
        self.rows_rejected += o.rows_rejected;
        self.rows_in_scope += o.rows_in_scope;
        self.rows_kept += o.rows_kept;
        self.rows_without_hcpcs += o.rows_without_hcpcs;
        self.rows_uncoded_drug += o.rows_uncoded_drug;
        self.fields_transcoded += o.fields_transcoded;
        self.rows_duplicate += o.rows_duplicate;
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RejectRow {
    pub file: u32,
    pub source_line: u64,
    #[serde(with = "crate::util::static_str")]
    pub code: crate::util::StaticStr,
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
    /// Kept pharmacy rows (policy NDCs), in file order.
    pub dispenses: Vec<Dispense>,
    /// Days with a pharmacy revenue line without HCPCS code.
    pub uncoded: Vec<UncodedDrugDay>,
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

    /// The kept rows (lines, dispenses, uncoded days), leaving counts and rejects.
    pub fn take_kept(&mut self) -> Batch {
        let lines = std::mem::take(&mut self.lines);
        let mut chunks = std::mem::take(&mut self.chunks);
        if !lines.is_empty() {
            chunks.push(lines);
        }
        Batch { chunks, dispenses: std::mem::take(&mut self.dispenses), uncoded: std::mem::take(&mut self.uncoded) }
    }

    /// All kept lines in file order (tests and the fuzz target).
    pub fn all_lines(&self) -> impl Iterator<Item = &Line> {
        self.chunks.iter().flatten().chain(&self.lines)
    }
}

/// Whether a trimmed code is read by some rule. Case-insensitive, no
/// allocation or hashing: it runs on every row of the extract.
pub fn code_in_scope(policy: &Policy, code: &[u8]) -> bool {
    match code.first() {
        None => false,
        Some(b'J') | Some(b'j') => true,
        Some(_) => match crate::policy::code_key(code) {
            Some(k) => {
                let b = crate::policy::key_bit(k);
                policy.policy_code_bits[b / 64] & (1 << (b % 64)) != 0 && policy.policy_code_keys.binary_search(&k).is_ok()
            }
            None => policy.policy_codes_long.iter().any(|c| c.eq_ignore_ascii_case(code)),
        },
    }
}

/// Whether a pharmacy row's NDC (raw bytes, any accepted form) is a policy
/// product some rule reads. No allocation: it runs on every pharmacy row.
pub fn ndc_in_scope(policy: &Policy, ndc: &[u8]) -> bool {
    normalize_ndc_bytes(ndc).is_some_and(|n| std::str::from_utf8(&n).is_ok_and(|n| policy.ndc_products.contains_key(n)))
}

/// What a row's key value (a medical row's HCPCS code, a pharmacy row's
/// NDC) makes it, before anything else of the row is read. Every reader
/// decides scope with this and `revenue_in_scope`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Key {
    /// Read by no rule: counted only.
    Out,
    /// A policy code or J-code; a policy NDC.
    In,
    /// A medical row without a code: kept only with a pharmacy revenue code.
    Blank,
}

pub(crate) fn key_scope(policy: &Policy, kind: FileKind, key: &[u8]) -> Key {
    let key = key.trim_ascii();
    match kind {
        FileKind::Medical if key.is_empty() => Key::Blank,
        FileKind::Medical if code_in_scope(policy, key) => Key::In,
        FileKind::Pharmacy if ndc_in_scope(policy, key) => Key::In,
        _ => Key::Out,
    }
}

/// Whether a medical row without a code is kept (for PREMED_NOT_BILLED):
/// its revenue code is a pharmacy one.
pub(crate) fn revenue_in_scope(policy: &Policy, revenue: &[u8]) -> bool {
    let r = revenue.trim_ascii();
    !r.is_empty() && std::str::from_utf8(r).is_ok_and(|r| policy.is_pharmacy_revenue(r))
}

/// What a row is to the rules, decided from its raw bytes before any value
/// is parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scope {
    /// Read by no rule: counted, checked only for shape.
    Out,
    /// A medical line with a policy code or a J-code.
    Line,
    /// A medical line with no HCPCS code and a pharmacy revenue code.
    UncodedDrug,
    /// A pharmacy row of a policy NDC.
    Dispense,
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
    /// Set when the source guarantees UTF-8 (Parquet strings); otherwise each
    /// row some rule reads is validated.
    pub utf8_checked: bool,
}

pub(crate) enum RowVerdict {
    Accepted,
    /// Accepted, and no rule reads it; true when it has no HCPCS code.
    OutOfScope(bool),
    Rejected(Reject),
}

impl<'a> RowSink<'a> {
    pub fn new(spec: &'a ScanSpec<'a>, resolved: &'a Resolved, file: u32, header_fields: &[String], header_raw: &[u8]) -> RowSink<'a> {
        let mut out = FileOutput::default();
        out.stats.kind = Some(resolved.kind);
        RowSink {
            spec,
            resolved,
            ctx: RowContext::new(spec.policy, resolved, file),
            header_first: header_fields.first().map(|s| s.as_bytes().to_vec()).unwrap_or_default(),
            header_raw: header_raw.to_vec(),
            out,
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
        self.row_typed(line, nfields, field, |_| None, raw)
    }

    /// `row_lazy` for readers of typed columns (Parquet, Arrow): `cell(i)` is
    /// the i-th field as the reader holds it, a typed value (see
    /// `normalize::Cell`; `field(i)` is then empty) or text already known to
    /// be UTF-8. None sends normalization to `field(i)`.
    pub fn row_typed<'f, 'r>(
        &mut self,
        line: u64,
        nfields: usize,
        field: impl Fn(usize) -> &'f [u8],
        cell: impl Fn(usize) -> Option<Cell<'f>>,
        raw: impl Fn() -> std::borrow::Cow<'r, [u8]>,
    ) {
        match self.check(line, nfields, &field, &cell, &raw) {
            RowVerdict::OutOfScope(no_code) => self.out.stats.count_out_of_scope(no_code),
            RowVerdict::Accepted => {
                self.out.stats.counts.rows_read += 1;
                self.out.stats.counts.rows_accepted += 1;
            }
            RowVerdict::Rejected(r) => {
                self.out.stats.counts.rows_read += 1;
                self.out.stats.counts.rows_rejected += 1;
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

    /// The fields `scope` reads: the first (a repeated header), the key and,
    /// for medical files, the revenue code.
    pub fn probe_fields(&self) -> [Option<usize>; 3] {
        let idx = &self.resolved.idx;
        match self.resolved.kind {
            FileKind::Medical => [Some(0), idx[col::HCPCS], idx[col::REVENUE]],
            FileKind::Pharmacy => [Some(0), idx[col::NDC], None],
        }
    }

    /// What a row is to the rules, from its key (and revenue code), and
    /// whether it is a medical row without a code.
    fn scope<'f>(&self, field: &impl Fn(usize) -> &'f [u8]) -> (Scope, bool) {
        let idx = &self.resolved.idx;
        let get_bytes = |slot: usize| idx[slot].map(field);
        let (kind, policy) = (self.resolved.kind, self.spec.policy);
        let key_slot = if kind == FileKind::Medical { col::HCPCS } else { col::NDC };
        let scope = match key_scope(policy, kind, get_bytes(key_slot).unwrap_or(b"")) {
            Key::In if kind == FileKind::Medical => Scope::Line,
            Key::In => Scope::Dispense,
            Key::Blank if revenue_in_scope(policy, get_bytes(col::REVENUE).unwrap_or(b"")) => Scope::UncodedDrug,
            _ => Scope::Out,
        };
        let no_code = kind == FileKind::Medical && get_bytes(col::HCPCS).is_none_or(|b| b.trim_ascii().is_empty());
        (scope, no_code)
    }

    /// Counts a row as `row` would when its probed fields (`probe_fields`)
    /// show that no rule reads it; false leaves the row to `row`. `field(i)`
    /// needs to answer only for the probed fields.
    pub fn skip_out_of_scope<'f>(&mut self, nfields: usize, field: impl Fn(usize) -> &'f [u8]) -> bool {
        // A wrong width, or a possible repeated header, takes the full checks.
        if nfields != self.resolved.width || field(0) == self.header_first.as_slice() {
            return false;
        }
        let (scope, no_code) = self.scope(&field);
        if scope != Scope::Out {
            return false;
        }
        self.out.stats.count_out_of_scope(no_code);
        true
    }

    fn check<'f, 'r>(
        &mut self,
        line: u64,
        nfields: usize,
        field: &impl Fn(usize) -> &'f [u8],
        cell: &impl Fn(usize) -> Option<Cell<'f>>,
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
        let (scope, no_code) = self.scope(field);
        if scope == Scope::Out {
            // INPUT.md "Out-of-scope rows": counted, boundaries and field
            // count exact; no value is parsed or validated (UTF-8 included).
            return RowVerdict::OutOfScope(no_code);
        }
        let person_empty = get_bytes(col::PERSON_ID).is_none_or(|b| b.trim_ascii().is_empty())
            && get_bytes(col::MEMBER_ID).is_none_or(|b| b.trim_ascii().is_empty());
        if person_empty {
            return RowVerdict::Rejected(Reject::new("empty_person", "person_id (and member_id) is empty"));
        }
        // A row some rule reads is checked whole: when its raw text is UTF-8,
        // so is every field cut from it. Otherwise the fields that are not
        // are read as Windows-1252 (INPUT.md "Files"): only such rows pay.
        if !self.utf8_checked && std::str::from_utf8(&raw()).is_err() {
            let decoded: Vec<Option<String>> =
                (0..nfields).map(|i| std::str::from_utf8(field(i)).is_err().then(|| super::encoding::decode(field(i)))).collect();
            self.out.stats.counts.fields_transcoded += decoded.iter().flatten().count() as u64;
            let field = |i: usize| decoded[i].as_deref().map_or_else(|| field(i), str::as_bytes);
            return self.accept(scope, no_code, line, &field, &|i| cell(i), raw);
        }
        self.accept(scope, no_code, line, field, cell, raw)
    }

    /// The verdict on a row some rule reads whose fields are UTF-8.
    fn accept<'f, 'r>(
        &mut self,
        scope: Scope,
        no_code: bool,
        line: u64,
        field: &impl Fn(usize) -> &'f [u8],
        cell: &impl Fn(usize) -> Option<Cell<'f>>,
        raw: &impl Fn() -> std::borrow::Cow<'r, [u8]>,
    ) -> RowVerdict {
        let verdict = if self.spec.scan_only {
            if scope != Scope::UncodedDrug {
                self.out.stats.counts.rows_in_scope += 1;
            }
            Ok(())
        } else {
            self.keep(scope, line, field, cell, raw)
        };
        match verdict {
            Ok(()) => {
                if no_code {
                    self.out.stats.counts.rows_without_hcpcs += 1;
                }
                RowVerdict::Accepted
            }
            Err(r) => RowVerdict::Rejected(r),
        }
    }

    /// Normalizes a row some rule reads and keeps it when it falls in the
    /// read window.
    fn keep<'f, 'r>(
        &mut self,
        scope: Scope,
        line: u64,
        field: &impl Fn(usize) -> &'f [u8],
        cell: &impl Fn(usize) -> Option<Cell<'f>>,
        raw: &impl Fn() -> std::borrow::Cow<'r, [u8]>,
    ) -> Result<(), Reject> {
        let idx = &self.resolved.idx;
        let get = |slot: usize| -> Option<Cell<'f>> {
            // SAFETY: `check` validated the row's text (or the reader its
            // whole source) as UTF-8, and fields are cut from it at ASCII
            // delimiters and quotes, so each is valid UTF-8 too; or it
            // passes fields it decoded into Strings. This runs ~35 times per
            // in-scope row.
            idx[slot].map(|i| cell(i).unwrap_or_else(|| Cell::Text(unsafe { std::str::from_utf8_unchecked(field(i)) })))
        };
        let (lo, hi) = (self.spec.lo, self.spec.hi);
        let in_window = |d: Date| !(lo.is_some_and(|lo| d < lo) || hi.is_some_and(|hi| d > hi));
        match scope {
            Scope::Out => Ok(()),
            Scope::UncodedDrug => normalize_uncoded_drug(get).map(|u| {
                if in_window(u.date) {
                    self.out.stats.counts.rows_uncoded_drug += 1;
                    self.out.uncoded.push(u);
                }
            }),
            Scope::Line => normalize_row(&mut self.ctx, line, get).map(|mut l| {
                self.out.stats.counts.rows_in_scope += 1;
                if in_window(l.service_date) {
                    if l.raw.is_some() {
                        l.raw = Some(raw_text(&raw()).into_boxed_str());
                    }
                    self.out.stats.counts.rows_kept += 1;
                    self.out.lines.push(l);
                }
            }),
            Scope::Dispense => normalize_dispense(&mut self.ctx, line, get).map(|mut d| {
                self.out.stats.counts.rows_in_scope += 1;
                if in_window(d.date) {
                    if d.raw.is_some() {
                        d.raw = Some(raw_text(&raw()).into_boxed_str());
                    }
                    self.out.stats.counts.rows_kept += 1;
                    self.out.dispenses.push(d);
                }
            }),
        }
    }
}

fn trim_cr(b: &[u8]) -> &[u8] {
    b.strip_suffix(b"\r").unwrap_or(b)
}

/// Raw row text for rejects: UTF-8, with bytes that are not read as
/// Windows-1252 as fields are (`encoding::decode`), cut at 64 KiB. Readers
/// pass the row without its line terminator (`\n` or `\r\n`).
pub fn raw_text(raw: &[u8]) -> String {
    let cut = &raw[..raw.len().min(RAW_TEXT_MAX)];
    match std::str::from_utf8(cut) {
        Ok(s) => s.to_owned(),
        Err(_) => super::encoding::decode(cut),
    }
}

/// One file's output from pieces read in parallel, in order (line numbers
/// already absolute).
#[cfg(feature = "arrow")]
pub(crate) fn join(kind: FileKind, parts: impl IntoIterator<Item = crate::error::Result<FileOutput>>) -> crate::error::Result<FileOutput> {
    let mut out = FileOutput::default();
    out.stats.kind = Some(kind);
    for p in parts {
        append(&mut out, p?, 0);
    }
    Ok(out)
}

/// Merges per-chunk outputs in order, shifting line numbers by each chunk's base.
pub(crate) fn append(into: &mut FileOutput, mut part: FileOutput, line_base: u64) {
    for l in part.chunks.iter_mut().flatten().chain(&mut part.lines) {
        l.source_line += line_base;
    }
    for r in &mut part.rejects {
        r.source_line += line_base;
    }
    for d in &mut part.dispenses {
        d.source_line += line_base;
    }
    into.stats.kind = into.stats.kind.or(part.stats.kind);
    into.stats.add_counts(&part.stats);
    into.dispenses.append(&mut part.dispenses);
    into.uncoded.append(&mut part.uncoded);
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
