//! The distcc wire protocol, versions 1 and 2, as spoken by the client.
//!
//! Every item is a token: four ASCII letters and eight hexadecimal digits (a
//! 32-bit value), followed for strings and files by exactly that many bytes.
//! The client sends `DIST`, `ARGC`, one `ARGV` per argument and `DOTI` (the
//! preprocessed source); the server replies `DONE`, `STAT` (a wait status),
//! `SERR`, `SOUT` and `DOTO` (the object file). Every field of the reply is
//! checked, and every length is bounded before anything is allocated.

use std::fmt;
use std::io::{self, BufRead, Read, Write};

use crate::lzo::{self, LzoError};

/// Largest compiler stderr or stdout accepted from a server. Both are held
/// in memory, so this bounds the memory a reply can take. A longer message
/// counts as a host failure, and the local compile that follows prints the
/// compiler's messages itself.
pub const MAX_MESSAGE_BYTES: u32 = 16 * 1024 * 1024;

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
    /// `DONE` carries another protocol version than the request's `DIST`.
    WrongVersion { expected: u32, found: u32 },
    /// The server sent more bytes after the last field of the reply.
    TrailingData { first_bytes: Vec<u8> },
    /// The file that receives the object could not be created or written.
    Output { error: io::Error },
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
            ReplyError::WrongVersion { expected, found } => {
                write!(f, "protocol error: DONE carries protocol version {found}, expected {expected}")
            }
            ReplyError::TrailingData { first_bytes } => write!(
                f,
                "protocol error: unexpected data after the end of the reply (after DOTO), starting with {}",
                printable(first_bytes)
            ),
            ReplyError::Output { error } => write!(f, "writing the object file failed: {error}"),
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
    // The buffer grows with the bytes that arrive, never to the claimed length at once.
    let mut payload = Vec::new();
    let received = reader
        .take(u64::from(length))
        .read_to_end(&mut payload)
        .map_err(|error| ReplyError::Io { field: name, error })?;
    if received < length as usize {
        return Err(ReplyError::Truncated { field: name });
    }
    Ok(payload)
}

