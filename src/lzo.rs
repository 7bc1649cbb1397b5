//! LZO1X compression for protocol 2 (`,lzo` hosts).
//!
//! Stock distcc 3.4 compresses each file as one raw LZO1X block with
//! miniLZO's `lzo1x_1_compress`: no header, no checksum, and the
//! uncompressed length is not sent. distccd decompresses with
//! `lzo1x_decompress_safe`, which accepts any valid LZO1X stream, so the
//! compressor here only has to produce valid LZO1X, not the same bytes.
//!
//! Stream format, one instruction byte `t` at a time:
//! - `t` 0..=15 after a match without trailing literals, or at the start:
//!   a run of `t + 3` literals (`t == 0`: the length continues in the
//!   following bytes, each zero adding 255).
//! - first byte of the stream above 17: `t - 17` literals.
//! - `t` 64..=255 (M2): match of length `(t >> 5) + 1`, distance 1..=2048.
//! - `t` 32..=63 (M3): match of length `(t & 31) + 2`, distance 1..=16384.
//! - `t` 16..=31 (M4): match of length `(t & 7) + 2`, distance 16385..=49151;
//!   distance 16384 marks the end of the stream.
//! - `t` 0..=15 right after a match with trailing literals (M1): a 2-byte
//!   match, distance 1..=1024; right after a literal run: a 3-byte match,
//!   distance 2049..=3072.
//!
//! The low two bits of a match's last distance byte (or of its instruction
//! byte for M1 and M2) give the number of literals, 0 to 3, that follow it.

use std::fmt;
use std::io::{self, Read, Write};

const M2_MAX_LEN: usize = 8;
const M3_MAX_LEN: usize = 33;
const M4_MAX_LEN: usize = 9;
const M1_MAX_OFFSET: usize = 0x0400;
const M2_MAX_OFFSET: usize = 0x0800;
const M3_MAX_OFFSET: usize = 0x4000;
const M4_MAX_OFFSET: usize = 0xbfff;
const M3_MARKER: u8 = 0x20;
const M4_MARKER: u8 = 0x10;

/// Bits of the compressor's hash table index, as in LZO1X-1 (16 Ki entries).
const DICT_BITS: u32 = 14;

/// Largest size of `compress(input)` for an input of `length` bytes: LZO1X
/// expands incompressible data by at most 1/16 plus a few bytes.
pub fn max_compressed_len(length: usize) -> usize {
    length + length / 16 + 64 + 3
}

/// Compresses `input` into one raw LZO1X block, with the LZO1X-1 algorithm
/// (one hash probe per position, no search for longer matches).
pub fn compress(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(max_compressed_len(input.len()));
    let mut literal_start = 0;
    if input.len() > M2_MAX_LEN + 5 {
        literal_start = compress_matches(input, &mut out);
    }
    let tail = &input[literal_start..];
    if !tail.is_empty() {
        if out.is_empty() && tail.len() <= 238 {
            out.push(17 + tail.len() as u8);
        } else {
            push_literal_length(&mut out, tail.len());
        }
        out.extend_from_slice(tail);
    }
    // End marker: an M4 match of distance 16384.
    out.extend_from_slice(&[M4_MARKER | 1, 0, 0]);
    out
}

fn hash_index(input: &[u8], position: usize) -> usize {
    let word = u32::from_le_bytes([input[position], input[position + 1], input[position + 2], input[position + 3]]);
    (word.wrapping_mul(0x1824_429d) >> (32 - DICT_BITS)) as usize
}

/// Emits literals and matches for `input` and returns where the literals
/// that still have to be written start.
fn compress_matches(input: &[u8], out: &mut Vec<u8>) -> usize {
    // Positions plus one, so that 0 means an empty slot.
    let mut dict = vec![0u32; 1 << DICT_BITS];
    // The last 4-byte word starts at input.len() - 4, and a match found there
    // needs no look-ahead beyond the input.
    let search_end = input.len() - 4;
    let mut literal_start = 0;
    // As in LZO1X-1, the first match is looked for at position 4, so the
    // first literal run is never short enough to need a previous match.
    let mut position = 4;

    while position <= search_end {
        let index = hash_index(input, position);
        let candidate = dict[index] as usize;
        dict[index] = (position + 1) as u32;
        let matched = candidate != 0 && {
            let candidate = candidate - 1;
            let distance = position - candidate;
            distance <= M4_MAX_OFFSET && input[candidate..candidate + 4] == input[position..position + 4]
        };
        if !matched {
            // Skip faster through data that does not compress, as LZO1X-1 does.
            position += 1 + ((position - literal_start) >> 5);
            continue;
        }

        let candidate = candidate - 1;
        push_literals(out, &input[literal_start..position]);
        let mut length = 4;
        while position + length < input.len() && input[candidate + length] == input[position + length] {
            length += 1;
        }
        push_match(out, position - candidate, length);
        position += length;
        literal_start = position;
    }
    literal_start
}

