//! The fast CSV reader. Maps a plain file a window at a time (a gzip file
//! or a stream is read into reused buffers), so resident memory stays a few
//! blocks; cuts each block into pieces at newlines, and checks the pieces in
//! parallel, each confirming that its cut fell between records (a cut inside
//! a quoted field is read again with quote-aware cuts). Most rows are
//! settled by a probe of their key; only rows some rule may read are split
//! whole and normalized; every row is counted.

use std::collections::VecDeque;
use std::fs::File;
use std::io::Read;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, Sender, SyncSender};

use super::input::Format;
use super::record::{Fields, Probe, next_boundary, probe_record, quote_state, split_record};
use super::sink::{FileOutput, RowSink, ScanSpec, append};
use crate::columns::Resolved;
use crate::error::{Error, Result};

const BLOCK: usize = 8 << 20;
const PIECE: usize = 1 << 20;
/// The probe looks at its yield every `PROBE_LOOK` rows it probes; under
/// half settled, it pauses for `PROBE_PAUSE` rows.
const PROBE_LOOK: u32 = 64;
const PROBE_PAUSE: u32 = 4096;
/// A record longer than this means a quote that never closes.
const MAX_RECORD: usize = 64 << 20;

pub fn open(path: &Path, format: Format) -> Result<Box<dyn Read + Send>> {
    let f = File::open(path).map_err(|e| Error::input(path, format!("cannot open: {e}")))?;
    Ok(match format {
        Format::CsvGz => Box::new(flate2::read::MultiGzDecoder::new(std::io::BufReader::with_capacity(1 << 20, f))),
        _ => Box::new(f),
    })
}

/// Reads until `buf` holds at least `want` bytes or the input ends. Returns true at EOF.
pub(crate) fn fill(r: &mut dyn Read, buf: &mut Vec<u8>, want: usize, path: &Path) -> Result<bool> {
    if buf.len() >= want {
        return Ok(false);
    }
    let need = (want - buf.len()) as u64;
    // read_to_end through `take` reads into spare capacity without zeroing it.
    let n = r.take(need).read_to_end(buf).map_err(|e| Error::input(path, format!("read failed: {e}")))?;
    Ok((n as u64) < need)
}

/// The delimiter a file's header uses, for a run given none: of comma, pipe
/// and tab, the one found most often in the header's first line outside
/// quotes; comma when there is none (a one-column header). So a
/// pipe-delimited medical extract and a comma pharmacy extract share a run.
pub fn sniff_delimiter(head: &[u8]) -> u8 {
    let line = head.split(|&b| b == b'\n').next().unwrap_or(head);
    let mut counts = [0usize; 3];
    let mut in_q = false;
    for &b in line {
        match b {
            b'"' => in_q = !in_q,
            b',' if !in_q => counts[0] += 1,
            b'|' if !in_q => counts[1] += 1,
            b'\t' if !in_q => counts[2] += 1,
            _ => {}
        }
    }
    let best = (0..3).max_by_key(|&i| (counts[i], std::cmp::Reverse(i))).unwrap_or(0);
    if counts[best] == 0 { b',' } else { [b',', b'|', b'\t'][best] }
}

/// Reads the header record; returns its fields, its raw bytes, how many
/// physical lines it spans and where the data starts.
pub(crate) fn header(path: &Path, buf: &[u8], delim: u8, eof: bool) -> Result<(Vec<String>, Vec<u8>, u64, usize)> {
    let start = if buf.starts_with(b"\xEF\xBB\xBF") { 3 } else { 0 };
    if buf.len() == start {
        return Err(Error::input(path, "empty file: no header row"));
    }
    let mut f = Fields::new();
    let span = split_record(buf, start, delim, eof, &mut f)
        .ok_or_else(|| Error::input(path, "header row not terminated within the first block"))?;
    let data: &[u8] = if span.quoted { &f.scratch } else { buf };
    let names = f
        .ranges
        .iter()
        .map(|&(a, b)| {
            std::str::from_utf8(&data[a as usize..b as usize])
                .map(|s| s.trim().to_string())
                .map_err(|_| Error::input(path, "header row is not UTF-8"))
        })
        .collect::<Result<Vec<_>>>()?;
    if names.iter().all(|n| n.is_empty()) {
        return Err(Error::input(path, "empty header row"));
    }
    Ok((names, buf[start..span.text_end].to_vec(), span.lines, span.next))
}

