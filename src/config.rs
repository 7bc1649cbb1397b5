//! Settings read from the environment.
//!
//! Every variable distcc-rs reads is listed once in [`ENV_VARS`], with its
//! default and unit; `--help` and the manual page are checked against that
//! table. Parsing never aborts: an invalid value is recorded in
//! [`Config::errors`] and the job then runs locally, because a typo in a
//! setting must not break a build that a plain compiler would finish.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

/// One environment variable: name, default, unit and meaning.
pub struct EnvVar {
    pub name: &'static str,
    pub default: &'static str,
    pub description: &'static str,
}

/// Every environment variable distcc-rs reads.
pub const ENV_VARS: &[EnvVar] = &[
    EnvVar {
        name: "DISTCC_HOSTS",
        default: "unset",
        description: "Host list. When unset, $DISTCC_DIR/hosts and then /etc/distcc/hosts are read.",
    },
    EnvVar {
        name: "DISTCC_DIR",
        default: "$HOME/.distcc",
        description: "State directory: hosts file, lock and backoff files (lock/), monitor state (state/). Created with its parents when missing. When HOME is unset or $HOME/.distcc cannot be used, $TMPDIR/distcc-rs-UID is used instead.",
    },
    EnvVar {
        name: "DISTCC_BACKOFF_PERIOD",
        default: "60",
        description: "Seconds (whole) that every client skips a host after it failed on the host's side (refused, timed out, protocol error). 0 disables backoff; a failed host is then still tried at most once per job.",
    },
    EnvVar {
        name: "DISTCC_PAUSE_TIME_MSEC",
        default: "1000",
        description: "Milliseconds after which a job that waits on one taken slot looks at all slots again. 0 looks again after 1 ms.",
    },
    EnvVar {
        name: "DISTCC_VERBOSE",
        default: "0",
        description: "1 logs every decision: local or remote and why, host, slot, principal, protocol steps, timings.",
    },
    EnvVar {
        name: "DISTCC_LOG",
        default: "unset",
        description: "File that receives all of distcc-rs's own messages, warnings included, instead of standard error.",
    },
    EnvVar {
        name: "DISTCC_FALLBACK",
        default: "1",
        description: "0 turns every local fallback after a failed remote attempt into an error (exit 100-127), and shows a server's warnings as it printed them instead of compiling again locally.",
    },
    EnvVar {
        name: "DISTCC_SKIP_LOCAL_RETRY",
        default: "unset",
        description: "When set (any value), a remote compile error is reported as is instead of being confirmed by a local compile.",
    },
    EnvVar {
        name: "DISTCC_CONNECT_TIMEOUT",
        default: "4",
        description: "Seconds (decimals allowed) to wait for a TCP connection to one address of a server.",
    },
    EnvVar {
        name: "DISTCC_IO_TIMEOUT",
        default: "300",
        description: "Seconds (decimals allowed) to wait for each read or write on a server connection; it bounds a silent remote compile and, for ssh hosts, the ssh login.",
    },
    EnvVar {
        name: "DISTCC_AUTH_TIMEOUT",
        default: "5",
        description: "Seconds (decimals allowed) to wait for each step of the GSS-API handshake of an ,auth host: its '*', its tokens and its verdict.",
    },
    EnvVar {
        name: "DISTCC_SSH",
        default: "ssh",
        description: "Command that reaches an ssh host ([USER]@HOST entries), split at blanks into a program and its first arguments; no shell is involved.",
    },
    EnvVar {
        name: "DISTCC_PRINCIPAL",
        default: "unset",
        description: "GSS-API service name. When set to SERVICE, an ,auth host is asked for the host-based service SERVICE@HOST instead of host/HOST.",
    },
    EnvVar {
        name: "DISTCC_SAVE_TEMPS",
        default: "0",
        description: "1 keeps the temporary directory (preprocessed source) for inspection.",
    },
    EnvVar {
        name: "TMPDIR",
        default: "/tmp",
        description: "Directory for the private temporary directory of each remote job.",
    },
    EnvVar {
        name: "UNCACHED_ERR_FD",
        default: "unset",
        description: "Set by ccache: distcc-rs's own messages go to this file descriptor unless DISTCC_LOG is set.",
    },
    EnvVar {
        name: "_DISTCC_SAFEGUARD",
        default: "unset",
        description: "Recursion guard set for every compiler distcc-rs runs; a compiler that calls distcc-rs again runs locally, a second nesting is an error.",
    },
    EnvVar {
        name: "HOME",
        default: "unset",
        description: "Home directory; DISTCC_DIR defaults to $HOME/.distcc.",
    },
    EnvVar {
        name: "PATH",
        default: "unset",
        description: "Searched for the real compiler, skipping distcc-rs itself, stock distcc and links to them; --install-masquerade links the compilers found on it.",
    },
    EnvVar {
        name: "PWD",
        default: "set by the shell",
        description: "Working directory as the shell names it. Used, as LLVM uses it, for the DW_AT_comp_dir that a server's clang is given, when it names the current directory.",
    },
    EnvVar {
        name: "LC_ALL",
        default: "unset",
        description: "With LC_MESSAGES, LC_CTYPE and LANG: only in the C or POSIX locale are gcc's warnings from a server shown as they are (with -fno-diagnostics-show-caret); otherwise a job that warns compiles again locally.",
    },
    EnvVar {
        name: "LC_MESSAGES",
        default: "unset",
        description: "See LC_ALL.",
    },
    EnvVar {
        name: "LC_CTYPE",
        default: "unset",
        description: "See LC_ALL.",
    },
    EnvVar {
        name: "LANG",
        default: "unset",
        description: "See LC_ALL.",
    },
    EnvVar {
        name: "KRB5CCNAME",
        default: "the Kerberos library's default",
        description: "Kerberos credential cache that holds the client principal's tickets; read by the Kerberos library and named in messages about missing or expired tickets.",
    },
];

