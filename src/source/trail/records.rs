//! Where the records of a trail file's whole text (in memory) begin and end,
//! found 64 bytes at a time, and which of them hold a given set of positions.
//!
//! [`find`] is a structural pass in the manner of simdjson's first stage:
//! quotes, backslashes and brackets become bit masks of a 64-byte block (SSE2,
//! or AVX2 where the CPU has it), escaped quotes are removed, the inside of
//! strings is a prefix XOR of the quotes, and the depth moves by the brackets
//! outside strings (AVX-512BW takes a block in one register). Most blocks only
//! move the depth: they go through a loop that holds everything in registers
//! and calls nothing. Only a block where the depth may come back to the
//! array's level, that escapes a `u`, or that may hold a name goes to the
//! block walk, which looks at it bit by bit; so the cost per record is a few
//! instructions, not a walk over its bytes. Names are found by the same pass:
//! a two-byte test of each block (the needle's two rarest bytes at their
//! offsets, as `memchr` picks them), and `memmem` only over a block that
//! passes it; with several needles, `memmem` runs a 32 KiB piece ahead of the
//! walk instead, while the piece is in cache. Each record that holds one of
//! the needles' positions comes back as a byte range; the others are only
//! counted.
//!
//! It answers only for what the streaming splitter (`split::for_each_record`)
//! would cut into the same records: `{"Records":[ {…}, {…} ]}` with any
//! whitespace. Anything else (other keys, an element that is not an object, a
//! backslash outside a string, broken or truncated structure, a record near
//! the splitter's size limit) is `None`, and the caller runs the splitter,
//! which decides and names the error.

use super::prefilter::{matters, unicode_escape, Gate};
use super::split::MAX_RECORD;

/// What [`find`] saw in a well-formed file.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Found {
    /// Elements of the `Records` array.
    pub records: u64,
    /// `start..end` of each record holding a position, in order.
    pub holding: Vec<(usize, usize)>,
}

/// Where in a text the positions a record may be held for are: the
/// pre-filter's needles, searched for a piece at a time just ahead of the
/// walk, so that each piece is read while it is still in the cache.
pub(crate) trait Needles {
    /// The positions in `from..to`, ascending, onto `out`.
    fn between(&self, text: &[u8], from: usize, to: usize, out: &mut Vec<usize>);

    /// Two bytes every position has at fixed offsets from it, when there is
    /// such a test: a block where no byte passes it holds no position, and is
    /// not searched.
    fn pair(&self) -> Option<Pair> {
        None
    }
}

/// Every position `p` has `text[p + at1] == b1` and `text[p + at2] == b2`.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Pair {
    pub at1: usize,
    pub b1: u8,
    pub at2: usize,
    pub b2: u8,
}

impl Needles for Gate {
    fn between(&self, text: &[u8], from: usize, to: usize, out: &mut Vec<usize>) {
        self.hits_between(text, from, to, out)
    }

    fn pair(&self) -> Option<Pair> {
        self.pair()
    }
}

/// Positions known in advance (ascending).
impl Needles for [usize] {
    fn between(&self, _: &[u8], from: usize, to: usize, out: &mut Vec<usize>) {
        let a = self.partition_point(|&p| p < from);
        let b = self.partition_point(|&p| p < to);
        out.extend_from_slice(&self[a..b]);
    }
}

/// How far ahead of the walk the needles are searched: a piece that stays in
/// the first-level cache between the search and the walk.
const PIECE: usize = 32 << 10;

/// The records of `text` that hold a position of `needles` or a `\u` escape
/// of a character that [`matters`]; `None` if the text is not plainly a trail
/// file (see the module doc). `hits` is scratch space, reused between files.
pub(crate) fn find<N: Needles + ?Sized>(
    text: &[u8],
    needles: &N,
    hits: &mut Vec<usize>,
) -> Option<Found> {
    hits.clear();
    let start = header(text)?;
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512bw")
            && std::arch::is_x86_feature_detected!("pclmulqdq")
            && std::arch::is_x86_feature_detected!("popcnt")
            && std::arch::is_x86_feature_detected!("bmi1")
        {
            // SAFETY: the CPU has these features (checked just above).
            return unsafe { find_avx512(text, start, needles, hits) };
        }
        if std::arch::is_x86_feature_detected!("avx2")
            && std::arch::is_x86_feature_detected!("pclmulqdq")
            && std::arch::is_x86_feature_detected!("popcnt")
            && std::arch::is_x86_feature_detected!("bmi1")
        {
            // SAFETY: the CPU has these features (checked just above).
            return unsafe { find_avx2(text, start, needles, hits) };
        }
        // SAFETY: SSE2 is part of every x86_64 CPU.
        unsafe { find_sse2(text, start, needles, hits) }
    }
    #[cfg(not(target_arch = "x86_64"))]
    walk::<Scalar, N>(text, start, needles, hits)
}

