//! Fuzz target: the parser of a server's reply, protocols 1 and 2.
//!
//! The first input byte selects the protocol version; the rest is the
//! reply. Any bytes must parse or fail without a panic, and an accepted
//! protocol 1 object must have exactly the length its `DOTO` claimed.

#![no_main]

#[allow(dead_code)]
#[path = "../../src/lzo.rs"]
mod lzo;
#[allow(dead_code)]
#[path = "../../src/protocol.rs"]
mod protocol;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, reply)) = data.split_first() else {
        return;
    };
    let version = if selector & 1 == 0 { 1 } else { 2 };
    let mut reader = reply;
    if let Ok((head, object)) = protocol::read_reply(&mut reader, version, || Ok(Vec::new())) {
        assert_eq!(object.is_some(), head.status == 0);
        assert!(head.stderr.len() <= protocol::MAX_MESSAGE_BYTES as usize);
        assert!(head.stdout.len() <= protocol::MAX_MESSAGE_BYTES as usize);
        if version == 1 {
            if let Some(object) = object {
                assert_eq!(object.len(), head.object_length as usize);
            }
        }
        let _ = protocol::check_end(&mut reader);
    }
});
