//! `--show-principal`: the Kerberos names a compile would use, and when the
//! client's ticket expires.

use std::net::ToSocketAddrs;
use std::path::Path;
use std::time::{Duration, SystemTime};

use serde_json::{Value, json};

use super::Format;
use crate::auth::{self, Target};
use crate::compile::SYSTEM_HOSTS_FILE;
use crate::config::Config;
use crate::exit;
use crate::hosts::{self, Auth, HostList, HostSpec, Transport};

/// The service principal an `,auth` host would be asked for.
struct ServicePrincipal {
    entry: String,
    target: Result<Target, String>,
}

/// Runs `--show-principal`: the client principal and its ticket expiry, and
/// the service principal of each `,auth` host. Returns
/// [`exit::GSSAPI_FAILED`] when there are no usable credentials, and
/// [`exit::BAD_HOSTSPEC`] when the host list is invalid. The rest of the
/// report is printed in both cases.
pub fn show_principal(config: &Config, format: Format) -> i32 {
    let credentials = auth::acquire_credentials();
    let expiry = credentials.as_ref().ok().map(|c| c.remaining_lifetime().map_err(|e| e.to_string()));
    let loaded = hosts::load_host_list(config.hosts.as_deref(), config.distcc_dir.as_deref(), Path::new(SYSTEM_HOSTS_FILE));
    let mut code = 0;
    let principals = match &loaded {
        Ok(Some((list, _))) => service_principals(list, config),
        Ok(None) => Vec::new(),
        Err(error) => {
            log::error!("{error}");
            code = exit::BAD_HOSTSPEC;
            Vec::new()
        }
    };
    if let Err(error) = &credentials {
        log::error!("{error}");
        code = exit::GSSAPI_FAILED;
    }

    let client = credentials.as_ref().map(|c| c.principal.clone()).map_err(|e| e.to_string());
    match format {
        Format::Text => print!("{}", principal_text(&client, expiry.as_ref(), config, &principals)),
        Format::Json => println!("{}", principal_json(&client, expiry.as_ref(), config, &principals)),
    }
    code
}

fn service_principals(list: &HostList, config: &Config) -> Vec<ServicePrincipal> {
    list.hosts
        .iter()
        .filter(|host| host.auth != Auth::None)
        .map(|host| ServicePrincipal { entry: host.verbatim.clone(), target: expected_target(host, config) })
        .collect()
}

/// Chooses the target principal as a compile would, with the first address
/// the host name resolves to standing in for the connected peer.
fn expected_target(host: &HostSpec, config: &Config) -> Result<Target, String> {
    let named = match &host.auth {
        Auth::Named(name) => Some(name.as_str()),
        _ => None,
    };
    let (entry_host, peer) = match &host.transport {
        Transport::Tcp { host: name, port, .. } if named.is_none() => {
            let peer = (name.as_str(), *port)
                .to_socket_addrs()
                .map_err(|e| format!("cannot resolve host name '{name}': {e}"))?
                .next();
            (name.as_str(), peer)
        }
        Transport::Tcp { host: name, .. } | Transport::Ssh { host: name, .. } => (name.as_str(), None),
        Transport::Local => ("localhost", None),
    };
    auth::choose_target(named, peer, entry_host, config.principal.as_deref())
}

fn principal_text(
    client: &Result<String, String>,
    expiry: Option<&Result<Duration, String>>,
    config: &Config,
    principals: &[ServicePrincipal],
) -> String {
    let mut text = String::new();
    match client {
        Ok(name) => text.push_str(&format!("client principal:  {name}\n")),
        Err(error) => text.push_str(&format!("client principal:  none ({error})\n")),
    }
    text.push_str(&format!("credential cache:  {}\n", auth::cache_name()));
    match expiry {
        Some(Ok(remaining)) => text.push_str(&format!("ticket expires:    {}\n", describe_expiry(*remaining))),
        Some(Err(error)) => text.push_str(&format!("ticket expires:    unknown ({error})\n")),
        None => {}
    }
    match &config.principal {
        Some(service) => text.push_str(&format!("service name:      {service} (DISTCC_PRINCIPAL: {service}@HOST)\n")),
        None => text.push_str("service name:      host (DISTCC_PRINCIPAL unset: host/HOST)\n"),
    }
    if principals.is_empty() {
        text.push_str("no ,auth host in the host list\n");
    } else {
        text.push_str("service principal of each ,auth host:\n");
        for principal in principals {
            match &principal.target {
                Ok(target) => text.push_str(&format!("  {}: {}\n", principal.entry, target.name)),
                Err(error) => text.push_str(&format!("  {}: unknown ({error})\n", principal.entry)),
            }
        }
    }
    text
}