// With `popcnt` and `bmi1` the counts and bit scans are one instruction each
// (not a sequence of shifts), and `pclmulqdq` makes the prefix XOR one multiply:
// together about half the time of this pass.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,popcnt,bmi1,pclmulqdq")]
unsafe fn find_avx2<N: Needles + ?Sized>(
    text: &[u8],
    start: usize,
    needles: &N,
    hits: &mut Vec<usize>,
) -> Option<Found> {
    walk::<Avx2, N>(text, start, needles, hits)
}

// A 64-byte block is one AVX-512 register, and each comparison gives its
// bit mask directly: half the instructions of the AVX2 pass per block.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,popcnt,bmi1,pclmulqdq")]
unsafe fn find_avx512<N: Needles + ?Sized>(
    text: &[u8],
    start: usize,
    needles: &N,
    hits: &mut Vec<usize>,
) -> Option<Found> {
    walk::<Avx512, N>(text, start, needles, hits)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "sse2")]
unsafe fn find_sse2<N: Needles + ?Sized>(
    text: &[u8],
    start: usize,
    needles: &N,
    hits: &mut Vec<usize>,
) -> Option<Found> {
    walk::<Sse2, N>(text, start, needles, hits)
}

#[inline]
fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\n' | b'\r' | b'\t')
}

fn skip_ws(text: &[u8], mut i: usize) -> usize {
    while i < text.len() && is_ws(text[i]) {
        i += 1;
    }
    i
}

/// `{ "Records" : [`: the offset just after the `[`.
fn header(text: &[u8]) -> Option<usize> {
    let mut i = skip_ws(text, 0);
    for want in [&b"{"[..], b"\"Records\"", b":", b"["] {
        i = skip_ws(text, i);
        if !text[i..].starts_with(want) {
            return None;
        }
        i += want.len();
    }
    Some(i)
}

/// Between two elements: whitespace around exactly one comma (none before
/// the first element or the array's end).
fn gap_ok(gap: &[u8], comma: bool) -> bool {
    let mut i = skip_ws(gap, 0);
    if comma {
        if gap.get(i) != Some(&b',') {
            return false;
        }
        i = skip_ws(gap, i + 1);
    }
    i == gap.len()
}

/// The bit masks of one 64-byte block.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Masks {
    quote: u64,
    backslash: u64,
    /// `{` or `[`.
    open: u64,
    /// `}` or `]`.
    close: u64,
}

trait Classify {
    fn masks(block: &[u8; 64]) -> Masks;

    /// The bytes of `block` equal to `b`.
    fn eq(block: &[u8; 64], b: u8) -> u64;

    /// Bit i = XOR of bits 0..=i: the inside of the strings, opening quote included.
    #[inline(always)]
    fn prefix_xor(x: u64) -> u64 {
        prefix_xor(x)
    }
}

/// Byte by byte: the reference the SIMD versions are tested against, and the
/// fallback on other architectures.
#[cfg_attr(all(target_arch = "x86_64", not(test)), allow(dead_code))]
struct Scalar;

impl Classify for Scalar {
    #[inline(always)]
    fn eq(block: &[u8; 64], b: u8) -> u64 {
        block
            .iter()
            .enumerate()
            .fold(0, |m, (i, &x)| m | (u64::from(x == b) << i))
    }

    #[inline(always)]
    fn masks(block: &[u8; 64]) -> Masks {
        let mut m = Masks::default();
        for (i, &b) in block.iter().enumerate() {
            let bit = 1u64 << i;
            match b {
                b'"' => m.quote |= bit,
                b'\\' => m.backslash |= bit,
                b'{' | b'[' => m.open |= bit,
                b'}' | b']' => m.close |= bit,
                _ => {}
            }
        }
        m
    }
}

#[cfg(target_arch = "x86_64")]
struct Sse2;

#[cfg(target_arch = "x86_64")]
impl Classify for Sse2 {
    #[inline(always)]
    fn eq(block: &[u8; 64], b: u8) -> u64 {
        // SAFETY: SSE2 is part of every x86_64 CPU.
        unsafe { eq_sse2(block, b) }
    }

    #[inline(always)]
    fn masks(block: &[u8; 64]) -> Masks {
        // SAFETY: SSE2 is part of every x86_64 CPU.
        unsafe { masks_sse2(block) }
    }
}

#[cfg(target_arch = "x86_64")]
struct Avx2;

