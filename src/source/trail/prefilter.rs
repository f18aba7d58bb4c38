//! The pre-filter: which records may be wanted session calls, decided on their
//! text before any JSON is parsed, and never missing one.
//!
//! A wanted record's `eventName` decodes to one of the query's names. JSON
//! writes each character of a string either as itself or as a `\uXXXX` escape,
//! so a wanted record holds the name's bytes as they are, or an escape of a
//! letter (or digit, `.`, `_`, `-`). [`Gate::hits`] finds every literal name in
//! a file's whole text with one SIMD substring search (`memchr::memmem`) per
//! distinct needle; `records::find` adds the escapes and maps both to their
//! records. Spacing, key order, nesting and the other fields play no part, so
//! none of them can hide a record; the full parse after the gate decides.
//! Names that are not plain ASCII letters and digits (which JSON might write
//! in other ways) turn the gate off: then every record is parsed.

use memchr::memmem::Finder;

use super::records::Pair;

/// Characters a JSON `\uXXXX` escape may stand for that the literal tests
/// depend on (names, keys, `ssm.amazonaws.com`).
pub(crate) fn matters(c: u32) -> bool {
    (c < 0x80 && (c as u8).is_ascii_alphanumeric()) || matches!(c, 0x2e | 0x5f | 0x2d)
}

/// The character a `\u` escape whose `u` is at `at` stands for, if it is one.
pub(crate) fn unicode_escape(text: &[u8], at: usize) -> Option<u32> {
    let hex = text.get(at + 1..at + 5)?;
    if !hex.iter().all(u8::is_ascii_hexdigit) {
        return None;
    }
    u32::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()
}

/// Does one record's text escape a character that [`matters`]? Then the
/// literal tests (`ssm.amazonaws.com`, a compact `"eventName"`) cannot be
/// trusted on it and only the parse decides.
pub(crate) fn has_escape_that_matters(rec: &[u8]) -> bool {
    let mut i = 0;
    while let Some(k) = memchr::memchr(b'\\', &rec[i..]) {
        let at = i + k;
        if rec.get(at + 1) == Some(&b'u') && unicode_escape(rec, at + 1).is_some_and(matters) {
            return true;
        }
        // A backslash escapes the byte after it, whatever it is.
        i = at + 2;
        if i >= rec.len() {
            break;
        }
    }
    false
}

/// Does one of `names` end at `end` in `text`?
fn ends_a_name(names: &[Vec<u8>], text: &[u8], end: usize) -> bool {
    names
        .iter()
        .any(|name| end >= name.len() && text[end - name.len()..end] == name[..])
}

/// The query's event names, ready to be searched for.
pub(crate) struct Gate {
    /// `None`: the gate is off, every record is parsed.
    search: Option<Search>,
}

enum Search {
    /// One needle shared by every name (their common ending, e.g. `Session`
    /// for StartSession / ResumeSession / TerminateSession); each hit is
    /// checked against the names.
    Suffix {
        needle: Finder<'static>,
        names: Vec<Vec<u8>>,
    },
    /// One needle per name.
    Each(Vec<Finder<'static>>),
}

/// The shortest needle worth sharing; below it each name is searched alone.
const MIN_SUFFIX: usize = 4;

impl Gate {
    pub(crate) fn new(names: &[String]) -> Gate {
        let plain = |n: &String| !n.is_empty() && n.bytes().all(|b| b.is_ascii_alphanumeric());
        if !names.iter().all(plain) {
            return Gate { search: None };
        }
        let mut names: Vec<Vec<u8>> = names.iter().map(|n| n.as_bytes().to_vec()).collect();
        names.sort();
        names.dedup();
        let suffix = match names.split_first() {
            Some((first, rest)) => {
                let mut n = first.len();
                for other in rest {
                    n = n.min(
                        first
                            .iter()
                            .rev()
                            .zip(other.iter().rev())
                            .take_while(|(a, b)| a == b)
                            .count(),
                    );
                }
                first[first.len() - n..].to_vec()
            }
            None => Vec::new(),
        };
        let search = if names.len() > 1 && suffix.len() >= MIN_SUFFIX {
            Search::Suffix {
                needle: Finder::new(&suffix).into_owned(),
                names,
            }
        } else {
            Search::Each(names.iter().map(|n| Finder::new(n).into_owned()).collect())
        };
        Gate {
            search: Some(search),
        }
    }

    /// Is the gate on (only records holding a name or an escape pass)?
    pub(crate) fn is_on(&self) -> bool {
        self.search.is_some()
    }

    /// The offsets in `from..to` where a needle that completes a name starts,
    /// ascending, onto `out` (a name may begin before its needle, and end
    /// after `to`). Nothing when the gate is off (ask [`Gate::is_on`]).
    pub(crate) fn hits_between(&self, text: &[u8], from: usize, to: usize, out: &mut Vec<usize>) {
        let Some(search) = &self.search else {
            return;
        };
        let to = to.min(text.len());
        if from >= to {
            return;
        }
        // A needle that starts before `to` may end after it.
        let reach = |n: usize| &text[from..(to + n.saturating_sub(1)).min(text.len())];
        match search {
            Search::Suffix { needle, names } => {
                let n = needle.needle().len();
                let found = needle.find_iter(reach(n)).map(|k| from + k);
                out.extend(found.filter(|&at| ends_a_name(names, text, at + n)));
            }
            Search::Each(finders) => {
                let first = out.len();
                for f in finders {
                    out.extend(f.find_iter(reach(f.needle().len())).map(|k| from + k));
                }
                if finders.len() > 1 {
                    // What came before `from` is ascending and below it, so
                    // sorting the new ones keeps the whole ascending.
                    out[first..].sort_unstable();
                    out.dedup();
                }
            }
        }
    }

