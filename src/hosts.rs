//! Host list parsing: the `DISTCC_HOSTS` grammar of stock distcc.
//!
//! Entries have the same meaning as in stock distcc 3.4, but this parser
//! rejects what stock distcc accepts loosely (option prefixes, out-of-range
//! ports, trailing junk, options after `localhost`) with an error that names
//! the entry and the problem.
//!
//! ```text
//! LIST     = { ENTRY | KEYWORD } separated by whitespace; '#' starts a comment
//! KEYWORD  = --randomize | --localslots(=|/)N | --localslots_cpp(=|/)N
//! ENTRY    = localhost[/LIMIT]
//!          | HOST[:PORT][/LIMIT][,OPTION...]      (TCP)
//!          | HOST[/LIMIT][:PORT][,OPTION...]      (TCP, old order)
//!          | [USER]@HOST[/LIMIT][:COMMAND][,OPTION...]   (SSH)
//! HOST     = name | IPv4 address | [IPv6 address]  (brackets only for TCP)
//! OPTION   = lzo | cpp | down | auth | auth=NAME
//! ```

use std::ffi::OsStr;
use std::fmt;
use std::io;
use std::net::Ipv6Addr;
use std::path::{Path, PathBuf};

/// TCP port of distccd when an entry names none.
pub const DEFAULT_PORT: u16 = 3632;

/// Slots of a TCP or SSH host when an entry names no `/LIMIT`.
pub const DEFAULT_REMOTE_LIMIT: u32 = 4;

/// Slots of `localhost` when the entry names no `/LIMIT`.
pub const DEFAULT_LOCAL_LIMIT: u32 = 2;

/// Transport that carries jobs to a host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Transport {
    /// `localhost[/LIMIT]`: run the job on this machine.
    Local,
    /// TCP to distccd. `host` has no brackets, and `ipv6` is true when written `[addr]`.
    Tcp { host: String, port: u16, ipv6: bool },
    /// `[USER@]HOST[:COMMAND]` through `$DISTCC_SSH`. `command: None` means the
    /// default remote command.
    Ssh {
        user: Option<String>,
        host: String,
        command: Option<String>,
    },
}

/// GSS-API authentication requested by the `auth` option.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Auth {
    /// No `auth` option.
    None,
    /// `,auth`: the target principal comes from the connected peer's name.
    Peer,
    /// `,auth=NAME`: the target principal is built from NAME.
    Named(String),
}

/// One host entry of the list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostSpec {
    /// The entry as written, for messages.
    pub verbatim: String,
    pub transport: Transport,
    /// Number of jobs that may run on the host at once, at least 1.
    pub limit: u32,
    /// `,lzo`: compress the job's files.
    pub lzo: bool,
    /// `,cpp`: pump mode, in which the server runs the preprocessor. Set only
    /// together with `lzo`.
    pub cpp: bool,
    /// `,down`: keep the entry but never send it a job.
    pub down: bool,
    pub auth: Auth,
}

/// Protocol options that follow the first `,` of a TCP or SSH entry.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Options {
    lzo: bool,
    cpp: bool,
    down: bool,
    auth: Option<Auth>,
}

impl HostSpec {
    /// Returns the distcc protocol version the options select: 1 plain,
    /// 2 with `lzo`, 3 with `lzo,cpp`.
    pub fn protocol(&self) -> u32 {
        match (self.lzo, self.cpp) {
            (true, true) => 3,
            (true, false) => 2,
            _ => 1,
        }
    }

    /// Returns the host part of the lock and backoff file names, spelled as
    /// stock distcc spells it so that both clients share slots: `localhost`,
    /// `tcp_HOST_PORT` (an IPv6 HOST without brackets) or `ssh_HOST`.
    pub fn lock_name(&self) -> String {
        match &self.transport {
            Transport::Local => "localhost".to_string(),
            Transport::Tcp { host, port, .. } => format!("tcp_{host}_{port}"),
            Transport::Ssh { host, .. } => format!("ssh_{host}"),
        }
    }

    /// Returns a short name for the host in messages: `127.0.0.1:3632`,
    /// `[::1]:3632`, `alice@build.example`, `build.example` or `localhost`.
    pub fn display_name(&self) -> String {
        match &self.transport {
            Transport::Local => "localhost".to_string(),
            Transport::Tcp { host, port, ipv6 } => format!("{}:{port}", tcp_host_text(host, *ipv6)),
            Transport::Ssh {
                user: Some(user),
                host,
                ..
            } => format!("{user}@{host}"),
            Transport::Ssh {
                user: None, host, ..
            } => host.clone(),
        }
    }

    /// Returns true for a `localhost` entry, whose jobs run on this machine.
    pub fn is_local(&self) -> bool {
        self.transport == Transport::Local
    }
}

/// Writes the canonical form of the entry, with port and limit always
/// present: `localhost/2`, `127.0.0.1:3632/4,lzo`, `[::1]:4000/2,auth`,
/// `@build.example/4`, `alice@build.example/4:/usr/sbin/distccd`.
///
/// For every `HostSpec` that `parse_host_list` returns, parsing this text
/// yields an equal `HostSpec` apart from `verbatim`.
impl fmt::Display for HostSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let limit = self.limit;
        match &self.transport {
            Transport::Local => write!(f, "localhost/{limit}")?,
            Transport::Tcp { host, port, ipv6 } => {
                write!(f, "{}:{port}/{limit}", tcp_host_text(host, *ipv6))?
            }
            Transport::Ssh {
                user,
                host,
                command,
            } => {
                // The '@' stays even without a user: it is what marks an SSH entry.
                write!(f, "{}@{host}/{limit}", user.as_deref().unwrap_or(""))?;
                if let Some(command) = command {
                    write!(f, ":{command}")?;
                }
            }
        }

        if self.lzo {
            f.write_str(",lzo")?;
        }
        if self.cpp {
            f.write_str(",cpp")?;
        }
        if self.down {
            f.write_str(",down")?;
        }
        match &self.auth {
            Auth::None => {}
            Auth::Peer => f.write_str(",auth")?,
            Auth::Named(name) => write!(f, ",auth={name}")?,
        }
        Ok(())
    }
}