pub fn read(path: &Path, format: Format, file_idx: u32, spec: &ScanSpec, progress: &(dyn Fn(u64) + Sync)) -> Result<FileOutput> {
    if format == Format::Csv
        && let Some(m) = MappedFile::open(path)?
    {
        return read_blocks(Source::Mapped(m), path, file_idx, spec, progress);
    }
    let mut r = open(path, format)?;
    read_from(&mut *r, path, file_idx, spec, progress)
}

/// A read-only mapping of part of a file, unmapped on drop.
struct Map {
    base: *mut libc::c_void,
    map_len: usize,
    /// Where the asked-for bytes start inside the mapping (page alignment).
    delta: usize,
    len: usize,
}

// SAFETY: the mapping is read-only and owned by this value alone.
unsafe impl Send for Map {}
// SAFETY: as above; shared references only read.
unsafe impl Sync for Map {}

impl std::ops::Deref for Map {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        if self.len == 0 {
            return &[];
        }
        // SAFETY: `base + delta .. + len` lies inside the live mapping.
        unsafe { std::slice::from_raw_parts((self.base as *const u8).add(self.delta), self.len) }
    }
}

impl Map {
    /// No bytes, nothing mapped.
    const EMPTY: Map = Map { base: std::ptr::null_mut(), map_len: 0, delta: 0, len: 0 };
}

impl Drop for Map {
    fn drop(&mut self) {
        if self.map_len > 0 {
            // SAFETY: unmaps exactly the mapping `MappedFile::map` made.
            unsafe {
                libc::munmap(self.base, self.map_len);
            }
        }
    }
}

/// A regular file read through windows of `mmap` (no copy from the page
/// cache), one block at a time, so resident memory stays a few blocks.
struct MappedFile {
    file: File,
    len: u64,
}

impl MappedFile {
    /// None when the path is not a regular file (a pipe, a device) or its
    /// filesystem cannot map it: it is read with `read` then.
    fn open(path: &Path) -> Result<Option<MappedFile>> {
        let file = File::open(path).map_err(|e| Error::input(path, format!("cannot open: {e}")))?;
        let meta = file.metadata().map_err(|e| Error::input(path, format!("cannot stat: {e}")))?;
        if !meta.is_file() {
            return Ok(None);
        }
        let m = MappedFile { file, len: meta.len() };
        Ok(m.map(0, 1, path).is_ok().then_some(m))
    }

    /// The bytes `[from, from + want)`, cut at the end of the file; true
    /// when they reach it.
    fn map(&self, from: u64, want: usize, path: &Path) -> Result<(Map, bool)> {
        use std::os::fd::AsRawFd;
        let end = self.len.min(from + want as u64);
        let len = end.saturating_sub(from) as usize;
        let eof = end >= self.len;
        if len == 0 {
            return Ok((Map::EMPTY, eof));
        }
        // SAFETY: sysconf only reads a system setting.
        let page = u64::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) }).unwrap_or(4096).max(1);
        let aligned = from / page * page;
        let delta = (from - aligned) as usize;
        // SAFETY: a fresh private read-only mapping of an open file; nothing
        // else refers to the address range.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len + delta,
                libc::PROT_READ,
                libc::MAP_PRIVATE | libc::MAP_POPULATE,
                self.file.as_raw_fd(),
                aligned as libc::off_t,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(Error::input(path, format!("cannot map: {}", std::io::Error::last_os_error())));
        }
        Ok((Map { base, map_len: len + delta, delta, len }, eof))
    }
}

/// Where blocks come from.
enum Source<'r> {
    Stream(&'r mut (dyn Read + Send)),
    Mapped(MappedFile),
}

/// A block's bytes: a reused buffer, or a window of a mapped file.
enum Buf {
    Owned(Vec<u8>),
    Mapped(Map),
}

impl std::ops::Deref for Buf {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Buf::Owned(v) => v,
            Buf::Mapped(m) => m,
        }
    }
}

impl From<Vec<u8>> for Buf {
    fn from(v: Vec<u8>) -> Buf {
        Buf::Owned(v)
    }
}

