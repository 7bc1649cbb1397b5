//! The few GSS-API initiator calls that `,auth` hosts need, from MIT
//! Kerberos's `libgssapi_krb5.so.2`, loaded with `dlopen` on first use.
//!
//! The library is not linked at build time. Loading and relocating it with
//! its dependencies (libkrb5, libk5crypto, libcom_err, libkrb5support,
//! libkeyutils, libresolv) cost every run about 0.5 million instructions.
//! That was half of the client's instructions for a job on a host without
//! `,auth` (callgrind, release build, one `-O2 -c` of Lua's lapi.c). Jobs
//! that meet no `,auth` host never load it.
//!
//! Types and constants follow RFC 2744 (the GSS-API C bindings) and MIT's
//! `<gssapi/gssapi.h>`; object identifiers are compared by value, so the
//! static copies here work for any MIT release.

use std::ffi::{c_int, c_void};
use std::fmt;
use std::ptr;
use std::sync::OnceLock;
use std::time::Duration;

/// The file name of MIT Kerberos's GSS-API library (Debian package
/// libgssapi-krb5-2), which stock distcc 3.4 links.
pub const LIBRARY_NAME: &str = "libgssapi_krb5.so.2";

#[allow(non_camel_case_types)]
type OM_uint32 = u32;

#[repr(C)]
struct BufferDesc {
    length: usize,
    value: *mut c_void,
}

impl BufferDesc {
    fn empty() -> BufferDesc {
        BufferDesc { length: 0, value: ptr::null_mut() }
    }

    /// Borrows `bytes` as an input buffer. GSS-API never writes to input buffers.
    fn borrowed(bytes: &[u8]) -> BufferDesc {
        BufferDesc { length: bytes.len(), value: bytes.as_ptr() as *mut c_void }
    }
}

/// An object identifier: `length` bytes of DER contents at `elements`.
#[repr(C)]
pub struct Oid {
    length: OM_uint32,
    elements: *const u8,
}

// SAFETY: an `Oid` points only at static, immutable bytes.
unsafe impl Sync for Oid {}

#[repr(C)]
struct OidSet {
    count: usize,
    elements: *const Oid,
}

const fn oid(der: &'static [u8]) -> Oid {
    Oid { length: der.len() as OM_uint32, elements: der.as_ptr() }
}

/// The Kerberos 5 mechanism, 1.2.840.113554.1.2.2 (RFC 1964).
pub static MECH_KRB5: Oid = oid(b"\x2a\x86\x48\x86\xf7\x12\x01\x02\x02");
/// GSS_C_NT_USER_NAME, 1.2.840.113554.1.2.1.1: a name such as `host/build1`.
pub static NT_USER_NAME: Oid = oid(b"\x2a\x86\x48\x86\xf7\x12\x01\x02\x01\x01");
/// GSS_C_NT_HOSTBASED_SERVICE, 1.2.840.113554.1.2.1.4: `service@host`.
pub static NT_HOSTBASED_SERVICE: Oid = oid(b"\x2a\x86\x48\x86\xf7\x12\x01\x02\x01\x04");

/// Context flags (`req_flags` and `ret_flags`).
pub const MUTUAL_FLAG: u32 = 2;
pub const REPLAY_FLAG: u32 = 4;
pub const SEQUENCE_FLAG: u32 = 8;

/// Routine errors, bits 16-23 of a major status.
pub const ROUTINE_ERROR_MASK: u32 = 0x00ff_0000;
pub const S_NO_CRED: u32 = 7 << 16;
pub const S_CREDENTIALS_EXPIRED: u32 = 11 << 16;

const S_COMPLETE: u32 = 0;
const S_CONTINUE_NEEDED: u32 = 1;
const CALLING_ERROR_MASK: u32 = 0xff00_0000;
const C_INITIATE: c_int = 1;
const C_GSS_CODE: c_int = 1;
const C_MECH_CODE: c_int = 2;
/// GSS_C_INDEFINITE: a lifetime without end, requested or reported.
const C_INDEFINITE: OM_uint32 = 0xffff_ffff;

type NameHandle = *mut c_void;
type CredHandle = *mut c_void;
type ContextHandle = *mut c_void;

