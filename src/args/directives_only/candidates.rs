//! One pass over preprocessed text that finds the places the checks look
//! at: line markers and predefined macros.
//!
//! Directives-only output of one Lua source is about 350 KB with some 2,500
//! `#` lines and 2,400 `__` pairs. Searching for them one at a time with
//! memchr and memmem cost the client over a million instructions for one
//! job, because every hit returns from the SIMD loop. This scan tests 32 or
//! 16 positions at a time for both patterns together, with a third byte
//! that leaves out `#define` lines and most `__` identifiers, and only stops
//! at a block that holds a candidate.

use std::ops::ControlFlow;

/// Calls `visit` with each position `p` of `text`, in increasing order,
/// where `text[p..]` starts a line (at 0 or after `\n`) with `# `, or
/// starts with `__` and a byte from `@` to `_`. That range contains the
/// capital letters. Stops when `visit` breaks.
pub fn for_each(text: &[u8], mut visit: impl FnMut(usize) -> ControlFlow<()>) -> ControlFlow<()> {
    if text.starts_with(b"# ") {
        visit(0)?;
    }
    // A candidate triple at i is either "\n# ", whose position is the `#`
    // at i + 1, or "__" and a capital, whose position is i. The SIMD loops
    // hand back i.
    let mut on_triple = |i: usize| visit(if text[i] == b'\n' { i + 1 } else { i });
    let scanned = simd::scan_triples(text, &mut on_triple)?;
    for i in scanned..text.len().saturating_sub(2) {
        if is_triple(text[i], text[i + 1], text[i + 2]) {
            on_triple(i)?;
        }
    }
    ControlFlow::Continue(())
}

fn is_triple(first: u8, second: u8, third: u8) -> bool {
    (first == b'\n' && second == b'#' && third == b' ') || (first == b'_' && second == b'_' && third & 0xe0 == 0x40)
}

#[cfg(target_arch = "x86_64")]
mod simd {
    use std::arch::x86_64::*;
    use std::ops::ControlFlow;

    /// Visits the first byte of every candidate triple that starts below
    /// the returned position, which leaves fewer than a block's bytes and
    /// two for the caller.
    pub fn scan_triples(text: &[u8], on_triple: &mut impl FnMut(usize) -> ControlFlow<()>) -> ControlFlow<(), usize> {
        if std::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2, checked just above.
            unsafe { scan_avx2(text, on_triple) }
        } else {
            // SAFETY: every x86_64 CPU has SSE2.
            unsafe { scan_sse2(text, on_triple) }
        }
    }

    /// Calls `on_triple` for each set bit of `mask`, a triple starting at
    /// `start + bit`.
    #[inline(always)]
    fn visit_mask(mut mask: u32, start: usize, on_triple: &mut impl FnMut(usize) -> ControlFlow<()>) -> ControlFlow<()> {
        while mask != 0 {
            on_triple(start + mask.trailing_zeros() as usize)?;
            mask &= mask - 1;
        }
        ControlFlow::Continue(())
    }

    #[target_feature(enable = "avx2")]
    unsafe fn scan_avx2(text: &[u8], on_triple: &mut impl FnMut(usize) -> ControlFlow<()>) -> ControlFlow<(), usize> {
        const WIDTH: usize = 32;
        let newline = _mm256_set1_epi8(b'\n' as i8);
        let hash = _mm256_set1_epi8(b'#' as i8);
        let space = _mm256_set1_epi8(b' ' as i8);
        let underscore = _mm256_set1_epi8(b'_' as i8);
        let top_bits = _mm256_set1_epi8(0xe0u8 as i8);
        let capitals = _mm256_set1_epi8(0x40);
        // Returns a byte of all ones for each candidate triple starting in
        // the 32 bytes at `at`. The caller keeps at + WIDTH + 2 <= len.
        let candidates = |at: usize| {
            // SAFETY: the unaligned 32-byte loads at `at`, `at + 1` and
            // `at + 2` stay inside `text`, as the caller checks.
            let (first, second, third) = unsafe {
                let at = text.as_ptr().add(at);
                (_mm256_loadu_si256(at.cast()), _mm256_loadu_si256(at.add(1).cast()), _mm256_loadu_si256(at.add(2).cast()))
            };
            let marker = _mm256_and_si256(
                _mm256_and_si256(_mm256_cmpeq_epi8(first, newline), _mm256_cmpeq_epi8(second, hash)),
                _mm256_cmpeq_epi8(third, space),
            );
            let identifier = _mm256_and_si256(
                _mm256_and_si256(_mm256_cmpeq_epi8(first, underscore), _mm256_cmpeq_epi8(second, underscore)),
                _mm256_cmpeq_epi8(_mm256_and_si256(third, top_bits), capitals),
            );
            _mm256_or_si256(marker, identifier)
        };
        let mut start = 0;
        // Two blocks per round with one test: most rounds find nothing.
        while start + 2 * WIDTH + 2 <= text.len() {
            let low = candidates(start);
            let high = candidates(start + WIDTH);
            if _mm256_testz_si256(_mm256_or_si256(low, high), _mm256_or_si256(low, high)) == 0 {
                visit_mask(_mm256_movemask_epi8(low) as u32, start, on_triple)?;
                visit_mask(_mm256_movemask_epi8(high) as u32, start + WIDTH, on_triple)?;
            }
            start += 2 * WIDTH;
        }
        if start + WIDTH + 2 <= text.len() {
            visit_mask(_mm256_movemask_epi8(candidates(start)) as u32, start, on_triple)?;
            start += WIDTH;
        }
        ControlFlow::Continue(start)
    }

    #[target_feature(enable = "sse2")]
    fn scan_sse2(text: &[u8], on_triple: &mut impl FnMut(usize) -> ControlFlow<()>) -> ControlFlow<(), usize> {
        const WIDTH: usize = 16;
        let newline = _mm_set1_epi8(b'\n' as i8);
        let hash = _mm_set1_epi8(b'#' as i8);
        let space = _mm_set1_epi8(b' ' as i8);
        let underscore = _mm_set1_epi8(b'_' as i8);
        let top_bits = _mm_set1_epi8(0xe0u8 as i8);
        let capitals = _mm_set1_epi8(0x40);
        let mut start = 0;
        while start + WIDTH + 2 <= text.len() {
            // SAFETY: start + WIDTH + 2 <= len, so the unaligned 16-byte
            // loads at start, start + 1 and start + 2 stay inside `text`.
            let (first, second, third) = unsafe {
                let at = text.as_ptr().add(start);
                (_mm_loadu_si128(at.cast()), _mm_loadu_si128(at.add(1).cast()), _mm_loadu_si128(at.add(2).cast()))
            };
            let marker = _mm_and_si128(
                _mm_and_si128(_mm_cmpeq_epi8(first, newline), _mm_cmpeq_epi8(second, hash)),
                _mm_cmpeq_epi8(third, space),
            );
            let identifier = _mm_and_si128(
                _mm_and_si128(_mm_cmpeq_epi8(first, underscore), _mm_cmpeq_epi8(second, underscore)),
                _mm_cmpeq_epi8(_mm_and_si128(third, top_bits), capitals),
            );
            let mask = _mm_movemask_epi8(_mm_or_si128(marker, identifier)) as u32;
            if mask != 0 {
                visit_mask(mask, start, on_triple)?;
            }
            start += WIDTH;
        }
        ControlFlow::Continue(start)
    }

    #[cfg(test)]
    pub fn scan_triples_sse2(text: &[u8], on_triple: &mut impl FnMut(usize) -> ControlFlow<()>) -> ControlFlow<(), usize> {
        // SAFETY: every x86_64 CPU has SSE2.
        unsafe { scan_sse2(text, on_triple) }
    }
}