#[cfg(target_arch = "x86_64")]
impl Classify for Avx2 {
    #[inline(always)]
    fn eq(block: &[u8; 64], b: u8) -> u64 {
        // SAFETY: only reached through `find_avx2` (as `masks`).
        unsafe { eq_avx2(block, b) }
    }

    #[inline(always)]
    fn masks(block: &[u8; 64]) -> Masks {
        // SAFETY: only reached through `find_avx2`, after the CPU was found to
        // have AVX2.
        unsafe { masks_avx2(block) }
    }

    #[inline(always)]
    fn prefix_xor(x: u64) -> u64 {
        // SAFETY: as above; `find_avx2` is only called where the CPU has
        // PCLMULQDQ too.
        unsafe { prefix_xor_clmul(x) }
    }
}

#[cfg(target_arch = "x86_64")]
struct Avx512;

#[cfg(target_arch = "x86_64")]
impl Classify for Avx512 {
    #[inline(always)]
    fn eq(block: &[u8; 64], b: u8) -> u64 {
        // SAFETY: only reached through `find_avx512` (as `masks`).
        unsafe { eq_avx512(block, b) }
    }

    #[inline(always)]
    fn masks(block: &[u8; 64]) -> Masks {
        // SAFETY: only reached through `find_avx512`, after the CPU was found
        // to have AVX-512BW.
        unsafe { masks_avx512(block) }
    }

    #[inline(always)]
    fn prefix_xor(x: u64) -> u64 {
        // SAFETY: `find_avx512` is only called where the CPU has PCLMULQDQ.
        unsafe { prefix_xor_clmul(x) }
    }
}

/// The prefix XOR as a carry-less multiply by all ones (as simdjson does it).
#[cfg(target_arch = "x86_64")]
#[inline]
#[target_feature(enable = "sse2,pclmulqdq")]
unsafe fn prefix_xor_clmul(x: u64) -> u64 {
    use std::arch::x86_64::*;
    let v = _mm_set_epi64x(0, x as i64);
    let ones = _mm_set1_epi8(-1);
    _mm_cvtsi128_si64(_mm_clmulepi64_si128(v, ones, 0)) as u64
}

// The intrinsics live in functions that carry their target feature, so that
// they are inlined (into `find_*`, which carry it too) rather than called.

#[cfg(target_arch = "x86_64")]
#[inline]
#[target_feature(enable = "sse2")]
unsafe fn eq128(v: std::arch::x86_64::__m128i, c: u8) -> u64 {
    use std::arch::x86_64::*;
    _mm_movemask_epi8(_mm_cmpeq_epi8(v, _mm_set1_epi8(c as i8))) as u16 as u64
}

#[cfg(target_arch = "x86_64")]
#[inline]
#[target_feature(enable = "sse2")]
unsafe fn masks_sse2(block: &[u8; 64]) -> Masks {
    use std::arch::x86_64::*;
    let mut m = Masks::default();
    for k in 0..4 {
        // SAFETY (of the load): 16 bytes inside the 64-byte block.
        let v = unsafe { _mm_loadu_si128(block.as_ptr().add(16 * k).cast()) };
        // `{`/`[` and `}`/`]` differ only in bit 5.
        let folded = _mm_or_si128(v, _mm_set1_epi8(0x20));
        let s = 16 * k;
        m.quote |= eq128(v, b'"') << s;
        m.backslash |= eq128(v, b'\\') << s;
        m.open |= eq128(folded, b'{') << s;
        m.close |= eq128(folded, b'}') << s;
    }
    m
}

#[cfg(target_arch = "x86_64")]
#[inline]
#[target_feature(enable = "avx2")]
unsafe fn eq256(v: std::arch::x86_64::__m256i, c: u8) -> u64 {
    use std::arch::x86_64::*;
    _mm256_movemask_epi8(_mm256_cmpeq_epi8(v, _mm256_set1_epi8(c as i8))) as u32 as u64
}

#[cfg(target_arch = "x86_64")]
#[inline]
#[target_feature(enable = "avx2")]
unsafe fn masks_avx2(block: &[u8; 64]) -> Masks {
    use std::arch::x86_64::*;
    let mut m = Masks::default();
    for k in 0..2 {
        // SAFETY (of the load): 32 bytes inside the 64-byte block.
        let v = unsafe { _mm256_loadu_si256(block.as_ptr().add(32 * k).cast()) };
        let folded = _mm256_or_si256(v, _mm256_set1_epi8(0x20));
        let s = 32 * k;
        m.quote |= eq256(v, b'"') << s;
        m.backslash |= eq256(v, b'\\') << s;
        m.open |= eq256(folded, b'{') << s;
        m.close |= eq256(folded, b'}') << s;
    }
    m
}