impl From<Map> for Buf {
    fn from(m: Map) -> Buf {
        Buf::Mapped(m)
    }
}

/// A block being scanned: its pieces' results, in order, as they come.
struct InFlight {
    seq: u64,
    block: Arc<Block>,
    parts: Vec<Option<Scanned>>,
    left: usize,
}

/// A piece's rows, the physical lines it spans, and whether its last record
/// ended at its end (`scan_piece`).
type Scanned = (FileOutput, u64, bool);

/// A block of whole records and the pieces it is cut into.
struct Block {
    buf: Buf,
    pieces: Vec<(usize, usize)>,
    /// Input bytes this block accounts for (progress).
    bytes: u64,
    /// The block ends the input.
    eof: bool,
}

/// The fast reader over any byte stream (`path` names it in errors). A
/// reader thread fills and cuts blocks while the pool scans the previous one.
pub fn read_from(
    r: &mut (dyn Read + Send),
    path: &Path,
    file_idx: u32,
    spec: &ScanSpec,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<FileOutput> {
    read_blocks(Source::Stream(r), path, file_idx, spec, progress)
}

/// A record that does not end within `MAX_RECORD` bytes.
fn too_long(path: &Path) -> Error {
    Error::input(path, "a record longer than 64 MiB: a quote that never closes?")
}

/// Reads blocks from `source` on a thread of its own (filling buffers, or
/// mapping windows) and cuts them, while the pool scans the previous block.
///
/// A mapped file is cut by guess (`cut`), and each block is joined only once
/// its pieces confirm the cuts. A block whose cut fell inside a quoted field
/// is read again from its start, cut exactly, as is the rest of the file. A
/// stream cannot be read again, so it is always cut exactly.
fn read_blocks(source: Source, path: &Path, file_idx: u32, spec: &ScanSpec, progress: &(dyn Fn(u64) + Sync)) -> Result<FileOutput> {
    // The first block, for the header.
    let (mut source, first, eof) = match source {
        Source::Stream(r) => {
            let mut buf: Vec<u8> = Vec::with_capacity(BLOCK + PIECE);
            let eof = fill(r, &mut buf, BLOCK, path)?;
            (Source::Stream(r), Buf::Owned(buf), eof)
        }
        Source::Mapped(m) => {
            let (map, eof) = m.map(0, BLOCK, path)?;
            (Source::Mapped(m), Buf::Mapped(map), eof)
        }
    };
    let spec = &spec.for_file(&first);
    let (names, header_raw, header_lines, data_start) = header(path, &first, spec.delim(), eof)?;
    let resolved = spec.columns.resolve(path, &names)?;
    progress(data_start as u64);
    let file = FileScan { path, file_idx, spec, resolved: &resolved, names: &names, header_raw: &header_raw, kept_hint: 0.into() };
    let mut joined = Joined { total: FileOutput::default(), line_base: 1 + header_lines, offset: data_start as u64, spec, progress };
    joined.total.stats.kind = Some(resolved.kind);
    let mut exact = matches!(source, Source::Stream(_));
    // A stream's first buffer holds the first rows after the header (a
    // mapped run maps its windows afresh, from its start offset).
    let mut first = match first {
        Buf::Owned(mut v) => {
            v.drain(..data_start);
            Some(v)
        }
        Buf::Mapped(_) => None,
    };
    loop {
        match file.run(&mut source, first.take(), exact, &mut joined)? {
            None => return Ok(joined.total),
            Some(at) if !exact => {
                tracing::debug!(file = %path.display(), offset = at, "a cut fell inside a quoted field: reading on with exact cuts");
                #[cfg(test)]
                REREADS.fetch_add(1, Ordering::Relaxed);
                (exact, joined.offset) = (true, at);
            }
            Some(_) => return Err(Error::Internal("an exact cut inside a record".into())),
        }
    }
}

/// What stays fixed while one file is read: its header, its columns, and
/// how its pieces are scanned.
struct FileScan<'a> {
    path: &'a Path,
    file_idx: u32,
    spec: &'a ScanSpec<'a>,
    resolved: &'a Resolved,
    names: &'a [String],
    header_raw: &'a [u8],
    /// Lines the last piece kept: a piece's line buffer starts at about
    /// that size instead of growing (and copying its lines) by doubling.
    kept_hint: AtomicUsize,
}

