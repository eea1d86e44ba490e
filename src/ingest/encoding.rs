//! Text that is not UTF-8: read as Windows-1252 (INPUT.md "Files", text
//! encoding), the usual encoding of extracts from older systems. A table of
//! the 32 bytes where it differs from Latin-1 does it; a general encoding
//! crate would bring hundreds of tables for one that fits on a screen.

/// Windows-1252 bytes 0x80..=0x9F. The five bytes it leaves undefined
/// (0x81, 0x8D, 0x8F, 0x90, 0x9D) map to the C1 control of the same value,
/// as WHATWG's decoder does; 0xA0..=0xFF are Latin-1, equal to their code
/// points.
const HIGH: [char; 32] = [
    '\u{20AC}', '\u{0081}', '\u{201A}', '\u{0192}', '\u{201E}', '\u{2026}', '\u{2020}', '\u{2021}', '\u{02C6}', '\u{2030}', '\u{0160}',
    '\u{2039}', '\u{0152}', '\u{008D}', '\u{017D}', '\u{008F}', '\u{0090}', '\u{2018}', '\u{2019}', '\u{201C}', '\u{201D}', '\u{2022}',
    '\u{2013}', '\u{2014}', '\u{02DC}', '\u{2122}', '\u{0161}', '\u{203A}', '\u{0153}', '\u{009D}', '\u{017E}', '\u{0178}',
];

/// One byte as Windows-1252.
fn cp1252(b: u8) -> char {
    match b {
        0x80..=0x9F => HIGH[(b - 0x80) as usize],
        _ => char::from(b),
    }
}

/// Bytes as text: the UTF-8 runs as they are, every byte that is not part
/// of valid UTF-8 as Windows-1252. For a field in one legacy encoding this
/// is its Windows-1252 reading (its non-ASCII bytes are never valid UTF-8 in
/// practice); a field that mixes both (an extract concatenated from two
/// systems) keeps each character readable.
pub fn decode(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() + bytes.len() / 2);
    for chunk in bytes.utf8_chunks() {
        s.push_str(chunk.valid());
        s.extend(chunk.invalid().iter().map(|&b| cp1252(b)));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_latin1_and_windows_1252_bytes() {
        assert_eq!(decode(b"Soci\xe9t\xe9 G\xe9n\xe9rale"), "Société Générale");
        assert_eq!(decode(b"\x80 \x93quoted\x94 \x99"), "€ \u{201C}quoted\u{201D} ™");
        assert_eq!(decode(b"plain ascii"), "plain ascii");
        // Valid UTF-8 beside a Latin-1 byte stays as it is.
        assert_eq!(decode("Müller ".as_bytes().iter().copied().chain(*b"M\xfcller").collect::<Vec<u8>>().as_slice()), "Müller Müller");
        // Undefined bytes are C1 controls, never lost.
        assert_eq!(decode(b"\x81\x8d\x8f\x90\x9d").chars().map(u32::from).collect::<Vec<_>>(), [0x81, 0x8D, 0x8F, 0x90, 0x9D]);
        for b in 0x80..=0xFFu8 {
            assert_eq!(decode(&[b]).chars().count(), 1, "{b:#x}");
        }
    }
}