/// Writes the literal run before a match.
fn push_literals(out: &mut Vec<u8>, literals: &[u8]) {
    let count = literals.len();
    if count == 0 {
        return;
    }
    push_literal_length(out, count);
    out.extend_from_slice(literals);
}

/// Writes the instruction for a run of `count` literals. Runs of 1 to 3
/// literals go into the low bits of the previous match, which `out` must end
/// with.
fn push_literal_length(out: &mut Vec<u8>, count: usize) {
    if count <= 3 {
        let state_byte = out.len() - 2;
        out[state_byte] |= count as u8;
    } else if count <= 18 {
        out.push((count - 3) as u8);
    } else {
        out.push(0);
        push_long_length(out, count - 18);
    }
}

/// Writes a length remainder as zero bytes worth 255 each and a final
/// non-zero byte.
fn push_long_length(out: &mut Vec<u8>, mut remainder: usize) {
    while remainder > 255 {
        remainder -= 255;
        out.push(0);
    }
    out.push(remainder as u8);
}

fn push_match(out: &mut Vec<u8>, distance: usize, length: usize) {
    if length <= M2_MAX_LEN && distance <= M2_MAX_OFFSET {
        let offset = distance - 1;
        out.push((((length - 1) << 5) | ((offset & 7) << 2)) as u8);
        out.push((offset >> 3) as u8);
        return;
    }
    let offset = if distance <= M3_MAX_OFFSET {
        let offset = distance - 1;
        if length <= M3_MAX_LEN {
            out.push(M3_MARKER | (length - 2) as u8);
        } else {
            out.push(M3_MARKER);
            push_long_length(out, length - M3_MAX_LEN);
        }
        offset
    } else {
        let offset = distance - 0x4000;
        let high_bit = ((offset & 0x4000) >> 11) as u8;
        if length <= M4_MAX_LEN {
            out.push(M4_MARKER | high_bit | (length - 2) as u8);
        } else {
            out.push(M4_MARKER | high_bit);
            push_long_length(out, length - M4_MAX_LEN);
        }
        offset
    };
    out.push(((offset & 63) << 2) as u8);
    out.push(((offset >> 6) & 0xff) as u8);
}

/// An error that stopped the decompression of a block.
#[derive(Debug)]
pub enum LzoError {
    /// Reading the compressed bytes or writing the output failed.
    Io(io::Error),
    /// The block ended before its end marker.
    Truncated,
    /// A match refers to data before the start of the output.
    LookbehindOverrun { distance: usize, available: u64 },
    /// The output would grow past the caller's limit.
    OutputTooLarge { limit: u64 },
    /// Bytes follow the end marker inside the block.
    TrailingData,
}

impl fmt::Display for LzoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LzoError::Io(error) => write!(f, "{error}"),
            LzoError::Truncated => f.write_str("LZO data ends before its end marker"),
            LzoError::LookbehindOverrun { distance, available } => write!(
                f,
                "invalid LZO data: a match refers {distance} bytes back, but only {available} bytes were decompressed"
            ),
            LzoError::OutputTooLarge { limit } => {
                write!(f, "LZO data decompresses to more than the limit of {limit} bytes")
            }
            LzoError::TrailingData => f.write_str("invalid LZO data: bytes follow the end marker"),
        }
    }
}

impl std::error::Error for LzoError {}