#[cfg(target_arch = "x86_64")]
#[inline]
#[target_feature(enable = "avx512f,avx512bw")]
unsafe fn masks_avx512(block: &[u8; 64]) -> Masks {
    use std::arch::x86_64::*;
    // SAFETY (of the load): the 64 bytes of the block.
    let v = unsafe { _mm512_loadu_si512(block.as_ptr().cast()) };
    let folded = _mm512_or_si512(v, _mm512_set1_epi8(0x20));
    Masks {
        quote: _mm512_cmpeq_epi8_mask(v, _mm512_set1_epi8(b'"' as i8)),
        backslash: _mm512_cmpeq_epi8_mask(v, _mm512_set1_epi8(b'\\' as i8)),
        open: _mm512_cmpeq_epi8_mask(folded, _mm512_set1_epi8(b'{' as i8)),
        close: _mm512_cmpeq_epi8_mask(folded, _mm512_set1_epi8(b'}' as i8)),
    }
}

#[cfg(target_arch = "x86_64")]
#[inline]
#[target_feature(enable = "sse2")]
unsafe fn eq_sse2(block: &[u8; 64], b: u8) -> u64 {
    use std::arch::x86_64::*;
    let mut m = 0;
    for k in 0..4 {
        // SAFETY (of the load): 16 bytes inside the 64-byte block.
        let v = unsafe { _mm_loadu_si128(block.as_ptr().add(16 * k).cast()) };
        m |= eq128(v, b) << (16 * k);
    }
    m
}

#[cfg(target_arch = "x86_64")]
#[inline]
#[target_feature(enable = "avx2")]
unsafe fn eq_avx2(block: &[u8; 64], b: u8) -> u64 {
    use std::arch::x86_64::*;
    // SAFETY (of the loads): 32 bytes inside the 64-byte block, twice.
    let (lo, hi) = unsafe {
        (
            _mm256_loadu_si256(block.as_ptr().cast()),
            _mm256_loadu_si256(block.as_ptr().add(32).cast()),
        )
    };
    eq256(lo, b) | eq256(hi, b) << 32
}

#[cfg(target_arch = "x86_64")]
#[inline]
#[target_feature(enable = "avx512f,avx512bw")]
unsafe fn eq_avx512(block: &[u8; 64], b: u8) -> u64 {
    use std::arch::x86_64::*;
    // SAFETY (of the load): the 64 bytes of the block.
    let v = unsafe { _mm512_loadu_si512(block.as_ptr().cast()) };
    _mm512_cmpeq_epi8_mask(v, _mm512_set1_epi8(b as i8))
}

const EVEN: u64 = 0x5555_5555_5555_5555;

/// The characters escaped by a backslash, where it matters: the byte just
/// after each run of backslashes of odd length. `carry` says the block's
/// first byte is escaped (the last block ended inside such a run), and is set
/// for the next block.
#[inline(always)]
fn escaped(backslash: u64, carry: &mut u64) -> u64 {
    let first = *carry;
    // An escaped first byte escapes nothing, even if it is a backslash.
    let b = backslash & !first;
    let starts = b & !(b << 1);
    // Adding a run's first bit ripples through the run to the byte after it.
    let (even_ends, _) = b.overflowing_add(starts & EVEN);
    let (odd_ends, odd_out) = b.overflowing_add(starts & !EVEN);
    // A run's length is odd when its end lands on the other parity.
    let after = (even_ends & !b & !EVEN) | (odd_ends & !b & EVEN);
    // A run reaching bit 63 from an odd start is odd: it escapes the next
    // block's first byte (from an even start it is even and escapes nothing).
    *carry = u64::from(odd_out);
    after | first
}

/// Bit i = XOR of bits 0..=i: the inside of the strings, opening quote included.
#[inline(always)]
fn prefix_xor(mut x: u64) -> u64 {
    x ^= x << 1;
    x ^= x << 2;
    x ^= x << 4;
    x ^= x << 8;
    x ^= x << 16;
    x ^= x << 32;
    x
}

/// Does `s..e` hold one of `at` (ascending) from `*next` on? Moves `*next` past `e`.
#[inline(always)]
fn holds(at: &[usize], next: &mut usize, s: usize, e: usize) -> bool {
    while *next < at.len() && at[*next] < s {
        *next += 1;
    }
    let inside = *next < at.len() && at[*next] < e;
    while *next < at.len() && at[*next] < e {
        *next += 1;
    }
    inside
}

