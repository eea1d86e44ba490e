//! RFC 4180 record splitting on raw bytes. A quote opens a quoted field only
//! at the start of a field (as the csv crate does); elsewhere it is literal.

/// Fields of one record: byte ranges into `data`, which is either the input
/// buffer itself (no quotes) or a scratch copy with quotes removed.
pub struct Fields {
    pub scratch: Vec<u8>,
    pub ranges: Vec<(u32, u32)>,
}

impl Fields {
    pub fn new() -> Fields {
        Fields { scratch: Vec::new(), ranges: Vec::with_capacity(64) }
    }
}

/// One record found at `start`: where its text ends (before the line
/// terminator), where the next record starts, how many physical lines it
/// spans, and whether its fields live in the scratch buffer.
pub struct Span {
    pub text_end: usize,
    pub next: usize,
    pub lines: u64,
    pub quoted: bool,
}

/// Splits the record starting at `start` into `f`. Returns None only when
/// the record is incomplete and `at_eof` is false.
pub fn split_record(buf: &[u8], start: usize, delim: u8, at_eof: bool, f: &mut Fields) -> Option<Span> {
    f.ranges.clear();
    match scan_plain(&buf[start..], delim, |a, b| f.ranges.push(((start + a) as u32, (start + b) as u32))) {
        Plain::Line(k) => {
            let line_end = start + k;
            let text_end = if line_end > start && buf[line_end - 1] == b'\r' { line_end - 1 } else { line_end };
            // The last field ends before a CR.
            if let Some(last) = f.ranges.last_mut() {
                last.1 = last.1.min(text_end as u32);
            }
            Some(Span { text_end, next: line_end + 1, lines: 1, quoted: false })
        }
        Plain::Unterminated if !at_eof => None,
        Plain::Unterminated => {
            let text_end = if buf.len() > start && buf[buf.len() - 1] == b'\r' { buf.len() - 1 } else { buf.len() };
            if let Some(last) = f.ranges.last_mut() {
                last.1 = last.1.min(text_end as u32);
            }
            Some(Span { text_end, next: buf.len(), lines: 1, quoted: false })
        }
        Plain::Quote => {
            f.ranges.clear();
            split_quoted(buf, start, delim, at_eof, f)
        }
    }
}

enum Plain {
    /// The record ends with the newline at this offset.
    Line(usize),
    /// No newline before the end of the buffer.
    Unterminated,
    /// A quote comes before the newline: the record needs the quoted path.
    Quote,
}

/// One pass over a record without quotes: reports each field's range (up to
/// the newline, CR included) and where the line ends. Delimiters are dense
/// (every ~10 bytes), so a 16-byte compare-and-mask loop finds delimiters,
/// newline and quotes together instead of three memchr passes.
#[inline]
fn scan_plain(hay: &[u8], delim: u8, mut field: impl FnMut(usize, usize)) -> Plain {
    let mut fs = 0usize;
    let mut base = 0usize;
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{__m128i, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_movemask_epi8, _mm_set1_epi8};
        // SAFETY: SSE2 is part of the x86_64 baseline; loads stay inside `hay`.
        unsafe {
            let (d, nl, q) = (_mm_set1_epi8(delim as i8), _mm_set1_epi8(b'\n' as i8), _mm_set1_epi8(b'"' as i8));
            while base + 16 <= hay.len() {
                let v = _mm_loadu_si128(hay.as_ptr().add(base) as *const __m128i);
                let mut md = _mm_movemask_epi8(_mm_cmpeq_epi8(v, d)) as u32;
                let mn = _mm_movemask_epi8(_mm_cmpeq_epi8(v, nl)) as u32;
                let mq = _mm_movemask_epi8(_mm_cmpeq_epi8(v, q)) as u32;
                let stop = mn | mq;
                if stop != 0 {
                    let k = stop.trailing_zeros();
                    if mq & (1 << k) != 0 {
                        return Plain::Quote;
                    }
                    md &= (1u32 << k) - 1;
                    while md != 0 {
                        let i = base + md.trailing_zeros() as usize;
                        field(fs, i);
                        fs = i + 1;
                        md &= md - 1;
                    }
                    let end = base + k as usize;
                    field(fs, end);
                    return Plain::Line(end);
                }
                while md != 0 {
                    let i = base + md.trailing_zeros() as usize;
                    field(fs, i);
                    fs = i + 1;
                    md &= md - 1;
                }
                base += 16;
            }
        }
    }
    for (i, &b) in hay.iter().enumerate().skip(base) {
        if b == delim {
            field(fs, i);
            fs = i + 1;
        } else if b == b'\n' {
            field(fs, i);
            return Plain::Line(i);
        } else if b == b'"' {
            return Plain::Quote;
        }
    }
    field(fs, hay.len());
    Plain::Unterminated
}