/// Decompresses one block of exactly `compressed_len` bytes read from
/// `reader` into `writer`, and returns the decompressed length.
///
/// Memory use is bounded by a 1 MiB window whatever the claimed or actual
/// sizes, and the output stops with [`LzoError::OutputTooLarge`] as soon as
/// it would exceed `max_output` bytes. Nothing is read past the block.
pub fn decompress(
    reader: &mut impl Read,
    compressed_len: u64,
    writer: &mut impl Write,
    max_output: u64,
) -> Result<u64, LzoError> {
    let mut input = Input::new(reader, compressed_len);
    let mut output = Output::new(writer, max_output);
    decode(&mut input, &mut output)?;
    if input.remaining() > 0 {
        return Err(LzoError::TrailingData);
    }
    output.finish()
}

/// Decodes instructions up to the end marker.
fn decode<R: Read, W: Write>(input: &mut Input<R>, output: &mut Output<W>) -> Result<(), LzoError> {
    // What the next instruction byte means, from what came before it.
    enum Next {
        /// At the start or after a match without trailing literals: a byte
        /// below 16 starts a literal run.
        LiteralRun,
        /// After a literal run of 4 or more: a byte below 16 is a 3-byte match.
        AfterLiteralRun,
        /// After 1 to 3 trailing literals: a byte below 16 is a 2-byte match.
        AfterShortLiterals,
    }

    let mut next = Next::LiteralRun;
    let first = input.byte()?;
    let mut instruction = if first > 17 {
        let count = usize::from(first - 17);
        input.copy_literals(count, output)?;
        next = if count < 4 { Next::AfterShortLiterals } else { Next::AfterLiteralRun };
        input.byte()?
    } else {
        first
    };

    loop {
        let trailing;
        if instruction >= 64 {
            let distance = 1 + usize::from((instruction >> 2) & 7) + (usize::from(input.byte()?) << 3);
            output.copy_match(distance, usize::from(instruction >> 5) + 1)?;
            trailing = instruction & 3;
        } else if instruction >= 32 {
            let mut length = usize::from(instruction & 31);
            if length == 0 {
                length = 31 + input.long_length()?;
            }
            let (low, high) = (input.byte()?, input.byte()?);
            let distance = 1 + usize::from(low >> 2) + (usize::from(high) << 6);
            output.copy_match(distance, length + 2)?;
            trailing = low & 3;
        } else if instruction >= 16 {
            let mut length = usize::from(instruction & 7);
            if length == 0 {
                length = 7 + input.long_length()?;
            }
            let (low, high) = (input.byte()?, input.byte()?);
            let distance =
                (usize::from(instruction & 8) << 11) + usize::from(low >> 2) + (usize::from(high) << 6);
            if distance == 0 {
                return Ok(());
            }
            output.copy_match(distance + 0x4000, length + 2)?;
            trailing = low & 3;
        } else {
            match next {
                Next::LiteralRun => {
                    let count = if instruction == 0 { 15 + input.long_length()? } else { usize::from(instruction) };
                    input.copy_literals(count + 3, output)?;
                    next = Next::AfterLiteralRun;
                    instruction = input.byte()?;
                    continue;
                }
                Next::AfterLiteralRun => {
                    let distance =
                        1 + M2_MAX_OFFSET + usize::from(instruction >> 2) + (usize::from(input.byte()?) << 2);
                    output.copy_match(distance, 3)?;
                }
                Next::AfterShortLiterals => {
                    let distance = 1 + usize::from(instruction >> 2) + (usize::from(input.byte()?) << 2);
                    debug_assert!(distance <= M1_MAX_OFFSET);
                    output.copy_match(distance, 2)?;
                }
            }
            trailing = instruction & 3;
        }

        if trailing == 0 {
            next = Next::LiteralRun;
        } else {
            input.copy_literals(usize::from(trailing), output)?;
            next = Next::AfterShortLiterals;
        }
        instruction = input.byte()?;
    }
}

/// The compressed block, read in chunks and never past its end.
struct Input<'a, R> {
    reader: &'a mut R,
    buffer: Vec<u8>,
    position: usize,
    filled: usize,
    /// Bytes of the block not yet read from `reader`.
    unread: u64,
}

impl<'a, R: Read> Input<'a, R> {
    fn new(reader: &'a mut R, length: u64) -> Self {
        Input { reader, buffer: vec![0; 64 * 1024], position: 0, filled: 0, unread: length }
    }

    fn remaining(&self) -> u64 {
        self.unread + (self.filled - self.position) as u64
    }

