//! Fuzz target: the LZO1X decoder and encoder.
//!
//! Any block must decode or fail without a panic and without exceeding the
//! output limit, and compressing the input then decompressing it must give
//! the input back.

#![no_main]

#[allow(dead_code)]
#[path = "../../src/lzo.rs"]
mod lzo;

use libfuzzer_sys::fuzz_target;

/// Output limit for decoding arbitrary blocks, small enough to keep each
/// run fast.
const LIMIT: u64 = 1 << 20;

fuzz_target!(|data: &[u8]| {
    let mut output = Vec::new();
    let _ = lzo::decompress(&mut &data[..], data.len() as u64, &mut output, LIMIT);
    assert!(output.len() as u64 <= LIMIT);

    if !data.is_empty() {
        let block = lzo::compress(data);
        assert!(block.len() <= lzo::max_compressed_len(data.len()));
        let mut round_trip = Vec::new();
        let length = lzo::decompress(&mut &block[..], block.len() as u64, &mut round_trip, data.len() as u64)
            .unwrap_or_else(|e| panic!("a block from compress does not decode: {e}"));
        assert_eq!(length as usize, data.len());
        assert_eq!(round_trip, data);
    }
});