/// Copies exactly `length` payload bytes of `name` from `reader` to `writer`,
/// in bounded chunks.
pub fn copy_payload(
    reader: &mut impl BufRead,
    writer: &mut impl Write,
    name: &'static str,
    length: u64,
) -> Result<(), ReplyError> {
    // Each buffer the reader fills goes out in one write. io::copy through
    // Take wrote 8 KiB at a time: 190 writes for a 1.5 MB object.
    let mut remaining = length;
    while remaining > 0 {
        let available = match reader.fill_buf() {
            Ok(available) => available,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            Err(error) => return Err(ReplyError::Io { field: name, error }),
        };
        if available.is_empty() {
            return Err(ReplyError::Truncated { field: name });
        }
        let count = available.len().min(usize::try_from(remaining).unwrap_or(usize::MAX));
        writer.write_all(&available[..count]).map_err(|error| ReplyError::Io { field: name, error })?;
        reader.consume(count);
        remaining -= count as u64;
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

/// The fields of a reply apart from the object file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplyHead {
    /// Wait status of the server's compiler, checked by [`check_wait_status`].
    pub status: i32,
    pub stderr: Vec<u8>,
    pub stdout: Vec<u8>,
    /// Length of the `DOTO` payload as sent (compressed in protocol 2).
    pub object_length: u32,
}

/// Reads one reply: `DONE`, `STAT`, `SERR`, `SOUT` and `DOTO`, each checked
/// before the next is read. In protocol 2 the payloads are LZO1X blocks and
/// are decompressed on the way. When the compiler succeeded (status 0), the
/// object is streamed into the writer that `open_object` returns, and that
/// writer is returned too. Otherwise the object is read and dropped.
///
/// Memory use is bounded by the two messages (each at most
/// [`MAX_MESSAGE_BYTES`], grown only as bytes arrive), a copy buffer and,
/// in protocol 2, the decompressor's window, whatever lengths the server
/// claims. The reader should be buffered.
pub fn read_reply<R: BufRead, W: Write>(
    reader: &mut R,
    version: u32,
    open_object: impl FnOnce() -> io::Result<W>,
) -> Result<(ReplyHead, Option<W>), ReplyError> {
    let compressed = version >= 2;

    let found = read_token(reader, "DONE")?;
    if found != version {
        return Err(ReplyError::WrongVersion { expected: version, found });
    }
    let status = check_wait_status(read_token(reader, "STAT")?)?;
    let stderr = read_any_message(reader, "SERR", compressed)?;
    let stdout = read_any_message(reader, "SOUT", compressed)?;
    let object_length = read_token(reader, "DOTO")?;
    if object_length > MAX_OBJECT_BYTES {
        return Err(ReplyError::OutOfRange {
            field: "DOTO",
            value: object_length,
            reason: format!("longer than the limit of {MAX_OBJECT_BYTES} bytes"),
        });
    }
    let head = ReplyHead { status, stderr, stdout, object_length };

    if status != 0 {
        copy_payload(reader, &mut io::sink(), "DOTO", u64::from(object_length))?;
        return Ok((head, None));
    }

    let mut object = open_object().map_err(|error| ReplyError::Output { error })?;
    if compressed && object_length > 0 {
        let mut output = RecordingWriter { inner: &mut object, error: None };
        let result = copy_compressed_payload(reader, &mut output, "DOTO", object_length, u64::from(MAX_OBJECT_BYTES));
        if let Some(error) = output.error.take() {
            return Err(ReplyError::Output { error });
        }
        result?;
        object.flush().map_err(|error| ReplyError::Output { error })?;
    } else {
        copy_payload_into_output(reader, &mut object, u64::from(object_length))?;
    }
    Ok((head, Some(object)))
}

fn read_any_message(reader: &mut impl Read, name: &'static str, compressed: bool) -> Result<Vec<u8>, ReplyError> {
    if compressed {
        read_compressed_message(reader, name, MAX_MESSAGE_BYTES)
    } else {
        read_message(reader, name, MAX_MESSAGE_BYTES)
    }
}

/// Writer that passes writes through and keeps the first error. The
/// decompressor reports read and write errors alike, and this separates a
/// failed object write (the client's fault) from a failed read (the server's).
struct RecordingWriter<'a, W: Write> {
    inner: &'a mut W,
    error: Option<io::Error>,
}

impl<W: Write> Write for RecordingWriter<'_, W> {
    fn write(&mut self, buffer: &[u8]) -> io::Result<usize> {
        self.inner.write(buffer).inspect_err(|error| {
            self.error.get_or_insert_with(|| io::Error::new(error.kind(), error.to_string()));
        })
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush().inspect_err(|error| {
            self.error.get_or_insert_with(|| io::Error::new(error.kind(), error.to_string()));
        })
    }
}

/// Copies the object payload, telling a failed read (the server's fault)
/// from a failed write (the client's). The bytes go from the reader's own
/// buffer to the writer, without a second buffer.
fn copy_payload_into_output(reader: &mut impl BufRead, writer: &mut impl Write, length: u64) -> Result<(), ReplyError> {
    let mut remaining = length;
    while remaining > 0 {
        let available = match reader.fill_buf() {
            Ok([]) => return Err(ReplyError::Truncated { field: "DOTO" }),
            Ok(available) => available,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            Err(error) => return Err(ReplyError::Io { field: "DOTO", error }),
        };
        let count = available.len().min(usize::try_from(remaining).unwrap_or(usize::MAX));
        writer.write_all(&available[..count]).map_err(|error| ReplyError::Output { error })?;
        reader.consume(count);
        remaining -= count as u64;
    }
    writer.flush().map_err(|error| ReplyError::Output { error })
}

