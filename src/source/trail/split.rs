//! Cutting a trail file's `Records` array into raw per-record slices as its
//! text streams by, without building a JSON tree of the file or holding it whole.
//!
//! The splitter only tracks strings (with escapes) and bracket depth: it is a
//! boundary finder, not a validator. A record that is chosen is parsed in full
//! by serde later, which is where a broken record shows.

use std::io::{self, Read};

/// The most one record (or any other top-level value) may take: CloudTrail's
/// records are kilobytes; a bigger one fails its file instead of growing the window.
pub const MAX_RECORD: usize = 16 << 20;
/// The window starts this big and doubles, up to `MAX_RECORD`, only for a
/// record that does not fit.
const WINDOW: usize = 1 << 20;

/// Where and why the file's JSON could not be split.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SplitError {
    /// In the decompressed text.
    pub offset: u64,
    pub what: &'static str,
}

impl std::fmt::Display for SplitError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "bad JSON at byte {}: {}", self.offset, self.what)
    }
}

/// Why a file stopped being split: its bytes could not be read (corrupt gzip,
/// the inflate cap, I/O), or they are not a trail file's JSON.
#[derive(Debug)]
pub enum SplitFail {
    Read(io::Error),
    Json(SplitError),
}

impl std::fmt::Display for SplitFail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SplitFail::Read(e) => write!(f, "{e}"),
            SplitFail::Json(e) => write!(f, "{e}"),
        }
    }
}

/// Errors of the slice scanners that only mean "the window ends here".
fn ran_out(e: &Cut) -> bool {
    matches!(
        e.what,
        "unexpected end of data" | "unexpected end of data inside a record" | "unterminated string"
    )
}

/// A window over the stream: `buf[pos..len]` is read and not yet consumed.
struct Win<'a, R> {
    src: &'a mut R,
    buf: &'a mut Vec<u8>,
    pos: usize,
    len: usize,
    /// Stream offset of `buf[0]`.
    base: u64,
    eof: bool,
    max: usize,
}

impl<R: Read> Win<'_, R> {
    fn fail(&self, what: &'static str) -> SplitFail {
        SplitFail::Json(SplitError {
            offset: self.base + self.pos as u64,
            what,
        })
    }

    /// Read more: keep the unconsumed bytes, grow only if they fill the window.
    /// `false` at the end of the stream.
    fn more(&mut self) -> Result<bool, SplitFail> {
        if self.eof {
            return Ok(false);
        }
        if self.pos > 0 {
            self.buf.copy_within(self.pos..self.len, 0);
            self.len -= self.pos;
            self.base += self.pos as u64;
            self.pos = 0;
        }
        if self.len == self.buf.len() {
            if self.buf.len() >= self.max {
                return Err(self.fail("a record larger than the 16 MiB limit"));
            }
            let n = (self.buf.len() * 2).clamp(WINDOW, self.max);
            self.buf.resize(n, 0);
        }
        // Fill the whole window: a record cut by the window's end is scanned
        // again from its start, so few, large reads keep that rare.
        let before = self.len;
        while self.len < self.buf.len() {
            match self.src.read(&mut self.buf[self.len..]) {
                Ok(0) => {
                    self.eof = true;
                    break;
                }
                Ok(k) => self.len += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(SplitFail::Read(e)),
            }
        }
        Ok(self.len > before)
    }

    /// Skip whitespace; the next byte (not consumed), `None` at the end.
    fn ws(&mut self) -> Result<Option<u8>, SplitFail> {
        loop {
            self.pos = skip_ws(&self.buf[..self.len], self.pos);
            if self.pos < self.len {
                return Ok(Some(self.buf[self.pos]));
            }
            if !self.more()? {
                return Ok(None);
            }
        }
    }

    /// The whole value starting at `pos`, as window offsets; consumed.
    fn value(&mut self) -> Result<(usize, usize), SplitFail> {
        loop {
            let view = &self.buf[..self.len];
            match skip_value(view, self.pos) {
                // A scalar that reaches the window's end may go on after it.
                Ok(end) if end < self.len || self.eof => {
                    let start = self.pos;
                    self.pos = end;
                    return Ok((start, end));
                }
                Ok(_) => {}
                Err(e) if self.eof || !ran_out(&e) => {
                    return Err(SplitFail::Json(SplitError {
                        offset: self.base + e.offset as u64,
                        what: e.what,
                    }))
                }
                Err(_) => {}
            }
            self.more()?;
        }
    }
}