    fn refill(&mut self) -> Result<(), LzoError> {
        if self.unread == 0 {
            return Err(LzoError::Truncated);
        }
        let want = self.buffer.len().min(usize::try_from(self.unread).unwrap_or(usize::MAX));
        let count = loop {
            match self.reader.read(&mut self.buffer[..want]) {
                Ok(0) => return Err(LzoError::Io(io::ErrorKind::UnexpectedEof.into())),
                Ok(count) => break count,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                Err(error) => return Err(LzoError::Io(error)),
            }
        };
        self.position = 0;
        self.filled = count;
        self.unread -= count as u64;
        Ok(())
    }

    fn byte(&mut self) -> Result<u8, LzoError> {
        if self.position == self.filled {
            self.refill()?;
        }
        let byte = self.buffer[self.position];
        self.position += 1;
        Ok(byte)
    }

    /// Reads the continuation of a long length: each zero byte adds 255,
    /// and the first non-zero byte ends it.
    fn long_length(&mut self) -> Result<usize, LzoError> {
        let mut length = 0usize;
        loop {
            match self.byte()? {
                0 => length = length.saturating_add(255),
                last => return Ok(length.saturating_add(usize::from(last))),
            }
        }
    }

    fn copy_literals<W: Write>(&mut self, mut count: usize, output: &mut Output<W>) -> Result<(), LzoError> {
        while count > 0 {
            if self.position == self.filled {
                self.refill()?;
            }
            let take = count.min(self.filled - self.position);
            output.push(&self.buffer[self.position..self.position + take])?;
            self.position += take;
            count -= take;
        }
        Ok(())
    }
}

/// The decompressed data: the last bytes stay in memory for matches, the
/// rest goes to the writer.
struct Output<'a, W> {
    writer: &'a mut W,
    window: Vec<u8>,
    /// Bytes already written to `writer`.
    flushed: u64,
    limit: u64,
}

/// Bytes kept after a flush: the largest match distance.
const WINDOW_KEEP: usize = M4_MAX_OFFSET;
/// Window size that triggers a flush.
const WINDOW_FLUSH: usize = 1024 * 1024;

impl<'a, W: Write> Output<'a, W> {
    fn new(writer: &'a mut W, limit: u64) -> Self {
        Output { writer, window: Vec::with_capacity(WINDOW_FLUSH + M4_MAX_OFFSET), flushed: 0, limit }
    }

    fn total(&self) -> u64 {
        self.flushed + self.window.len() as u64
    }

    fn reserve(&mut self, count: usize) -> Result<(), LzoError> {
        if self.total() + count as u64 > self.limit {
            return Err(LzoError::OutputTooLarge { limit: self.limit });
        }
        if self.window.len() + count > WINDOW_FLUSH && self.window.len() > WINDOW_KEEP {
            let cut = self.window.len() - WINDOW_KEEP;
            self.writer.write_all(&self.window[..cut]).map_err(LzoError::Io)?;
            self.window.drain(..cut);
            self.flushed += cut as u64;
        }
        Ok(())
    }

    fn push(&mut self, bytes: &[u8]) -> Result<(), LzoError> {
        self.reserve(bytes.len())?;
        self.window.extend_from_slice(bytes);
        Ok(())
    }

    fn copy_match(&mut self, distance: usize, length: usize) -> Result<(), LzoError> {
        if distance > self.window.len() {
            return Err(LzoError::LookbehindOverrun { distance, available: self.total() });
        }
        // Long matches are copied in steps so that the window can be flushed.
        let mut remaining = length;
        while remaining > 0 {
            let step = remaining.min(WINDOW_KEEP);
            self.reserve(step)?;
            let start = self.window.len() - distance;
            if distance >= step {
                self.window.extend_from_within(start..start + step);
            } else {
                // Overlapping copy: each byte may be one that this match wrote.
                for i in 0..step {
                    let byte = self.window[start + i];
                    self.window.push(byte);
                }
            }
            remaining -= step;
        }
        Ok(())
    }

    fn finish(self) -> Result<u64, LzoError> {
        self.writer.write_all(&self.window).map_err(LzoError::Io)?;
        Ok(self.total())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decompress_all(compressed: &[u8], limit: u64) -> Result<Vec<u8>, LzoError> {
        let mut output = Vec::new();
        let length = decompress(&mut &compressed[..], compressed.len() as u64, &mut output, limit)?;
        assert_eq!(length, output.len() as u64);
        Ok(output)
    }

    fn hex(text: &str) -> Vec<u8> {
        (0..text.len()).step_by(2).map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap()).collect()
    }