/// The blocks joined so far, in input order, and where the next one starts.
struct Joined<'a> {
    total: FileOutput,
    line_base: u64,
    offset: u64,
    spec: &'a ScanSpec<'a>,
    progress: &'a (dyn Fn(u64) + Sync),
}

impl Joined<'_> {
    /// Joins a block's pieces in order (and hands them to the store) once
    /// every cut is confirmed; when one is not, returns where to read again:
    /// the block's start.
    fn finish(&mut self, f: InFlight, back: &Sender<Vec<u8>>) -> Result<Option<u64>> {
        if f.parts.iter().flatten().any(|&(_, _, whole)| !whole) {
            return Ok(Some(self.offset));
        }
        for part in f.parts {
            let (part, lines, _) = part.ok_or_else(|| Error::Internal("a block joined before its scan".into()))?;
            append(&mut self.total, part, self.line_base);
            self.line_base += lines;
        }
        self.spec.hand_over(&mut self.total)?;
        (self.progress)(f.block.bytes);
        self.offset += f.block.bytes;
        // Scanned buffers come back for reuse: fresh 9 MiB buffers would
        // cost a page fault per 4 KiB on every block.
        if let Ok(Block { buf: Buf::Owned(v), .. }) = Arc::try_unwrap(f.block) {
            let _ = back.send(v);
        }
        Ok(None)
    }
}