    /// The two rarest bytes of the one needle there is (as `memchr` ranks
    /// them), for a test a whole block at a time; none when several needles
    /// are searched or the gate is off.
    pub(crate) fn pair(&self) -> Option<Pair> {
        let needle = match &self.search {
            Some(Search::Suffix { needle, .. }) => needle.needle(),
            Some(Search::Each(finders)) if finders.len() == 1 => finders[0].needle(),
            _ => return None,
        };
        let p = memchr::arch::all::packedpair::Pair::new(needle)?;
        let (at1, at2) = (usize::from(p.index1()), usize::from(p.index2()));
        Some(Pair {
            at1,
            b1: needle[at1],
            at2,
            b2: needle[at2],
        })
    }

    /// May this one record be wanted (the streaming path's test)?
    pub(crate) fn passes(&self, rec: &[u8]) -> bool {
        let literal = match &self.search {
            None => return true,
            Some(Search::Suffix { needle, names }) => {
                let n = needle.needle().len();
                needle
                    .find_iter(rec)
                    .any(|at| ends_a_name(names, rec, at + n))
            }
            Some(Search::Each(finders)) => finders.iter().any(|f| f.find(rec).is_some()),
        };
        literal || has_escape_that_matters(rec)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gate(names: &[&str]) -> Gate {
        Gate::new(&names.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    fn hits(g: &Gate, text: &str) -> Vec<usize> {
        let mut out = Vec::new();
        g.hits_between(text.as_bytes(), 0, text.len(), &mut out);
        // In pieces of every size, the same hits.
        for step in 1..=text.len() {
            let mut pieces = Vec::new();
            for from in (0..text.len()).step_by(step) {
                g.hits_between(text.as_bytes(), from, from + step, &mut pieces);
            }
            assert_eq!(pieces, out, "pieces of {step}");
        }
        out
    }

    #[test]
    fn finds_every_literal_name_through_one_shared_needle() {
        let g = gate(&["StartSession", "ResumeSession", "TerminateSession"]);
        assert!(matches!(g.search, Some(Search::Suffix { .. })));
        let text = r#"x StartSession roleSessionName ResumeSession "TerminateSession" AWS-StartPortForwardingSession"#;
        let want: Vec<usize> = ["StartSession", "ResumeSession", "TerminateSession"]
            .iter()
            .map(|n| text.find(n).unwrap() + n.len() - "Session".len())
            .collect();
        assert_eq!(hits(&g, text), want);
        // A name at the very start, and a needle too close to the start for a name.
        assert_eq!(hits(&g, "StartSession"), [5]);
        assert_eq!(hits(&g, "tSession"), Vec::<usize>::new());
    }

    #[test]
    fn names_without_a_shared_ending_are_searched_one_by_one() {
        let g = gate(&["StartSession", "SendCommand"]);
        assert!(matches!(g.search, Some(Search::Each(_))));
        assert_eq!(
            hits(&g, "SendCommand StartSession SendCommand"),
            [0, 12, 25]
        );
        let one = gate(&["StartSession"]);
        assert_eq!(hits(&one, "aStartSessionb"), [1]);
    }

    #[test]
    fn odd_names_turn_the_gate_off() {
        for names in [&["Start Session"][..], &[""], &["Starté"], &["a\"b"]] {
            let g = gate(names);
            assert!(!g.is_on(), "{names:?}");
            assert!(g.passes(b"{}"));
        }
        // No name at all: nothing is wanted, the gate stays on.
        let g = Gate::new(&[]);
        assert!(g.is_on());
        assert!(!g.passes(br#"{"eventName":"StartSession"}"#));
    }

    #[test]
    fn a_record_passes_by_a_literal_name_or_an_escaped_letter() {
        let g = gate(&["StartSession", "ResumeSession", "TerminateSession"]);
        assert!(g.passes(br#"{"eventName" : "StartSession"}"#));
        assert!(g.passes(br#"{"eventName":"Start\u0053ession"}"#));
        assert!(g.passes(br#"{"eventName":"\u0053tartSession"}"#));
        assert!(g.passes(br#"{"eventSource":"ssm\u002eamazonaws.com"}"#));
        assert!(!g.passes(br#"{"eventName":"GetParameter"}"#));
        // Escapes of what no name or key holds, and escaped backslashes, do not count.
        assert!(!g.passes(br#"{"ua":"\u00e9t\u00e9 \"q\" \\u0053 \n"}"#));
        assert!(!g.passes(br#"{"ua":"\u00"}"#));
        assert!(!g.passes(br#"{"ua":"\u+053"}"#));
        assert!(has_escape_that_matters(br#"\\\u0041"#));
        assert!(!has_escape_that_matters(br#"\\u0041"#));
        assert!(!has_escape_that_matters(b"\\"));
    }
}
