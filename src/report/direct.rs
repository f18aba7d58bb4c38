//! A report file written past the page cache where the file system allows it.
//!
//! On a virtual machine whose memory the host backs only when first touched,
//! copying a large report.json into fresh page-cache pages cost more than
//! serialising it: 800 MB took 2.9 s of kernel time through the page cache
//! (0.2 s once those pages had been used before), 0.56 s with `O_DIRECT` either
//! way; in the benchmark's 10,000-account run, report.json (770 MB) took
//! 4.5–4.8 s to write through the page cache, 2.9–3.7 s so. So whole aligned
//! blocks go straight to the disk, from one buffer that is reused; the last,
//! partial block is written through the page cache, as is everything on a file
//! system that refuses `O_DIRECT` (tmpfs, some network ones). The bytes on disk
//! are the same either way.

use std::fs::{File, OpenOptions};
use std::io::{self, Seek, SeekFrom, Write};
use std::path::Path;

/// Direct writes must start at, and be a multiple of, the device's block.
const ALIGN: usize = 4096;
/// Bytes held before they go to the disk in one write.
const HELD: usize = 1 << 21;

pub(super) struct FileSink {
    file: File,
    direct: bool,
    /// `HELD + ALIGN` bytes; the held ones start at `start`, which is aligned.
    buf: Vec<u8>,
    start: usize,
    held: usize,
    /// Where the held bytes go in the file.
    offset: u64,
}

impl FileSink {
    /// Creates (or truncates) `path`.
    pub(super) fn create(path: &Path) -> io::Result<FileSink> {
        let mut options = OpenOptions::new();
        options.write(true).create(true).truncate(true);
        let (file, mut direct) = open_direct(&mut options, path)?;
        let (mut buf, mut start) = (Vec::new(), 0);
        if direct {
            buf = vec![0u8; HELD + ALIGN];
            start = buf.as_ptr().align_offset(ALIGN);
            // `align_offset` may decline (usize::MAX): then through the page cache.
            if start >= ALIGN {
                drop_direct(&file)?;
                (direct, buf, start) = (false, Vec::new(), 0);
            }
        }
        Ok(FileSink {
            file,
            direct,
            buf,
            start,
            held: 0,
            offset: 0,
        })
    }

    /// Whether the file is still written past the page cache.
    #[cfg(test)]
    pub(super) fn is_direct(&self) -> bool {
        self.direct
    }

    pub(super) fn write_all(&mut self, mut data: &[u8]) -> io::Result<()> {
        if !self.direct {
            self.offset += data.len() as u64;
            return self.file.write_all(data);
        }
        while !data.is_empty() {
            let n = (HELD - self.held).min(data.len());
            let at = self.start + self.held;
            self.buf[at..at + n].copy_from_slice(&data[..n]);
            self.held += n;
            data = &data[n..];
            if self.held == HELD {
                self.write_held()?;
            }
        }
        Ok(())
    }

    /// Every byte in the file; the file, to be synced.
    pub(super) fn finish(mut self) -> io::Result<File> {
        // A partial block cannot go direct.
        if self.held > 0 {
            self.buffered()?;
        }
        Ok(self.file)
    }

    fn write_held(&mut self) -> io::Result<()> {
        let (from, to) = (self.start, self.start + self.held);
        match self.file.write_all(&self.buf[from..to]) {
            Ok(()) => {
                self.offset += self.held as u64;
                self.held = 0;
                Ok(())
            }
            // Refused after all (alignment, or the file system): the same
            // bytes again, from the same place, through the page cache.
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => self.buffered(),
            Err(e) => Err(e),
        }
    }

    /// From here on through the page cache, from the first byte not yet
    /// written, the held bytes first.
    fn buffered(&mut self) -> io::Result<()> {
        if self.direct {
            drop_direct(&self.file)?;
            self.direct = false;
        }
        self.file.seek(SeekFrom::Start(self.offset))?;
        let (from, to) = (self.start, self.start + self.held);
        self.file.write_all(&self.buf[from..to])?;
        self.offset += self.held as u64;
        self.held = 0;
        Ok(())
    }
}

#[cfg(target_os = "linux")]
fn open_direct(options: &mut OpenOptions, path: &Path) -> io::Result<(File, bool)> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut direct = options.clone();
    direct.custom_flags(libc::O_DIRECT);
    match direct.open(path) {
        Ok(f) => Ok((f, true)),
        // tmpfs and others refuse the flag when the file is opened.
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => Ok((options.open(path)?, false)),
        Err(e) => Err(e),
    }
}

#[cfg(not(target_os = "linux"))]
fn open_direct(options: &mut OpenOptions, path: &Path) -> io::Result<(File, bool)> {
    Ok((options.open(path)?, false))
}

#[cfg(target_os = "linux")]
fn drop_direct(file: &File) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let fd = file.as_raw_fd();
    // SAFETY: fcntl on a descriptor this File owns; it changes only its flags.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    if flags < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: as above.
    if unsafe { libc::fcntl(fd, libc::F_SETFL, flags & !libc::O_DIRECT) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(not(target_os = "linux"))]
fn drop_direct(_: &File) -> io::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i * 31 % 251) as u8).collect()
    }

    /// Sizes around the held buffer and the block, written in odd pieces:
    /// the file holds exactly what was written.
    #[test]
    fn the_file_holds_every_byte_written() {
        let dir = tempfile::tempdir().unwrap();
        for size in [
            0,
            1,
            ALIGN - 1,
            ALIGN,
            HELD - 1,
            HELD,
            HELD + 1,
            3 * HELD + 4097,
        ] {
            let path = dir.path().join(format!("f{size}"));
            let data = bytes(size);
            let mut sink = FileSink::create(&path).unwrap();
            for piece in data.chunks(12_345) {
                sink.write_all(piece).unwrap();
            }
            sink.finish().unwrap().sync_all().unwrap();
            assert!(std::fs::read(&path).unwrap() == data, "size {size}");
        }
    }

    /// A file that stops being direct part-way (as when the file system
    /// refuses a direct write) still holds every byte, in order.
    #[test]
    fn falling_back_part_way_keeps_every_byte() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let data = bytes(2 * HELD + 777);
        let mut sink = FileSink::create(&path).unwrap();
        sink.write_all(&data[..HELD + 5]).unwrap();
        sink.buffered().unwrap();
        sink.write_all(&data[HELD + 5..]).unwrap();
        assert!(!sink.is_direct());
        sink.finish().unwrap().sync_all().unwrap();
        assert!(std::fs::read(&path).unwrap() == data);
    }

    /// Where the test's folder allows it, large files do go direct (else this
    /// module is only a buffered writer and nothing here says so).
    #[cfg(target_os = "linux")]
    #[test]
    fn a_file_system_that_allows_it_is_written_direct() {
        let dir = tempfile::tempdir().unwrap();
        let sink = FileSink::create(&dir.path().join("f")).unwrap();
        let tmpfs = std::process::Command::new("stat")
            .args(["-f", "-c", "%T"])
            .arg(dir.path())
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "tmpfs")
            .unwrap_or(false);
        assert!(sink.is_direct() || tmpfs);
    }
}
