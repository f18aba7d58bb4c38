//! Decompressing a trail file and cutting its `Records` array into raw
//! per-record slices, without building a JSON tree of the file.
//!
//! The splitter only tracks strings (with escapes) and bracket depth: it is a
//! boundary finder, not a validator. A record that is chosen is parsed in full
//! by serde later, which is where a broken record shows.

use flate2::{Decompress, FlushDecompress, Status};

/// Where and why the file's JSON could not be split.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SplitError {
    pub offset: usize,
    pub what: &'static str,
}

impl std::fmt::Display for SplitError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "bad JSON at byte {}: {}", self.offset, self.what)
    }
}

/// A gzip file starts with these two bytes; anything else is read as plain JSON.
pub fn is_gzip(bytes: &[u8]) -> bool {
    bytes.len() >= 2 && bytes[0] == 0x1f && bytes[1] == 0x8b
}

/// Inflate every gzip member of `input` onto the end of `out` (which keeps its
/// capacity between files). On error `out` holds what was inflated before it.
pub fn gunzip(input: &[u8], out: &mut Vec<u8>) -> Result<(), String> {
    // The trailer's ISIZE (size mod 4 GiB) sizes the buffer in one go; it is
    // only a hint, capped, since a corrupt file can claim anything.
    if input.len() >= 18 {
        let n = input.len();
        let isize = u32::from_le_bytes([input[n - 4], input[n - 3], input[n - 2], input[n - 1]]);
        let cap = input.len().saturating_mul(64).min(1 << 30);
        out.reserve((isize as usize).min(cap) + 1);
    }
    let mut pos = 0usize;
    loop {
        let mut d = Decompress::new_gzip(15);
        loop {
            if out.len() == out.capacity() {
                out.reserve(out.len().max(64 * 1024));
            }
            let (in_before, out_before) = (d.total_in(), d.total_out());
            let status = d
                .decompress_vec(&input[pos..], out, FlushDecompress::None)
                .map_err(|e| format!("corrupt gzip: {e}"))?;
            pos += (d.total_in() - in_before) as usize;
            match status {
                Status::StreamEnd => break,
                _ => {
                    // Stopped with room left in `out`: it wants input there is none of.
                    if out.len() < out.capacity() {
                        let stalled = d.total_in() == in_before && d.total_out() == out_before;
                        if pos >= input.len() || stalled {
                            return Err("truncated gzip: unexpected end of data".into());
                        }
                    }
                }
            }
        }
        // Concatenated members are one file; zero padding after the last is tolerated.
        let rest = &input[pos..];
        if rest.is_empty() || rest.iter().all(|b| *b == 0) {
            return Ok(());
        }
        if !is_gzip(rest) {
            return Err(format!(
                "corrupt gzip: {} bytes of trailing garbage",
                rest.len()
            ));
        }
    }
}

/// Call `f(start, end)` for each element of the top-level `Records` array.
/// Elements reported before an error are valid boundaries.
pub fn for_each_record(buf: &[u8], mut f: impl FnMut(usize, usize)) -> Result<(), SplitError> {
    let err = |offset, what| Err(SplitError { offset, what });
    let mut i = skip_ws(buf, 0);
    if buf.get(i) != Some(&b'{') {
        return err(i, "expected an object");
    }
    i = skip_ws(buf, i + 1);
    if buf.get(i) == Some(&b'}') {
        i += 1;
    } else {
        loop {
            if buf.get(i) != Some(&b'"') {
                return err(i, "expected a key");
            }
            let key_end = skip_string(buf, i)?;
            let key = &buf[i + 1..key_end - 1];
            i = skip_ws(buf, key_end);
            if buf.get(i) != Some(&b':') {
                return err(i, "expected ':'");
            }
            i = skip_ws(buf, i + 1);
            if key == b"Records" && buf.get(i) == Some(&b'[') {
                i = records(buf, i + 1, &mut f)?;
            } else {
                i = skip_value(buf, i)?;
            }
            i = skip_ws(buf, i);
            match buf.get(i) {
                Some(b',') => i = skip_ws(buf, i + 1),
                Some(b'}') => {
                    i += 1;
                    break;
                }
                _ => return err(i, "expected ',' or '}'"),
            }
        }
    }
    i = skip_ws(buf, i);
    if i != buf.len() {
        return err(i, "data after the end of the file's object");
    }
    Ok(())
}