impl FileScan<'_> {
    /// One pass over the source from `joined.offset` to its end, or to the
    /// first block whose guessed cut was wrong (returns its start).
    fn run(&self, source: &mut Source, start: Option<Vec<u8>>, exact: bool, joined: &mut Joined) -> Result<Option<u64>> {
        std::thread::scope(|scope| {
            // One block queued and two being scanned (the older one's last
            // pieces, the newer one's first): four blocks in memory at most,
            // with the one being read.
            let (tx, rx) = std::sync::mpsc::sync_channel::<Result<Block>>(1);
            let (back_tx, back_rx) = std::sync::mpsc::channel::<Vec<u8>>();
            let offset = joined.offset;
            scope.spawn(move || {
                if let Err(e) = self.feed_source(&tx, back_rx, source, start, offset, exact) {
                    let _ = tx.send(Err(e));
                }
            });
            self.schedule(rx, exact, |f| joined.finish(f, &back_tx))
        })
    }

    /// The reader thread: feeds blocks of a mapped file from `offset`, or of
    /// a stream from its first buffer on (`feed` for each kind of window).
    fn feed_source(
        &self,
        tx: &SyncSender<Result<Block>>,
        back: Receiver<Vec<u8>>,
        source: &mut Source,
        start: Option<Vec<u8>>,
        offset: u64,
        exact: bool,
    ) -> Result<()> {
        let (path, delim) = (self.path, self.spec.delim());
        match (source, start) {
            (Source::Mapped(m), _) => {
                // Where the next window starts (each is mapped afresh).
                let from = std::cell::Cell::new(offset);
                feed(
                    tx,
                    path,
                    Map::EMPTY,
                    |w, eof| cut(w, delim, eof, exact),
                    |w, n| {
                        from.set(from.get() + n as u64);
                        (w, Map::EMPTY)
                    },
                    |_, want| m.map(from.get(), want, path),
                )
            }
            (Source::Stream(r), Some(first)) => feed(
                tx,
                path,
                first,
                |w, eof| cut(w, delim, eof, true),
                |mut w, n| {
                    let mut next = back.try_recv().unwrap_or_else(|_| Vec::with_capacity(BLOCK + PIECE));
                    next.clear();
                    next.extend_from_slice(&w[n..]);
                    w.truncate(n);
                    (w, next)
                },
                |mut w, want| fill(*r, &mut w, want, path).map(|eof| (w, eof)),
            ),
            (Source::Stream(_), None) => Err(Error::Internal("a stream read twice".into())),
        }
    }

    /// A piece's rows. UTF-8 is checked per row, only for rows some rule reads.
    fn scan(&self, buf: &[u8], complete: bool) -> Scanned {
        let mut sink = RowSink::new(self.spec, self.resolved, self.file_idx, self.names, self.header_raw);
        let hint = self.kept_hint.load(Ordering::Relaxed);
        sink.out.lines.reserve(hint + hint / 4);
        let (lines, whole) = scan_piece(buf, self.spec.delim(), complete, &mut sink);
        self.kept_hint.store(sink.out.lines.len(), Ordering::Relaxed);
        (sink.out, lines, whole)
    }

    /// Scans the blocks from `blocks`, piece by piece on the pool, and
    /// `finish`es each in order once all its pieces are back. Pieces are
    /// tasks of one scope, and the next block's are queued before the last
    /// one's end: the pool does not wait at each block's end for its slowest
    /// piece (with a parallel loop per block, its threads slept 184-189 ms
    /// of a 5M-line run; now 75-117 ms).
    fn schedule(
        &self,
        blocks: Receiver<Result<Block>>,
        exact: bool,
        mut finish: impl FnMut(InFlight) -> Result<Option<u64>>,
    ) -> Result<Option<u64>> {
        let (done_tx, done_rx) = std::sync::mpsc::channel::<Done>();
        rayon::in_place_scope(|s| {
            let mut flight: VecDeque<InFlight> = VecDeque::new();
            let mut blocks = blocks.into_iter();
            let mut seq = 0u64;
            let mut more = true;
            loop {
                while flight.front().is_some_and(|f| f.left == 0) {
                    if let Some(f) = flight.pop_front()
                        && let Some(at) = finish(f)?
                    {
                        // Dropping the queue stops the reader; the pieces in
                        // flight finish unread.
                        return Ok(Some(at));
                    }
                }
                // Two blocks in flight: one scanned while the other's last
                // pieces finish.
                if more && flight.len() < 2 {
                    match blocks.next() {
                        Some(block) => {
                            crate::signals::check()?;
                            flight.push_back(self.start(s, Arc::new(block?), seq, exact, &done_tx));
                            seq += 1;
                            continue;
                        }
                        None => more = false,
                    }
                }
                let Some(first) = flight.front().map(|f| f.seq) else { break };
                let (at, i, part) = done_rx.recv().map_err(|_| Error::Internal("a piece's scan was lost".into()))?;
                let part = part.map_err(|_| Error::Internal("a piece's scan panicked".into()))?;
                let f = usize::try_from(at - first).ok().and_then(|k| flight.get_mut(k));
                let f = f.ok_or_else(|| Error::Internal("a scanned piece of no block in flight".into()))?;
                f.parts[i] = Some(part);
                f.left -= 1;
            }
            Ok(None)
        })
    }

    /// Queues the scans of a block's pieces on the pool; each sends its
    /// result to `done`.
    fn start<'s>(&'s self, s: &rayon::Scope<'s>, block: Arc<Block>, seq: u64, exact: bool, done: &Sender<Done>) -> InFlight {
        let n = block.pieces.len();
        for (i, &(a, b)) in block.pieces.iter().enumerate() {
            let (block, done) = (Arc::clone(&block), done.clone());
            s.spawn(move |_| {
                // Cut exactly, or the input's last piece.
                let complete = exact || (block.eof && i + 1 == n);
                let part = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.scan(&block.buf[a..b], complete)));
                // Released before the result is sent, so the joiner holds
                // the last reference.
                drop(block);
                let _ = done.send((seq, i, part));
            });
        }
        InFlight { seq, parts: (0..n).map(|_| None).collect(), left: n, block }
    }
}

/// A scanned piece: its block's sequence number, its index, its result.
type Done = (u64, usize, std::thread::Result<Scanned>);