/// Call `f` with each element of the top-level `Records` array of the JSON
/// text read from `src`, streaming: `buf` (the caller's, reused between
/// files) holds a window of the text, never the whole file. Elements passed
/// before an error are valid.
pub fn for_each_record<R: Read>(
    src: &mut R,
    buf: &mut Vec<u8>,
    mut f: impl FnMut(&[u8]),
) -> Result<(), SplitFail> {
    if buf.len() < WINDOW {
        buf.resize(WINDOW, 0);
    }
    let mut w = Win {
        src,
        buf,
        pos: 0,
        len: 0,
        base: 0,
        eof: false,
        max: MAX_RECORD.max(WINDOW),
    };
    if w.ws()? != Some(b'{') {
        return Err(w.fail("expected an object"));
    }
    w.pos += 1;
    if w.ws()? == Some(b'}') {
        w.pos += 1;
    } else {
        loop {
            if w.ws()? != Some(b'"') {
                return Err(w.fail("expected a key"));
            }
            let (a, b) = w.value()?;
            let is_records = &w.buf[a + 1..b - 1] == b"Records";
            if w.ws()? != Some(b':') {
                return Err(w.fail("expected ':'"));
            }
            w.pos += 1;
            match w.ws()? {
                Some(b'[') if is_records => {
                    w.pos += 1;
                    records(&mut w, &mut f)?;
                }
                Some(_) => {
                    w.value()?;
                }
                None => return Err(w.fail("unexpected end of data")),
            }
            match w.ws()? {
                Some(b',') => w.pos += 1,
                Some(b'}') => {
                    w.pos += 1;
                    break;
                }
                _ => return Err(w.fail("expected ',' or '}'")),
            }
        }
    }
    if w.ws()?.is_some() {
        return Err(w.fail("data after the end of the file's object"));
    }
    Ok(())
}

fn records<R: Read>(w: &mut Win<'_, R>, f: &mut impl FnMut(&[u8])) -> Result<(), SplitFail> {
    if w.ws()? == Some(b']') {
        w.pos += 1;
        return Ok(());
    }
    loop {
        if w.ws()?.is_none() {
            return Err(w.fail("unexpected end of data"));
        }
        let (a, b) = w.value()?;
        f(&w.buf[a..b]);
        match w.ws()? {
            Some(b',') => w.pos += 1,
            Some(b']') => {
                w.pos += 1;
                return Ok(());
            }
            _ => return Err(w.fail("expected ',' or ']' in Records")),
        }
    }
}

/// Where a slice scanner stopped, in the window.
#[derive(Debug)]
struct Cut {
    offset: usize,
    what: &'static str,
}

#[inline]
fn skip_ws(buf: &[u8], mut i: usize) -> usize {
    while i < buf.len() && matches!(buf[i], b' ' | b'\n' | b'\r' | b'\t') {
        i += 1;
    }
    i
}

/// `buf[i]` starts a value; the index just after it.
fn skip_value(buf: &[u8], i: usize) -> Result<usize, Cut> {
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
                return Err(Cut {
                    offset: i,
                    what: "expected a value",
                });
            }
            Ok(j)
        }
        None => Err(Cut {
            offset: i,
            what: "unexpected end of data",
        }),
    }
}

/// An object or array starting at `buf[i]`, by depth; strings are skipped whole
/// so brackets inside them do not count.
fn skip_compound(buf: &[u8], mut i: usize) -> Result<usize, Cut> {
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
    Err(Cut {
        offset: buf.len(),
        what: "unexpected end of data inside a record",
    })
}