/// The library's entry points, resolved once.
struct Library {
    acquire_cred: unsafe extern "C" fn(
        *mut OM_uint32,
        NameHandle,
        OM_uint32,
        *const OidSet,
        c_int,
        *mut CredHandle,
        *mut *mut OidSet,
        *mut OM_uint32,
    ) -> OM_uint32,
    inquire_cred: unsafe extern "C" fn(
        *mut OM_uint32,
        CredHandle,
        *mut NameHandle,
        *mut OM_uint32,
        *mut c_int,
        *mut *mut OidSet,
    ) -> OM_uint32,
    import_name: unsafe extern "C" fn(*mut OM_uint32, *const BufferDesc, *const Oid, *mut NameHandle) -> OM_uint32,
    display_name: unsafe extern "C" fn(*mut OM_uint32, NameHandle, *mut BufferDesc, *mut *const Oid) -> OM_uint32,
    release_name: unsafe extern "C" fn(*mut OM_uint32, *mut NameHandle) -> OM_uint32,
    init_sec_context: unsafe extern "C" fn(
        *mut OM_uint32,
        CredHandle,
        *mut ContextHandle,
        NameHandle,
        *const Oid,
        OM_uint32,
        OM_uint32,
        *const c_void,
        *const BufferDesc,
        *mut *const Oid,
        *mut BufferDesc,
        *mut OM_uint32,
        *mut OM_uint32,
    ) -> OM_uint32,
    release_buffer: unsafe extern "C" fn(*mut OM_uint32, *mut BufferDesc) -> OM_uint32,
    display_status: unsafe extern "C" fn(
        *mut OM_uint32,
        OM_uint32,
        c_int,
        *const Oid,
        *mut OM_uint32,
        *mut BufferDesc,
    ) -> OM_uint32,
    // Kept open for the life of the process: the function pointers above point into it.
    _library: libloading::Library,
}

static LIBRARY: OnceLock<Result<Library, String>> = OnceLock::new();

/// Loads the library on the first call; later calls return the same result.
fn library() -> Result<&'static Library, LoadError> {
    LIBRARY.get_or_init(load).as_ref().map_err(|message| LoadError(message.clone()))
}

fn load() -> Result<Library, String> {
    let describe = |e: libloading::Error| format!("cannot load the GSS-API library {LIBRARY_NAME}: {e}");
    // SAFETY: loading MIT's GSS-API library runs only its ELF constructors,
    // which initialise its own state.
    let library = unsafe { libloading::Library::new(LIBRARY_NAME) }.map_err(describe)?;
    // SAFETY: each symbol is declared above with its C prototype from
    // <gssapi/gssapi.h>; the pointers stay valid because the library is
    // never unloaded.
    unsafe {
        Ok(Library {
            acquire_cred: *library.get(b"gss_acquire_cred\0").map_err(describe)?,
            inquire_cred: *library.get(b"gss_inquire_cred\0").map_err(describe)?,
            import_name: *library.get(b"gss_import_name\0").map_err(describe)?,
            display_name: *library.get(b"gss_display_name\0").map_err(describe)?,
            release_name: *library.get(b"gss_release_name\0").map_err(describe)?,
            init_sec_context: *library.get(b"gss_init_sec_context\0").map_err(describe)?,
            release_buffer: *library.get(b"gss_release_buffer\0").map_err(describe)?,
            display_status: *library.get(b"gss_display_status\0").map_err(describe)?,
            _library: library,
        })
    }
}

/// The GSS-API library could not be loaded, or lacks a function.
#[derive(Debug, Clone)]
pub struct LoadError(pub String);

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A failed GSS-API call: its major and minor status.
#[derive(Debug)]
pub struct Error {
    pub major: u32,
    pub minor: u32,
    library: &'static Library,
}

impl fmt::Debug for Library {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(LIBRARY_NAME)
    }
}

impl Error {
    /// Returns the routine error of the major status, e.g. [`S_NO_CRED`].
    pub fn routine(&self) -> u32 {
        self.major & ROUTINE_ERROR_MASK
    }

    /// Appends the library's text for one status code.
    fn write_status(&self, f: &mut fmt::Formatter<'_>, code: u32, kind: c_int) -> fmt::Result {
        let mut message_context: OM_uint32 = 0;
        let mut first = true;
        loop {
            let mut minor = 0;
            let mut text = BufferDesc::empty();
            // SAFETY: all pointers are valid for the call; the buffer is
            // released below with gss_release_buffer.
            let major = unsafe {
                (self.library.display_status)(&mut minor, code, kind, &MECH_KRB5, &mut message_context, &mut text)
            };
            if major != S_COMPLETE {
                return write!(f, "status {code:#x}");
            }
            // SAFETY: on success `text` contains `length` readable bytes.
            let bytes = unsafe { buffer_bytes(&text) };
            let separator = if first { "" } else { "; " };
            let result = write!(f, "{separator}{}", String::from_utf8_lossy(bytes));
            // SAFETY: `text` was filled by gss_display_status.
            unsafe { (self.library.release_buffer)(&mut minor, &mut text) };
            result?;
            first = false;
            if message_context == 0 {
                return Ok(());
            }
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.write_status(f, self.major, C_GSS_CODE)?;
        if self.minor != 0 {
            f.write_str(" (")?;
            self.write_status(f, self.minor, C_MECH_CODE)?;
            f.write_str(")")?;
        }
        Ok(())
    }
}

impl std::error::Error for Error {}

/// A GSS-API call failed, or the library could not be loaded first.
#[derive(Debug)]
pub enum GssError {
    Load(LoadError),
    Call(Error),
}

impl fmt::Display for GssError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GssError::Load(error) => error.fmt(f),
            GssError::Call(error) => error.fmt(f),
        }
    }
}