    /// Blocks made by liblzo2 2.10's `lzo1x_1_compress` (Debian bookworm,
    /// through python3-lzo 1.14: `lzo.compress(data, 1, False)`).
    fn liblzo2_vectors() -> Vec<(Vec<u8>, Vec<u8>)> {
        vec![
            (b"a".to_vec(), hex("1261110000")),
            (b"abc".to_vec(), hex("14616263110000")),
            (b"abcd".to_vec(), hex("1561626364110000")),
            (
                b"hello hello hello hello hello!".to_vec(),
                hex("2f68656c6c6f2068656c6c6f2068656c6c6f2068656c6c6f2068656c6c6f21110000"),
            ),
            (vec![b'a'; 300], hex("02616161616120f31000000161616161616161616161616161616161616161110000")),
            (
                b"int main(void) { return 0; }\n".repeat(40),
                hex("000b696e74206d61696e28766f696429207b2072657475726e20303b207d0a20000000003f70000c207b2072657475726e20303b207d0a110000"),
            ),
            (
                b"abcdefghijklmnopqrstuvwxyz0123456789".repeat(2),
                hex("00126162636465666768696a6b6c6d6e6f707172737475767778797a30313233343536373839328c000d75767778797a30313233343536373839110000"),
            ),
            (
                (0..=255u8).collect::<Vec<u8>>().repeat(3),
                hex(concat!(
                    "00f3000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",
                    "202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f",
                    "404142434445464748494a4b4c4d4e4f505152535455565758595a5b5c5d5e5f",
                    "606162636465666768696a6b6c6d6e6f707172737475767778797a7b7c7d7e7f",
                    "808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f",
                    "a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf",
                    "c0c1c2c3c4c5c6c7c8c9cacbcccdcecfd0d1d2d3d4d5d6d7d8d9dadbdcdddedf",
                    "e0e1e2e3e4e5e6e7e8e9eaebecedeeeff0f1f2f3f4f5f6f7f8f9fafbfcfdfeff",
                    "00010203042000ccfc030cf1f2f3f4f5f6f7f8f9fafbfcfdfeff110000",
                )),
            ),
        ]
    }

    #[test]
    fn decodes_liblzo2_vectors() {
        for (plain, block) in liblzo2_vectors() {
            let decoded = decompress_all(&block, 1 << 20).unwrap();
            assert_eq!(decoded, plain, "block {block:02x?}");
        }
    }

    #[test]
    fn empty_input_is_end_marker_only() {
        assert_eq!(compress(b""), [0x11, 0, 0]);
        assert_eq!(decompress_all(&[0x11, 0, 0], 10).unwrap(), b"");
    }

    #[test]
    fn short_inputs_match_liblzo2() {
        // Inputs up to 13 bytes are one literal run in LZO1X-1, so the
        // output must equal liblzo2's byte for byte.
        for (plain, block) in liblzo2_vectors().into_iter().filter(|(plain, _)| plain.len() <= 13) {
            assert_eq!(compress(&plain), block, "input {plain:?}");
        }
    }