fn tcp_host_text(host: &str, ipv6: bool) -> String {
    if ipv6 {
        format!("[{host}]")
    } else {
        host.to_string()
    }
}

/// A parsed host list: the hosts in the order written plus the keyword settings.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HostList {
    pub hosts: Vec<HostSpec>,
    /// `--randomize`: shuffle the hosts before choosing one. Parsing keeps
    /// the written order.
    pub randomize: bool,
    /// `--localslots=N`: slots for jobs that run only on this machine.
    pub local_slots: Option<u32>,
    /// `--localslots_cpp=N`: slots for running the preprocessor on this machine.
    pub local_slots_cpp: Option<u32>,
}

/// A host list that could not be read or parsed.
#[derive(Debug, PartialEq, Eq)]
pub struct HostListError {
    /// The entry at fault as written. It is empty when the error concerns the
    /// whole list, and then `reason` is a complete message that names `source`.
    pub entry: String,
    /// Description of the problem with the entry.
    pub reason: String,
    /// Origin of the list: `DISTCC_HOSTS` or a file path.
    pub source: String,
}

impl HostListError {
    fn for_entry(entry: &str, reason: String, source: &str) -> Self {
        HostListError {
            entry: entry.to_string(),
            reason,
            source: source.to_string(),
        }
    }

    fn for_list(reason: String, source: &str) -> Self {
        Self::for_entry("", reason, source)
    }
}

impl fmt::Display for HostListError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.entry.is_empty() {
            f.write_str(&self.reason)
        } else {
            write!(
                f,
                "invalid host entry '{}' in {}: {}",
                self.entry, self.source, self.reason
            )
        }
    }
}

impl std::error::Error for HostListError {}

/// Origin of a host list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HostListSource {
    /// The `DISTCC_HOSTS` environment variable.
    Env,
    /// A hosts file.
    File(PathBuf),
}

impl fmt::Display for HostListSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HostListSource::Env => f.write_str("DISTCC_HOSTS"),
            HostListSource::File(path) => write!(f, "{}", path.display()),
        }
    }
}

/// Loads the host list from the first place that has one: `env_value` (the
/// value of `DISTCC_HOSTS`, used whenever it is set, even if empty), then
/// `DISTCC_DIR/hosts` when `distcc_dir` is given, then `system_file`.
///
/// Returns `Ok(None)` when the variable is unset and neither file exists.
/// A file that exists but cannot be read is an error, whereas stock
/// distcc 3.4 skips such a file and tries the next one. Bytes that are not UTF-8 are
/// replaced before parsing, so they are an error inside an entry but
/// harmless inside a comment.
pub fn load_host_list(
    env_value: Option<&OsStr>,
    distcc_dir: Option<&Path>,
    system_file: &Path,
) -> Result<Option<(HostList, HostListSource)>, HostListError> {
    if let Some(value) = env_value {
        let source = HostListSource::Env;
        let list = parse_host_list(&value.to_string_lossy(), &source.to_string())?;
        return Ok(Some((list, source)));
    }

    let user_file = distcc_dir.map(|dir| dir.join("hosts"));
    let candidates = user_file.iter().map(PathBuf::as_path).chain([system_file]);
    for path in candidates {
        if let Some(text) = read_hosts_file(path)? {
            let source = HostListSource::File(path.to_path_buf());
            let list = parse_host_list(&text, &source.to_string())?;
            return Ok(Some((list, source)));
        }
    }
    Ok(None)
}

/// Reads a hosts file, or returns `Ok(None)` when it does not exist.
fn read_hosts_file(path: &Path) -> Result<Option<String>, HostListError> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(Some(String::from_utf8_lossy(&bytes).into_owned())),
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(error) => {
            let source = path.display().to_string();
            let reason = format!("failed to read host list {source}: {error}");
            Err(HostListError::for_list(reason, &source))
        }
    }
}

/// Parses a host list in the `DISTCC_HOSTS` syntax. `source` names where
/// the text came from and appears in errors.
///
/// Fails on the first invalid entry or keyword, and when the text contains
/// no host at all.
pub fn parse_host_list(text: &str, source: &str) -> Result<HostList, HostListError> {
    let mut list = HostList::default();

    for entry in split_entries(text) {
        let result = if entry.starts_with("--") || entry.starts_with('+') {
            parse_keyword(entry, &mut list)
        } else {
            parse_host(entry).map(|host| list.hosts.push(host))
        };
        result.map_err(|reason| HostListError::for_entry(entry, reason, source))?;
    }

    if list.hosts.is_empty() {
        let reason = format!(
            "no hosts in {source}: it contains only blanks, comments or keywords; \
             add a host such as localhost or 127.0.0.1"
        );
        return Err(HostListError::for_list(reason, source));
    }
    Ok(list)
}

/// Splits the text at whitespace and drops comments, which run from `#` to
/// the end of the line. An entry ends at whitespace or `#`.
fn split_entries(text: &str) -> Vec<&str> {
    let mut entries = Vec::new();
    let mut rest = text;
    loop {
        rest = rest.trim_start_matches(is_separator);
        if rest.is_empty() {
            return entries;
        }

        if let Some(comment) = rest.strip_prefix('#') {
            let line_end = comment.find(['\n', '\r']).unwrap_or(comment.len());
            rest = &comment[line_end..];
            continue;
        }

        let end = rest
            .find(|c| is_separator(c) || c == '#')
            .unwrap_or(rest.len());
        entries.push(&rest[..end]);
        rest = &rest[end..];
    }
}