/// Settings for one run, read once at start-up.
#[derive(Debug, Clone)]
pub struct Config {
    pub hosts: Option<OsString>,
    pub distcc_dir: Option<PathBuf>,
    /// True when `distcc_dir` comes from `DISTCC_DIR`, false when it is
    /// derived from `HOME`.
    pub distcc_dir_set: bool,
    pub backoff_period: Duration,
    pub pause_time: Duration,
    pub verbose: bool,
    pub log_file: Option<PathBuf>,
    pub fallback: bool,
    pub skip_local_retry: bool,
    pub connect_timeout: Duration,
    pub io_timeout: Duration,
    pub auth_timeout: Duration,
    pub principal: Option<String>,
    /// `DISTCC_SSH` split at blanks: the program, then its first arguments.
    pub ssh_command: Vec<String>,
    pub save_temps: bool,
    pub tmpdir: PathBuf,
    pub uncached_err_fd: Option<i32>,
    pub safeguard: u32,
    /// One message per invalid value, naming the variable and the value.
    pub errors: Vec<String>,
}

impl Config {
    /// Reads the settings from the process environment.
    pub fn from_env() -> Config {
        Config::from_lookup(|name| std::env::var_os(name))
    }

    /// Reads the settings through `lookup`, so that tests need not touch the
    /// process environment.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<OsString>) -> Config {
        let mut errors = Vec::new();
        let text = |name: &str| lookup(name).map(|value| value.to_string_lossy().into_owned());

        let hosts = lookup("DISTCC_HOSTS");
        let distcc_dir_env = non_empty_path(lookup("DISTCC_DIR"));
        let distcc_dir_set = distcc_dir_env.is_some();
        let distcc_dir = distcc_dir_env.or_else(|| {
            non_empty_path(lookup("HOME")).map(|home| home.join(".distcc"))
        });
        let backoff_period = Duration::from_secs(parse_whole_number(
            "DISTCC_BACKOFF_PERIOD",
            text("DISTCC_BACKOFF_PERIOD"),
            60,
            MAX_BACKOFF_PERIOD_SECONDS,
            "seconds",
            &mut errors,
        ));
        let pause_time = Duration::from_millis(parse_whole_number(
            "DISTCC_PAUSE_TIME_MSEC",
            text("DISTCC_PAUSE_TIME_MSEC"),
            1000,
            MAX_PAUSE_TIME_MSEC,
            "milliseconds",
            &mut errors,
        ));
        let verbose = parse_bool("DISTCC_VERBOSE", text("DISTCC_VERBOSE"), false, &mut errors);
        let log_file = non_empty_path(lookup("DISTCC_LOG"));
        let fallback = parse_bool("DISTCC_FALLBACK", text("DISTCC_FALLBACK"), true, &mut errors);
        let skip_local_retry = lookup("DISTCC_SKIP_LOCAL_RETRY").is_some();
        let connect_timeout = parse_seconds("DISTCC_CONNECT_TIMEOUT", text("DISTCC_CONNECT_TIMEOUT"), 4.0, &mut errors);
        let io_timeout = parse_seconds("DISTCC_IO_TIMEOUT", text("DISTCC_IO_TIMEOUT"), 300.0, &mut errors);
        let auth_timeout = parse_seconds("DISTCC_AUTH_TIMEOUT", text("DISTCC_AUTH_TIMEOUT"), 5.0, &mut errors);
        let principal = parse_principal(text("DISTCC_PRINCIPAL"), &mut errors);
        let ssh_command = parse_ssh_command(lookup("DISTCC_SSH"), &mut errors);
        let save_temps = parse_bool("DISTCC_SAVE_TEMPS", text("DISTCC_SAVE_TEMPS"), false, &mut errors);
        let tmpdir = non_empty_path(lookup("TMPDIR")).unwrap_or_else(|| PathBuf::from("/tmp"));
        let uncached_err_fd = parse_fd(text("UNCACHED_ERR_FD"), &mut errors);
        let safeguard = parse_safeguard(text("_DISTCC_SAFEGUARD"));