/// The few fields a scan decides a row by (the first field, the key and the
/// revenue code), located without recording every field's range: a row no
/// rule reads needs only these and its field count (INPUT.md, "Out-of-scope
/// rows").
pub struct Probe {
    fields: [Option<usize>; 3],
    /// Delimiter ordinals (1-based) that bound the fields, sorted, without
    /// repeats; ordinal 0 is the record start and needs no search.
    ords: [u32; 6],
    n: usize,
    /// Per field, where in `ords` its bounding delimiters are (start, end);
    /// field 0 starts at the record start, so its start index is unused.
    bounds: [(usize, usize); 3],
    /// AVX2 chunks (checked once per probe, not per record).
    wide: bool,
}

/// A probed record without quotes.
pub struct Probed<'p> {
    probe: &'p Probe,
    pub nfields: usize,
    /// Offset of the record's newline (the text ends before it, and before a
    /// CR just before it).
    pub line_end: usize,
    /// The probe's fields, in its order; empty when the field is not asked
    /// for or the record has fewer fields.
    pub ranges: [(usize, usize); 3],
}

impl Probe {
    pub fn new(fields: [Option<usize>; 3]) -> Probe {
        let mut ords = [0u32; 6];
        let mut n = 0;
        for f in fields.into_iter().flatten() {
            for o in [f as u32, f as u32 + 1] {
                if o > 0 && !ords[..n].contains(&o) {
                    ords[n] = o;
                    n += 1;
                }
            }
        }
        ords[..n].sort_unstable();
        let at = |o: usize| ords[..n].iter().position(|&x| x as usize == o).unwrap_or(0);
        let bounds = fields.map(|f| f.map_or((0, 0), |f| (at(f), at(f + 1))));
        #[cfg(target_arch = "x86_64")]
        let wide = std::is_x86_feature_detected!("avx2")
            && std::is_x86_feature_detected!("popcnt")
            && std::is_x86_feature_detected!("bmi1")
            && std::is_x86_feature_detected!("bmi2");
        #[cfg(not(target_arch = "x86_64"))]
        let wide = false;
        Probe { fields, ords, n, bounds, wide }
    }
}