/// The string opening at `buf[i]` (a `"`); the index just after its closing quote.
#[inline]
fn skip_string(buf: &[u8], i: usize) -> Result<usize, Cut> {
    let mut j = i + 1;
    loop {
        match find_quote_or_backslash(buf, j) {
            Some(k) if buf[k] == b'"' => return Ok(k + 1),
            Some(k) => j = k + 2,
            None => {
                return Err(Cut {
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

    fn split(s: &str) -> Result<Vec<String>, SplitFail> {
        let mut out = Vec::new();
        let mut buf = Vec::new();
        for_each_record(&mut s.as_bytes(), &mut buf, |r| {
            out.push(String::from_utf8(r.to_vec()).unwrap())
        })
        .map(|_| out)
    }

    /// A reader that hands out `n` bytes a call, to cut records at every place.
    struct Trickle<'a>(&'a [u8], usize);
    impl Read for Trickle<'_> {
        fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
            let n = self.1.min(out.len()).min(self.0.len());
            out[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
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
    fn records_across_window_edges_come_out_whole() {
        // Records of every size around the window's edge, fed a few bytes a call.
        let recs: Vec<String> = (0..3000)
            .map(|i| {
                format!(
                    r#"{{"i":{i},"s":"{}\"}}","n":12345}}"#,
                    "x".repeat(i * 7 % 1500)
                )
            })
            .collect();
        let text = format!(r#"{{"Records":[{}],"tail":123}}"#, recs.join(","));
        assert!(text.len() > 2 * WINDOW);
        for step in [1usize << 20, 4093, 7] {
            let mut got = Vec::new();
            let mut buf = Vec::new();
            let mut src = Trickle(text.as_bytes(), step);
            for_each_record(&mut src, &mut buf, |r| got.push(r.to_vec())).unwrap();
            assert_eq!(got.len(), recs.len(), "step {step}");
            assert!(got.iter().zip(&recs).all(|(g, r)| g == r.as_bytes()));
            assert_eq!(buf.len(), WINDOW, "no record needed a bigger window");
        }
        // A number at the very end of a window is not cut short.
        let mut got = Vec::new();
        let t = format!(r#"{{"Records":[{}123456]}}"#, " ".repeat(WINDOW - 15));
        for_each_record(&mut t.as_bytes(), &mut Vec::new(), |r| got.push(r.to_vec())).unwrap();
        assert_eq!(got, [b"123456".to_vec()]);
    }

    #[test]
    fn a_giant_record_fails_with_a_bounded_window() {
        let big = format!(
            r#"{{"Records":[{{"a":1}},{{"s":"{}"}}]}}"#,
            "y".repeat(MAX_RECORD + 10)
        );
        let mut got = 0;
        let mut buf = Vec::new();
        let e = for_each_record(&mut big.as_bytes(), &mut buf, |_| got += 1).unwrap_err();
        assert_eq!(got, 1, "the record before it is kept");
        assert!(
            e.to_string().contains("larger than the 16 MiB limit"),
            "{e}"
        );
        assert!(buf.len() <= MAX_RECORD);
        // So is any other top-level value.
        let big = format!(r#"{{"x":"{}","Records":[]}}"#, "y".repeat(MAX_RECORD + 10));
        assert!(split(&big).is_err());
    }

    #[test]
    fn quote_search_is_exact_at_every_offset() {
        for n in 0..40 {
            let mut s = "a".repeat(n);
            s.push('"');
            s.push_str("\\\"");
            assert_eq!(find_quote_or_backslash(s.as_bytes(), 0), Some(n));
            let t = "\\".to_string() + &"b".repeat(n);
            assert_eq!(find_quote_or_backslash(t.as_bytes(), 1), None);
        }
        // A byte just above '"' next to a real hit must not be flagged first.
        assert_eq!(find_quote_or_backslash(b"#!\"aaaaaaaaa", 0), Some(2));
    }

    #[test]
    fn broken_json_is_an_error_after_the_good_records() {
        let mut got = Vec::new();
        let s = r#"{"Records":[{"a":1},{"b":"unterminated}]}"#;
        let e = for_each_record(&mut s.as_bytes(), &mut Vec::new(), |r| got.push(r.to_vec()))
            .unwrap_err();
        assert_eq!(got, [br#"{"a":1}"#.to_vec()]);
        let SplitFail::Json(e) = e else { panic!("{e}") };
        assert_eq!(e.what, "unterminated string");
        assert!(split(r#"{"Records":[{"a":1}"#).is_err());
        assert!(split(r#"{"Records":[{"a":1}]} trailing"#).is_err());
        assert!(split(r#"["not", "an object"]"#).is_err());
        assert!(split("").is_err());
        assert!(split(r#"{"Records":[{"a":1},]}"#).is_err());
    }
}