#[cfg(not(target_arch = "x86_64"))]
mod simd {
    use std::ops::ControlFlow;

    /// Leaves the whole text to the caller's byte loop.
    pub fn scan_triples(_text: &[u8], _on_triple: &mut impl FnMut(usize) -> ControlFlow<()>) -> ControlFlow<(), usize> {
        ControlFlow::Continue(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The positions `for_each` must visit, found byte by byte.
    fn expected(text: &[u8]) -> Vec<usize> {
        let at = |p: usize| text.get(p).copied().unwrap_or(0);
        (0..text.len())
            .filter(|&p| {
                let marker = at(p) == b'#' && (p == 0 || at(p - 1) == b'\n') && at(p + 1) == b' ';
                let identifier = at(p) == b'_' && at(p + 1) == b'_' && (b'@'..=b'_').contains(&at(p + 2));
                marker || identifier
            })
            .collect()
    }

    fn visited(text: &[u8]) -> Vec<usize> {
        let mut found = Vec::new();
        let _ = for_each(text, |p| {
            found.push(p);
            ControlFlow::Continue(())
        });
        found
    }

    #[test]
    fn finds_candidates_at_block_edges() {
        let mut text = vec![b'x'; 100];
        // Candidates that straddle the ends of 16- and 32-byte blocks.
        for &p in &[0usize, 14, 29, 33, 61, 94] {
            text[p..p + 3].copy_from_slice(b"__D");
        }
        text[46..49].copy_from_slice(b"\n# ");
        // "# " that does not start a line is no candidate.
        text[98] = b'#';
        text[99] = b' ';
        let found = visited(&text);
        assert_eq!(found, expected(&text));
        assert_eq!(found.len(), 7);
        assert_eq!(visited(b"# "), [0]);
        assert_eq!(visited(b"\n# "), [1]);
        assert!(visited(b"#define X\n#define Y\n#").is_empty());
        assert_eq!(visited(b"___DATE__"), [0, 1]);
        assert!(visited(b"__attribute__ __x __").is_empty());
        assert!(visited(b"").is_empty());
    }

    #[test]
    fn stops_when_visit_breaks() {
        let text = b"__A x __B y\n# z".repeat(20);
        let mut seen = 0;
        let result = for_each(&text, |_| {
            seen += 1;
            if seen == 3 { ControlFlow::Break(()) } else { ControlFlow::Continue(()) }
        });
        assert!(result.is_break());
        assert_eq!(seen, 3);
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn sse2_loop_matches_byte_loop() {
        let text = b"ab__Cd\n# fg__\n\n##__X\n#define __".repeat(9);
        let mut found = Vec::new();
        let scanned = simd::scan_triples_sse2(&text, &mut |i| {
            found.push(i);
            ControlFlow::Continue(())
        });
        let ControlFlow::Continue(scanned) = scanned else { panic!("the visitor never breaks") };
        let triples: Vec<usize> = (0..scanned).filter(|&i| is_triple(text[i], text[i + 1], text[i + 2])).collect();
        assert_eq!(found, triples);
        assert!(!found.is_empty());
        assert!(text.len() - scanned <= 16 + 2);
    }

    proptest! {
        #[test]
        fn matches_byte_loop(text in proptest::collection::vec(prop_oneof![Just(b'_'), Just(b'#'), Just(b'\n'), Just(b' '), Just(b'D'), Just(b'a')], 0..300)) {
            prop_assert_eq!(visited(&text), expected(&text));
        }
    }
}