/// Finds a record's field count and the probe's fields. None when a quote
/// comes before the newline or there is no newline: `split_record` then.
/// Delimiters are only counted (a popcount per chunk), except in the chunks
/// that hold a bounding one.
#[inline]
pub fn probe_record<'p>(hay: &[u8], delim: u8, p: &'p Probe) -> Option<Probed<'p>> {
    #[cfg(target_arch = "x86_64")]
    {
        if p.wide {
            // SAFETY: `Probe::new` checked that the CPU has these features.
            return unsafe { probe_avx2(hay, delim, p) };
        }
        use std::arch::x86_64::{__m128i, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_movemask_epi8, _mm_set1_epi8};
        // SAFETY: SSE2 is part of the x86_64 baseline; `probe_with` loads 16
        // bytes only where 16 remain.
        unsafe {
            let (d, nl, q) = (_mm_set1_epi8(delim as i8), _mm_set1_epi8(b'\n' as i8), _mm_set1_epi8(b'"' as i8));
            probe_with::<16>(
                hay,
                delim,
                p,
                |at| {
                    let v = _mm_loadu_si128(at as *const __m128i);
                    let m = |x| _mm_movemask_epi8(_mm_cmpeq_epi8(v, x)) as u16 as u64;
                    (m(d), m(nl), m(q))
                },
                select_loop,
            )
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    probe_with::<0>(hay, delim, p, |_| (0, 0, 0), select_loop)
}

/// The bit index of the `r`-th (0-based) set bit of `m`, without BMI2.
#[inline(always)]
fn select_loop(mut m: u64, r: u32) -> u32 {
    for _ in 0..r {
        m &= m - 1;
    }
    m.trailing_zeros()
}

/// 64-byte chunks (two AVX2 loads: half the loop trips and branches of one),
/// and popcount and bit scans as instructions (the baseline has no popcount:
/// it costs a dozen instructions per chunk).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,popcnt,bmi1,bmi2")]
unsafe fn probe_avx2<'p>(hay: &[u8], delim: u8, p: &'p Probe) -> Option<Probed<'p>> {
    use std::arch::x86_64::{
        __m256i, _MM_HINT_T0, _mm_prefetch, _mm256_cmpeq_epi8, _mm256_loadu_si256, _mm256_movemask_epi8, _mm256_set1_epi8,
    };
    // A page ahead: the hardware prefetcher stops at each 4 KiB page, and
    // the probe's hottest instructions were its loads (`--scan-only` of a 5M
    // CSV 4-7% faster with it, three sets of alternating runs).
    const PREFETCH: usize = 4096;
    let (d, nl, q) = (_mm256_set1_epi8(delim as i8), _mm256_set1_epi8(b'\n' as i8), _mm256_set1_epi8(b'"' as i8));
    probe_with::<64>(
        hay,
        delim,
        p,
        |at| {
            // A prefetch never faults, wherever it points.
            _mm_prefetch::<_MM_HINT_T0>(at.wrapping_add(PREFETCH) as *const i8);
            // SAFETY: `probe_with` passes a pointer with 64 bytes after it.
            let (lo, hi) = unsafe { (_mm256_loadu_si256(at as *const __m256i), _mm256_loadu_si256(at.add(32) as *const __m256i)) };
            let m = |v, x| _mm256_movemask_epi8(_mm256_cmpeq_epi8(v, x)) as u32 as u64;
            let m2 = |x| m(lo, x) | (m(hi, x) << 32);
            (m2(d), m2(nl), m2(q))
        },
        // One instruction instead of a loop whose trip count mispredicts.
        |m, r| std::arch::x86_64::_pdep_u64(1 << r, m).trailing_zeros(),
    )
}

/// The probe over `W`-byte chunks: `masks(ptr)` gives the delimiter,
/// newline and quote bits of the `W` bytes at `ptr`. The tail is byte by byte.
#[inline(always)]
fn probe_with<'p, const W: usize>(
    hay: &[u8],
    delim: u8,
    p: &'p Probe,
    masks: impl Fn(*const u8) -> (u64, u64, u64),
    select: impl Fn(u64, u32) -> u32,
) -> Option<Probed<'p>> {
    // Offsets of the bounding delimiters, by ordinal.
    let mut at = [usize::MAX; 6];
    let (mut k, mut count, mut base) = (0usize, 0u32, 0usize);
    let mut record = |md: u64, base: usize, count: &mut u32, k: &mut usize| {
        let c = md.count_ones();
        while *k < p.n && p.ords[*k] <= *count + c {
            at[*k] = base + select(md, p.ords[*k] - *count - 1) as usize;
            *k += 1;
        }
        *count += c;
    };
    let mut line_end = None;
    if W > 0 {
        while base + W <= hay.len() {
            // `base + W <= hay.len()`: the chunk is inside `hay`.
            let (md, mn, mq) = masks(hay[base..].as_ptr());
            let stop = mn | mq;
            if stop != 0 {
                let s = stop.trailing_zeros();
                if mq & (1 << s) != 0 {
                    return None;
                }
                record(md & ((1u64 << s) - 1), base, &mut count, &mut k);
                line_end = Some(base + s as usize);
                break;
            }
            if md != 0 {
                record(md, base, &mut count, &mut k);
            }
            base += W;
        }
    }
    let line_end = match line_end {
        Some(e) => e,
        None => {
            let mut end = None;
            for (i, &b) in hay.iter().enumerate().skip(base) {
                if b == delim {
                    record(1, i, &mut count, &mut k);
                } else if b == b'\n' {
                    end = Some(i);
                    break;
                } else if b == b'"' {
                    return None;
                }
            }
            end?
        }
    };
    let nfields = count as usize + 1;
    let text_end = if line_end > 0 && hay[line_end - 1] == b'\r' { line_end - 1 } else { line_end };
    let mut ranges = [(0, 0); 3];
    for ((r, f), (s_at, e_at)) in ranges.iter_mut().zip(p.fields).zip(p.bounds) {
        // Below the field count, the field's delimiters were all found.
        let Some(f) = f.filter(|&f| f < nfields) else { continue };
        let s = if f == 0 { 0 } else { at[s_at] + 1 };
        let e = if f + 1 == nfields { text_end } else { at[e_at] };
        *r = (s, e);
    }
    Some(Probed { probe: p, nfields, line_end, ranges })
}