/// Checks that the server sent nothing after the reply: the next read must
/// report the end of the connection. Returns the reader's error unchanged
/// when it fails, so the caller can accept a server that keeps the
/// connection open (a read timeout) without more data.
pub fn check_end(reader: &mut impl Read) -> Result<(), ReplyError> {
    let mut extra = [0u8; 16];
    loop {
        return match reader.read(&mut extra) {
            Ok(0) => Ok(()),
            Ok(count) => Err(ReplyError::TrailingData { first_bytes: extra[..count].to_vec() }),
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            Err(error) => Err(ReplyError::Io { field: "the end of the reply", error }),
        };
    }
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

    /// Encodes a protocol 1 reply as distccd sends it.
    fn encode_reply(status: u32, stderr: &[u8], stdout: &[u8], object: &[u8]) -> Vec<u8> {
        let mut wire = Vec::new();
        put_token(&mut wire, b"DONE", 1);
        put_token(&mut wire, b"STAT", status);
        put_string(&mut wire, b"SERR", stderr).unwrap();
        put_string(&mut wire, b"SOUT", stdout).unwrap();
        put_string(&mut wire, b"DOTO", object).unwrap();
        wire
    }

    fn parse(wire: &[u8]) -> Result<(ReplyHead, Option<Vec<u8>>), ReplyError> {
        read_reply(&mut &wire[..], 1, || Ok(Vec::new()))
    }

    #[test]
    fn reply_with_object() {
        let wire = encode_reply(0, b"warning\n", b"", b"\x7fELF");
        let (head, object) = parse(&wire).unwrap();
        assert_eq!(head.status, 0);
        assert_eq!(head.stderr, b"warning\n");
        assert_eq!(object.unwrap(), b"\x7fELF");
    }

    #[test]
    fn failed_compile_drops_object() {
        let wire = encode_reply(1 << 8, b"error\n", b"", b"junk");
        let (head, object) = parse(&wire).unwrap();
        assert_eq!(head.status, 256);
        assert_eq!(object, None);
    }

    #[test]
    fn reply_fields_out_of_order() {
        let mut wire = Vec::new();
        put_token(&mut wire, b"DONE", 1);
        put_string(&mut wire, b"SERR", b"x").unwrap();
        let err = parse(&wire).unwrap_err();
        assert!(matches!(err, ReplyError::UnexpectedToken { expected: "STAT", .. }), "{err}");
        assert!(err.to_string().contains("expected token STAT, received 'SERR00000001'"), "{err}");
    }

    #[test]
    fn reply_with_other_version() {
        let mut wire = encode_reply(0, b"", b"", b"");
        wire[11] = b'2';
        let err = parse(&wire).unwrap_err();
        assert!(matches!(err, ReplyError::WrongVersion { expected: 1, found: 2 }), "{err}");
        assert!(err.to_string().contains("DONE carries protocol version 2, expected 1"), "{err}");
    }

    #[test]
    fn absurd_lengths_rejected_before_reading() {
        for (field, position) in [("SERR", 24), ("SOUT", 36), ("DOTO", 48)] {
            let mut wire = encode_reply(0, b"", b"", b"");
            wire[position + 4..position + 12].copy_from_slice(b"ffffffff");
            let err = parse(&wire).unwrap_err();
            assert!(matches!(err, ReplyError::OutOfRange { field: f, value: 0xffff_ffff, .. } if f == field), "{field}: {err}");
            assert!(err.to_string().contains(field), "{err}");
        }
    }

    #[test]
    fn claimed_message_length_is_not_allocated() {
        // A claim just under the limit, with three bytes behind it: the
        // buffer grows with what arrives.
        let mut wire = b"SERR00ffffff".to_vec();
        wire.extend_from_slice(b"abc");
        let err = read_message(&mut &wire[..], "SERR", MAX_MESSAGE_BYTES).unwrap_err();
        assert!(matches!(err, ReplyError::Truncated { field: "SERR" }), "{err}");
    }

    #[test]
    fn object_write_failure_is_output_error() {
        #[derive(Debug)]
        struct Full;
        impl Write for Full {
            fn write(&mut self, _: &[u8]) -> io::Result<usize> {
                Err(io::Error::new(io::ErrorKind::StorageFull, "no space left"))
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let wire = encode_reply(0, b"", b"", b"object");
        let err = read_reply(&mut &wire[..], 1, || Ok(Full)).unwrap_err();
        assert!(matches!(err, ReplyError::Output { .. }), "{err}");
    }

    #[test]
    fn data_after_reply_detected() {
        let mut wire = encode_reply(0, b"", b"", b"obj");
        wire.extend_from_slice(b"DOTO00000004rest");
        let mut reader = &wire[..];
        read_reply(&mut reader, 1, || Ok(Vec::new())).unwrap();
        let err = check_end(&mut reader).unwrap_err();
        assert!(matches!(err, ReplyError::TrailingData { .. }), "{err}");
        assert!(err.to_string().contains("'DOTO00000004rest'"), "{err}");
        assert!(check_end(&mut &b""[..]).is_ok());
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        /// Wait statuses a real server sends: an exit code, or a signal
        /// with or without the core-dump bit.
        fn wait_status() -> impl Strategy<Value = u32> {
            prop_oneof![(0u32..=255).prop_map(|code| code << 8), (1u32..=64, any::<bool>()).prop_map(|(signal, core)| signal | if core { 0x80 } else { 0 })]
        }

        fn bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
            proptest::collection::vec(any::<u8>(), 0..max)
        }

        proptest! {
            #[test]
            fn reply_round_trips(status in wait_status(), stderr in bytes(300), stdout in bytes(300), object in bytes(3000)) {
                let wire = encode_reply(status, &stderr, &stdout, &object);
                let mut reader = &wire[..];
                let (head, received) = read_reply(&mut reader, 1, || Ok(Vec::new())).map_err(|e| TestCaseError::fail(e.to_string()))?;
                prop_assert_eq!(head.status as u32, status);
                prop_assert_eq!(head.stderr, stderr);
                prop_assert_eq!(head.stdout, stdout);
                prop_assert_eq!(head.object_length as usize, object.len());
                if status == 0 {
                    prop_assert_eq!(received, Some(object));
                } else {
                    prop_assert_eq!(received, None);
                }
                prop_assert!(check_end(&mut reader).is_ok());
            }

            #[test]
            fn every_truncation_is_reported(stderr in bytes(40), object in bytes(200), cut in any::<prop::sample::Index>()) {
                let wire = encode_reply(0, &stderr, b"", &object);
                let cut = cut.index(wire.len());
                let err = parse(&wire[..cut]).err();
                prop_assert!(matches!(err, Some(ReplyError::Truncated { .. })), "cut at {} of {}: {:?}", cut, wire.len(), err);
            }

            #[test]
            fn any_bytes_never_panic(wire in bytes(400)) {
                let mut reader = &wire[..];
                if read_reply(&mut reader, 1, || Ok(Vec::new())).is_ok() {
                    let _ = check_end(&mut reader);
                }
            }

            #[test]
            fn token_like_bytes_never_panic(
                tokens in proptest::collection::vec(
                    (prop_oneof![Just("DONE"), Just("STAT"), Just("SERR"), Just("SOUT"), Just("DOTO"), Just("XXXX")], 0u32..64, bytes(64)),
                    0..7,
                ),
            ) {
                let mut wire = Vec::new();
                for (name, value, payload) in tokens {
                    let name: [u8; 4] = name.as_bytes().try_into().unwrap();
                    put_token(&mut wire, &name, value);
                    wire.extend_from_slice(&payload);
                }
                let _ = parse(&wire);
            }

            #[test]
            fn implausible_status_rejected(value in any::<u32>()) {
                let exit = value & 0xffff_00ff == 0;
                let signal = value & 0xffff_ff00 == 0 && (1..=64).contains(&(value & 0x7f));
                prop_assert_eq!(check_wait_status(value).is_ok(), exit || signal);
            }
        }
    }

}
