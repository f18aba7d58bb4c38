//! The one place a trail file's bytes are decompressed, as a stream.
//!
//! [`open`] turns any buffered reader into the file's JSON text: gzip (every
//! member, zero padding after the last tolerated) or, without the gzip magic,
//! the bytes as they are. It never holds more than the caller's read buffer and
//! zlib's own window, and it stops with an error once the output passes
//! `cap` bytes, so a small object that inflates without bound (a gzip bomb)
//! costs time up to the cap, never memory. Swapping the inflate implementation
//! (for speed) means changing this file only.

use std::io::{self, BufRead, Read};

use flate2::{Decompress, FlushDecompress, Status};

/// What one file may inflate to. Real CloudTrail files are a few MB to a few
/// hundred MB uncompressed; a file past this is refused (named, never the run).
pub const MAX_INFLATED: u64 = 1 << 30;

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