impl Probed<'_> {
    /// Field `i`'s range, when the probe located it.
    pub fn field(&self, i: usize) -> Option<(usize, usize)> {
        self.probe.fields.iter().position(|&f| f == Some(i)).map(|k| self.ranges[k])
    }
}

fn split_quoted(buf: &[u8], start: usize, delim: u8, at_eof: bool, f: &mut Fields) -> Option<Span> {
    f.scratch.clear();
    let (mut i, mut lines, mut in_q, mut at_field_start) = (start, 0u64, false, true);
    let mut fs = 0usize;
    loop {
        if i >= buf.len() {
            if !at_eof {
                return None;
            }
            strip_cr(&mut f.scratch, fs);
            f.ranges.push((fs as u32, f.scratch.len() as u32));
            // An unterminated quote runs to the end: the raw text still drops
            // the final line terminator, as for any other last record.
            let mut text_end = buf.len();
            if text_end > start && buf[text_end - 1] == b'\n' {
                text_end -= 1;
            }
            if text_end > start && buf[text_end - 1] == b'\r' {
                text_end -= 1;
            }
            return Some(Span { text_end, next: buf.len(), lines: lines + 1, quoted: true });
        }
        let b = buf[i];
        if in_q {
            if b == b'"' {
                if i + 1 >= buf.len() && !at_eof {
                    return None;
                }
                if buf.get(i + 1) == Some(&b'"') {
                    f.scratch.push(b'"');
                    i += 2;
                    continue;
                }
                in_q = false;
            } else {
                if b == b'\n' {
                    lines += 1;
                }
                f.scratch.push(b);
            }
            i += 1;
            continue;
        }
        if b == delim {
            f.ranges.push((fs as u32, f.scratch.len() as u32));
            fs = f.scratch.len();
            at_field_start = true;
            i += 1;
            continue;
        }
        if b == b'\n' {
            strip_cr(&mut f.scratch, fs);
            f.ranges.push((fs as u32, f.scratch.len() as u32));
            let text_end = if i > start && buf[i - 1] == b'\r' { i - 1 } else { i };
            return Some(Span { text_end, next: i + 1, lines: lines + 1, quoted: true });
        }
        if b == b'"' && at_field_start {
            in_q = true;
        } else {
            f.scratch.push(b);
        }
        at_field_start = false;
        i += 1;
    }
}

fn strip_cr(v: &mut Vec<u8>, field_start: usize) {
    if v.len() > field_start && v.last() == Some(&b'\r') {
        v.pop();
    }
}

/// Finds the start of the first record at or after `from`, given whether
/// `from` is inside a quoted field and whether it is a field start. Returns
/// None when the buffer ends first.
pub fn next_boundary(buf: &[u8], from: usize, mut in_q: bool, delim: u8) -> Option<usize> {
    let mut i = from;
    while i < buf.len() {
        if in_q {
            let k = memchr::memchr(b'"', &buf[i..])? + i;
            if buf.get(k + 1) == Some(&b'"') {
                i = k + 2;
            } else if k + 1 >= buf.len() {
                return None;
            } else {
                in_q = false;
                i = k + 1;
            }
        } else {
            let k = memchr::memchr2(b'"', b'\n', &buf[i..])? + i;
            if buf[k] == b'\n' {
                return Some(k + 1);
            }
            if k == 0 || buf[k - 1] == delim || buf[k - 1] == b'\n' {
                in_q = true;
            }
            i = k + 1;
        }
    }
    None
}