        Config {
            hosts,
            distcc_dir,
            distcc_dir_set,
            backoff_period,
            pause_time,
            verbose,
            log_file,
            fallback,
            skip_local_retry,
            connect_timeout,
            io_timeout,
            auth_timeout,
            principal,
            ssh_command,
            save_temps,
            tmpdir,
            uncached_err_fd,
            safeguard,
            errors,
        }
    }
}

fn non_empty_path(value: Option<OsString>) -> Option<PathBuf> {
    value.filter(|v| !v.is_empty()).map(PathBuf::from)
}

/// Parses a 0/1 switch. Empty counts as unset.
fn parse_bool(name: &str, value: Option<String>, default: bool, errors: &mut Vec<String>) -> bool {
    match value.as_deref().map(str::trim) {
        None | Some("") => default,
        Some("1") => true,
        Some("0") => false,
        Some(other) => {
            errors.push(format!("invalid {name}='{other}': expected 0 or 1"));
            default
        }
    }
}

/// Parses a positive number of seconds, decimals allowed ("1.5").
fn parse_seconds(name: &str, value: Option<String>, default: f64, errors: &mut Vec<String>) -> Duration {
    let Some(raw) = value else {
        return Duration::from_secs_f64(default);
    };
    match raw.trim().parse::<f64>() {
        Ok(seconds) if seconds.is_finite() && seconds > 0.0 && seconds <= 86_400.0 => {
            Duration::from_secs_f64(seconds)
        }
        _ => {
            errors.push(format!(
                "invalid {name}='{raw}': expected a number of seconds greater than 0 and at most 86400"
            ));
            Duration::from_secs_f64(default)
        }
    }
}

/// Largest accepted `DISTCC_BACKOFF_PERIOD`: one week.
const MAX_BACKOFF_PERIOD_SECONDS: u64 = 7 * 86_400;

/// Largest accepted `DISTCC_PAUSE_TIME_MSEC`: one minute.
const MAX_PAUSE_TIME_MSEC: u64 = 60_000;

/// Parses a whole number from 0 to `max`. Stock distcc reads these values
/// with `atoi`, which turns "1.5" into 1 and "abc" into 0; here anything but
/// plain digits is an error.
fn parse_whole_number(
    name: &str,
    value: Option<String>,
    default: u64,
    max: u64,
    unit: &str,
    errors: &mut Vec<String>,
) -> u64 {
    let Some(raw) = value else {
        return default;
    };
    let trimmed = raw.trim();
    let parsed = if !trimmed.is_empty() && trimmed.bytes().all(|b| b.is_ascii_digit()) {
        trimmed.parse::<u64>().ok().filter(|number| *number <= max)
    } else {
        None
    };
    parsed.unwrap_or_else(|| {
        errors.push(format!("invalid {name}='{raw}': expected a whole number of {unit} from 0 to {max}"));
        default
    })
}

/// Parses `DISTCC_PRINCIPAL`, a GSS-API service name such as `distcc`.
fn parse_principal(value: Option<String>, errors: &mut Vec<String>) -> Option<String> {
    let raw = value?;
    let valid = !raw.is_empty()
        && raw
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if valid {
        Some(raw)
    } else {
        errors.push(format!(
            "invalid DISTCC_PRINCIPAL='{raw}': expected a service name such as 'distcc' (letters, digits, '-', '_', '.')"
        ));
        None
    }
}

