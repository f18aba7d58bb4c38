//! `report.json`: the whole `Report`, pretty-printed with 2-space indents.
//!
//! The bytes are serde_json's `to_writer_pretty`'s (a test holds them to it),
//! but its two long lists, sessions and events, are serialised on every core,
//! a batch at a time: on one core 343,000 events took 3.9 s.

use std::io;

use serde::Serialize;
use serde_json::ser::Formatter;

use super::ReportWriter;
use crate::model::{AccountReport, Finding, Report, RunInfo};

pub struct JsonReport;

impl ReportWriter for JsonReport {
    fn file_name(&self) -> &'static str {
        "report.json"
    }

    fn write(&self, report: &Report, out: &mut dyn io::Write) -> io::Result<()> {
        // `Report`'s fields in its order, but for the last two, which follow.
        #[derive(Serialize)]
        struct Head<'a> {
            schema: &'a str,
            run: &'a RunInfo,
            accounts: &'a [AccountReport],
            findings: &'a [Finding],
        }
        // Streamed, not built whole first (the accounts of a large
        // organization are tens of MB), all but its closing "\n}": the object
        // goes on.
        let mut head = AllButLast {
            out: &mut *out,
            held: Vec::with_capacity(HELD_BACK),
        };
        serde_json::to_writer_pretty(
            &mut head,
            &Head {
                schema: &report.schema,
                run: &report.run,
                accounts: &report.accounts,
                findings: &report.findings,
            },
        )?;
        let held = head.held;
        let Some(rest) = held.strip_suffix(b"\n}") else {
            return Err(io::Error::other(
                "report.json: its head did not end an object",
            ));
        };
        out.write_all(rest)?;
        out.write_all(b",\n  \"sessions\": ")?;
        write_list(&report.sessions, out)?;
        out.write_all(b",\n  \"events\": ")?;
        write_list(&report.events, out)?;
        out.write_all(b"\n}\n")?;
        out.flush()
    }
}

/// The last bytes of an object written pretty: "\n}".
const HELD_BACK: usize = 2;

/// Writes through all but (at least) the last [`HELD_BACK`] bytes it is
/// given; the caller writes the rest of `held`.
struct AllButLast<'a> {
    out: &'a mut dyn io::Write,
    held: Vec<u8>,
}