/// Quote state after scanning `[from, to)` from a record start (not in
/// quotes). Returns the position scanning stopped (>= `to`, past an escaped
/// pair that straddles `to`) and whether it is inside a quoted field.
pub fn quote_state(buf: &[u8], from: usize, to: usize, delim: u8) -> (usize, bool) {
    let mut in_q = false;
    let mut i = from;
    while i < to {
        let Some(k) = memchr::memchr(b'"', &buf[i..to]) else { break };
        let k = k + i;
        if in_q {
            if buf.get(k + 1) == Some(&b'"') {
                i = k + 2;
                continue;
            }
            in_q = false;
        } else if k == from || buf[k - 1] == delim || buf[k - 1] == b'\n' {
            in_q = true;
        }
        i = k + 1;
    }
    (i.max(to), in_q)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(buf: &[u8]) -> Vec<String> {
        let mut f = Fields::new();
        let s = split_record(buf, 0, b',', true, &mut f).unwrap();
        let data: &[u8] = if s.quoted { &f.scratch } else { buf };
        f.ranges.iter().map(|&(a, b)| String::from_utf8_lossy(&data[a as usize..b as usize]).into_owned()).collect()
    }

    #[test]
    fn splits_plain_and_quoted() {
        assert_eq!(fields(b"a,b,c\r\n"), ["a", "b", "c"]);
        assert_eq!(fields(b"a,\"x,\"\"y\"\"\nz\",c\nnext"), ["a", "x,\"y\"\nz", "c"]);
        assert_eq!(fields(b"a,5\"tube,c"), ["a", "5\"tube", "c"]);
        assert_eq!(fields(b""), [""]);
    }

    /// The probe agrees with the full split on every plain record: field
    /// count, where the line ends and the probed fields' bytes, at every
    /// offset a 16- or 64-byte chunk can start from, with AVX2 (where the
    /// machine has it) and without.
    #[test]
    fn probe_agrees_with_the_full_split() {
        let wide = Probe::new([Some(0), Some(3), Some(40)]);
        let narrow = Probe { wide: false, ..Probe::new([Some(0), Some(3), Some(40)]) };
        let mut cases: Vec<Vec<u8>> =
            vec![b"a,b,c,d\n".to_vec(), b"a,b,c,dd\r\n".to_vec(), b"\n".to_vec(), b"\r\n".to_vec(), b",,,\n".to_vec(), b"only\n".to_vec()];
        // Wide records, delimiters at every spacing, the probed fields early,
        // middle and last.
        for width in [4, 5, 39, 40, 41, 60] {
            for len in [0, 1, 7, 15, 16, 31, 33, 63, 64, 65] {
                let fields: Vec<String> = (0..width).map(|i| format!("{i}{}", "x".repeat((len + i) % (len + 1)))).collect();
                cases.push(format!("{}\n", fields.join(",")).into_bytes());
                cases.push(format!("{}\r\nnext,row\n", fields.join(",")).into_bytes());
            }
        }
        for case in cases {
            for pad in 0..65 {
                let mut buf = vec![b'z'; pad];
                buf.extend_from_slice(&case);
                let hay = &buf[pad..];
                let mut f = Fields::new();
                let span = split_record(hay, 0, b',', true, &mut f).unwrap();
                for probe in [&wide, &narrow] {
                    let p = probe_record(hay, b',', probe).unwrap();
                    assert_eq!(p.nfields, f.ranges.len(), "{case:?}");
                    assert_eq!(p.line_end + 1, span.next, "{case:?}");
                    for (k, want) in [0usize, 3, 40].into_iter().enumerate() {
                        let got = &hay[p.ranges[k].0..p.ranges[k].1];
                        let full = f.ranges.get(want).map_or(&b""[..], |&(a, b)| &hay[a as usize..b as usize]);
                        assert_eq!(got, full, "field {want} of {case:?}");
                    }
                }
            }
        }
        // Quotes and unterminated records go to the full split.
        for probe in [&wide, &narrow] {
            assert!(probe_record(b"a,\"b\",c\n", b',', probe).is_none());
            assert!(probe_record(b"a,b,c", b',', probe).is_none());
        }
    }

    #[test]
    fn boundaries_respect_quotes() {
        let buf = b"h1,h2\n1,\"a\nb\"\n2,c\n";
        let (p, q) = quote_state(buf, 6, 10, b',');
        assert!(q);
        assert_eq!(next_boundary(buf, p, q, b','), Some(14));
        assert_eq!(next_boundary(buf, 0, false, b','), Some(6));
    }
}
