//! The `--check-hosts` report: the steps of each host and one verdict line
//! per host as text, or the same facts as JSON.

use std::net::IpAddr;
use std::time::Duration;

use serde_json::{Value, json};

use super::{HostCheck, unusable};
use crate::config::format_seconds;

fn milliseconds(duration: Duration) -> f64 {
    (duration.as_secs_f64() * 10_000.0).round() / 10.0
}

/// Formats the report for people: the steps of each host, then one verdict
/// line per host.
pub(super) fn text_report(checks: &[HostCheck]) -> String {
    let mut text = String::new();
    for check in checks {
        text.push_str(&format!("{}\n", check.entry));
        for (label, value) in step_lines(check) {
            text.push_str(&format!("  {label:<18} {value}\n"));
        }
        text.push('\n');
    }
    let usable = checks.iter().filter(|c| c.verdict.as_ref().is_some_and(|v| v.usable)).count();
    text.push_str(&format!("Verdicts ({usable} of {} hosts usable):\n", checks.len()));
    for check in checks {
        let line = match &check.verdict {
            Some(verdict) if verdict.usable => format!("{}: usable: {}", check.entry, verdict.reason),
            Some(verdict) => format!("{}: not usable: {}", check.entry, verdict.reason),
            None => format!("{}: not usable: not checked", check.entry),
        };
        text.push_str(&line);
        text.push('\n');
    }
    text
}

fn step_lines(check: &HostCheck) -> Vec<(&'static str, String)> {
    let mut lines = Vec::new();
    let failed = |error: &String| format!("failed: {error}");
    if let Some(state) = &check.backoff {
        let after = if state.reason.is_empty() { String::new() } else { format!(" after: {}", state.reason) };
        lines.push((
            "backoff",
            format!(
                "backed off {} ago{after}; compiles skip it for {} more",
                format_seconds(Duration::from_secs(state.elapsed.as_secs())),
                format_seconds(Duration::from_secs(state.remaining.as_secs().max(1)))
            ),
        ));
    }
    if let Some(compiler) = &check.local_compiler {
        lines.push((
            "local compiler",
            match compiler {
                Ok(path) => path.clone(),
                Err(error) => failed(error),
            },
        ));
    }
    if let Some(resolution) = &check.resolution {
        lines.push((
            "resolve",
            match resolution {
                Ok(resolved) => format!(
                    "{} ({:.1} ms)",
                    resolved.addresses.iter().map(IpAddr::to_string).collect::<Vec<_>>().join(", "),
                    milliseconds(resolved.elapsed)
                ),
                Err(error) => failed(error),
            },
        ));
    }
    if let Some(connection) = &check.connection {
        lines.push((
            "connect",
            match connection {
                Ok(connected) => format!("{} ({:.1} ms)", connected.peer, milliseconds(connected.elapsed)),
                Err(error) => failed(error),
            },
        ));
    }
    if let Some(auth) = &check.auth {
        if let Some(principal) = &auth.client_principal {
            lines.push((
                "client principal",
                match principal {
                    Ok(name) => name.clone(),
                    Err(error) => failed(error),
                },
            ));
        }
        if let Some(target) = &auth.target_principal {
            lines.push((
                "target principal",
                match target {
                    Ok(name) => name.clone(),
                    Err(error) => failed(error),
                },
            ));
        }
        if let Some(ticket) = &auth.service_ticket {
            lines.push((
                "service ticket",
                match ticket {
                    Ok(()) => "obtained".to_string(),
                    Err(error) => format!("not obtained: {error}"),
                },
            ));
        }
        if auth.handshake.is_some() {
            let verdict = match auth.access_granted {
                Some(true) => "access granted (y)".to_string(),
                Some(false) => "access denied (n)".to_string(),
                None => "none received".to_string(),
            };
            lines.push(("server verdict", verdict));
        }
        if let Some(handshake) = &auth.handshake {
            lines.push((
                "handshake",
                match handshake {
                    Ok(elapsed) => format!("{:.1} ms", milliseconds(*elapsed)),
                    Err(error) => failed(error),
                },
            ));
        }
    }
    if let Some(compile) = &check.compile {
        lines.push((
            "trivial compile",
            match compile {
                Ok(compiled) => format!(
                    "succeeded on the server ({}-byte object, {:.1} ms)",
                    compiled.object_bytes,
                    milliseconds(compiled.elapsed)
                ),
                Err(error) => failed(error),
            },
        ));
    }
    lines
}