impl io::Write for AllButLast<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.held.extend_from_slice(buf);
        if self.held.len() > 4096 {
            let through = self.held.len() - HELD_BACK;
            self.out.write_all(&self.held[..through])?;
            self.held.drain(..through);
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Items serialised per batch, split between the cores.
const BATCH: usize = 4096;

/// A list that is a member of the top-level object, as `to_writer_pretty`
/// writes it there: items at depth 2.
fn write_list<T: Serialize + Sync>(items: &[T], out: &mut dyn io::Write) -> io::Result<()> {
    if items.is_empty() {
        return out.write_all(b"[]");
    }
    out.write_all(b"[")?;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    // One buffer per core, used again for every batch: fresh ones came from
    // the system each time (2 MB each), and a page touched for the first time
    // cost more than the bytes written into it.
    let mut bufs: Vec<Vec<u8>> = (0..cores).map(|_| Vec::new()).collect();
    for (b, batch) in items.chunks(BATCH).enumerate() {
        let per = batch.len().div_ceil(cores).max(1);
        if cores == 1 || batch.len() < 64 {
            render_items(batch, b == 0, &mut bufs[0])?;
        } else {
            std::thread::scope(|scope| {
                let handles: Vec<_> = batch
                    .chunks(per)
                    .zip(bufs.iter_mut())
                    .enumerate()
                    .map(|(i, (part, buf))| {
                        let first = b == 0 && i == 0;
                        scope.spawn(move || render_items(part, first, buf))
                    })
                    .collect();
                handles.into_iter().try_for_each(|h| {
                    h.join().unwrap_or_else(|_| {
                        Err(io::Error::other("a report.json writer thread panicked"))
                    })
                })
            })?;
        }
        for buf in &mut bufs {
            out.write_all(buf)?;
            buf.clear();
        }
    }
    out.write_all(b"\n  ]")
}

/// Items as elements of a list at depth 2, each after its separator, into `buf`.
fn render_items<T: Serialize>(items: &[T], first: bool, buf: &mut Vec<u8>) -> io::Result<()> {
    for (i, item) in items.iter().enumerate() {
        buf.extend_from_slice(if first && i == 0 {
            b"\n    "
        } else {
            b",\n    "
        });
        let mut ser = serde_json::Serializer::with_formatter(&mut *buf, Pretty::at(2));
        item.serialize(&mut ser)?;
    }
    Ok(())
}

/// serde_json's `PrettyFormatter` (two spaces), starting `depth` levels in.
struct Pretty {
    depth: usize,
    has_value: bool,
}

impl Pretty {
    fn at(depth: usize) -> Self {
        Pretty {
            depth,
            has_value: false,
        }
    }

    fn indent<W: ?Sized + io::Write>(&self, w: &mut W) -> io::Result<()> {
        for _ in 0..self.depth {
            w.write_all(b"  ")?;
        }
        Ok(())
    }

    fn open<W: ?Sized + io::Write>(&mut self, w: &mut W, b: &[u8]) -> io::Result<()> {
        self.depth += 1;
        self.has_value = false;
        w.write_all(b)
    }

    fn close<W: ?Sized + io::Write>(&mut self, w: &mut W, b: &[u8]) -> io::Result<()> {
        self.depth -= 1;
        if self.has_value {
            w.write_all(b"\n")?;
            self.indent(w)?;
        }
        w.write_all(b)
    }

    fn item<W: ?Sized + io::Write>(&mut self, w: &mut W, first: bool) -> io::Result<()> {
        w.write_all(if first { b"\n" } else { b",\n" })?;
        self.indent(w)
    }
}

impl Formatter for Pretty {
    fn begin_array<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.open(w, b"[")
    }
    fn end_array<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.close(w, b"]")
    }
    fn begin_array_value<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> io::Result<()> {
        self.item(w, first)
    }
    fn end_array_value<W: ?Sized + io::Write>(&mut self, _w: &mut W) -> io::Result<()> {
        self.has_value = true;
        Ok(())
    }
    fn begin_object<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.open(w, b"{")
    }
    fn end_object<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.close(w, b"}")
    }
    fn begin_object_key<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> io::Result<()> {
        self.item(w, first)
    }
    fn begin_object_value<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        w.write_all(b": ")
    }
    fn end_object_value<W: ?Sized + io::Write>(&mut self, _w: &mut W) -> io::Result<()> {
        self.has_value = true;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::REPORT_SCHEMA;
    use crate::report::fixture;

    fn render(report: &Report) -> String {
        let mut out = Vec::new();
        JsonReport.write(report, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    /// What it holds back and what it wrote through are, together, every
    /// byte, in order, however they came; at least the last two are held.
    #[test]
    fn all_but_last_holds_back_the_end() {
        use std::io::Write;
        let data: Vec<u8> = (0..20_000u32).map(|i| (i % 251) as u8).collect();
        for piece in [1, 2, 3, 700, 4097, 20_000] {
            let mut out = Vec::new();
            let mut w = AllButLast {
                out: &mut out,
                held: Vec::new(),
            };
            for p in data.chunks(piece) {
                w.write_all(p).unwrap();
            }
            let held = w.held;
            assert!(held.len() >= HELD_BACK, "{piece}");
            out.extend_from_slice(&held);
            assert!(out == data, "{piece}");
        }
    }

    /// The bytes `to_writer_pretty` gives, for lists empty, short and longer
    /// than a batch (split between threads).
    #[test]
    fn same_bytes_as_serde_pretty() {
        let mut report = fixture::report();
        let expected = |r: &Report| format!("{}\n", serde_json::to_string_pretty(r).unwrap());
        assert_eq!(render(&report), expected(&report));
        let (sessions, events) = (report.sessions.clone(), report.events.clone());
        assert!(!sessions.is_empty() && !events.is_empty());
        report.sessions.clear();
        report.events.clear();
        assert_eq!(render(&report), expected(&report));
        for n in [1, 63, 64, 65, BATCH - 1, BATCH, BATCH + 1, 2 * BATCH + 7] {
            report.sessions = sessions.iter().cycle().take(n).cloned().collect();
            report.events = events.iter().cycle().take(n / 3 + 1).cloned().collect();
            assert_eq!(render(&report), expected(&report), "{n} items");
        }
    }

    #[test]
    fn report_json_snapshot() {
        insta::assert_snapshot!("report_json", render(&fixture::report()));
    }

    #[test]
    fn round_trips_with_two_space_indent() {
        let report = fixture::report();
        let text = render(&report);
        assert!(text.starts_with("{\n  \"schema\": \"ssm-session-audit/report/v1\",\n"));
        assert!(text.ends_with("}\n"));
        let back: Report = serde_json::from_str(&text).unwrap();
        assert_eq!(back, report);
        assert_eq!(back.schema, REPORT_SCHEMA);
        // Same input, same bytes.
        assert_eq!(render(&report), text);
    }
}
