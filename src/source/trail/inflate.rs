//! The one place a trail file's bytes are decompressed.
//!
//! Two ways, with the same result for every input:
//! - [`Whole`] inflates a file held in memory into one reused buffer with
//!   libdeflate (several times zlib's speed): every gzip member in turn, zero
//!   padding after the last tolerated, CRC-32 and length of each member checked,
//!   the output bounded by the caller's `limit` (a worker's buffer) and the cap.
//!   It only answers when it is sure: a file it cannot inflate whole (larger
//!   than the buffer, corrupt, trailing garbage) is handed back to be streamed,
//!   so the stream decides what the error says and which records came first.
//! - [`open`] turns any buffered reader into the file's JSON text as a stream:
//!   gzip (every member, zero padding after the last tolerated) or, without the
//!   gzip magic, the bytes as they are. It never holds more than the caller's
//!   read buffer and zlib's own window, and it stops with an error once the
//!   output passes `cap` bytes, so a small object that inflates without bound (a
//!   gzip bomb) costs time up to the cap, never memory.
//!
//! Swapping the inflate implementation (for speed) means changing this file only.

use std::io::{self, BufRead, Read};

use flate2::{Decompress, FlushDecompress, Status};

/// What one file may inflate to. Real CloudTrail files are a few MB to a few
/// hundred MB uncompressed; a file past this is refused (named, never the run).
pub const MAX_INFLATED: u64 = 1 << 30;

/// The most a worker inflates whole into one buffer: a bigger file is streamed.
/// CloudTrail's files are mostly a few MB; with one buffer per core this is
/// what bounds the memory (see [`whole_limit`]).
pub const WHOLE_MAX: usize = 32 << 20;
/// What all workers' whole-file buffers may hold together; each gets its
/// share, between 8 MiB and [`WHOLE_MAX`].
const WHOLE_BUDGET: usize = 64 << 20;

/// The whole-file bound of one of `workers` workers.
pub fn whole_limit(workers: usize) -> usize {
    (WHOLE_BUDGET / workers.max(1)).clamp(8 << 20, WHOLE_MAX)
}

/// DEFLATE cannot expand data more than about 1032 times (a 258-byte match in
/// a bit or two); a trailer claiming more than this over the whole file is not
/// an honest one.
const MAX_RATIO: u64 = 1100;

/// What [`Whole::inflate`] made of a file held in memory.
#[derive(Debug, PartialEq, Eq)]
pub enum Inflated {
    /// gzip, inflated whole: the text is `out[..n]`.
    Text(usize),
    /// No gzip magic: the bytes are the text.
    Plain,
    /// Not decided here (too large for the buffer, corrupt, trailing bytes):
    /// stream it with [`open`], which says what is wrong and keeps what came first.
    Stream,
    /// Refused before inflating anything: the trailer says the file inflates
    /// past the cap.
    Refused(String),
}

/// A libdeflate decompressor, reused from file to file by one worker.
pub struct Whole {
    d: std::ptr::NonNull<libdeflate_sys::libdeflate_decompressor>,
}

// SAFETY: the decompressor is plain memory owned by this value; libdeflate
// keeps no global state, so it may move between threads (never shared: every
// use takes `&mut self`).
unsafe impl Send for Whole {}

impl Whole {
    pub fn new() -> Whole {
        // SAFETY: no arguments; a null return (out of memory) is checked.
        let d = unsafe { libdeflate_sys::libdeflate_alloc_decompressor() };
        Whole {
            d: std::ptr::NonNull::new(d).expect("libdeflate: out of memory for a decompressor"),
        }
    }

