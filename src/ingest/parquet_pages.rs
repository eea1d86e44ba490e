//! The values of chosen rows of one flat Parquet column chunk, read from its
//! pages directly: definition levels and dictionary indices are decoded
//! (cheap: bit unpacking), and only the chosen rows' values are looked up
//! and copied. arrow-rs's row selection decodes every value of a selection
//! this fragmented (6% of rows, in runs of one or two) and filters after,
//! which was a third of a Parquet scan.
//!
//! Covers what extract writers use for the columns the audit reads: PLAIN
//! and dictionary encodings of strings, 32/64-bit integers, dates and
//! floating point, in v1 and v2 data pages. Anything else (other encodings,
//! nested or repeated columns, other types) is `None`, and the caller reads
//! that column with arrow-rs.

use std::fs::File;
use std::sync::Arc;

use arrow_array::builder::StringBuilder;
use arrow_array::{ArrayRef, Date32Array, Float32Array, Float64Array, Int32Array, Int64Array};
use arrow_schema::DataType;
use parquet::basic::{Encoding, Type as PhysicalType};
use parquet::column::page::{Page, PageReader};
use parquet::file::metadata::ColumnChunkMetaData;
use parquet::file::serialized_reader::SerializedPageReader;
use parquet::schema::types::ColumnDescriptor;

/// How a column's values become an Arrow array.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    Text,
    Int32,
    Date32,
    Int64,
    Float32,
    Float64,
}

impl Kind {
    /// The kind for a leaf read as `arrow` type, when this module reads it.
    fn of(descr: &ColumnDescriptor, arrow: &DataType) -> Option<Kind> {
        if descr.max_rep_level() != 0 || descr.max_def_level() > 1 {
            return None;
        }
        Some(match (descr.physical_type(), arrow) {
            (PhysicalType::BYTE_ARRAY, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View) => Kind::Text,
            (PhysicalType::INT32, DataType::Int32) => Kind::Int32,
            (PhysicalType::INT32, DataType::Date32) => Kind::Date32,
            (PhysicalType::INT64, DataType::Int64) => Kind::Int64,
            (PhysicalType::FLOAT, DataType::Float32) => Kind::Float32,
            (PhysicalType::DOUBLE, DataType::Float64) => Kind::Float64,
            _ => return None,
        })
    }

    fn width(self) -> usize {
        match self {
            Kind::Text => 0,
            Kind::Int32 | Kind::Date32 | Kind::Float32 => 4,
            Kind::Int64 | Kind::Float64 => 8,
        }
    }
}

/// A column chunk's pages, read forward: each `take` returns the values of
/// the next chosen rows, so a row group is read a batch of rows at a time
/// (a dense extract chooses every row) with one page of each column held.
pub struct Column {
    pages: SerializedPageReader<File>,
    kind: Kind,
    optional: bool,
    dict: Option<Dict>,
    /// The current data page, and the rows before it.
    page: Option<DataPage>,
    row0: usize,
    at: Vec<usize>,
    indices: Vec<u32>,
    slots: Vec<Option<usize>>,
}

/// A data page: its buffer, row count, value encoding, and where its
/// definition levels and values lie in the buffer.
struct DataPage {
    page: Page,
    n: usize,
    encoding: Encoding,
    defs: std::ops::Range<usize>,
    values: std::ops::Range<usize>,
}

/// The encodings `Column` reads, for values and levels.
const READ: [Encoding; 4] = [Encoding::PLAIN, Encoding::PLAIN_DICTIONARY, Encoding::RLE_DICTIONARY, Encoding::RLE];