fn step_json<T>(step: &Option<Result<T, String>>, fields: impl Fn(&T) -> Value) -> Value {
    match step {
        None => Value::Null,
        Some(Ok(value)) => {
            let mut object = json!({ "ok": true });
            if let (Value::Object(target), Value::Object(extra)) = (&mut object, fields(value)) {
                target.extend(extra);
            }
            object
        }
        Some(Err(error)) => json!({ "ok": false, "error": error }),
    }
}

/// Formats the report for programs. Every host has the same keys; a step
/// that was not reached is `null`, times are in milliseconds.
pub(super) fn json_report(checks: &[HostCheck]) -> Value {
    let hosts: Vec<Value> = checks
        .iter()
        .map(|check| {
            let verdict = check.verdict.clone().unwrap_or_else(|| unusable("not checked"));
            let auth = match &check.auth {
                None => Value::Null,
                Some(auth) => json!({
                    "client_principal": step_json(&auth.client_principal, |name| json!({ "name": name })),
                    "target_principal": step_json(&auth.target_principal, |name| json!({ "name": name })),
                    "service_ticket": step_json(&auth.service_ticket, |()| json!({})),
                    "access_granted": auth.access_granted,
                    "handshake": step_json(&auth.handshake, |elapsed| json!({ "ms": milliseconds(*elapsed) })),
                }),
            };
            json!({
                "entry": check.entry,
                "usable": verdict.usable,
                "reason": verdict.reason,
                "resolve": step_json(&check.resolution, |resolved| json!({
                    "addresses": resolved.addresses.iter().map(IpAddr::to_string).collect::<Vec<_>>(),
                    "ms": milliseconds(resolved.elapsed),
                })),
                "connect": step_json(&check.connection, |connected| json!({
                    "peer": connected.peer,
                    "ms": milliseconds(connected.elapsed),
                })),
                "backoff": match &check.backoff {
                    None => Value::Null,
                    Some(state) => json!({
                        "seconds_ago": state.elapsed.as_secs(),
                        "seconds_left": state.remaining.as_secs().max(1),
                        "reason": state.reason,
                    }),
                },
                "auth": auth,
                "local_compiler": step_json(&check.local_compiler, |path| json!({ "path": path })),
                "compile": step_json(&check.compile, |compiled| json!({
                    "object_bytes": compiled.object_bytes,
                    "ms": milliseconds(compiled.elapsed),
                })),
            })
        })
        .collect();
    let usable = checks.iter().filter(|c| c.verdict.as_ref().is_some_and(|v| v.usable)).count();
    json!({ "hosts": hosts, "usable": usable, "not_usable": checks.len() - usable })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::{Resolved, Verdict};

    fn check_with(verdict: Verdict) -> HostCheck {
        HostCheck {
            entry: "127.0.0.1:3632,auth".into(),
            resolution: Some(Ok(Resolved { addresses: vec!["127.0.0.1".parse().unwrap()], elapsed: Duration::from_micros(160) })),
            connection: Some(Err("connect to 127.0.0.1:3632 failed: connection refused".into())),
            verdict: Some(verdict),
            ..HostCheck::default()
        }
    }

    #[test]
    fn text_report_ends_with_verdicts() {
        let checks = [check_with(unusable("connect to 127.0.0.1:3632 failed: connection refused"))];
        let text = text_report(&checks);
        assert!(text.contains("  resolve            127.0.0.1 (0.2 ms)\n"), "{text}");
        assert!(text.contains("  connect            failed: connect to 127.0.0.1:3632 failed"), "{text}");
        assert!(!text.contains("trivial compile"), "steps not reached are left out: {text}");
        let last = text.lines().last().unwrap();
        assert_eq!(last, "127.0.0.1:3632,auth: not usable: connect to 127.0.0.1:3632 failed: connection refused");
    }

    #[test]
    fn json_report_marks_steps() {
        let checks = [check_with(unusable("refused"))];
        let report = json_report(&checks);
        let host = &report["hosts"][0];
        assert_eq!(host["usable"], json!(false));
        assert_eq!(host["resolve"]["ok"], json!(true));
        assert_eq!(host["resolve"]["addresses"][0], json!("127.0.0.1"));
        assert_eq!(host["connect"]["ok"], json!(false));
        assert_eq!(host["auth"], Value::Null);
        assert_eq!(host["compile"], Value::Null);
        assert_eq!(report["not_usable"], json!(1));
    }
}