/// Returns true for the characters that C's `isspace` accepts in the "C" locale.
fn is_separator(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r' | '\x0B' | '\x0C')
}

/// Applies a keyword entry (one that starts with `--` or `+`) to the list.
fn parse_keyword(entry: &str, list: &mut HostList) -> Result<(), String> {
    if entry == "--randomize" {
        list.randomize = true;
    } else if let Some(value) = entry.strip_prefix("--localslots_cpp") {
        list.local_slots_cpp = Some(parse_keyword_number(value, "--localslots_cpp")?);
    } else if let Some(value) = entry.strip_prefix("--localslots") {
        list.local_slots = Some(parse_keyword_number(value, "--localslots")?);
    } else if entry == "+zeroconf" {
        return Err("zeroconf host discovery is not supported by distcc-rs; \
                    list the hosts explicitly"
            .to_string());
    } else {
        return Err(
            "unknown keyword; the keywords are --randomize, --localslots=N \
                    and --localslots_cpp=N"
                .to_string(),
        );
    }
    Ok(())
}

/// Parses the `=N` or `/N` after `--localslots` or `--localslots_cpp`.
fn parse_keyword_number(value: &str, keyword: &str) -> Result<u32, String> {
    match value.strip_prefix(['=', '/']) {
        Some(number) => parse_count(number, "slot count"),
        None => Err(format!("expected {keyword}=N with N a number of slots")),
    }
}

/// Parses one host entry. The error value is the reason alone, without the entry.
fn parse_host(entry: &str) -> Result<HostSpec, String> {
    let (address, options) = match entry.split_once(',') {
        Some((address, options)) => (address, Some(options)),
        None => (entry, None),
    };

    if is_localhost(address) {
        parse_local(entry, address, options)
    } else if address.contains('@') {
        parse_ssh(entry, address, options)
    } else {
        parse_tcp(entry, address, options)
    }
}