impl Column {
    /// Opens column chunk `chunk` (of a row group of `group_rows` rows) to be
    /// read as `arrow` type (the type arrow-rs would give it). None when its
    /// type, nesting or encodings are not ones this module reads.
    pub fn open(file: &Arc<File>, chunk: &ColumnChunkMetaData, arrow: &DataType, group_rows: usize) -> Res<Option<Column>> {
        let Some(kind) = Kind::of(chunk.column_descr(), arrow) else {
            return Ok(None);
        };
        if chunk.encodings().any(|e| !READ.contains(&e)) {
            return Ok(None);
        }
        let pages = SerializedPageReader::new(Arc::clone(file), chunk, group_rows, None).map_err(|e| e.to_string())?;
        let optional = chunk.column_descr().max_def_level() == 1;
        Ok(Some(Column { pages, kind, optional, dict: None, page: None, row0: 0, at: Vec::new(), indices: Vec::new(), slots: Vec::new() }))
    }

    /// The values at `rows` (ascending row positions in the row group, after
    /// those of earlier calls), in row order.
    pub fn take(&mut self, rows: &[usize]) -> Res<ArrayRef> {
        let mut picked = Picked::new(self.kind, rows.len());
        let mut k = 0usize;
        while k < rows.len() {
            let n = match &self.page {
                Some(p) if rows[k] < self.row0 + p.n => p.n,
                Some(p) => {
                    self.row0 += p.n;
                    self.page = None;
                    continue;
                }
                None => {
                    self.skip_before(rows[k])?;
                    self.page = Some(self.next_data_page()?.ok_or("a chosen row past the column chunk")?);
                    continue;
                }
            };
            let end = k + rows[k..].partition_point(|&r| r < self.row0 + n);
            self.pick(&rows[k..end], &mut picked)?;
            k = end;
        }
        Ok(picked.into_array())
    }

    /// Skips the data pages that end before `row` without decompressing
    /// them: a column read only for a few rows (a fallback, see
    /// `normalize::reads_fallback`) passes most of its pages by. A
    /// dictionary page on the way is kept.
    fn skip_before(&mut self, row: usize) -> Res<()> {
        while let Some(m) = self.pages.peek_next_page().map_err(|e| e.to_string())? {
            if m.is_dict {
                match self.pages.get_next_page().map_err(|e| e.to_string())? {
                    Some(Page::DictionaryPage { buf, num_values, encoding, .. }) => {
                        self.dict = Some(Dict::of(self.kind, &buf, num_values as usize, encoding)?)
                    }
                    _ => return Err("a dictionary page that is not one".into()),
                }
                continue;
            }
            // A flat column's page holds one level per row.
            match m.num_rows.or(m.num_levels) {
                Some(n) if row >= self.row0 + n => {
                    self.pages.skip_next_page().map_err(|e| e.to_string())?;
                    self.row0 += n;
                }
                _ => return Ok(()),
            }
        }
        Ok(())
    }

    /// The next data page; a dictionary page on the way is kept.
    fn next_data_page(&mut self) -> Res<Option<DataPage>> {
        for page in self.pages.by_ref() {
            let page = page.map_err(|e| e.to_string())?;
            let (n, encoding, defs, values) = match &page {
                Page::DictionaryPage { buf, num_values, encoding, .. } => {
                    self.dict = Some(Dict::of(self.kind, buf, *num_values as usize, *encoding)?);
                    continue;
                }
                Page::DataPage { buf, num_values, encoding, def_level_encoding, .. } => {
                    if !self.optional {
                        (*num_values as usize, *encoding, 0..0, 0..buf.len())
                    } else if *def_level_encoding != Encoding::RLE {
                        return Err(format!("definition levels encoded {def_level_encoding}"));
                    } else {
                        let len: [u8; 4] = buf.get(..4).and_then(|b| b.try_into().ok()).ok_or("short page")?;
                        let end = 4usize
                            .checked_add(u32::from_le_bytes(len) as usize)
                            .filter(|&e| e <= buf.len())
                            .ok_or("levels past the page")?;
                        (*num_values as usize, *encoding, 4..end, end..buf.len())
                    }
                }
                Page::DataPageV2 { buf, num_values, encoding, def_levels_byte_len, rep_levels_byte_len, .. } => {
                    let rep = *rep_levels_byte_len as usize;
                    let end = rep.checked_add(*def_levels_byte_len as usize).filter(|&e| e <= buf.len()).ok_or("levels past the page")?;
                    (*num_values as usize, *encoding, rep..end, end..buf.len())
                }
            };
            if !READ.contains(&encoding) || encoding == Encoding::RLE {
                return Err(format!("values encoded {encoding}"));
            }
            return Ok(Some(DataPage { page, n, encoding, defs, values }));
        }
        Ok(None)
    }