fn principal_json(
    client: &Result<String, String>,
    expiry: Option<&Result<Duration, String>>,
    config: &Config,
    principals: &[ServicePrincipal],
) -> Value {
    let (expires, expires_in) = match expiry {
        Some(Ok(remaining)) if *remaining < INDEFINITE_LIFETIME => {
            (json!(format_rfc3339(SystemTime::now() + *remaining)), json!(remaining.as_secs()))
        }
        _ => (Value::Null, Value::Null),
    };
    let hosts: Vec<Value> = principals
        .iter()
        .map(|principal| match &principal.target {
            Ok(target) => json!({
                "entry": principal.entry,
                "service_principal": target.name,
                "host_based_service": target.host_based,
            }),
            Err(error) => json!({ "entry": principal.entry, "service_principal": null, "error": error }),
        })
        .collect();
    json!({
        "client_principal": client.as_ref().ok(),
        "error": client.as_ref().err(),
        "credential_cache": auth::cache_name(),
        "ticket_expires": expires,
        "ticket_expires_in_seconds": expires_in,
        "service_name": config.principal,
        "hosts": hosts,
    })
}

/// GSS-API reports this lifetime for credentials that never expire.
const INDEFINITE_LIFETIME: Duration = Duration::from_secs(u32::MAX as u64);

fn describe_expiry(remaining: Duration) -> String {
    if remaining >= INDEFINITE_LIFETIME {
        return "never".to_string();
    }
    let minutes = remaining.as_secs() / 60;
    let left = if minutes >= 60 {
        format!("{} h {} min", minutes / 60, minutes % 60)
    } else if minutes > 0 {
        format!("{minutes} min")
    } else {
        format!("{} s", remaining.as_secs())
    };
    format!("{} (in {left})", format_utc(SystemTime::now() + remaining))
}

/// Formats a time as `YYYY-MM-DD HH:MM:SS UTC`, for people.
fn format_utc(time: SystemTime) -> String {
    let (date, clock) = utc_fields(time);
    format!("{date} {clock} UTC")
}

/// Formats a time as RFC 3339 in UTC (`YYYY-MM-DDTHH:MM:SSZ`), for programs.
fn format_rfc3339(time: SystemTime) -> String {
    let (date, clock) = utc_fields(time);
    format!("{date}T{clock}Z")
}

/// Returns the UTC date (`YYYY-MM-DD`) and time of day (`HH:MM:SS`).
fn utc_fields(time: SystemTime) -> (String, String) {
    let seconds = time.duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let (days, of_day) = (seconds / 86_400, seconds % 86_400);
    let (year, month, day) = civil_from_days(days as i64);
    (
        format!("{year:04}-{month:02}-{day:02}"),
        format!("{:02}:{:02}:{:02}", of_day / 3600, of_day % 3600 / 60, of_day % 60),
    )
}

/// Converts days since 1970-01-01 to a proleptic Gregorian date, with
/// Howard Hinnant's `civil_from_days` algorithm.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * month_index + 2) / 5 + 1) as u32;
    let month = if month_index < 10 { month_index + 3 } else { month_index - 9 } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_dates() {
        assert_eq!(format_utc(SystemTime::UNIX_EPOCH), "1970-01-01 00:00:00 UTC");
        // 2000-02-29 12:34:56 UTC, a leap day.
        assert_eq!(format_utc(SystemTime::UNIX_EPOCH + Duration::from_secs(951_827_696)), "2000-02-29 12:34:56 UTC");
        // 2038-01-19 03:14:08 UTC, one second past the 32-bit limit.
        assert_eq!(format_utc(SystemTime::UNIX_EPOCH + Duration::from_secs(2_147_483_648)), "2038-01-19 03:14:08 UTC");
        assert_eq!(format_rfc3339(SystemTime::UNIX_EPOCH + Duration::from_secs(951_827_696)), "2000-02-29T12:34:56Z");
    }

    #[test]
    fn expiry_text() {
        assert_eq!(describe_expiry(INDEFINITE_LIFETIME), "never");
        assert!(describe_expiry(Duration::from_secs(3 * 3600 + 125)).ends_with("(in 3 h 2 min)"));
        assert!(describe_expiry(Duration::from_secs(42)).ends_with("(in 42 s)"));
    }
}