/// `localhost` or `localhost/...`. `localhost:PORT` is a TCP host, as in
/// stock distcc.
fn is_localhost(address: &str) -> bool {
    address
        .strip_prefix("localhost")
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

fn parse_local(entry: &str, address: &str, options: Option<&str>) -> Result<HostSpec, String> {
    if let Some(options) = options {
        return Err(format!(
            "options (',{options}') are not allowed after localhost; \
             write 127.0.0.1,{options} to send jobs to a distccd on this machine"
        ));
    }

    let limit = match address.strip_prefix("localhost/") {
        Some(limit) => parse_limit(limit)?,
        None => DEFAULT_LOCAL_LIMIT,
    };

    Ok(HostSpec {
        verbatim: entry.to_string(),
        transport: Transport::Local,
        limit,
        lzo: false,
        cpp: false,
        down: false,
        auth: Auth::None,
    })
}

/// `HOST[:PORT][/LIMIT]` or `HOST[/LIMIT][:PORT]`, with the options after
/// the first comma already split off.
fn parse_tcp(entry: &str, address: &str, options: Option<&str>) -> Result<HostSpec, String> {
    reject_bare_ipv6(address)?;
    let (host, ipv6, rest) = split_tcp_host(address)?;

    let (limit_before, rest) = take_limit(rest)?;
    let (port, rest) = take_port(rest)?;
    let (limit_after, rest) = take_limit(rest)?;
    if !rest.is_empty() {
        return Err(format!("unexpected '{rest}' after the port and limit"));
    }
    let limit = match (limit_before, limit_after) {
        (Some(_), Some(_)) => return Err("the limit is given twice".to_string()),
        (limit_before, limit_after) => limit_before.or(limit_after),
    };

    let options = parse_options(options)?;
    Ok(build_remote(
        entry,
        Transport::Tcp {
            host: host.to_string(),
            port: port.unwrap_or(DEFAULT_PORT),
            ipv6,
        },
        limit,
        options,
    ))
}

/// Rejects an IPv6 address written without brackets, whose colons would be
/// read as a port separator.
fn reject_bare_ipv6(address: &str) -> Result<(), String> {
    if address.starts_with('[') || address.matches(':').count() < 2 {
        return Ok(());
    }

    let before_limit = address.split('/').next().unwrap_or(address);
    if before_limit.parse::<Ipv6Addr>().is_ok() {
        Err(format!(
            "IPv6 address '{before_limit}' must be written in brackets: [{before_limit}]"
        ))
    } else {
        Err("more than one ':' in the host and port; \
             write an IPv6 address in brackets, for example [::1]:3632"
            .to_string())
    }
}

/// Splits the host off a TCP address and returns it without brackets,
/// whether it was a bracketed IPv6 address, and the rest of the address.
fn split_tcp_host(address: &str) -> Result<(&str, bool, &str), String> {
    let Some(bracketed) = address.strip_prefix('[') else {
        let (host, rest) = split_at_any(address, &['/', ':']);
        check_host_name(host, "host name")?;
        return Ok((host, false, rest));
    };

    let Some((ip, rest)) = bracketed.split_once(']') else {
        return Err(format!("missing ']' after IPv6 address '{bracketed}'"));
    };
    if ip.parse::<Ipv6Addr>().is_err() {
        return Err(format!("invalid IPv6 address '{ip}'"));
    }
    if !(rest.is_empty() || rest.starts_with(['/', ':'])) {
        return Err(format!(
            "unexpected '{rest}' after ']'; expected ':PORT', '/LIMIT' or ',OPTION'"
        ));
    }
    Ok((ip, true, rest))
}

/// Takes an optional `/LIMIT` that ends at `:` or the end of the text.
fn take_limit(text: &str) -> Result<(Option<u32>, &str), String> {
    let Some(after_slash) = text.strip_prefix('/') else {
        return Ok((None, text));
    };
    let (limit, rest) = split_at_any(after_slash, &[':', '/']);
    Ok((Some(parse_limit(limit)?), rest))
}

/// Takes an optional `:PORT` that ends at `/` or the end of the text.
fn take_port(text: &str) -> Result<(Option<u16>, &str), String> {
    let Some(after_colon) = text.strip_prefix(':') else {
        return Ok((None, text));
    };
    let (port, rest) = split_at_any(after_colon, &['/']);
    Ok((Some(parse_port(port)?), rest))
}

/// `[USER]@HOST[/LIMIT][:COMMAND]`, with the options after the first comma
/// already split off.
fn parse_ssh(entry: &str, address: &str, options: Option<&str>) -> Result<HostSpec, String> {
    let (user, rest) = address
        .split_once('@')
        .expect("parse_host sends only addresses that contain '@'");
    let user = parse_ssh_user(user)?;

    let (host, rest) = split_at_any(rest, &['/', ':']);
    check_ssh_host(host)?;

    let (limit, rest) = match rest.strip_prefix('/') {
        Some(after_slash) => {
            let (limit, rest) = split_at_any(after_slash, &[':']);
            (Some(parse_limit(limit)?), rest)
        }
        None => (None, rest),
    };

    // `rest` is now empty or starts with ':'.
    let command = match rest.strip_prefix(':') {
        Some(command) => Some(parse_ssh_command(command)?),
        None => None,
    };

    let options = parse_options(options)?;
    Ok(build_remote(
        entry,
        Transport::Ssh {
            user,
            host: host.to_string(),
            command,
        },
        limit,
        options,
    ))
}

/// Parses the user before '@'. An empty user is allowed, as in stock distcc,
/// and lets ssh choose the user.
fn parse_ssh_user(user: &str) -> Result<Option<String>, String> {
    if user.is_empty() {
        return Ok(None);
    }
    if user.starts_with('-') {
        return Err(format!(
            "user name '{user}' must not start with '-', which ssh would read as an option"
        ));
    }
    if let Some(bad) = user.chars().find(|&c| !is_name_char(c)) {
        return Err(format!(
            "invalid character '{bad}' in user name '{user}'; \
             only letters, digits, '.', '_' and '-' are allowed"
        ));
    }
    Ok(Some(user.to_string()))
}

fn check_ssh_host(host: &str) -> Result<(), String> {
    if host.starts_with('[') {
        return Err(
            "IPv6 addresses in brackets are not supported for ssh hosts; \
                    use a host name"
                .to_string(),
        );
    }
    if host.is_empty() {
        return Err("missing host name after '@'".to_string());
    }
    check_host_name(host, "host name")
}

/// Parses the remote command. ssh hands it to the remote shell, so only
/// characters that a shell takes literally in a path are allowed.
fn parse_ssh_command(command: &str) -> Result<String, String> {
    if command.is_empty() {
        return Err("missing command after ':'; \
                    leave out the ':' to run distccd from the remote PATH"
            .to_string());
    }
    if command.starts_with('-') {
        return Err(format!("command '{command}' must not start with '-'"));
    }
    let is_path_char = |c: char| c.is_ascii_alphanumeric() || "/._-+~".contains(c);
    if let Some(bad) = command.chars().find(|&c| !is_path_char(c)) {
        return Err(format!(
            "invalid character '{bad}' in command '{command}'; \
             only letters, digits and '/', '.', '_', '-', '+', '~' are allowed"
        ));
    }
    Ok(command.to_string())
}

fn build_remote(
    entry: &str,
    transport: Transport,
    limit: Option<u32>,
    options: Options,
) -> HostSpec {
    HostSpec {
        verbatim: entry.to_string(),
        transport,
        limit: limit.unwrap_or(DEFAULT_REMOTE_LIMIT),
        lzo: options.lzo,
        cpp: options.cpp,
        down: options.down,
        auth: options.auth.unwrap_or(Auth::None),
    }
}

/// Parses the comma-separated options after the first comma of an entry.
/// Each option must match exactly and appear at most once.
fn parse_options(options: Option<&str>) -> Result<Options, String> {
    let mut parsed = Options::default();
    let Some(options) = options else {
        return Ok(parsed);
    };

    for option in options.split(',') {
        let already_given = match option {
            "lzo" => std::mem::replace(&mut parsed.lzo, true),
            "cpp" => std::mem::replace(&mut parsed.cpp, true),
            "down" => std::mem::replace(&mut parsed.down, true),
            _ => {
                let auth = parse_auth(option)?;
                parsed.auth.replace(auth).is_some()
            }
        };
        if already_given {
            let name = option.split('=').next().unwrap_or(option);
            return Err(format!("option '{name}' is given twice"));
        }
    }

    if parsed.cpp && !parsed.lzo {
        return Err("option 'cpp' (pump mode) requires option 'lzo'; write ',lzo,cpp'".to_string());
    }
    Ok(parsed)
}

/// Parses `auth` or `auth=NAME`. Any other text is an unknown option.
fn parse_auth(option: &str) -> Result<Auth, String> {
    if option == "auth" {
        return Ok(Auth::Peer);
    }
    let Some(name) = option.strip_prefix("auth=") else {
        return Err(if option.is_empty() {
            "empty option; remove the extra ','".to_string()
        } else {
            format!("unknown option '{option}'; the options are lzo, cpp, down, auth and auth=NAME")
        });
    };
    if name.is_empty() {
        return Err("missing name after 'auth='".to_string());
    }
    check_host_name(name, "auth name")?;
    Ok(Auth::Named(name.to_string()))
}

/// Checks a host name or IPv4 address: ASCII letters, digits, '.', '_' and
/// '-', not empty and not starting with '-'.
fn check_host_name(name: &str, what: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err(format!("missing {what}"));
    }
    if name.starts_with('-') {
        return Err(format!(
            "{what} '{name}' must not start with '-', which could be read as an option"
        ));
    }
    if let Some(bad) = name.chars().find(|&c| !is_name_char(c)) {
        return Err(format!(
            "invalid character '{bad}' in {what} '{name}'; \
             only letters, digits, '.', '_' and '-' are allowed"
        ));
    }
    Ok(())
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')
}