    /// Adds the values of `mine` (rows on the current page) to `picked`.
    fn pick(&mut self, mine: &[usize], picked: &mut Picked) -> Res<()> {
        let Some(p) = &self.page else { return Err("no page".into()) };
        let buf = p.page.buffer();
        let (base, n) = (self.row0, p.n);
        // Each chosen row's value index on the page (None: null).
        let (at, slots) = (&mut self.at, &mut self.slots);
        slots.clear();
        at.clear();
        at.extend(mine.iter().map(|&r| r - base));
        let non_null = if self.optional {
            levels_at(&buf[p.defs.clone()], n, at, slots)?
        } else {
            slots.extend(at.iter().map(|&i| Some(i)));
            n
        };
        let vals = &buf[p.values.clone()];
        match p.encoding {
            Encoding::PLAIN if self.kind == Kind::Text => {
                let mut spans = plain_spans(vals, non_null, Some(slots))?.into_iter();
                for s in slots.iter() {
                    match s {
                        None => picked.null(),
                        Some(_) => {
                            let (a, l) = spans.next().ok_or("value missing")?;
                            picked.text(&vals[a as usize..(a + l) as usize])?;
                        }
                    }
                }
            }
            Encoding::PLAIN => {
                for s in slots.iter() {
                    match s {
                        None => picked.null(),
                        Some(i) => picked.fixed(vals, *i)?,
                    }
                }
            }
            _ => {
                let Some(d) = &self.dict else { return Err("dictionary-encoded page without a dictionary".into()) };
                let bit_width = *vals.first().ok_or("empty page")?;
                at.clear();
                at.extend(slots.iter().flatten());
                hybrid_at(&vals[1..], bit_width, non_null, at, &mut self.indices)?;
                let mut keys = self.indices.iter();
                for s in slots.iter() {
                    if s.is_none() {
                        picked.null();
                        continue;
                    }
                    let key = *keys.next().ok_or("value missing")? as usize;
                    match d {
                        Dict::Text(all, spans) => {
                            let (a, l) = *spans.get(key).ok_or("index past the dictionary")?;
                            picked.str(all.get(a as usize..(a + l) as usize).ok_or("bad dictionary span")?);
                        }
                        Dict::Fixed(b) => picked.fixed(b, key)?,
                    }
                }
            }
        }
        Ok(())
    }
}

/// The chosen rows' values so far, in row order: text, or the bits of
/// fixed-width values (little-endian, zero-extended to 64 bits).
struct Picked {
    kind: Kind,
    text: StringBuilder,
    fixed: Vec<Option<u64>>,
}

impl Picked {
    fn new(kind: Kind, rows: usize) -> Picked {
        let text = if kind == Kind::Text { StringBuilder::with_capacity(rows, rows * 12) } else { StringBuilder::new() };
        let fixed = if kind == Kind::Text { Vec::new() } else { Vec::with_capacity(rows) };
        Picked { kind, text, fixed }
    }

    fn null(&mut self) {
        match self.kind {
            Kind::Text => self.text.append_null(),
            _ => self.fixed.push(None),
        }
    }

    fn text(&mut self, v: &[u8]) -> Res<()> {
        // Most values are short ASCII codes and ids: an inlined ASCII check
        // instead of a call to the general validator for each.
        self.str(utf8(v, v.is_ascii())?);
        Ok(())
    }

    fn str(&mut self, v: &str) {
        self.text.append_value(v);
    }

    fn fixed(&mut self, buf: &[u8], i: usize) -> Res<()> {
        let w = self.kind.width();
        let v = buf.get(i * w..i * w + w).ok_or("value past the page")?;
        self.fixed.push(Some(v.iter().rev().fold(0u64, |acc, &b| acc << 8 | b as u64)));
        Ok(())
    }