fn records(
    buf: &[u8],
    mut i: usize,
    f: &mut impl FnMut(usize, usize),
) -> Result<usize, SplitError> {
    i = skip_ws(buf, i);
    if buf.get(i) == Some(&b']') {
        return Ok(i + 1);
    }
    loop {
        let start = i;
        i = skip_value(buf, i)?;
        f(start, i);
        i = skip_ws(buf, i);
        match buf.get(i) {
            Some(b',') => i = skip_ws(buf, i + 1),
            Some(b']') => return Ok(i + 1),
            _ => {
                return Err(SplitError {
                    offset: i,
                    what: "expected ',' or ']' in Records",
                })
            }
        }
    }
}

#[inline]
fn skip_ws(buf: &[u8], mut i: usize) -> usize {
    while i < buf.len() && matches!(buf[i], b' ' | b'\n' | b'\r' | b'\t') {
        i += 1;
    }
    i
}

/// `buf[i]` starts a value; the index just after it.
fn skip_value(buf: &[u8], i: usize) -> Result<usize, SplitError> {
    match buf.get(i) {
        Some(b'"') => skip_string(buf, i),
        Some(b'{') | Some(b'[') => skip_compound(buf, i),
        Some(_) => {
            let mut j = i;
            while j < buf.len()
                && !matches!(buf[j], b',' | b'}' | b']' | b' ' | b'\n' | b'\r' | b'\t')
            {
                j += 1;
            }
            if j == i {
                return Err(SplitError {
                    offset: i,
                    what: "expected a value",
                });
            }
            Ok(j)
        }
        None => Err(SplitError {
            offset: i,
            what: "unexpected end of data",
        }),
    }
}

/// An object or array starting at `buf[i]`, by depth; strings are skipped whole
/// so brackets inside them do not count.
fn skip_compound(buf: &[u8], mut i: usize) -> Result<usize, SplitError> {
    let mut depth = 0usize;
    while i < buf.len() {
        match buf[i] {
            b'"' => {
                i = skip_string(buf, i)?;
                continue;
            }
            b'{' | b'[' => depth += 1,
            b'}' | b']' => {
                depth -= 1;
                if depth == 0 {
                    return Ok(i + 1);
                }
            }
            _ => {}
        }
        i += 1;
    }
    Err(SplitError {
        offset: buf.len(),
        what: "unexpected end of data inside a record",
    })
}

/// The string opening at `buf[i]` (a `"`); the index just after its closing quote.
#[inline]
fn skip_string(buf: &[u8], i: usize) -> Result<usize, SplitError> {
    let mut j = i + 1;
    loop {
        match find_quote_or_backslash(buf, j) {
            Some(k) if buf[k] == b'"' => return Ok(k + 1),
            Some(k) => j = k + 2,
            None => {
                return Err(SplitError {
                    offset: i,
                    what: "unterminated string",
                })
            }
        }
    }
}

const LO: u64 = 0x0101_0101_0101_0101;
const HI: u64 = 0x8080_8080_8080_8080;