    /// One gzip member at the start of `input` into `out`: (bytes read, bytes made).
    fn member(&mut self, input: &[u8], out: &mut [u8]) -> Result<(usize, usize), Member> {
        let (mut used, mut made) = (0usize, 0usize);
        // SAFETY: both pointers come from live slices with their true lengths;
        // libdeflate reads at most `input.len()` bytes, writes at most
        // `out.len()`, and keeps neither pointer after returning.
        let r = unsafe {
            libdeflate_sys::libdeflate_gzip_decompress_ex(
                self.d.as_ptr(),
                input.as_ptr().cast(),
                input.len(),
                out.as_mut_ptr().cast(),
                out.len(),
                &mut used,
                &mut made,
            )
        };
        match r {
            libdeflate_sys::libdeflate_result_LIBDEFLATE_SUCCESS => Ok((used, made)),
            libdeflate_sys::libdeflate_result_LIBDEFLATE_INSUFFICIENT_SPACE => Err(Member::Full),
            _ => Err(Member::Bad),
        }
    }

    /// Inflate `input` (a whole file) into `out`, which keeps its size between
    /// files (it only grows, to at most `limit`). The gzip trailer's size
    /// (ISIZE, the last member's length mod 2^32) is a hint for the buffer
    /// and never trusted: libdeflate checks each member's CRC-32 and length,
    /// and never writes past the buffer it is given.
    pub fn inflate(&mut self, input: &[u8], cap: u64, limit: usize, out: &mut Vec<u8>) -> Inflated {
        if input.first() != Some(&0x1f) {
            return Inflated::Plain;
        }
        let limit = limit.min(usize::try_from(cap).unwrap_or(usize::MAX));
        let hint = match input.len().checked_sub(4) {
            Some(at) => u64::from(u32::from_le_bytes([
                input[at],
                input[at + 1],
                input[at + 2],
                input[at + 3],
            ])),
            None => return Inflated::Stream,
        };
        let plausible = hint <= (input.len() as u64).saturating_mul(MAX_RATIO);
        if plausible && hint > cap {
            return Inflated::Refused(format!(
                "inflates past the limit of {} MiB for one file: its gzip trailer gives {} MiB (a gzip bomb, a file far larger than CloudTrail writes, or a damaged trailer)",
                cap >> 20,
                hint >> 20
            ));
        }
        if plausible && hint > limit as u64 {
            return Inflated::Stream;
        }
        // A single member (CloudTrail's files) fits exactly; more members, or
        // an implausible trailer, grow the buffer as needed.
        let first = if plausible && hint > 0 {
            hint as usize
        } else {
            input.len().saturating_mul(8)
        };
        let mut avail = first.clamp(1 << 16, limit);
        let (mut at, mut made) = (0usize, 0usize);
        loop {
            if out.len() < avail {
                out.resize(avail, 0);
            }
            match self.member(&input[at..], &mut out[made..avail]) {
                Ok((used, n)) => {
                    at += used;
                    made += n;
                    // Zero padding after a member is tolerated, as `gzip -d` does.
                    at += input[at..].iter().take_while(|b| **b == 0).count();
                    if at == input.len() {
                        return Inflated::Text(made);
                    }
                    if input[at] != 0x1f {
                        return Inflated::Stream;
                    }
                    // Room for another member like this one.
                    avail = avail.max(made.saturating_add(n.max(1 << 16))).min(limit);
                }
                Err(Member::Full) if avail < limit => {
                    avail = avail.saturating_mul(2).min(limit);
                }
                Err(_) => return Inflated::Stream,
            }
        }
    }
}

impl Default for Whole {
    fn default() -> Self {
        Whole::new()
    }
}

impl Drop for Whole {
    fn drop(&mut self) {
        // SAFETY: allocated by `libdeflate_alloc_decompressor`, freed once.
        unsafe { libdeflate_sys::libdeflate_free_decompressor(self.d.as_ptr()) }
    }
}

enum Member {
    /// It needs more room than the buffer has.
    Full,
    /// Corrupt, truncated, or its CRC or length does not match.
    Bad,
}

enum State {
    /// Not looked at yet: gzip or plain is decided on the first read.
    Start,
    Plain,
    Member(Box<Decompress>),
    /// After a member's end: another member, zero padding, or the end.
    Between,
    Done,
}

/// The decompressed text of one file; see [`open`].
pub struct Inflate<R> {
    src: R,
    state: State,
    out: u64,
    cap: u64,
}