/// A record is kept out of the fast path past this: the splitter's window
/// limit decides what happens to such a record.
const RECORD_LIMIT: usize = MAX_RECORD / 2;

/// What the walk keeps besides the few values its hot loop holds in
/// registers: touched only in a block where the depth may come back to the
/// array's level, or that holds an escape.
struct Cuts<'a, N: ?Sized> {
    text: &'a [u8],
    needles: &'a N,
    /// The needles' positions found so far, ascending; all of those before
    /// `hits_to`.
    hits: &'a mut Vec<usize>,
    hits_to: usize,
    found: Found,
    record_start: usize,
    /// Where the bytes between two elements begin.
    gap_from: usize,
    next_hit: usize,
    /// Where `\u` escapes that matter are, ascending, found as the walk goes.
    escapes: Vec<usize>,
    next_escape: usize,
}

/// What a block's brackets did.
enum Step {
    /// The depth after the block.
    Depth(u64),
    /// The array ends at this offset.
    End(usize),
    /// Not plainly a trail file.
    Bad,
}

impl<N: Needles + ?Sized> Cuts<'_, N> {
    /// Search the next piece (at least up to `to`).
    #[inline(never)]
    fn more_hits(&mut self, to: usize, ahead: usize) {
        let from = self.hits_to;
        self.hits_to = to.max(from + ahead).min(self.text.len());
        self.needles
            .between(self.text, from, self.hits_to, self.hits);
    }

    /// The `\u` escapes of characters that [`matters`] among the escaped bytes
    /// `esc` of the block at `base`. Kept out of the hot loop (few blocks hold
    /// an escape): fewer registers live there.
    #[inline(never)]
    fn note_escapes(&mut self, base: usize, block: &[u8; 64], mut esc: u64) {
        while esc != 0 {
            let i = esc.trailing_zeros() as usize;
            esc &= esc - 1;
            if block[i] == b'u' && unicode_escape(self.text, base + i).is_some_and(matters) {
                self.escapes.push(base + i);
            }
        }
    }

    /// The brackets `open` and `close` (outside strings) of the block at
    /// `base`, bit by bit, from `depth`.
    #[inline(never)]
    fn brackets(&mut self, base: usize, open: u64, close: u64, mut depth: u64) -> Step {
        let text = self.text;
        let mut bits = open | close;
        while bits != 0 {
            let i = bits.trailing_zeros() as usize;
            bits &= bits - 1;
            let at = base + i;
            if open >> i & 1 == 1 {
                if depth == 0 {
                    if text[at] != b'{' || !gap_ok(&text[self.gap_from..at], self.found.records > 0)
                    {
                        return Step::Bad;
                    }
                    self.record_start = at;
                }
                depth += 1;
            } else {
                if depth == 0 {
                    // No comma before the array's end.
                    if text[at] != b']' || !gap_ok(&text[self.gap_from..at], false) {
                        return Step::Bad;
                    }
                    return Step::End(at);
                }
                depth -= 1;
                if depth == 0 {
                    let (s, e) = (self.record_start, at + 1);
                    if e - s > RECORD_LIMIT {
                        return Step::Bad;
                    }
                    self.found.records += 1;
                    let wanted = holds(self.hits, &mut self.next_hit, s, e)
                        | holds(&self.escapes, &mut self.next_escape, s, e);
                    if wanted {
                        self.found.holding.push((s, e));
                    }
                    self.gap_from = e;
                }
            }
        }
        Step::Depth(depth)
    }
}

/// Does a byte of the block at `base` pass `pair`'s test? Yes where the test
/// would read past the text.
#[inline(always)]
fn pair_passes<C: Classify>(text: &[u8], base: usize, pair: Pair) -> bool {
    let at = |k: usize| -> Option<&[u8; 64]> { text.get(base + k..base + k + 64)?.try_into().ok() };
    match (at(pair.at1), at(pair.at2)) {
        (Some(one), Some(two)) => C::eq(one, pair.b1) & C::eq(two, pair.b2) != 0,
        _ => true,
    }
}