/// The first `"` or `\` at or after `j`, eight bytes at a time (the usual
/// "has a zero byte" trick on `x ^ splat(c)`; the lowest flagged byte is exact).
#[inline]
fn find_quote_or_backslash(buf: &[u8], mut j: usize) -> Option<usize> {
    while j + 8 <= buf.len() {
        let x = u64::from_le_bytes(buf[j..j + 8].try_into().ok()?);
        let q = x ^ (LO * b'"' as u64);
        let b = x ^ (LO * b'\\' as u64);
        let hit = (q.wrapping_sub(LO) & !q | b.wrapping_sub(LO) & !b) & HI;
        if hit != 0 {
            return Some(j + (hit.trailing_zeros() / 8) as usize);
        }
        j += 8;
    }
    while j < buf.len() {
        if buf[j] == b'"' || buf[j] == b'\\' {
            return Some(j);
        }
        j += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn split(s: &str) -> Result<Vec<String>, SplitError> {
        let mut out = Vec::new();
        for_each_record(s.as_bytes(), |a, b| out.push(s[a..b].to_string())).map(|_| out)
    }

    #[test]
    fn splits_records_with_tricky_strings() {
        let s =
            r#" { "Records" : [ {"a":"x\"}]","b":[1,{"c":"\\"}]} , {"d":"{["}, 7, "s", null ] } "#;
        assert_eq!(
            split(s).unwrap(),
            [
                r#"{"a":"x\"}]","b":[1,{"c":"\\"}]}"#,
                r#"{"d":"{["}"#,
                "7",
                r#""s""#,
                "null"
            ]
        );
        assert_eq!(split(r#"{"Records":[]}"#).unwrap(), Vec::<String>::new());
        assert_eq!(split("{}").unwrap(), Vec::<String>::new());
        // Other keys are skipped whatever their type.
        assert_eq!(
            split(r#"{"x":{"Records":[{"no":1}]},"Records":[{"yes":1}],"y":3}"#).unwrap(),
            [r#"{"yes":1}"#]
        );
    }

    #[test]
    fn quote_search_is_exact_at_every_offset() {
        for n in 0..40 {
            let mut s = "a".repeat(n);
            s.push('"');
            s.push_str("\\\"");
            assert_eq!(find_quote_or_backslash(s.as_bytes(), 0), Some(n));
            let t = "\\".repeat(1) + &"b".repeat(n);
            assert_eq!(find_quote_or_backslash(t.as_bytes(), 1), None);
        }
        // A byte just above '"' next to a real hit must not be flagged first.
        assert_eq!(find_quote_or_backslash(b"#!\"aaaaaaaaa", 0), Some(2));
    }

    #[test]
    fn broken_json_is_an_error_after_the_good_records() {
        let mut got = Vec::new();
        let s = r#"{"Records":[{"a":1},{"b":"unterminated}]}"#;
        let e = for_each_record(s.as_bytes(), |a, b| got.push(&s[a..b])).unwrap_err();
        assert_eq!(got, [r#"{"a":1}"#]);
        assert_eq!(e.what, "unterminated string");
        assert!(split(r#"{"Records":[{"a":1}"#).is_err());
        assert!(split(r#"{"Records":[{"a":1}]} trailing"#).is_err());
        assert!(split(r#"["not", "an object"]"#).is_err());
        assert!(split("").is_err());
        assert!(split(r#"{"Records":[{"a":1},]}"#).is_err());
    }

    fn gz(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn gunzip_handles_members_truncation_and_garbage() {
        let data: Vec<u8> = (0..300_000u32).flat_map(|i| i.to_le_bytes()).collect();
        let z = gz(&data);
        let mut out = Vec::new();
        gunzip(&z, &mut out).unwrap();
        assert_eq!(out, data);

        let mut two = gz(b"hello ");
        two.extend(gz(b"world"));
        two.extend([0u8; 4]);
        out.clear();
        gunzip(&two, &mut out).unwrap();
        assert_eq!(out, b"hello world");

        out.clear();
        let e = gunzip(&z[..z.len() / 2], &mut out).unwrap_err();
        assert!(e.contains("truncated"), "{e}");
        assert!(!out.is_empty(), "keeps what was inflated");

        let mut bad = z.clone();
        bad[z.len() / 2] ^= 0xff;
        out.clear();
        assert!(gunzip(&bad, &mut out).is_err());

        let mut trailing = gz(b"x");
        trailing.extend(b"garbage");
        out.clear();
        assert!(gunzip(&trailing, &mut out)
            .unwrap_err()
            .contains("trailing"));

        out.clear();
        assert!(gunzip(&[0x1f, 0x8b, 8], &mut out).is_err());
    }
}