/// Parses the number after `/` in an entry.
fn parse_limit(text: &str) -> Result<u32, String> {
    parse_count(text, "limit")
}

/// Parses a decimal number of at least 1 that fits in a `u32`.
fn parse_count(text: &str, what: &str) -> Result<u32, String> {
    if text.is_empty() {
        return Err(format!("missing {what}: expected a number of at least 1"));
    }
    if !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "invalid {what} '{text}': expected a number of at least 1"
        ));
    }
    match text.parse::<u32>() {
        Ok(0) => Err(format!("{what} 0 is invalid: it must be at least 1")),
        Ok(count) => Ok(count),
        Err(_) => Err(format!(
            "{what} {text} is too large: the maximum is {}",
            u32::MAX
        )),
    }
}

/// Parses a TCP port: decimal digits only, 1-65535.
fn parse_port(text: &str) -> Result<u16, String> {
    if text.is_empty() {
        return Err("missing port after ':'".to_string());
    }
    if !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "invalid port '{text}': expected a decimal number from 1 to 65535"
        ));
    }
    match text.parse::<u16>() {
        Ok(port) if port >= 1 => Ok(port),
        _ => Err(format!("port {text} is out of range 1-65535")),
    }
}

/// Splits `text` before the first of `delimiters`, or at its end.
fn split_at_any<'a>(text: &'a str, delimiters: &[char]) -> (&'a str, &'a str) {
    let end = text.find(delimiters).unwrap_or(text.len());
    text.split_at(end)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<HostList, HostListError> {
        parse_host_list(text, "DISTCC_HOSTS")
    }

    fn parse_one(entry: &str) -> HostSpec {
        let list = parse(entry).unwrap_or_else(|error| panic!("{entry:?}: {error}"));
        assert_eq!(list.hosts.len(), 1, "{entry:?}");
        list.hosts.into_iter().next().unwrap()
    }

    fn reason_for(text: &str) -> String {
        match parse(text) {
            Ok(list) => panic!("{text:?} parsed as {list:?}, expected an error"),
            Err(error) => error.reason,
        }
    }

    fn tcp(host: &str, port: u16, ipv6: bool) -> Transport {
        Transport::Tcp {
            host: host.to_string(),
            port,
            ipv6,
        }
    }

    fn spec(verbatim: &str, transport: Transport, limit: u32) -> HostSpec {
        HostSpec {
            verbatim: verbatim.to_string(),
            transport,
            limit,
            lzo: false,
            cpp: false,
            down: false,
            auth: Auth::None,
        }
    }

    #[test]
    fn localhost_with_limit() {
        assert_eq!(
            parse_one("localhost/3"),
            spec("localhost/3", Transport::Local, 3)
        );
    }

    #[test]
    fn localhost_default_limit() {
        let host = parse_one("localhost");
        assert_eq!(host.transport, Transport::Local);
        assert_eq!(host.limit, DEFAULT_LOCAL_LIMIT);
        assert!(host.is_local());
    }

    #[test]
    fn localhost_with_port_is_tcp() {
        assert_eq!(
            parse_one("localhost:3633").transport,
            tcp("localhost", 3633, false)
        );
        assert_eq!(
            parse_one("LOCALHOST").transport,
            tcp("LOCALHOST", DEFAULT_PORT, false)
        );
    }

    #[test]
    fn tcp_name_defaults() {
        assert_eq!(
            parse_one("h"),
            spec("h", tcp("h", DEFAULT_PORT, false), DEFAULT_REMOTE_LIMIT)
        );
    }

    #[test]
    fn tcp_port_limit_lzo() {
        let mut expected = spec("h:3633/8,lzo", tcp("h", 3633, false), 8);
        expected.lzo = true;
        assert_eq!(parse_one("h:3633/8,lzo"), expected);
        assert_eq!(parse_one("h:3633/8,lzo").protocol(), 2);
    }

    #[test]
    fn tcp_old_order_limit_then_port() {
        assert_eq!(
            parse_one("h/8:3633"),
            spec("h/8:3633", tcp("h", 3633, false), 8)
        );
    }

    #[test]
    fn tcp_ipv4_address() {
        let host = parse_one("127.0.0.1:3632/2");
        assert_eq!(host.transport, tcp("127.0.0.1", 3632, false));
        assert_eq!(host.limit, 2);
    }

    #[test]
    fn tcp_lzo_cpp_down() {
        let host = parse_one("h,lzo,cpp,down");
        assert!(host.lzo);
        assert!(host.cpp);
        assert!(host.down);
        assert_eq!(host.protocol(), 3);
    }

    #[test]
    fn ipv6_port_limit_auth() {
        let mut expected = spec("[::1]:4000/2,auth", tcp("::1", 4000, true), 2);
        expected.auth = Auth::Peer;
        assert_eq!(parse_one("[::1]:4000/2,auth"), expected);
    }

    #[test]
    fn ipv6_defaults_and_limit() {
        assert_eq!(
            parse_one("[::1]"),
            spec("[::1]", tcp("::1", DEFAULT_PORT, true), 4)
        );
        assert_eq!(
            parse_one("[::1]/3"),
            spec("[::1]/3", tcp("::1", DEFAULT_PORT, true), 3)
        );
        assert_eq!(
            parse_one("[fe80::1]/3:1"),
            spec("[fe80::1]/3:1", tcp("fe80::1", 1, true), 3)
        );
    }

    #[test]
    fn ssh_user_limit_command() {
        let entry = "alice@build.example/4:/usr/sbin/distccd";
        let transport = Transport::Ssh {
            user: Some("alice".to_string()),
            host: "build.example".to_string(),
            command: Some("/usr/sbin/distccd".to_string()),
        };
        assert_eq!(parse_one(entry), spec(entry, transport, 4));
    }

    #[test]
    fn ssh_empty_user() {
        let transport = Transport::Ssh {
            user: None,
            host: "h".to_string(),
            command: None,
        };
        assert_eq!(parse_one("@h"), spec("@h", transport, DEFAULT_REMOTE_LIMIT));
    }

    #[test]
    fn ssh_options() {
        let host = parse_one("bob@h:distccd,lzo,cpp,auth=h.example");
        assert_eq!(
            host.transport,
            Transport::Ssh {
                user: Some("bob".to_string()),
                host: "h".to_string(),
                command: Some("distccd".to_string()),
            }
        );
        assert_eq!(host.protocol(), 3);
        assert_eq!(host.auth, Auth::Named("h.example".to_string()));
    }

    #[test]
    fn auth_with_name() {
        let host = parse_one("h,auth=build1.example.com");
        assert_eq!(host.auth, Auth::Named("build1.example.com".to_string()));
        assert_eq!(host.transport, tcp("h", DEFAULT_PORT, false));
    }

    #[test]
    fn two_hosts_with_auth() {
        let list = parse("build1:3632,auth build2,auth").unwrap();
        assert_eq!(list.hosts.len(), 2);
        assert_eq!(list.hosts[0].transport, tcp("build1", 3632, false));
        assert_eq!(list.hosts[0].auth, Auth::Peer);
        assert_eq!(list.hosts[1].transport, tcp("build2", DEFAULT_PORT, false));
        assert_eq!(list.hosts[1].auth, Auth::Peer);
        assert_eq!(list.hosts[1].verbatim, "build2,auth");
    }

    #[test]
    fn comments_tabs_and_crlf() {
        let text =
            "# build farm\r\n\ta:1\t# first\r\nb/2#no space before comment\r\n\x0c c,lzo #\r\n";
        let list = parse(text).unwrap();
        let verbatims: Vec<&str> = list.hosts.iter().map(|h| h.verbatim.as_str()).collect();
        assert_eq!(verbatims, ["a:1", "b/2", "c,lzo"]);
    }

    #[test]
    fn comment_ends_at_carriage_return() {
        let list = parse("# comment\ra").unwrap();
        assert_eq!(list.hosts.len(), 1);
        assert_eq!(list.hosts[0].verbatim, "a");
    }

    #[test]
    fn keywords_set_list_fields() {
        let list = parse("--randomize --localslots=3 --localslots_cpp/9 h").unwrap();
        assert!(list.randomize);
        assert_eq!(list.local_slots, Some(3));
        assert_eq!(list.local_slots_cpp, Some(9));
        assert_eq!(list.hosts.len(), 1);

        let defaults = parse("h").unwrap();
        assert!(!defaults.randomize);
        assert_eq!(defaults.local_slots, None);
        assert_eq!(defaults.local_slots_cpp, None);
    }

    #[test]
    fn localslots_slash_form() {
        assert_eq!(parse("--localslots/5 h").unwrap().local_slots, Some(5));
        assert_eq!(
            parse("--localslots_cpp=1 h").unwrap().local_slots_cpp,
            Some(1)
        );
    }

    /// Each invalid entry with a fragment that its reason must contain.
    const INVALID_ENTRIES: &[(&str, &str)] = &[
        ("127.0.0.1:notaport", "invalid port 'notaport'"),
        ("127.0.0.1:99999", "port 99999 is out of range 1-65535"),
        ("127.0.0.1:0", "port 0 is out of range"),
        ("127.0.0.1:+5", "invalid port '+5'"),
        ("127.0.0.1:-5", "invalid port '-5'"),
        ("h:", "missing port"),
        ("h:1x", "invalid port '1x'"),
        ("127.0.0.1:3632/0", "limit 0 is invalid"),
        ("h/x", "invalid limit 'x'"),
        ("h/", "missing limit"),
        ("h/99999999999", "too large"),
        ("h/2/3", "given twice"),
        ("h/2:1/3", "given twice"),
        ("127.0.0.1:3632,bogus", "unknown option 'bogus'"),
        ("h,lz", "unknown option 'lz'"),
        ("h,lzooo", "unknown option 'lzooo'"),
        ("h,", "empty option"),
        ("h,lzo,,cpp", "empty option"),
        ("h,lzo,lzo", "option 'lzo' is given twice"),
        ("h,auth,auth=x", "option 'auth' is given twice"),
        ("h,auth=", "missing name after 'auth='"),
        ("h,auth=-x", "must not start with '-'"),
        ("h:1,cpp", "requires option 'lzo'"),
        ("::1", "must be written in brackets: [::1]"),
        ("fe80::1", "must be written in brackets: [fe80::1]"),
        ("fe80::1/2", "must be written in brackets: [fe80::1]"),
        ("angry::", "write an IPv6 address in brackets"),
        ("[::1", "missing ']'"),
        ("[nothex]:1", "invalid IPv6 address 'nothex'"),
        ("[]", "invalid IPv6 address ''"),
        ("[1.2.3.4]", "invalid IPv6 address '1.2.3.4'"),
        ("[::1]x", "unexpected 'x' after ']'"),
        ("[::1]:1:2", "invalid port '1:2'"),
        (":4200", "missing host name"),
        ("/4", "missing host name"),
        (",lzo", "missing host name"),
        ("-h", "must not start with '-'"),
        ("h=3", "invalid character '='"),
        ("h\u{e9}", "invalid character"),
        ("@", "missing host name after '@'"),
        ("mbp@", "missing host name after '@'"),
        ("u@/4", "missing host name after '@'"),
        (
            "-oProxyCommand=x@h",
            "user name '-oProxyCommand=x' must not start with '-'",
        ),
        ("u$x@h", "invalid character '$' in user name"),
        ("u@-oFoo", "host name '-oFoo' must not start with '-'"),
        ("u@h@i", "invalid character '@' in host name"),
        ("u@[::1]", "not supported for ssh hosts"),
        ("u@h:", "missing command"),
        ("u@h:-x", "command '-x' must not start with '-'"),
        ("u@h:/bin/distccd;rm", "invalid character ';' in command"),
        ("u@h/0", "limit 0 is invalid"),
        ("u@h,bogus", "unknown option 'bogus'"),
        ("u@h,cpp", "requires option 'lzo'"),
        ("localhost,lzo", "not allowed after localhost"),
        ("localhost/2,lzo", "not allowed after localhost"),
        ("localhost/0", "limit 0 is invalid"),
        ("localhost/", "missing limit"),
        ("localhost/3:3633", "invalid limit '3:3633'"),
        (
            "+zeroconf",
            "zeroconf host discovery is not supported by distcc-rs",
        ),
        ("--localslots", "expected --localslots=N"),
        ("--localslots=0", "slot count 0 is invalid"),
        ("--localslots_cpp=x", "invalid slot count 'x'"),
        ("--randomizer", "unknown keyword"),
        ("--bogus", "unknown keyword"),
    ];

    #[test]
    fn invalid_entries_rejected_with_reason() {
        for &(entry, expected) in INVALID_ENTRIES {
            let text = format!("good1 {entry} good2");
            let error = parse(&text).expect_err(entry);
            assert_eq!(error.entry, entry, "entry of the error for {entry:?}");
            assert!(
                error.reason.contains(expected),
                "reason for {entry:?} is {:?}, expected it to contain {expected:?}",
                error.reason
            );
        }
    }

    #[test]
    fn error_message_names_entry_and_source() {
        let error = parse_host_list("127.0.0.1:99999", "DISTCC_HOSTS").unwrap_err();
        assert_eq!(
            error.to_string(),
            "invalid host entry '127.0.0.1:99999' in DISTCC_HOSTS: \
             port 99999 is out of range 1-65535"
        );
        assert_eq!(error.source, "DISTCC_HOSTS");
    }

    #[test]
    fn empty_list_rejected() {
        for text in [
            "",
            "   \t\r\n",
            "# only a comment",
            "--randomize # no hosts",
        ] {
            let error = parse(text).expect_err(text);
            assert_eq!(error.entry, "", "entry for {text:?}");
            assert!(
                error.to_string().starts_with("no hosts in DISTCC_HOSTS"),
                "message for {text:?}: {error}"
            );
        }
    }

    #[test]
    fn empty_list_reason_names_source() {
        assert!(reason_for("").contains("add a host"));
        let error = parse_host_list("", "/etc/distcc/hosts").unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with("no hosts in /etc/distcc/hosts"),
            "{error}"
        );
    }

    #[test]
    fn display_canonical_forms() {
        let cases = [
            ("[::1]:4000/2,auth", "[::1]:4000/2,auth"),
            (
                "alice@build.example/4:/usr/sbin/distccd",
                "alice@build.example/4:/usr/sbin/distccd",
            ),
            ("localhost", "localhost/2"),
            ("127.0.0.1", "127.0.0.1:3632/4"),
            (
                "127.0.0.1,auth=build1,lzo",
                "127.0.0.1:3632/4,lzo,auth=build1",
            ),
            ("h/8:3633,cpp,lzo,down", "h:3633/8,lzo,cpp,down"),
            ("@h", "@h/4"),
            ("[::1]/3", "[::1]:3632/3"),
        ];
        for (entry, canonical) in cases {
            assert_eq!(
                parse_one(entry).to_string(),
                canonical,
                "display of {entry:?}"
            );
        }
    }

    #[test]
    fn lock_and_display_names() {
        let cases = [
            ("localhost", "localhost", "localhost"),
            ("127.0.0.1", "tcp_127.0.0.1_3632", "127.0.0.1:3632"),
            ("[::1]:4000", "tcp_::1_4000", "[::1]:4000"),
            (
                "alice@build.example:/bin/d",
                "ssh_build.example",
                "alice@build.example",
            ),
            ("@build.example", "ssh_build.example", "build.example"),
        ];
        for (entry, lock_name, display_name) in cases {
            let host = parse_one(entry);
            assert_eq!(host.lock_name(), lock_name, "lock name of {entry:?}");
            assert_eq!(
                host.display_name(),
                display_name,
                "display name of {entry:?}"
            );
        }
    }

    #[test]
    fn protocol_plain_is_one() {
        assert_eq!(parse_one("h").protocol(), 1);
    }

    #[test]
    fn source_display() {
        assert_eq!(HostListSource::Env.to_string(), "DISTCC_HOSTS");
        let file = HostListSource::File(PathBuf::from("/etc/distcc/hosts"));
        assert_eq!(file.to_string(), "/etc/distcc/hosts");
    }

    #[test]
    fn load_prefers_env_even_empty() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("hosts"), "filehost").unwrap();
        let system = dir.path().join("system-hosts");

        let (list, source) = load_host_list(Some(OsStr::new("envhost")), Some(dir.path()), &system)
            .unwrap()
            .unwrap();
        assert_eq!(source, HostListSource::Env);
        assert_eq!(list.hosts[0].verbatim, "envhost");

        let error = load_host_list(Some(OsStr::new("")), Some(dir.path()), &system).unwrap_err();
        assert_eq!(error.source, "DISTCC_HOSTS");
        assert!(
            error.to_string().starts_with("no hosts in DISTCC_HOSTS"),
            "{error}"
        );
    }

    #[test]
    fn load_user_file_then_system_file() {
        let dir = tempfile::tempdir().unwrap();
        let user_dir = dir.path().join("user");
        std::fs::create_dir(&user_dir).unwrap();
        let system = dir.path().join("system-hosts");
        std::fs::write(&system, "# system list\nsystemhost\n").unwrap();

        let (list, source) = load_host_list(None, Some(&user_dir), &system)
            .unwrap()
            .unwrap();
        assert_eq!(source, HostListSource::File(system.clone()));
        assert_eq!(list.hosts[0].verbatim, "systemhost");

        std::fs::write(user_dir.join("hosts"), "userhost/2\n").unwrap();
        let (list, source) = load_host_list(None, Some(&user_dir), &system)
            .unwrap()
            .unwrap();
        assert_eq!(source, HostListSource::File(user_dir.join("hosts")));
        assert_eq!(list.hosts[0].verbatim, "userhost/2");

        let (_, source) = load_host_list(None, None, &system).unwrap().unwrap();
        assert_eq!(source, HostListSource::File(system));
    }

    #[test]
    fn load_none_when_nothing_exists() {
        let dir = tempfile::tempdir().unwrap();
        let system = dir.path().join("missing");
        assert_eq!(load_host_list(None, Some(dir.path()), &system), Ok(None));
    }

    #[test]
    fn load_file_error_names_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hosts");
        std::fs::write(&path, "good\nh:0\n").unwrap();
        let error = load_host_list(None, Some(dir.path()), Path::new("/nonexistent")).unwrap_err();
        assert_eq!(error.source, path.display().to_string());
        assert_eq!(error.entry, "h:0");
    }

    #[test]
    fn load_unreadable_file_is_error() {
        let dir = tempfile::tempdir().unwrap();
        // A directory named `hosts` exists but cannot be read as a file.
        std::fs::create_dir(dir.path().join("hosts")).unwrap();
        let error = load_host_list(None, Some(dir.path()), Path::new("/nonexistent")).unwrap_err();
        assert_eq!(error.entry, "");
        assert!(
            error.to_string().starts_with("failed to read host list"),
            "{error}"
        );
    }

    #[test]
    fn load_non_utf8_comment_is_harmless() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("hosts"), b"# caf\xe9\nh\n").unwrap();
        let (list, _) = load_host_list(None, Some(dir.path()), Path::new("/nonexistent"))
            .unwrap()
            .unwrap();
        assert_eq!(list.hosts.len(), 1);
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        fn host_name() -> impl Strategy<Value = String> {
            "[a-zA-Z0-9._][a-zA-Z0-9._-]{0,20}"
        }

        fn transport() -> impl Strategy<Value = Transport> {
            let named_tcp = (host_name(), 1..=u16::MAX).prop_map(|(host, port)| Transport::Tcp {
                host,
                port,
                ipv6: false,
            });
            let ipv6_tcp =
                (any::<Ipv6Addr>(), 1..=u16::MAX).prop_map(|(ip, port)| Transport::Tcp {
                    host: ip.to_string(),
                    port,
                    ipv6: true,
                });
            let command = "[a-zA-Z0-9/._+~][a-zA-Z0-9/._+~-]{0,30}";
            let ssh = (
                proptest::option::of(host_name()),
                host_name(),
                proptest::option::of(command),
            )
                .prop_map(|(user, host, command)| Transport::Ssh {
                    user,
                    host,
                    command,
                });
            prop_oneof![Just(Transport::Local), named_tcp, ipv6_tcp, ssh]
        }

        fn auth() -> impl Strategy<Value = Auth> {
            prop_oneof![
                Just(Auth::None),
                Just(Auth::Peer),
                host_name().prop_map(Auth::Named),
            ]
        }

        /// A HostSpec as the parser could return it; `verbatim` is its
        /// canonical text, which is what parsing that text stores.
        fn host_spec() -> impl Strategy<Value = HostSpec> {
            (
                transport(),
                1..=u32::MAX,
                any::<(bool, bool, bool)>(),
                auth(),
            )
                .prop_map(|(transport, limit, (lzo, cpp, down), auth)| {
                    let mut host = HostSpec {
                        verbatim: String::new(),
                        transport,
                        limit,
                        lzo,
                        cpp: lzo && cpp,
                        down,
                        auth,
                    };
                    if host.is_local() {
                        (host.lzo, host.cpp, host.down, host.auth) =
                            (false, false, false, Auth::None);
                    }
                    host.verbatim = host.to_string();
                    host
                })
        }

        proptest! {
            #[test]
            fn display_round_trips(host in host_spec()) {
                let text = host.to_string();
                let list = parse_host_list(&text, "test").map_err(|e| TestCaseError::fail(e.to_string()))?;
                prop_assert_eq!(list.hosts, vec![host]);
            }

            #[test]
            fn list_round_trips(
                hosts in proptest::collection::vec(host_spec(), 1..6),
                separators in proptest::collection::vec(
                    prop_oneof![Just(" "), Just("\t"), Just("\r\n"), Just(" # note\n"), Just("\n\n")],
                    6,
                ),
            ) {
                let mut text = String::new();
                for (host, separator) in hosts.iter().zip(&separators) {
                    text.push_str(&host.to_string());
                    text.push_str(separator);
                }
                let list = parse_host_list(&text, "test").map_err(|e| TestCaseError::fail(e.to_string()))?;
                prop_assert_eq!(list.hosts, hosts);
            }

            #[test]
            fn any_text_never_panics(text in any::<String>()) {
                let _ = parse_host_list(&text, "test");
            }

            #[test]
            fn grammar_like_text_never_panics(text in "[a-z0-9@:/\\[\\],=#.+_ \t\r\n-]{0,40}") {
                if let Ok(list) = parse_host_list(&text, "test") {
                    prop_assert!(!list.hosts.is_empty());
                    prop_assert!(list.hosts.iter().all(|host| host.limit >= 1));
                }
            }
        }
    }
}