/// Splits `DISTCC_SSH` at blanks, as stock distcc does. Words are not
/// unquoted, so a program path cannot contain blanks.
fn parse_ssh_command(value: Option<OsString>, errors: &mut Vec<String>) -> Vec<String> {
    let default = vec!["ssh".to_string()];
    let Some(raw) = value else {
        return default;
    };
    let Some(text) = raw.to_str() else {
        errors.push(format!("invalid DISTCC_SSH='{}': not valid UTF-8", raw.to_string_lossy()));
        return default;
    };
    let words: Vec<String> = text.split_ascii_whitespace().map(str::to_string).collect();
    if words.is_empty() {
        errors.push(format!("invalid DISTCC_SSH='{text}': expected a command such as 'ssh' or 'ssh -o BatchMode=yes'"));
        return default;
    }
    words
}

fn parse_fd(value: Option<String>, errors: &mut Vec<String>) -> Option<i32> {
    let raw = value?;
    match raw.trim().parse::<i32>() {
        Ok(0) => None,
        Ok(fd) if fd > 0 => Some(fd),
        _ => {
            errors.push(format!("invalid UNCACHED_ERR_FD='{raw}': expected a file descriptor number"));
            None
        }
    }
}

/// Reads the recursion level. Stock distcc counts any non-numeric, non-empty
/// value as 1, and so does this.
fn parse_safeguard(value: Option<String>) -> u32 {
    match value.as_deref().map(str::trim) {
        None | Some("") => 0,
        Some(text) => text.parse::<u32>().unwrap_or(1),
    }
}