/// The blocks from `base` (up to `limit`) that only move the depth: no
/// `\u` escape, no bracket that could bring the depth back to the array's
/// level, and (`PAIR`) no byte that passes `pair`'s test. Where the next
/// block that needs more starts (or `limit`'s last whole block); `depth` and
/// `in_string` are as after the blocks passed. Nothing in this loop calls
/// out, so all it holds stays in registers.
#[inline(always)]
fn quiet_blocks<C: Classify, const PAIR: bool>(
    text: &[u8],
    mut base: usize,
    limit: usize,
    pair: Pair,
    depth: &mut u64,
    in_string: &mut u64,
    carry: &mut u64,
) -> usize {
    let (mut d, mut s, mut c) = (*depth, *in_string, *carry);
    while base + 64 <= limit {
        let Some(block) = text
            .get(base..base + 64)
            .and_then(|b| <&[u8; 64]>::try_from(b).ok())
        else {
            break;
        };
        if PAIR && pair_passes::<C>(text, base, pair) {
            break;
        }
        let m = C::masks(block);
        let mut quote = m.quote;
        let mut next_c = c;
        if m.backslash | c != 0 {
            // Escaped quotes are text; a `\u` escape is left to the block walk,
            // which notes the ones that matter.
            let esc = escaped(m.backslash, &mut next_c);
            if esc & C::eq(block, b'u') != 0 {
                break;
            }
            quote &= !esc;
        }
        let inside = C::prefix_xor(quote) ^ s;
        let open = m.open & !inside;
        let close = m.close & !inside;
        let closes = u64::from(close.count_ones());
        // A backslash outside a string is for the block walk to refuse.
        if d <= closes || m.backslash & !inside != 0 {
            break;
        }
        s = ((inside as i64) >> 63) as u64;
        d = d + u64::from(open.count_ones()) - closes;
        c = next_c;
        base += 64;
    }
    (*depth, *in_string, *carry) = (d, s, c);
    base
}