    fn into_array(mut self) -> ArrayRef {
        let f = self.fixed.iter();
        match self.kind {
            Kind::Text => Arc::new(self.text.finish()),
            Kind::Int32 => Arc::new(f.map(|v| v.map(|b| b as u32 as i32)).collect::<Int32Array>()),
            Kind::Date32 => Arc::new(f.map(|v| v.map(|b| b as u32 as i32)).collect::<Date32Array>()),
            Kind::Float32 => Arc::new(f.map(|v| v.map(|b| f32::from_bits(b as u32))).collect::<Float32Array>()),
            Kind::Int64 => Arc::new(f.map(|v| v.map(|b| b as i64)).collect::<Int64Array>()),
            Kind::Float64 => Arc::new(f.map(|v| v.map(f64::from_bits)).collect::<Float64Array>()),
        }
    }
}

/// A dictionary page's values (copied: a dictionary is small).
enum Dict {
    /// The values one after another, each checked as UTF-8 once, and each
    /// value's span in them.
    Text(String, Vec<(u32, u32)>),
    Fixed(Vec<u8>),
}

impl Dict {
    /// A dictionary page's values, read as `kind`.
    fn of(kind: Kind, buf: &[u8], n: usize, encoding: Encoding) -> Res<Dict> {
        if !matches!(encoding, Encoding::PLAIN | Encoding::PLAIN_DICTIONARY) {
            return Err(format!("dictionary page encoded {encoding}"));
        }
        Ok(match kind {
            Kind::Text => Dict::text(buf, n)?,
            _ => Dict::Fixed(buf.to_vec()),
        })
    }

    fn text(buf: &[u8], n: usize) -> Res<Dict> {
        let spans = plain_spans(buf, n, None)?;
        let mut all = String::with_capacity(buf.len());
        let mut at = Vec::with_capacity(spans.len());
        // A page all ASCII (lengths under 128 included) holds only valid
        // values: one check of the page instead of one call per value (a
        // large dictionary's values were 3% of a 5M Parquet audit's CPU).
        let ascii = buf.is_ascii();
        for &(a, l) in &spans {
            let v = utf8(&buf[a as usize..(a + l) as usize], ascii)?;
            at.push((all.len() as u32, l));
            all.push_str(v);
        }
        Ok(Dict::Text(all, at))
    }
}

type Res<T> = std::result::Result<T, String>;

/// A string value as text; `ascii` when its bytes are known to be ASCII, so
/// need no check (4% of a 5M Parquet audit's CPU was `from_utf8`).
#[inline]
fn utf8(v: &[u8], ascii: bool) -> Res<&str> {
    if ascii {
        debug_assert!(v.is_ascii());
        // SAFETY: ASCII bytes are valid UTF-8.
        return Ok(unsafe { std::str::from_utf8_unchecked(v) });
    }
    std::str::from_utf8(v).map_err(|_| "invalid UTF-8 in a string column".into())
}

/// Spans (start, length) of PLAIN byte-array values: of all `n` values, or
/// only of those `want` names (value indices, ascending; None entries, the
/// nulls, are skipped).
fn plain_spans(buf: &[u8], n: usize, want: Option<&[Option<usize>]>) -> Res<Vec<(u32, u32)>> {
    let mut out = Vec::with_capacity(want.map_or(n, |w| w.len()));
    let mut wanted = want.map(|w| w.iter().flatten().copied().peekable());
    let mut p = 0usize;
    for i in 0..n {
        if wanted.as_mut().is_some_and(|w| w.peek().is_none()) {
            break;
        }
        let len = u32::from_le_bytes(buf.get(p..p + 4).ok_or("value past the page")?.try_into().map_err(|_| "short value")?) as usize;
        let start = p + 4;
        p = start.checked_add(len).filter(|&e| e <= buf.len()).ok_or("value past the page")?;
        match wanted.as_mut() {
            None => out.push((start as u32, len as u32)),
            Some(w) => {
                if w.peek() == Some(&i) {
                    w.next();
                    out.push((start as u32, len as u32));
                }
            }
        }
    }
    if wanted.as_mut().is_some_and(|w| w.peek().is_some()) {
        return Err("fewer values than the page says".into());
    }
    Ok(out)
}