/// Rereads after a wrong guess, for the tests.
#[cfg(test)]
static REREADS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// The reader thread's loop, for any source of windows, from `start` (the
/// data the source has already given, if any): cuts the window into pieces
/// (`cut(w, eof)`), grows it for a record longer than it, and hands each
/// block over. `split(w, n)` parts a window after its first `n` bytes (the
/// block, and what the next window starts with); `fill_to(w, want)` makes
/// the window hold `want` bytes, fewer at the end of the input (true).
fn feed<W: std::ops::Deref<Target = [u8]> + Into<Buf>>(
    tx: &SyncSender<Result<Block>>,
    path: &Path,
    start: W,
    cut: impl Fn(&[u8], bool) -> (Vec<(usize, usize)>, usize),
    mut split: impl FnMut(W, usize) -> (W, W),
    mut fill_to: impl FnMut(W, usize) -> Result<(W, bool)>,
) -> Result<()> {
    let (mut w, mut eof) = fill_to(start, BLOCK)?;
    loop {
        let (pieces, consumed) = cut(&w, eof);
        if pieces.is_empty() && !eof {
            if w.len() > MAX_RECORD {
                return Err(too_long(path));
            }
            // Capped one byte past the limit, so the limit is the same for
            // every source, whatever steps its window grows by.
            let want = (w.len() + BLOCK).min(MAX_RECORD + 1);
            (w, eof) = fill_to(w, want)?;
            continue;
        }
        // At the end `cut` takes everything, so nothing is left to read.
        let (block, rest) = split(w, consumed);
        if tx.send(Ok(Block { buf: block.into(), pieces, bytes: consumed as u64, eof })).is_err() || eof {
            return Ok(());
        }
        let want = BLOCK.max(rest.len() + PIECE);
        (w, eof) = fill_to(rest, want)?;
    }
}

/// Cuts a buffer that starts at a record boundary into pieces of whole
/// records. Returns the pieces and how many bytes they cover; at EOF that is
/// everything. `exact` finds each boundary with a quote-aware pass over
/// every byte; without it each cut is a guess (`guess`) that the piece's
/// scan confirms, and a buffer with no place to guess is cut exactly.
fn cut(buf: &[u8], delim: u8, eof: bool, exact: bool) -> (Vec<(usize, usize)>, usize) {
    let mut pieces = Vec::new();
    let mut start = 0;
    let mut target = PIECE;
    while target < buf.len() {
        let boundary = if exact {
            let (p, in_q) = quote_state(buf, start, target, delim);
            next_boundary(buf, p, in_q, delim)
        } else {
            guess(buf, target)
        };
        match boundary {
            Some(b) => {
                pieces.push((start, b));
                start = b;
                target = b + PIECE;
            }
            None => break,
        }
    }
    if eof {
        if start < buf.len() {
            pieces.push((start, buf.len()));
        }
        return (pieces, buf.len());
    }
    // The tail: whole records after the last cut (a guess leaves up to
    // `TAIL` bytes to the next buffer).
    let end = if exact {
        let (mut end, mut p) = (start, start);
        while let Some(b) = next_boundary(buf, p, false, delim) {
            end = b;
            p = b;
        }
        Some(end)
    } else {
        guess(buf, buf.len().saturating_sub(TAIL).max(start)).or_else(|| guess(buf, start))
    };
    match end {
        Some(end) if end > start => pieces.push((start, end)),
        _ if pieces.is_empty() && !exact => return cut(buf, delim, eof, true),
        _ => {}
    }
    let end = pieces.last().map_or(0, |p| p.1);
    (pieces, end)
}

/// How much of a buffer a guessed tail cut looks through.
const TAIL: usize = 64 << 10;

/// A guessed record boundary at or after `from`: after the first newline
/// whose line, and the line after it, hold an even number of quotes. A
/// newline inside a quoted field has an odd count on one side or the other,
/// unless the field spans four lines or more.
fn guess(buf: &[u8], from: usize) -> Option<usize> {
    let even = |a: usize, b: usize| memchr::memchr_iter(b'"', &buf[a..b]).count().is_multiple_of(2);
    let line = from + memchr::memchr(b'\n', &buf[from..])? + 1;
    let mut nl = line + memchr::memchr(b'\n', &buf[line..])?;
    let mut before = even(line, nl);
    loop {
        let next = nl + 1 + memchr::memchr(b'\n', &buf[nl + 1..])?;
        let after = even(nl + 1, next);
        if before && after {
            return Some(nl + 1);
        }
        (nl, before) = (next, after);
    }
}