impl From<LoadError> for GssError {
    fn from(error: LoadError) -> GssError {
        GssError::Load(error)
    }
}

/// # Safety
/// `buffer` must contain `length` readable bytes at `value` (or length 0).
unsafe fn buffer_bytes(buffer: &BufferDesc) -> &[u8] {
    if buffer.length == 0 || buffer.value.is_null() {
        &[]
    } else {
        // SAFETY: guaranteed by the caller.
        unsafe { std::slice::from_raw_parts(buffer.value as *const u8, buffer.length) }
    }
}

fn check(library: &'static Library, major: u32, minor: u32) -> Result<(), Error> {
    if major & (CALLING_ERROR_MASK | ROUTINE_ERROR_MASK) == 0 {
        Ok(())
    } else {
        Err(Error { major, minor, library })
    }
}

/// Converts a GSS-API lifetime in seconds; GSS_C_INDEFINITE (`u32::MAX`)
/// stays `u32::MAX` seconds, about 136 years.
fn lifetime_duration(seconds: OM_uint32) -> Duration {
    Duration::from_secs(u64::from(seconds))
}

/// Initiator credentials: the Kerberos tickets in the default credential cache.
///
/// Credentials and contexts are never released, because the client makes at
/// most one credential and one context per `,auth` host it tries, and exits
/// right after the job. Releasing them frees two Kerberos library contexts:
/// about 80 thousand instructions (callgrind, MIT Kerberos 1.20).
pub struct Cred {
    handle: CredHandle,
    library: &'static Library,
}

impl Cred {
    /// Acquires the default initiator credentials for Kerberos 5 and returns
    /// them with their remaining lifetime (zero once the ticket has expired).
    pub fn acquire_default() -> Result<(Cred, Duration), GssError> {
        let library = library()?;
        let mechanisms = OidSet { count: 1, elements: &MECH_KRB5 };
        let mut minor = 0;
        let mut handle: CredHandle = ptr::null_mut();
        let mut lifetime: OM_uint32 = 0;
        // SAFETY: all pointers are valid for the call; a null name and a null
        // actual-mechanisms pointer are allowed by RFC 2744.
        let major = unsafe {
            (library.acquire_cred)(
                &mut minor,
                ptr::null_mut(),
                C_INDEFINITE,
                &mechanisms,
                C_INITIATE,
                &mut handle,
                ptr::null_mut(),
                &mut lifetime,
            )
        };
        check(library, major, minor).map_err(GssError::Call)?;
        Ok((Cred { handle, library }, lifetime_duration(lifetime)))
    }

    /// Returns the remaining lifetime of the credentials; credentials that
    /// never expire report `u32::MAX` seconds.
    pub fn lifetime(&self) -> Result<Duration, Error> {
        let mut minor = 0;
        let mut lifetime: OM_uint32 = 0;
        // SAFETY: the credential handle is valid; the unused outputs are null.
        let major = unsafe {
            (self.library.inquire_cred)(
                &mut minor,
                self.handle,
                ptr::null_mut(),
                &mut lifetime,
                ptr::null_mut(),
                ptr::null_mut(),
            )
        };
        check(self.library, major, minor)?;
        Ok(lifetime_duration(lifetime))
    }

    /// Returns the client principal, e.g. `alice@EXAMPLE.COM`.
    pub fn principal(&self) -> Result<String, Error> {
        let mut minor = 0;
        let mut name = Name { handle: ptr::null_mut(), library: self.library };
        // SAFETY: the credential handle is valid; the unused outputs are null.
        let major = unsafe {
            (self.library.inquire_cred)(
                &mut minor,
                self.handle,
                &mut name.handle,
                ptr::null_mut(),
                ptr::null_mut(),
                ptr::null_mut(),
            )
        };
        check(self.library, major, minor)?;
        name.display()
    }
}

/// An imported GSS-API name.
pub struct Name {
    handle: NameHandle,
    library: &'static Library,
}

impl Name {
    /// Imports `text` as a name of type `name_type`, e.g. [`NT_USER_NAME`].
    pub fn import(text: &[u8], name_type: &'static Oid) -> Result<Name, GssError> {
        let library = library()?;
        let input = BufferDesc::borrowed(text);
        let mut name = Name { handle: ptr::null_mut(), library };
        let mut minor = 0;
        // SAFETY: `input` borrows `text` for the call; the output handle is released by Drop.
        let major = unsafe { (library.import_name)(&mut minor, &input, name_type, &mut name.handle) };
        check(library, major, minor).map_err(GssError::Call)?;
        Ok(name)
    }