/// One run of Parquet's RLE / bit-packed hybrid encoding.
enum Run<'a> {
    /// `n` copies of `value`.
    Rle { value: u32, n: usize },
    /// `n` values (a multiple of 8) of `bit_width` bits, least significant first.
    Packed { bytes: &'a [u8], n: usize },
}

/// The runs of a hybrid-encoded buffer.
struct Runs<'a> {
    data: &'a [u8],
    p: usize,
    bw: usize,
}

impl<'a> Runs<'a> {
    fn new(data: &'a [u8], bit_width: u8) -> Res<Runs<'a>> {
        if bit_width > 32 {
            return Err(format!("bit width {bit_width}"));
        }
        Ok(Runs { data, p: 0, bw: bit_width as usize })
    }

    fn next_run(&mut self) -> Res<Run<'a>> {
        const SHORT: &str = "levels or indices cut short";
        let mut header = 0u64;
        let mut shift = 0;
        loop {
            let b = *self.data.get(self.p).ok_or(SHORT)?;
            self.p += 1;
            header |= ((b & 0x7f) as u64) << shift;
            if b & 0x80 == 0 {
                break;
            }
            shift += 7;
            if shift > 56 {
                return Err("bad run header".into());
            }
        }
        let n = (header >> 1) as usize;
        if header & 1 == 1 {
            // Saturating: a damaged header may claim any count.
            let n = n.saturating_mul(8);
            // A writer may cut the last run's padding.
            let end = self.p.saturating_add(n.saturating_mul(self.bw).div_ceil(8)).min(self.data.len());
            let bytes = &self.data[self.p..end];
            self.p = end;
            Ok(Run::Packed { bytes, n })
        } else {
            let vb = self.bw.div_ceil(8);
            let v = self.data.get(self.p..self.p + vb).ok_or(SHORT)?;
            let value = v.iter().enumerate().fold(0u32, |acc, (k, b)| acc | (*b as u32) << (8 * k));
            self.p += vb;
            if n == 0 {
                return Err("empty run".into());
            }
            Ok(Run::Rle { value, n })
        }
    }
}

/// Value `i` of a bit-packed run.
fn unpack(bytes: &[u8], bw: usize, i: usize) -> Res<u32> {
    let bit = i * bw;
    let at = bit / 8;
    let word = match bytes.get(at..at + 8) {
        Some(w) => u64::from_le_bytes(w.try_into().map_err(|_| "short run")?),
        None => {
            if (bit + bw).div_ceil(8) > bytes.len() {
                return Err("levels or indices cut short".into());
            }
            bytes[at..].iter().enumerate().fold(0u64, |acc, (k, b)| acc | (*b as u64) << (8 * k))
        }
    };
    let mask = if bw == 32 { u32::MAX as u64 } else { (1u64 << bw) - 1 };
    Ok(((word >> (bit % 8)) & mask) as u32)
}

/// The values at positions `at` (ascending, below `count`) of a
/// hybrid-encoded buffer: runs are walked, only those values unpacked.
fn hybrid_at(data: &[u8], bit_width: u8, count: usize, at: &[usize], out: &mut Vec<u32>) -> Res<()> {
    out.clear();
    let mut runs = Runs::new(data, bit_width)?;
    let (mut pos, mut k) = (0usize, 0usize);
    while k < at.len() {
        if pos >= count {
            return Err("position past the values".into());
        }
        let run = runs.next_run()?;
        match run {
            Run::Rle { value, n } => {
                let end = pos + n.min(count - pos);
                while k < at.len() && at[k] < end {
                    out.push(value);
                    k += 1;
                }
                pos = end;
            }
            Run::Packed { bytes, n } => {
                let end = pos + n.min(count - pos);
                while k < at.len() && at[k] < end {
                    out.push(unpack(bytes, runs.bw, at[k] - pos)?);
                    k += 1;
                }
                pos = end;
            }
        }
    }
    Ok(())
}