/// Read `src` decompressed (gzip) or as is (plain), failing past `cap` bytes out.
pub fn open<R: BufRead>(src: R, cap: u64) -> Inflate<R> {
    Inflate {
        src,
        state: State::Start,
        out: 0,
        cap,
    }
}

impl<R> Inflate<R> {
    /// Bytes produced so far.
    pub fn produced(&self) -> u64 {
        self.out
    }
}

fn corrupt(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

impl<R: BufRead> Inflate<R> {
    fn count(&mut self, n: usize) -> io::Result<usize> {
        self.out += n as u64;
        if self.out > self.cap {
            self.state = State::Done;
            return Err(corrupt(format!(
                "inflates past the limit of {} MiB for one file (a gzip bomb, or a file far larger than CloudTrail writes)",
                self.cap >> 20
            )));
        }
        Ok(n)
    }
}

impl<R: BufRead> Read for Inflate<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if out.is_empty() {
            return Ok(0);
        }
        loop {
            match &mut self.state {
                State::Done => return Ok(0),
                State::Start => {
                    // JSON never starts with 0x1f: that byte alone decides, so a
                    // reader handing out one byte at a time is read right too.
                    let head = self.src.fill_buf()?;
                    self.state = if head.first() == Some(&0x1f) {
                        State::Member(Box::new(Decompress::new_gzip(15)))
                    } else {
                        State::Plain
                    };
                }
                State::Plain => {
                    let n = self.src.read(out)?;
                    if n == 0 {
                        self.state = State::Done;
                    }
                    return self.count(n);
                }
                State::Member(d) => {
                    let input = self.src.fill_buf()?;
                    let eof = input.is_empty();
                    let (in0, out0) = (d.total_in(), d.total_out());
                    let status = d
                        .decompress(input, out, FlushDecompress::None)
                        .map_err(|e| corrupt(format!("corrupt gzip: {e}")))?;
                    let used = (d.total_in() - in0) as usize;
                    let made = (d.total_out() - out0) as usize;
                    self.src.consume(used);
                    if status == Status::StreamEnd {
                        self.state = State::Between;
                    } else if made == 0 && (eof || used == 0) {
                        self.state = State::Done;
                        return Err(corrupt("truncated gzip: unexpected end of data".into()));
                    }
                    if made > 0 {
                        return self.count(made);
                    }
                }
                State::Between => {
                    let rest = self.src.fill_buf()?;
                    if rest.is_empty() {
                        self.state = State::Done;
                        return Ok(0);
                    }
                    // Zero padding after the last member is tolerated.
                    let zeros = rest.iter().take_while(|b| **b == 0).count();
                    if zeros > 0 {
                        self.src.consume(zeros);
                        continue;
                    }
                    if rest[0] != 0x1f {
                        self.state = State::Done;
                        return Err(corrupt(
                            "corrupt gzip: trailing garbage after the last member".into(),
                        ));
                    }
                    // Concatenated members are one file.
                    self.state = State::Member(Box::new(Decompress::new_gzip(15)));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn gz(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn all(bytes: &[u8], cap: u64) -> (Vec<u8>, io::Result<()>) {
        let mut out = Vec::new();
        // A small buffer: members and errors cross its edges.
        let r = io::BufReader::with_capacity(97, bytes);
        let res = open(r, cap).read_to_end(&mut out).map(|_| ());
        (out, res)
    }

    #[test]
    fn handles_members_padding_truncation_and_garbage() {
        let data: Vec<u8> = (0..300_000u32).flat_map(|i| i.to_le_bytes()).collect();
        let z = gz(&data);
        let (out, res) = all(&z, MAX_INFLATED);
        res.unwrap();
        assert_eq!(out, data);

        let mut two = gz(b"hello ");
        two.extend(gz(b"world"));
        two.extend([0u8; 4]);
        let (out, res) = all(&two, MAX_INFLATED);
        res.unwrap();
        assert_eq!(out, b"hello world");

        let (out, res) = all(&z[..z.len() / 2], MAX_INFLATED);
        assert!(res.unwrap_err().to_string().contains("truncated"));
        assert!(!out.is_empty(), "what was inflated is passed on");

        let mut bad = z.clone();
        bad[z.len() / 2] ^= 0xff;
        assert!(all(&bad, MAX_INFLATED).1.is_err());

        let mut trailing = gz(b"x");
        trailing.extend(b"garbage");
        let e = all(&trailing, MAX_INFLATED).1.unwrap_err();
        assert!(e.to_string().contains("trailing garbage"), "{e}");

        assert!(all(&[0x1f, 0x8b, 8], MAX_INFLATED).1.is_err());
        let (out, res) = all(b"{\"Records\":[]}", MAX_INFLATED);
        res.unwrap();
        assert_eq!(out, b"{\"Records\":[]}");
    }

    /// `Whole` on `bytes` with a fresh buffer: the outcome and the text.
    fn whole(bytes: &[u8], cap: u64, limit: usize) -> (Inflated, Vec<u8>) {
        let mut out = Vec::new();
        let r = Whole::new().inflate(bytes, cap, limit, &mut out);
        (r, out)
    }

    /// Bytes that do not compress (a simple generator, no dependency).
    fn noise(n: usize) -> Vec<u8> {
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect()
    }

    fn set_isize(z: &mut [u8], n: u32) {
        let at = z.len() - 4;
        z[at..].copy_from_slice(&n.to_le_bytes());
    }

    #[test]
    fn whole_reads_every_member_and_the_padding() {
        let data: Vec<u8> = (0..300_000u32).flat_map(|i| i.to_le_bytes()).collect();
        let (r, out) = whole(&gz(&data), MAX_INFLATED, WHOLE_MAX);
        assert_eq!(r, Inflated::Text(data.len()));
        assert_eq!(&out[..data.len()], &data[..]);
        // Three members, the last one small: its trailer is no guide to the
        // whole, so the buffer grows; zero padding after the last is fine.
        let mut three = gz(&data);
        three.extend(gz(b"hello "));
        three.extend(gz(b"world"));
        three.extend([0u8; 7]);
        let (r, out) = whole(&three, MAX_INFLATED, WHOLE_MAX);
        let n = data.len() + 11;
        assert_eq!(r, Inflated::Text(n));
        assert_eq!(&out[data.len()..n], b"hello world");
        // An empty member is a member.
        let mut empty = gz(b"");
        empty.extend(gz(b"x"));
        assert_eq!(whole(&empty, MAX_INFLATED, WHOLE_MAX).0, Inflated::Text(1));
        // Not gzip: the bytes are the text.
        assert_eq!(
            whole(b"{\"Records\":[]}", MAX_INFLATED, WHOLE_MAX).0,
            Inflated::Plain
        );
        assert_eq!(whole(b"", MAX_INFLATED, WHOLE_MAX).0, Inflated::Plain);
    }

    #[test]
    fn whole_hands_back_what_it_cannot_be_sure_of() {
        let data = noise(200_000);
        let z = gz(&data);
        // Truncated, a flipped data byte, a flipped CRC byte, trailing bytes.
        assert_eq!(
            whole(&z[..z.len() / 2], MAX_INFLATED, WHOLE_MAX).0,
            Inflated::Stream
        );
        assert_eq!(
            whole(&z[..z.len() - 1], MAX_INFLATED, WHOLE_MAX).0,
            Inflated::Stream
        );
        let mut bad = z.clone();
        bad[z.len() / 2] ^= 0x55;
        assert_eq!(whole(&bad, MAX_INFLATED, WHOLE_MAX).0, Inflated::Stream);
        let mut crc = z.clone();
        let at = z.len() - 8;
        crc[at] ^= 1;
        assert_eq!(whole(&crc, MAX_INFLATED, WHOLE_MAX).0, Inflated::Stream);
        let mut trailing = z.clone();
        trailing.extend(b"garbage");
        assert_eq!(
            whole(&trailing, MAX_INFLATED, WHOLE_MAX).0,
            Inflated::Stream
        );
        assert_eq!(
            whole(&[0x1f, 0x8b, 8], MAX_INFLATED, WHOLE_MAX).0,
            Inflated::Stream
        );
        // The stream names each of them.
        for bytes in [&crc[..], &bad[..]] {
            let e = all(bytes, MAX_INFLATED).1.unwrap_err();
            assert!(e.to_string().contains("corrupt gzip"), "{e}");
        }
        // Larger than the buffer may grow: streamed, the buffer never past the limit.
        let (r, out) = whole(&z, MAX_INFLATED, 1 << 16);
        assert_eq!(r, Inflated::Stream);
        assert!(out.len() <= 1 << 16);
    }

    #[test]
    fn a_lying_trailer_neither_skips_data_nor_overruns() {
        let data = noise(300_000);
        let z = gz(&data);
        // Too small: the buffer grows, then the length check fails it.
        let mut small = z.clone();
        set_isize(&mut small, 100);
        let (r, out) = whole(&small, MAX_INFLATED, WHOLE_MAX);
        assert_eq!(r, Inflated::Stream);
        assert!(out.len() <= WHOLE_MAX);
        let e = all(&small, MAX_INFLATED).1.unwrap_err();
        assert!(e.to_string().contains("corrupt gzip"), "{e}");
        // Too large but under the cap: a larger buffer, the same refusal.
        let mut large = z.clone();
        set_isize(&mut large, 5 << 20);
        let (r, out) = whole(&large, MAX_INFLATED, WHOLE_MAX);
        assert_eq!(r, Inflated::Stream);
        assert!(out.len() <= 5 << 20);
        // Past the limit of one buffer: streamed without trying.
        let (r, out) = whole(&large, MAX_INFLATED, 1 << 20);
        assert_eq!((r, out.len()), (Inflated::Stream, 0));
        // More than DEFLATE can expand this file: not a trailer, streamed.
        let mut absurd = gz(b"{}");
        set_isize(&mut absurd, u32::MAX);
        assert_eq!(whole(&absurd, MAX_INFLATED, WHOLE_MAX).0, Inflated::Stream);
    }

    #[test]
    fn a_trailer_past_the_cap_is_refused_before_anything_is_allocated() {
        // 4 MB that DEFLATE cannot shrink, its trailer saying 2 GiB: as much as
        // the file could hold (the ratio is possible), past the cap.
        let mut z = gz(&noise(4 << 20));
        set_isize(&mut z, 2 << 30);
        let (r, out) = whole(&z, MAX_INFLATED, WHOLE_MAX);
        match r {
            Inflated::Refused(why) => {
                assert!(why.contains("inflates past the limit of 1024 MiB"), "{why}");
                assert!(why.contains("trailer gives 2048 MiB"), "{why}");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(out.capacity(), 0, "nothing allocated");
        // Under a smaller cap, an honest file is refused by its own trailer.
        let honest = gz(&vec![b' '; 3 << 20]);
        assert!(matches!(
            whole(&honest, 2 << 20, WHOLE_MAX).0,
            Inflated::Refused(_)
        ));
        assert_eq!(
            whole(&honest, 3 << 20, WHOLE_MAX).0,
            Inflated::Text(3 << 20)
        );
    }

    #[test]
    fn whole_limits_follow_the_workers() {
        assert_eq!(whole_limit(1), WHOLE_MAX);
        assert_eq!(whole_limit(2), WHOLE_MAX);
        assert_eq!(whole_limit(4), 16 << 20);
        assert_eq!(whole_limit(64), 8 << 20);
        assert_eq!(whole_limit(0), WHOLE_MAX);
    }

    #[test]
    fn the_cap_stops_the_stream() {
        let z = gz(&vec![0u8; 1 << 20]);
        let (out, res) = all(&z, 1 << 20);
        res.unwrap();
        assert_eq!(out.len(), 1 << 20);
        let mut out = Vec::new();
        let e = open(&z[..], (1 << 20) - 1)
            .read_to_end(&mut out)
            .unwrap_err();
        assert!(e.to_string().contains("inflates past the limit"), "{e}");
        assert!(all(b"plain text", 3).1.is_err());
    }
}