#[inline(always)]
fn walk<C: Classify, N: Needles + ?Sized>(
    text: &[u8],
    start: usize,
    needles: &N,
    hits: &mut Vec<usize>,
) -> Option<Found> {
    let mut cuts = Cuts {
        text,
        needles,
        hits,
        hits_to: start,
        found: Found::default(),
        record_start: 0,
        gap_from: start,
        next_hit: 0,
        escapes: Vec::new(),
        next_escape: 0,
    };
    // Depth below the array: 0 between elements, 1 at a record's own keys.
    let mut depth: u64 = 0;
    let mut in_string: u64 = 0;
    let mut carry: u64 = 0;
    let mut base = start;
    let mut tail = [0u8; 64];
    let pair = needles.pair();
    // With a pair test, only the blocks that fail it are searched, each alone;
    // without, a piece at a time ahead of the walk.
    let ahead = if pair.is_some() { 0 } else { PIECE };
    let end = loop {
        base = match pair {
            Some(pair) => {
                let after = quiet_blocks::<C, true>(
                    text,
                    base,
                    text.len().saturating_sub(pair.at1.max(pair.at2)),
                    pair,
                    &mut depth,
                    &mut in_string,
                    &mut carry,
                );
                // The blocks passed hold no position.
                cuts.hits_to = cuts.hits_to.max(after);
                after
            }
            None => quiet_blocks::<C, false>(
                text,
                base,
                cuts.hits_to.min(text.len()),
                Pair::default(),
                &mut depth,
                &mut in_string,
                &mut carry,
            ),
        };
        if base >= text.len() {
            // The text ended inside the array.
            return None;
        }
        let block: &[u8; 64] = match text.get(base..base + 64) {
            Some(b) => b.try_into().ok()?,
            None => {
                // The last, partial block, padded with bytes that are nothing.
                tail[..text.len() - base].copy_from_slice(&text[base..]);
                &tail
            }
        };
        if base + 64 > cuts.hits_to {
            match pair {
                // A block no byte of which passes the test holds no position.
                Some(p) if !pair_passes::<C>(text, base, p) => cuts.hits_to = base + 64,
                _ => cuts.more_hits(base + 64, ahead),
            }
        }
        let m = C::masks(block);
        let mut quote = m.quote;
        if m.backslash | carry != 0 {
            let esc = escaped(m.backslash, &mut carry);
            quote &= !esc;
            cuts.note_escapes(base, block, esc);
        }
        let inside = C::prefix_xor(quote) ^ in_string;
        in_string = ((inside as i64) >> 63) as u64;
        // Outside a string a backslash is not JSON; the splitter would not read
        // it as an escape, so the two could cut differently.
        if m.backslash & !inside != 0 {
            return None;
        }
        let open = m.open & !inside;
        let close = m.close & !inside;
        let closes = u64::from(close.count_ones());
        // One test for the common case (no bracket in a record's block is one
        // too): a branch less in the hot loop is measurably faster.
        if depth > closes {
            // The depth cannot come back to the array's level in this block.
            depth = depth + u64::from(open.count_ones()) - closes;
        } else {
            match cuts.brackets(base, open, close, depth) {
                Step::Depth(d) => depth = d,
                Step::End(at) => break at,
                Step::Bad => return None,
            }
        }
        base += 64;
    };
    // After the array: only the object's end.
    let rest = skip_ws(text, end + 1);
    if text.get(rest) != Some(&b'}') || skip_ws(text, rest + 1) != text.len() {
        return None;
    }
    Some(cuts.found)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::trail::split::for_each_record;

    /// The splitter's answer in the same shape: every record's range, or None on error.
    fn by_splitter(text: &[u8]) -> Option<Vec<(usize, usize)>> {
        let base = text.as_ptr() as usize;
        let mut out = Vec::new();
        // The splitter copies into its window; find each record by content
        // instead, in order.
        let mut from = 0usize;
        let _ = base;
        let mut src = text;
        for_each_record(&mut src, &mut Vec::new(), |r| {
            let at = from + find_sub(&text[from..], r).expect("record text is in the file");
            out.push((at, at + r.len()));
            from = at + r.len();
        })
        .ok()?;
        Some(out)
    }

    /// [`find`] through every classifier this CPU has, which must agree.
    fn find_every_way(text: &[u8], hits: &[usize]) -> Option<Found> {
        let scratch = &mut Vec::new();
        let want = header(text).and_then(|start| walk::<Scalar, _>(text, start, hits, scratch));
        assert_eq!(find(text, hits, scratch), want);
        #[cfg(target_arch = "x86_64")]
        {
            type Way = unsafe fn(&[u8], usize, &[usize], &mut Vec<usize>) -> Option<Found>;
            let start = header(text);
            let by = |f: Way, scratch: &mut Vec<usize>| {
                // SAFETY: each is called only where the CPU has its features (below).
                start.and_then(|s| unsafe { f(text, s, hits, scratch) })
            };
            assert_eq!(by(find_sse2, scratch), want, "sse2");
            let common = std::arch::is_x86_feature_detected!("pclmulqdq")
                && std::arch::is_x86_feature_detected!("popcnt")
                && std::arch::is_x86_feature_detected!("bmi1");
            if common && std::arch::is_x86_feature_detected!("avx2") {
                assert_eq!(by(find_avx2, scratch), want, "avx2");
            }
            if common && std::arch::is_x86_feature_detected!("avx512bw") {
                assert_eq!(by(find_avx512, scratch), want, "avx512");
            }
        }
        want
    }

    fn find_sub(hay: &[u8], needle: &[u8]) -> Option<usize> {
        hay.windows(needle.len()).position(|w| w == needle)
    }

    /// Every record as a hit: `find` must give exactly the splitter's records.
    fn all_records(text: &[u8]) -> Option<Vec<(usize, usize)>> {
        let hits: Vec<usize> = (0..text.len()).collect();
        let f = find_every_way(text, &hits)?;
        assert_eq!(f.records as usize, f.holding.len());
        Some(f.holding)
    }

    #[test]
    fn masks_match_the_scalar_reference() {
        let mut block = [0u8; 64];
        let alphabet = b"\"\\{}[]ab u,:";
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..2000 {
            for b in block.iter_mut() {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                *b = alphabet[(x % alphabet.len() as u64) as usize];
            }
            let want = Scalar::masks(&block);
            #[cfg(target_arch = "x86_64")]
            {
                assert_eq!(Sse2::masks(&block), want);
                if std::arch::is_x86_feature_detected!("avx2") {
                    assert_eq!(Avx2::masks(&block), want);
                }
                if std::arch::is_x86_feature_detected!("avx512bw") {
                    assert_eq!(Avx512::masks(&block), want);
                }
                if std::arch::is_x86_feature_detected!("pclmulqdq") {
                    // SAFETY: the CPU has PCLMULQDQ (checked just above).
                    assert_eq!(unsafe { prefix_xor_clmul(x) }, prefix_xor(x), "{x:#x}");
                }
            }
            let _ = want;
        }
    }

    #[test]
    fn escapes_match_a_byte_by_byte_reading() {
        // Random runs of backslashes across many blocks, against the sequential rule.
        let mut x: u64 = 12345;
        for _ in 0..500 {
            let mut bytes = vec![0u8; 64 * 4];
            for b in bytes.iter_mut() {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                *b = if x % 3 == 0 { b'a' } else { b'\\' };
            }
            let mut want = vec![false; bytes.len()];
            let mut i = 0;
            while i < bytes.len() {
                if bytes[i] == b'\\' {
                    if i + 1 < bytes.len() {
                        want[i + 1] = true;
                    }
                    i += 2;
                } else {
                    i += 1;
                }
            }
            let mut carry = 0;
            for (k, block) in bytes.chunks(64).enumerate() {
                let m = Scalar::masks(block.try_into().unwrap());
                let e = escaped(m.backslash, &mut carry);
                for j in 0..64 {
                    // Only the byte after a run counts; inside a run it is a backslash.
                    if block[j] != b'\\' {
                        assert_eq!(e >> j & 1 == 1, want[64 * k + j], "block {k} byte {j}");
                    }
                }
            }
        }
    }

    #[test]
    fn cuts_exactly_the_splitters_records() {
        let cases = [
            r#"{"Records":[]}"#,
            r#" { "Records" : [ ] } "#,
            r#"{"Records":[{"a":1}]}"#,
            "{\"Records\":[\n  {\"a\":\"x\\\"}]\",\"b\":[1,{\"c\":\"\\\\\"}]} ,\n {\"d\":\"{[\"}\n]}\n",
            r#"{"Records":[{"s":"\\\\\"\\"},{"t":"]}]}"}]}"#,
        ];
        for c in cases {
            assert_eq!(all_records(c.as_bytes()), by_splitter(c.as_bytes()), "{c}");
            assert!(all_records(c.as_bytes()).is_some(), "{c}");
        }
        // What it leaves to the splitter.
        for c in [
            r#"{"x":1,"Records":[]}"#,
            r#"{"Records":[],"x":1}"#,
            r#"{"Records":[7]}"#,
            r#"{"Records":["s"]}"#,
            r#"{"Records":[{"a":1},]}"#,
            r#"{"Records":[{"a":1}"#,
            r#"{"Records":[{"a":"1}]}"#,
            r#"{"Records":[{"a":1}]} x"#,
            r#"{"Records":[{"a":1}}"#,
            r#"{"Records":[{"a":1} {"b":2}]}"#,
            r#"{"Records":[{"a":\"1"}]}"#,
            r#"{"Records":[[1]]}"#,
            "",
        ] {
            assert_eq!(find_every_way(c.as_bytes(), &[]), None, "{c}");
        }
    }

    #[test]
    fn records_at_every_block_offset_come_out_whole() {
        // Records whose edges, strings and escapes land on every offset of a block.
        for pad in 0..130 {
            let recs: Vec<String> = (0..40)
                .map(|i| {
                    format!(
                        r#"{{"i":{i},"p":"{}","q":"a\"b\\","r":[{{"x":"}}"}}]}}"#,
                        "z".repeat((pad + i * 7) % 97)
                    )
                })
                .collect();
            let text = format!("{{\"Records\":[{}{}]}}", " ".repeat(pad), recs.join(","));
            let got = all_records(text.as_bytes()).expect("well-formed");
            assert_eq!(Some(got.clone()), by_splitter(text.as_bytes()), "pad {pad}");
            assert_eq!(got.len(), 40);
        }
    }

    #[test]
    fn names_across_the_search_pieces_are_all_found() {
        // Records whose names straddle, start at and end at each piece's edge.
        let gate = Gate::new(&["StartSession".into(), "TerminateSession".into()]);
        for shift in 0..70 {
            let mut text = String::from("{\"Records\":[");
            let mut want = Vec::new();
            let mut k = 0;
            while text.len() < 4 * PIECE {
                let edge = (text.len() / PIECE + 1) * PIECE;
                let pad = (edge + shift).saturating_sub(text.len() + 30).min(PIECE);
                let name = ["StartSession", "TerminateSession", "GetSession"][k % 3];
                let rec = format!(r#"{{"p":"{}","eventName":"{name}"}}"#, "x".repeat(pad));
                if k > 0 {
                    text.push(',');
                }
                if name != "GetSession" {
                    want.push(rec.clone());
                }
                text.push_str(&rec);
                k += 1;
            }
            text.push_str("]}");
            let f = find(text.as_bytes(), &gate, &mut Vec::new()).expect("well-formed");
            let got: Vec<&str> = f.holding.iter().map(|&(s, e)| &text[s..e]).collect();
            assert_eq!(got, want, "shift {shift}");
            assert_eq!(f.records as usize, k);
        }
    }

    #[test]
    fn hits_and_escapes_pick_their_records() {
        let text = r#"{"Records":[{"n":"A"},{"n":"B"},{"n":"C\u0053"},{"n":"\u00e9"},{"n":"D"}]}"#;
        let at = |s: &str| text.find(s).unwrap();
        let f = find_every_way(text.as_bytes(), &[at("B")]).unwrap();
        assert_eq!(f.records, 5);
        let picked: Vec<&str> = f.holding.iter().map(|&(s, e)| &text[s..e]).collect();
        // B by its hit; C by an escape of a letter; not é.
        assert_eq!(picked, [r#"{"n":"B"}"#, r#"{"n":"C\u0053"}"#]);
    }
}