/// For definition levels of a flat optional column (bit width 1): for each
/// position in `at` (ascending, below `count`), None when the value is null,
/// else its index among the non-null values. Returns the non-null count of
/// the first `count` values.
fn levels_at(data: &[u8], count: usize, at: &[usize], out: &mut Vec<Option<usize>>) -> Res<usize> {
    out.clear();
    let mut runs = Runs::new(data, 1)?;
    let (mut pos, mut ones, mut k) = (0usize, 0usize, 0usize);
    while pos < count {
        match runs.next_run()? {
            Run::Rle { value, n } => {
                let n = n.min(count - pos);
                while k < at.len() && at[k] < pos + n {
                    out.push((value == 1).then(|| ones + at[k] - pos));
                    k += 1;
                }
                if value == 1 {
                    ones += n;
                }
                pos += n;
            }
            Run::Packed { bytes, n } => {
                let n = n.min(count - pos);
                if bytes.len() < n.div_ceil(8) {
                    return Err("levels cut short".into());
                }
                // Ones in bytes[..byte], kept as the wanted positions ascend.
                let (mut byte, mut before) = (0usize, 0usize);
                while k < at.len() && at[k] < pos + n {
                    let off = at[k] - pos;
                    while byte < off / 8 {
                        before += bytes[byte].count_ones() as usize;
                        byte += 1;
                    }
                    let b = bytes[off / 8];
                    let set = (b >> (off % 8)) & 1 == 1;
                    let partial = (b & ((1u16 << (off % 8)) - 1) as u8).count_ones() as usize;
                    out.push(set.then_some(ones + before + partial));
                    k += 1;
                }
                let full: usize = bytes[..n / 8].iter().map(|b| b.count_ones() as usize).sum();
                let tail = if n % 8 == 0 { 0 } else { (bytes[n / 8] & ((1u16 << (n % 8)) - 1) as u8).count_ones() as usize };
                ones += full + tail;
                pos += n;
            }
        }
    }
    if k < at.len() {
        return Err("position past the levels".into());
    }
    Ok(ones)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An RLE run of 3 x 5, then a bit-packed group of 8 values 0..8 (width 3).
    fn runs() -> Vec<u8> {
        let mut data = vec![3 << 1, 5, 1 << 1 | 1];
        let bits = (0..8u64).fold(0u64, |acc, v| acc | v << (3 * v));
        data.extend_from_slice(&bits.to_le_bytes()[..3]);
        data
    }

    #[test]
    fn hybrid_picks_values_from_rle_and_bit_packed_runs() {
        let data = runs();
        let mut out = Vec::new();
        hybrid_at(&data, 3, 11, &(0..11).collect::<Vec<_>>(), &mut out).unwrap();
        assert_eq!(out, vec![5, 5, 5, 0, 1, 2, 3, 4, 5, 6, 7]);
        hybrid_at(&data, 3, 11, &[1, 4, 10], &mut out).unwrap();
        assert_eq!(out, vec![5, 1, 7]);
        // Fewer values than the runs hold; positions past them; cut short.
        hybrid_at(&data, 3, 4, &[3], &mut out).unwrap();
        assert_eq!(out, vec![0]);
        assert!(hybrid_at(&data, 3, 4, &[4], &mut out).is_err());
        assert!(hybrid_at(&data[..4], 3, 11, &[10], &mut out).is_err());
        assert!(hybrid_at(&[], 1, 1, &[0], &mut out).is_err());
    }

    #[test]
    fn levels_give_non_null_indices() {
        // 4 non-null, then packed 1,0,1,1,0,0,0,1 (0b1000_1101), then 2 null.
        let data = [4 << 1, 1, 1 << 1 | 1, 0b1000_1101, 2 << 1, 0];
        let mut out = Vec::new();
        let ones = levels_at(&data, 14, &(0..14).collect::<Vec<_>>(), &mut out).unwrap();
        let want = [Some(0), Some(1), Some(2), Some(3), Some(4), None, Some(5), Some(6), None, None, None, Some(7), None, None];
        assert_eq!(out, want);
        assert_eq!(ones, 8);
        let ones = levels_at(&data, 14, &[2, 7, 11], &mut out).unwrap();
        assert_eq!((out.as_slice(), ones), ([Some(2), Some(6), Some(7)].as_slice(), 8));
        // The packed run cut at 3 values.
        assert_eq!(levels_at(&data[..4], 7, &[6], &mut out).unwrap(), 6);
        assert!(levels_at(&data[..4], 13, &[], &mut out).is_err());
    }

    #[test]
    fn damaged_runs_are_errors_not_panics() {
        let mut out = Vec::new();
        let mut slots = Vec::new();
        // Run headers claiming 2^62 values, bit-packed and RLE.
        let huge_packed = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, 0x01];
        let huge_rle = [0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, 0x01];
        for data in [&huge_packed[..], &huge_rle[..], &[0x80; 12][..], &[0x03][..]] {
            for bw in [0u8, 1, 7, 32, 33] {
                let _ = hybrid_at(data, bw, 100, &[0, 50, 99], &mut out);
            }
            let _ = levels_at(data, 100, &[0, 50, 99], &mut slots);
        }
        assert!(hybrid_at(&[0x03], 8, 8, &[7], &mut out).is_err());
    }

    #[test]
    fn plain_spans_pick_wanted_values() {
        let mut buf = Vec::new();
        for s in ["a", "", "ccc", "dd"] {
            buf.extend_from_slice(&(s.len() as u32).to_le_bytes());
            buf.extend_from_slice(s.as_bytes());
        }
        let all = plain_spans(&buf, 4, None).unwrap();
        assert_eq!(all.len(), 4);
        let want = [Some(2), None, Some(3)];
        let some = plain_spans(&buf, 4, Some(&want)).unwrap();
        let texts: Vec<&[u8]> = some.iter().map(|&(a, l)| &buf[a as usize..(a + l) as usize]).collect();
        assert_eq!(texts, vec![b"ccc".as_slice(), b"dd".as_slice()]);
        assert!(plain_spans(&buf[..buf.len() - 1], 4, None).is_err());
        assert!(plain_spans(&buf, 5, Some(&[Some(4)])).is_err());
    }

    fn plain(values: &[&[u8]]) -> Vec<u8> {
        let mut buf = Vec::new();
        for v in values {
            buf.extend_from_slice(&(v.len() as u32).to_le_bytes());
            buf.extend_from_slice(v);
        }
        buf
    }

    /// A dictionary page is checked as UTF-8 once when it is all ASCII, and
    /// value by value otherwise: multi-byte values and lengths of 128 or
    /// more are read, a value that is not UTF-8 is an error either way.
    #[test]
    fn dictionary_values_are_checked_as_utf8() {
        let long = "x".repeat(200);
        for values in [vec!["J2350".as_bytes(), b"G35"], vec!["Ren\u{e9}e".as_bytes(), b"J2350"], vec![long.as_bytes(), b"a"]] {
            let Dict::Text(all, at) = Dict::text(&plain(&values), values.len()).unwrap() else { unreachable!() };
            let read: Vec<&[u8]> = at.iter().map(|&(a, l)| &all.as_bytes()[a as usize..(a + l) as usize]).collect();
            assert_eq!(read, values);
        }
        assert!(Dict::text(&plain(&[b"J2350", b"\xff"]), 2).is_err());
        let mut p = Picked::new(Kind::Text, 3);
        assert!(p.text(b"G35").is_ok() && p.text("Ren\u{e9}e".as_bytes()).is_ok());
        assert!(p.text(b"\xc3").is_err());
    }
}