    fn display(&self) -> Result<String, Error> {
        let mut minor = 0;
        let mut text = BufferDesc::empty();
        // SAFETY: the name handle is valid and the name type output may be null.
        let major = unsafe { (self.library.display_name)(&mut minor, self.handle, &mut text, ptr::null_mut()) };
        check(self.library, major, minor)?;
        // SAFETY: on success `text` contains `length` readable bytes.
        let display = String::from_utf8_lossy(unsafe { buffer_bytes(&text) }).into_owned();
        // SAFETY: `text` was filled by gss_display_name.
        unsafe { (self.library.release_buffer)(&mut minor, &mut text) };
        Ok(display)
    }
}

impl Drop for Name {
    fn drop(&mut self) {
        if !self.handle.is_null() {
            let mut minor = 0;
            // SAFETY: the handle came from the library and is released once.
            unsafe { (self.library.release_name)(&mut minor, &mut self.handle) };
        }
    }
}

/// The initiator's side of a security context with one server.
pub struct ClientContext<'a> {
    handle: ContextHandle,
    credentials: &'a Cred,
    target: Name,
    requested_flags: u32,
    granted_flags: u32,
    complete: bool,
}

impl<'a> ClientContext<'a> {
    /// Prepares a Kerberos 5 context with `target`, requesting `flags`.
    pub fn new(credentials: &'a Cred, target: Name, flags: u32) -> ClientContext<'a> {
        ClientContext {
            handle: ptr::null_mut(),
            credentials,
            target,
            requested_flags: flags,
            granted_flags: 0,
            complete: false,
        }
    }

    /// Runs one step of gss_init_sec_context with the server's last token
    /// (none on the first step) and returns the token to send, if any.
    pub fn step(&mut self, input: Option<&[u8]>) -> Result<Option<Vec<u8>>, Error> {
        let library = self.credentials.library;
        let input_buffer = input.map(BufferDesc::borrowed);
        let input_pointer = input_buffer.as_ref().map_or(ptr::null(), |buffer| buffer as *const BufferDesc);
        let mut output = BufferDesc::empty();
        let mut minor = 0;
        let mut granted: OM_uint32 = 0;

        // SAFETY: the handles are valid, `input_pointer` is null or borrows
        // `input` for the call, and the output buffer is released below.
        let major = unsafe {
            (library.init_sec_context)(
                &mut minor,
                self.credentials.handle,
                &mut self.handle,
                self.target.handle,
                &MECH_KRB5,
                self.requested_flags,
                0,
                ptr::null(),
                input_pointer,
                ptr::null_mut(),
                &mut output,
                &mut granted,
                ptr::null_mut(),
            )
        };

        // SAFETY: `output` is empty or was filled by gss_init_sec_context.
        let token = unsafe { buffer_bytes(&output) }.to_vec();
        if !output.value.is_null() {
            let mut release_minor = 0;
            // SAFETY: `output` was allocated by the library.
            unsafe { (library.release_buffer)(&mut release_minor, &mut output) };
        }

        check(library, major, minor)?;
        self.complete = major & S_CONTINUE_NEEDED == 0;
        self.granted_flags = granted;
        Ok(if token.is_empty() { None } else { Some(token) })
    }

    pub fn is_complete(&self) -> bool {
        self.complete
    }

    /// Returns the flags the completed context grants (`ret_flags` of the last step).
    pub fn granted_flags(&self) -> u32 {
        self.granted_flags
    }
}

/// Describes a set of context flags, e.g. "mutual, replay".
pub fn describe_flags(flags: u32) -> String {
    let names: Vec<&str> = [(MUTUAL_FLAG, "mutual"), (REPLAY_FLAG, "replay"), (SEQUENCE_FLAG, "sequence")]
        .iter()
        .filter(|(bit, _)| flags & bit != 0)
        .map(|(_, name)| *name)
        .collect();
    if names.is_empty() { "none of them".into() } else { names.join(", ") }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oids_have_der_lengths() {
        assert_eq!(MECH_KRB5.length, 9);
        assert_eq!(NT_USER_NAME.length, 10);
        assert_eq!(NT_HOSTBASED_SERVICE.length, 10);
    }

    #[test]
    fn import_name_loads_library() {
        let name = Name::import(b"host/localhost", &NT_USER_NAME).expect("import host/localhost");
        assert_eq!(name.display().unwrap(), "host/localhost");
    }

    #[test]
    fn flags_are_named() {
        assert_eq!(describe_flags(MUTUAL_FLAG | SEQUENCE_FLAG), "mutual, sequence");
        assert_eq!(describe_flags(0), "none of them");
    }
}