/// Formats a duration in seconds the way the user wrote it: "4 s", "1.5 s".
pub fn format_seconds(duration: Duration) -> String {
    let seconds = duration.as_secs_f64();
    if seconds.fract() == 0.0 {
        format!("{} s", seconds as u64)
    } else {
        format!("{} s", (seconds * 1000.0).round() / 1000.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config_with(pairs: &[(&str, &str)]) -> Config {
        let map: HashMap<String, OsString> =
            pairs.iter().map(|(k, v)| (k.to_string(), OsString::from(v))).collect();
        Config::from_lookup(|name| map.get(name).cloned())
    }

    #[test]
    fn defaults_without_environment() {
        let config = config_with(&[]);
        assert!(config.errors.is_empty());
        assert!(config.fallback);
        assert!(!config.verbose);
        assert_eq!(config.io_timeout, Duration::from_secs(300));
        assert_eq!(config.connect_timeout, Duration::from_secs(4));
        assert_eq!(config.auth_timeout, Duration::from_secs(5));
        assert_eq!(config.tmpdir, PathBuf::from("/tmp"));
        assert_eq!(config.distcc_dir, None);
    }

    #[test]
    fn decimal_seconds_accepted() {
        let config = config_with(&[("DISTCC_AUTH_TIMEOUT", "1.5")]);
        assert_eq!(config.auth_timeout, Duration::from_millis(1500));
        assert_eq!(format_seconds(config.auth_timeout), "1.5 s");
    }

    #[test]
    fn invalid_numbers_name_variable_and_value() {
        for bad in ["abc", "-3", "0", "", "1e400", "nan"] {
            let config = config_with(&[("DISTCC_IO_TIMEOUT", bad)]);
            assert_eq!(config.errors.len(), 1, "value {bad:?}");
            assert!(config.errors[0].contains("DISTCC_IO_TIMEOUT"), "{}", config.errors[0]);
            assert!(config.errors[0].contains(&format!("'{bad}'")), "{}", config.errors[0]);
            assert_eq!(config.io_timeout, Duration::from_secs(300));
        }
    }

    #[test]
    fn every_numeric_variable_rejects_bad_values() {
        let mut numeric: Vec<&str> =
            ENV_VARS.iter().filter(|var| var.default.parse::<f64>().is_ok()).map(|var| var.name).collect();
        numeric.push("UNCACHED_ERR_FD");
        assert!(numeric.len() >= 6, "{numeric:?}");
        for name in numeric {
            for bad in ["abc", "-5", "1x", "0x10"] {
                let config = config_with(&[(name, bad)]);
                assert_eq!(config.errors.len(), 1, "{name}={bad:?}: {:?}", config.errors);
                assert!(config.errors[0].contains(&format!("invalid {name}='{bad}'")), "{}", config.errors[0]);
            }
        }
    }

    #[test]
    fn invalid_switch_is_reported() {
        let config = config_with(&[("DISTCC_FALLBACK", "maybe")]);
        assert!(config.fallback);
        assert!(config.errors[0].contains("DISTCC_FALLBACK='maybe'"));
    }

    #[test]
    fn distcc_dir_defaults_to_home() {
        let config = config_with(&[("HOME", "/home/alice")]);
        assert_eq!(config.distcc_dir, Some(PathBuf::from("/home/alice/.distcc")));
        let config = config_with(&[("HOME", "/home/alice"), ("DISTCC_DIR", "/x")]);
        assert_eq!(config.distcc_dir, Some(PathBuf::from("/x")));
    }

    #[test]
    fn backoff_and_pause_defaults() {
        let config = config_with(&[]);
        assert_eq!(config.backoff_period, Duration::from_secs(60));
        assert_eq!(config.pause_time, Duration::from_millis(1000));
        assert!(!config.distcc_dir_set);
    }

    #[test]
    fn backoff_and_pause_accept_zero() {
        let config = config_with(&[("DISTCC_BACKOFF_PERIOD", "0"), ("DISTCC_PAUSE_TIME_MSEC", "0")]);
        assert!(config.errors.is_empty(), "{:?}", config.errors);
        assert_eq!(config.backoff_period, Duration::ZERO);
        assert_eq!(config.pause_time, Duration::ZERO);
    }

    #[test]
    fn backoff_and_pause_reject_bad_values() {
        for (name, bad) in [
            ("DISTCC_BACKOFF_PERIOD", "1.5"),
            ("DISTCC_BACKOFF_PERIOD", "-1"),
            ("DISTCC_BACKOFF_PERIOD", "soon"),
            ("DISTCC_BACKOFF_PERIOD", ""),
            ("DISTCC_BACKOFF_PERIOD", "604801"),
            ("DISTCC_PAUSE_TIME_MSEC", "60001"),
            ("DISTCC_PAUSE_TIME_MSEC", "99999999999999999999999"),
        ] {
            let config = config_with(&[(name, bad)]);
            assert_eq!(config.errors.len(), 1, "{name}={bad:?}");
            assert!(config.errors[0].contains(&format!("{name}='{bad}'")), "{}", config.errors[0]);
        }
        let config = config_with(&[("DISTCC_BACKOFF_PERIOD", "soon")]);
        assert_eq!(config.backoff_period, Duration::from_secs(60));
    }

    #[test]
    fn distcc_dir_set_only_from_variable() {
        assert!(config_with(&[("DISTCC_DIR", "/x")]).distcc_dir_set);
        assert!(!config_with(&[("HOME", "/home/alice")]).distcc_dir_set);
    }

    #[test]
    fn safeguard_levels() {
        assert_eq!(config_with(&[]).safeguard, 0);
        assert_eq!(config_with(&[("_DISTCC_SAFEGUARD", "2")]).safeguard, 2);
        assert_eq!(config_with(&[("_DISTCC_SAFEGUARD", "x")]).safeguard, 1);
    }

    #[test]
    fn ssh_command_split_at_blanks() {
        assert_eq!(config_with(&[]).ssh_command, ["ssh"]);
        let config = config_with(&[("DISTCC_SSH", "/opt/ssh  -o BatchMode=yes\t-x")]);
        assert!(config.errors.is_empty());
        assert_eq!(config.ssh_command, ["/opt/ssh", "-o", "BatchMode=yes", "-x"]);
    }

    #[test]
    fn empty_ssh_command_is_reported() {
        let config = config_with(&[("DISTCC_SSH", "  ")]);
        assert_eq!(config.errors.len(), 1);
        assert!(config.errors[0].contains("DISTCC_SSH='  '"), "{}", config.errors[0]);
        assert_eq!(config.ssh_command, ["ssh"]);
    }

    #[test]
    fn principal_rejects_injection() {
        let config = config_with(&[("DISTCC_PRINCIPAL", "distcc@evil host")]);
        assert_eq!(config.principal, None);
        assert!(config.errors[0].contains("DISTCC_PRINCIPAL"));
    }
}