/// Splits and checks every record of a piece; returns the physical lines it
/// spans, and false when its last record runs past its end (a guessed cut
/// inside a quoted field). A `complete` piece (cut exactly, or the input's
/// last) ends with its last record whatever it holds, as at the end of the
/// input.
fn scan_piece(piece: &[u8], delim: u8, complete: bool, sink: &mut RowSink) -> (u64, bool) {
    let mut f = Fields::new();
    let probe = Probe::new(sink.probe_fields());
    let (mut pos, mut line) = (0usize, 0u64);
    // Rows probed and rows the probe settled, since the last look. Where most
    // rows are in scope (a dense extract) the probe is work done twice, so it
    // pauses for a stretch and then tries again.
    let (mut probed, mut settled, mut paused) = (0u32, 0u32, 0u32);
    while pos < piece.len() {
        // Most rows are settled by their key alone, without splitting them.
        if paused > 0 {
            paused -= 1;
        } else if let Some(p) = probe_record(&piece[pos..], delim, &probe) {
            let field = |i: usize| {
                let r = p.field(i);
                debug_assert!(r.is_some(), "field {i} was not probed");
                r.map_or(&[][..], |(a, b)| &piece[pos + a..pos + b])
            };
            let skip = sink.skip_out_of_scope(p.nfields, field);
            (probed, settled) = (probed + 1, settled + u32::from(skip));
            if probed == PROBE_LOOK {
                if settled < PROBE_LOOK / 2 {
                    paused = PROBE_PAUSE;
                }
                (probed, settled) = (0, 0);
            }
            if skip {
                line += 1;
                pos += p.line_end + 1;
                continue;
            }
        }
        let Some(span) = split_record(piece, pos, delim, complete, &mut f) else { return (line, false) };
        let raw = &piece[pos..span.text_end];
        // Blank lines (empty or only CRs) are not rows.
        if !raw.iter().all(|&b| b == b'\r') {
            let data: &[u8] = if span.quoted { &f.scratch } else { piece };
            let ranges = &f.ranges;
            sink.row(line, ranges.len(), |i| &data[ranges[i].0 as usize..ranges[i].1 as usize], raw);
        }
        line += span.lines;
        pos = span.next;
    }
    (line, true)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::columns::ColumnMap;
    use crate::policy::Policy;

    /// The fast reader on `text`, mapped (cut by guess) and as a stream
    /// (cut exactly).
    fn mapped_and_streamed(text: &[u8]) -> (FileOutput, FileOutput) {
        let policy = Policy::default_policy().unwrap();
        let columns = ColumnMap::default();
        let spec = ScanSpec::new(&policy, &columns);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.csv");
        std::fs::write(&path, text).unwrap();
        let mapped = read(&path, Format::Csv, 0, &spec, &|_| {}).unwrap();
        let streamed = read_from(&mut &text[..], Path::new("t.csv"), 0, &spec, &|_| {}).unwrap();
        (mapped, streamed)
    }

    fn assert_same(m: FileOutput, s: FileOutput) {
        assert_eq!(m.stats.counts, s.stats.counts);
        assert_eq!(m.rejects, s.rejects);
        assert_eq!(m.uncoded, s.uncoded);
        let (m, s) = (m.into_chunks().concat(), s.into_chunks().concat());
        assert!(!m.is_empty());
        assert!(m == s, "kept lines differ");
    }

    /// Rows of `n` bytes or more, from row `from`; each row's quoted note
    /// holds `breaks` newlines.
    fn rows(text: &mut String, n: usize, from: usize, breaks: usize) -> usize {
        let mut i = from;
        let end = text.len() + n;
        while text.len() < end {
            let note = "see\n".repeat(breaks * (1 + i % 3));
            let code = if i.is_multiple_of(5) { "J2350" } else { "99213" };
            let day = 1 + i % 28;
            text.push_str(&format!("C{i},1,P{},2025-11-{day:02},{code},600,G35,\"{note}\"\n", i % 97));
            i += 1;
        }
        i
    }

    const HEAD: &str =
        "claim_id,claim_line_number,person_id,claim_line_start_date,hcpcs_code,service_unit_quantity,diagnosis_code_1,note\n";

    /// A guessed cut that falls inside a quoted field is found by the
    /// piece's scan, and the block is read again with exact cuts: the same
    /// rows, line numbers and counts as the exact read. Here the notes hold
    /// most of the newlines, so nearly every guess is wrong; the first
    /// block is plain, so the reread starts at the second, and the file
    /// ends without a newline.
    #[test]
    fn a_cut_inside_a_quoted_field_is_read_again() {
        let mut text = HEAD.to_string();
        let i = rows(&mut text, BLOCK + PIECE, 0, 0);
        rows(&mut text, 3 * PIECE, i, 12);
        text.pop();
        let before = REREADS.load(std::sync::atomic::Ordering::Relaxed);
        let (m, s) = mapped_and_streamed(text.as_bytes());
        assert!(REREADS.load(std::sync::atomic::Ordering::Relaxed) > before, "no cut was guessed wrong");
        assert_same(m, s);
        // Wrong from the first block on.
        let mut text = HEAD.to_string();
        rows(&mut text, 3 * PIECE, 0, 12);
        let (m, s) = mapped_and_streamed(text.as_bytes());
        assert_same(m, s);
    }

    /// Records that each span two lines with a quote on each (an odd count
    /// on both sides of every newline) leave no place to guess: each buffer
    /// is cut exactly, and read as a stream reads it.
    #[test]
    fn records_of_two_lines_each_are_cut_exactly() {
        let mut text = HEAD.to_string();
        let mut i = 0usize;
        while text.len() < BLOCK + 3 * PIECE {
            let code = if i.is_multiple_of(9) { "J2350" } else { "99213" };
            text.push_str(&format!("C{i},1,P{},2025-11-03,{code},600,G35,\"first\nsecond\"\n", i % 89));
            i += 1;
        }
        let (m, s) = mapped_and_streamed(text.as_bytes());
        assert_same(m, s);
    }

    /// Quoted fields without newlines leave every guessed cut right.
    #[test]
    fn guessed_cuts_match_exact_cuts() {
        let mut text = HEAD.to_string();
        rows(&mut text, 2 * BLOCK + 3 * PIECE, 0, 0);
        let (m, s) = mapped_and_streamed(text.as_bytes());
        assert_same(m, s);
    }

    /// A quote that never closes is an error once its record passes
    /// `MAX_RECORD`, read as a stream or mapped, and a record just under
    /// the limit is read in both.
    #[test]
    fn the_record_limit_is_the_same_mapped_and_streamed() {
        let policy = Policy::default_policy().unwrap();
        let columns = ColumnMap::default();
        let spec = ScanSpec::new(&policy, &columns);
        let dir = tempfile::tempdir().unwrap();
        let head = "claim_id,claim_line_number,person_id,claim_line_start_date,hcpcs_code,service_unit_quantity,diagnosis_code_1\nA,1,P1,2025-11-03,J2350,600,G35\n";
        for (len, fails) in [(MAX_RECORD + 2, true), (MAX_RECORD - 16, false)] {
            let mut text = format!("{head}B,1,\"").into_bytes();
            text.resize(text.len() + len, b'a');
            let path = dir.path().join("t.csv");
            std::fs::write(&path, &text).unwrap();
            let mapped = read(&path, Format::Csv, 0, &spec, &|_| {});
            let streamed = read_from(&mut text.as_slice(), Path::new("t.csv"), 0, &spec, &|_| {});
            assert_eq!(mapped.is_err(), fails, "mapped, {len} bytes");
            assert_eq!(streamed.is_err(), fails, "streamed, {len} bytes");
            if !fails {
                let (m, s) = (mapped.unwrap(), streamed.unwrap());
                assert_eq!(m.stats.counts, s.stats.counts);
                assert_eq!(m.stats.counts.rows_read, 2);
            }
        }
    }

    #[test]
    fn sniffs_the_delimiter_a_header_uses() {
        assert_eq!(sniff_delimiter(b"claim_id,claim_line_number\nA|1\n"), b',');
        assert_eq!(sniff_delimiter(b"\xEF\xBB\xBFclaim_id|claim_line_number|person_id\r\n"), b'|');
        assert_eq!(sniff_delimiter(b"claim_id\tperson_id\n"), b'\t');
        // Delimiters inside a quoted name do not count; none at all is comma.
        assert_eq!(sniff_delimiter(b"\"a,b,c\"|x|y\n"), b'|');
        assert_eq!(sniff_delimiter(b"claim_id\n"), b',');
        assert_eq!(sniff_delimiter(b""), b',');
    }
}