    fn sample_inputs() -> Vec<Vec<u8>> {
        let mut inputs = vec![
            Vec::new(),
            b"x".to_vec(),
            vec![0u8; 100_000],
            b"static int counter;\n".repeat(5000),
            (0..200_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect(),
        ];
        // Distances just below and above each encoding's limits.
        for distance in [1usize, 7, 8, 9, 1024, 1025, 2048, 2049, 3072, 3073, 16384, 16385, 49151, 49152, 60000] {
            let mut data: Vec<u8> = (0..distance).map(|i| (i as u32).wrapping_mul(2_246_822_519).to_le_bytes()[2]).collect();
            let head = data[..distance.min(300)].to_vec();
            data.extend_from_slice(&head);
            data.extend_from_slice(b"tail");
            inputs.push(data);
        }
        // Match lengths around each encoding's limits.
        for length in [3usize, 4, 8, 9, 33, 34, 300, 70_000] {
            let mut data: Vec<u8> = (0..20_000u32).map(|i| (i.wrapping_mul(747_796_405) >> 7) as u8).collect();
            let repeat = data[100..100 + length.min(19_000)].to_vec();
            data.extend_from_slice(&repeat);
            data.extend(std::iter::repeat_n(b'z', length));
            inputs.push(data);
        }
        inputs
    }

    #[test]
    fn round_trip_through_own_decoder() {
        for input in sample_inputs() {
            let block = compress(&input);
            assert!(block.len() <= max_compressed_len(input.len()));
            assert_eq!(decompress_all(&block, u64::MAX).unwrap(), input, "input of {} bytes", input.len());
        }
    }

    #[test]
    fn round_trip_through_lzokay() {
        // lzokay is an independent LZO1X implementation (a port of LZ👌).
        for input in sample_inputs() {
            let block = compress(&input);
            let mut decoded = vec![0u8; input.len()];
            let length = lzokay::decompress::decompress(&block, &mut decoded).unwrap();
            assert_eq!(length, input.len());
            assert_eq!(decoded, input);
        }
    }

    #[test]
    fn decodes_lzokay_blocks() {
        // lzokay compresses like LZO1X-999, which uses the M1 encodings that
        // LZO1X-1 never emits.
        for input in sample_inputs().into_iter().filter(|input| !input.is_empty()) {
            let block = lzokay::compress::compress(&input).unwrap();
            assert_eq!(decompress_all(&block, u64::MAX).unwrap(), input, "input of {} bytes", input.len());
        }
    }

    #[test]
    fn compresses_source_code() {
        let input = b"int add(int a, int b) { return a + b; }\n".repeat(1000);
        let block = compress(&input);
        assert!(block.len() * 10 < input.len(), "{} bytes from {}", block.len(), input.len());
    }

    #[test]
    fn output_limit_stops_before_growth() {
        let block = compress(&vec![0u8; 1_000_000]);
        let error = decompress_all(&block, 999_999).unwrap_err();
        assert!(matches!(error, LzoError::OutputTooLarge { limit: 999_999 }), "{error}");
        assert_eq!(decompress_all(&block, 1_000_000).unwrap().len(), 1_000_000);
    }

    #[test]
    fn long_length_claim_is_bounded() {
        // An M3 match whose length continues over 100,000 zero bytes claims
        // about 25 MB; with a 1 MB limit it stops without allocating that.
        let mut block = vec![0x12, b'a', M3_MARKER];
        block.extend(std::iter::repeat_n(0u8, 100_000));
        block.extend_from_slice(&[1, 0, 0, 0x11, 0, 0]);
        let error = decompress_all(&block, 1_000_000).unwrap_err();
        assert!(matches!(error, LzoError::OutputTooLarge { .. }), "{error}");
    }

    #[test]
    fn rejects_truncated_block() {
        let block = compress(&b"some text some text some text".repeat(10));
        for cut in 0..block.len() {
            let error = decompress_all(&block[..cut], u64::MAX).unwrap_err();
            assert!(matches!(error, LzoError::Truncated), "cut at {cut}: {error}");
        }
    }

    #[test]
    fn rejects_match_before_start() {
        // One literal, then an M2 match of distance 9.
        let block = [0x12, b'a', 0x40, 1, 0x11, 0, 0];
        let error = decompress_all(&block, u64::MAX).unwrap_err();
        assert!(matches!(error, LzoError::LookbehindOverrun { distance: 9, available: 1 }), "{error}");
    }

    #[test]
    fn rejects_bytes_after_end_marker() {
        let mut block = compress(b"hello");
        block.push(0);
        assert!(matches!(decompress_all(&block, u64::MAX).unwrap_err(), LzoError::TrailingData));
    }

    #[test]
    fn reads_nothing_past_the_block() {
        let mut stream = compress(b"first block");
        let length = stream.len() as u64;
        stream.extend_from_slice(b"DOTO00000000");
        let mut reader = &stream[..];
        let mut output = Vec::new();
        decompress(&mut reader, length, &mut output, 100).unwrap();
        assert_eq!(output, b"first block");
        assert_eq!(reader, b"DOTO00000000");
    }

    #[test]
    fn random_bytes_never_panic() {
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..2000 {
            let length = (seed % 200) as usize;
            let block: Vec<u8> = (0..length)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    seed as u8
                })
                .collect();
            let _ = decompress_all(&block, 1 << 20);
        }
    }
}
