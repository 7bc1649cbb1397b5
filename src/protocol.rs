//! The distcc wire protocol, versions 1 and 2, as spoken by the client.
//!
//! Every item is a token: four ASCII letters and eight hexadecimal digits (a
//! 32-bit value), followed for strings and files by exactly that many bytes.
//! The client sends `DIST`, `ARGC`, one `ARGV` per argument and `DOTI` (the
//! preprocessed source); the server replies `DONE`, `STAT` (a wait status),
//! `SERR`, `SOUT` and `DOTO` (the object file). Every field of the reply is
//! checked, and every length is bounded before anything is allocated.

use std::fmt;
use std::io::{self, Read, Write};

use crate::lzo::{self, LzoError};

/// Largest compiler stderr or stdout accepted from a server. Real compilers
/// stay far below; a larger claim is treated as a broken server.
pub const MAX_MESSAGE_BYTES: u32 = 64 * 1024 * 1024;

/// Largest object file accepted from a server (it is streamed to disk, so this
/// bounds disk use, not memory).
pub const MAX_OBJECT_BYTES: u32 = 2048 * 1024 * 1024 - 1;

/// What went wrong while reading a reply, naming the field.
#[derive(Debug)]
pub enum ReplyError {
    /// The connection ended before the field was complete.
    Truncated { field: &'static str },
    /// The 12-byte header was not the expected token.
    UnexpectedToken { expected: &'static str, found: String },
    /// The value is not 8 hexadecimal digits.
    BadNumber { field: &'static str, found: String },
    /// The value is outside what the field allows.
    OutOfRange { field: &'static str, value: u32, reason: String },
    /// Reading or writing failed, including timeouts.
    Io { field: &'static str, error: io::Error },
    /// A protocol 2 payload is not a valid LZO1X block, or decompresses to
    /// more than the field allows.
    Decompression { field: &'static str, error: LzoError },
}

impl fmt::Display for ReplyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReplyError::Truncated { field } => {
                write!(f, "server closed the connection in the middle of the reply (while reading {field})")
            }
            ReplyError::UnexpectedToken { expected, found } => {
                write!(f, "protocol error: expected token {expected}, received {found}")
            }
            ReplyError::BadNumber { field, found } => {
                write!(f, "protocol error: {field} value {found} is not 8 hexadecimal digits")
            }
            ReplyError::OutOfRange { field, value, reason } => {
                write!(f, "protocol error: {field} value {value:#x} is invalid: {reason}")
            }
            ReplyError::Io { field, error } => write!(f, "reading {field} failed: {error}"),
            ReplyError::Decompression { field, error } => write!(f, "protocol error: {field}: {error}"),
        }
    }
}

impl std::error::Error for ReplyError {}

/// Appends one token header to `buffer`.
pub fn put_token(buffer: &mut Vec<u8>, name: &[u8; 4], value: u32) {
    buffer.extend_from_slice(name);
    let mut hex = [0u8; 8];
    for (i, digit) in hex.iter_mut().enumerate() {
        let nibble = (value >> (28 - 4 * i)) & 0xf;
        *digit = b"0123456789abcdef"[nibble as usize];
    }
    buffer.extend_from_slice(&hex);
}

/// Appends a token followed by its payload.
pub fn put_string(buffer: &mut Vec<u8>, name: &[u8; 4], payload: &[u8]) -> io::Result<()> {
    let length = u32::try_from(payload.len())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "item longer than 4 GiB"))?;
    put_token(buffer, name, length);
    buffer.extend_from_slice(payload);
    Ok(())
}

/// Builds the request header: `DIST`, `ARGC`, and one `ARGV` per word.
pub fn request_header(protocol: u32, argv: &[&[u8]]) -> io::Result<Vec<u8>> {
    let mut buffer = Vec::with_capacity(64 + argv.iter().map(|a| a.len() + 12).sum::<usize>());
    put_token(&mut buffer, b"DIST", protocol);
    put_token(&mut buffer, b"ARGC", argv.len() as u32);
    for word in argv {
        put_string(&mut buffer, b"ARGV", word)?;
    }
    Ok(buffer)
}

fn read_field(reader: &mut impl Read, buffer: &mut [u8], field: &'static str) -> Result<(), ReplyError> {
    reader.read_exact(buffer).map_err(|error| {
        if error.kind() == io::ErrorKind::UnexpectedEof {
            ReplyError::Truncated { field }
        } else {
            ReplyError::Io { field, error }
        }
    })
}

/// Reads one 12-byte token header and returns its value.
pub fn read_token(reader: &mut impl Read, expected: &'static str) -> Result<u32, ReplyError> {
    let mut header = [0u8; 12];
    read_field(reader, &mut header, expected)?;
    if &header[..4] != expected.as_bytes() {
        return Err(ReplyError::UnexpectedToken {
            expected,
            found: printable(&header),
        });
    }
    parse_hex(&header[4..]).ok_or_else(|| ReplyError::BadNumber {
        field: expected,
        found: printable(&header[4..]),
    })
}

fn parse_hex(digits: &[u8]) -> Option<u32> {
    let mut value: u32 = 0;
    for &digit in digits {
        let nibble = (digit as char).to_digit(16)?;
        value = (value << 4) | nibble;
    }
    Some(value)
}

/// Renders bytes from the wire for a message: printable ASCII as is, the rest escaped.
pub fn printable(bytes: &[u8]) -> String {
    let mut text = String::from("'");
    for &b in bytes {
        if (0x20..0x7f).contains(&b) && b != b'\'' {
            text.push(b as char);
        } else {
            text.push_str(&format!("\\x{b:02x}"));
        }
    }
    text.push('\'');
    text
}

/// Reads a token whose payload is a bounded message (`SERR`, `SOUT`).
pub fn read_message(reader: &mut impl Read, name: &'static str, limit: u32) -> Result<Vec<u8>, ReplyError> {
    let length = read_token(reader, name)?;
    if length > limit {
        return Err(ReplyError::OutOfRange {
            field: name,
            value: length,
            reason: format!("longer than the limit of {limit} bytes"),
        });
    }
    let mut payload = vec![0u8; length as usize];
    read_field(reader, &mut payload, name)?;
    Ok(payload)
}

/// Copies exactly `length` payload bytes of `name` from `reader` to `writer`,
/// in bounded chunks.
pub fn copy_payload(
    reader: &mut impl Read,
    writer: &mut impl Write,
    name: &'static str,
    length: u64,
) -> Result<(), ReplyError> {
    let mut limited = reader.take(length);
    let copied = io::copy(&mut limited, writer).map_err(|error| ReplyError::Io { field: name, error })?;
    if copied < length {
        return Err(ReplyError::Truncated { field: name });
    }
    Ok(())
}

/// Reads a protocol 2 message token (`SERR`, `SOUT`): its payload is one
/// LZO1X block, or nothing when the length is 0. The compressed length is
/// checked before anything is read, and the output is bounded by `limit`.
pub fn read_compressed_message(reader: &mut impl Read, name: &'static str, limit: u32) -> Result<Vec<u8>, ReplyError> {
    let length = read_token(reader, name)?;
    if length == 0 {
        return Ok(Vec::new());
    }
    let max_compressed = lzo::max_compressed_len(limit as usize);
    if length as usize > max_compressed {
        return Err(ReplyError::OutOfRange {
            field: name,
            value: length,
            reason: format!("longer than the limit of {max_compressed} compressed bytes"),
        });
    }
    let mut message = Vec::new();
    copy_compressed_payload(reader, &mut message, name, length, u64::from(limit))?;
    Ok(message)
}

/// Decompresses the `length`-byte LZO1X payload of `name` from `reader` into
/// `writer`, at most `limit` bytes, and returns the decompressed length.
pub fn copy_compressed_payload(
    reader: &mut impl Read,
    writer: &mut impl Write,
    name: &'static str,
    length: u32,
    limit: u64,
) -> Result<u64, ReplyError> {
    lzo::decompress(reader, u64::from(length), writer, limit).map_err(|error| match error {
        LzoError::Io(error) if error.kind() == io::ErrorKind::UnexpectedEof => ReplyError::Truncated { field: name },
        LzoError::Io(error) => ReplyError::Io { field: name, error },
        other => ReplyError::Decompression { field: name, error: other },
    })
}

/// Checks a `STAT` value: a wait status as `waitpid` produces it, either an
/// exit code in bits 8-15 or a terminating signal in bits 0-6.
pub fn check_wait_status(value: u32) -> Result<i32, ReplyError> {
    let status = value as i32;
    let plausible_exit = value & 0xffff_00ff == 0;
    let signal = value & 0x7f;
    let plausible_signal = value & 0xffff_ff00 == 0 && (1..=64).contains(&signal) && value & 0x7f != 0x7f;
    if plausible_exit || plausible_signal {
        Ok(status)
    } else {
        Err(ReplyError::OutOfRange {
            field: "STAT",
            value,
            reason: "not a wait status of a finished process".into(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_format_matches_stock() {
        let mut buffer = Vec::new();
        put_token(&mut buffer, b"DIST", 1);
        put_token(&mut buffer, b"ARGC", 0xabcdef12);
        assert_eq!(buffer, b"DIST00000001ARGCabcdef12");
    }

    #[test]
    fn request_header_lists_arguments() {
        let header = request_header(1, &[b"gcc", b"-c"]).unwrap();
        assert_eq!(header, b"DIST00000001ARGC00000002ARGV00000003gccARGV00000002-c");
    }

    #[test]
    fn read_token_checks_name_and_digits() {
        assert_eq!(read_token(&mut &b"DONE00000001"[..], "DONE").unwrap(), 1);
        assert_eq!(read_token(&mut &b"STATFFFFFFFF"[..], "STAT").unwrap(), u32::MAX);
        assert!(matches!(
            read_token(&mut &b"SOUT00000001"[..], "DONE"),
            Err(ReplyError::UnexpectedToken { .. })
        ));
        assert!(matches!(
            read_token(&mut &b"DONE0000000g"[..], "DONE"),
            Err(ReplyError::BadNumber { .. })
        ));
        assert!(matches!(
            read_token(&mut &b"DONE0000"[..], "DONE"),
            Err(ReplyError::Truncated { field: "DONE" })
        ));
    }

    #[test]
    fn message_length_is_bounded_before_allocation() {
        let err = read_message(&mut &b"SERRffffffff"[..], "SERR", MAX_MESSAGE_BYTES).unwrap_err();
        assert!(matches!(err, ReplyError::OutOfRange { field: "SERR", .. }));
        let err = read_message(&mut &b"SERR00000010abc"[..], "SERR", MAX_MESSAGE_BYTES).unwrap_err();
        assert!(matches!(err, ReplyError::Truncated { field: "SERR" }));
    }

    #[test]
    fn copy_payload_detects_short_body() {
        let mut short = Vec::new();
        let err = copy_payload(&mut &b"abc"[..], &mut short, "DOTO", 10).unwrap_err();
        assert!(matches!(err, ReplyError::Truncated { field: "DOTO" }));

        let mut exact = Vec::new();
        copy_payload(&mut &b"abcdef"[..], &mut exact, "DOTO", 4).unwrap();
        assert_eq!(exact, b"abcd");
    }

    #[test]
    fn compressed_message_round_trip() {
        let text = b"warning: unused variable 'x'\n".repeat(20);
        let block = lzo::compress(&text);
        let mut wire = Vec::new();
        put_string(&mut wire, b"SERR", &block).unwrap();
        assert_eq!(read_compressed_message(&mut &wire[..], "SERR", 1 << 20).unwrap(), text);
    }

    #[test]
    fn empty_compressed_message_has_no_block() {
        assert_eq!(read_compressed_message(&mut &b"SOUT00000000"[..], "SOUT", 10).unwrap(), b"");
    }

    #[test]
    fn compressed_message_limits() {
        // A claimed compressed length beyond what the limit allows is
        // rejected before any payload is read.
        let err = read_compressed_message(&mut &b"SERRffffffff"[..], "SERR", MAX_MESSAGE_BYTES).unwrap_err();
        assert!(matches!(err, ReplyError::OutOfRange { field: "SERR", .. }), "{err}");

        let block = lzo::compress(&[b'x'; 5000]);
        let mut wire = Vec::new();
        put_string(&mut wire, b"SOUT", &block).unwrap();
        let err = read_compressed_message(&mut &wire[..], "SOUT", 4999).unwrap_err();
        assert!(matches!(err, ReplyError::Decompression { field: "SOUT", .. }), "{err}");
        assert!(err.to_string().contains("more than the limit of 4999 bytes"), "{err}");
    }

    #[test]
    fn compressed_payload_truncated_or_garbage() {
        let block = lzo::compress(b"object file contents, object file contents");
        let err = copy_compressed_payload(&mut &block[..block.len() - 1], &mut Vec::new(), "DOTO", block.len() as u32, 100)
            .unwrap_err();
        assert!(matches!(err, ReplyError::Truncated { field: "DOTO" }), "{err}");

        // One literal, then a match 9 bytes back.
        let garbage = [0x12, b'a', 0x40, 0x01, 0x11, 0, 0];
        let err = copy_compressed_payload(&mut &garbage[..], &mut Vec::new(), "DOTO", garbage.len() as u32, 1 << 20)
            .unwrap_err();
        assert!(matches!(err, ReplyError::Decompression { field: "DOTO", .. }), "{err}");
    }

    #[test]
    fn wait_status_validation() {
        assert_eq!(check_wait_status(0).unwrap(), 0);
        assert_eq!(check_wait_status(1 << 8).unwrap(), 256);
        assert_eq!(check_wait_status(110 << 8).unwrap(), 110 << 8);
        assert_eq!(check_wait_status(11).unwrap(), 11);
        assert!(check_wait_status(0xffff_ffff).is_err());
        assert!(check_wait_status(0x1_0000).is_err());
        assert!(check_wait_status(0x7f).is_err());
    }
}
