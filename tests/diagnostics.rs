//! Diagnosis against the real test bed: `--check-hosts`, `--show-principal`,
//! and the reason every local compile gives under `DISTCC_VERBOSE=1`.

mod common;

use std::io::Read;
use std::net::TcpListener;
use std::process::Output;
use std::time::{Duration, Instant};

use serde_json::Value;

use common::{Scratch, bed, count_log_lines, log_lines_after_wait, run, run_timed, stderr};

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn auth_host(name: &str) -> String {
    format!("127.0.0.1:{},auth", bed().port(name))
}

fn plain_host(name: &str) -> String {
    format!("127.0.0.1:{}", bed().port(name))
}

/// Returns a loopback port with nothing listening on it.
fn dead_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// Returns the verdict lines that end a `--check-hosts` text report.
fn verdict_lines(report: &str) -> Vec<String> {
    let mut lines = report.lines().skip_while(|line| !line.starts_with("Verdicts ("));
    let header = lines.next().unwrap_or_else(|| panic!("no verdict header in:\n{report}"));
    assert!(header.ends_with("hosts usable):"), "{header}");
    lines.map(str::to_string).collect()
}

/// Returns the indented step lines of one host's block in a text report.
fn host_block(report: &str, entry: &str) -> String {
    let start = report.find(&format!("{entry}\n")).unwrap_or_else(|| panic!("no block for {entry} in:\n{report}"));
    report[start..].split("\n\n").next().unwrap().to_string()
}

#[test]
fn check_hosts_gives_one_verdict_per_host() {
    let scratch = Scratch::new();
    let good = auth_host("AUTH1");
    let plain_as_auth = auth_host("PLAIN");
    let denied = auth_host("DENY");
    let dead = format!("127.0.0.1:{}", dead_port());
    let hosts = format!("{good} {plain_as_auth} {denied} {dead}");
    let principal = bed().var("TESTBED_USER_PRINCIPAL");

    let mut command = scratch.distcc(&hosts);
    command.args(["--check-hosts"]).env("DISTCC_AUTH_TIMEOUT", "1");
    let (output, elapsed) = run_timed(&mut command);
    let report = stdout(&output);
    assert_eq!(output.status.code(), Some(1), "{report}{}", stderr(&output));
    assert!(elapsed < Duration::from_secs(8), "took {elapsed:?}; hosts are checked in parallel");

    let verdicts = verdict_lines(&report);
    assert_eq!(verdicts.len(), 4, "{report}");
    assert_eq!(verdicts[0], format!("{good}: usable: authenticated as {principal} and compiled remotely"));
    assert!(
        verdicts[1].starts_with(&format!(
            "{plain_as_auth}: not usable: server did not answer the authentication handshake within 1 s"
        )),
        "{}",
        verdicts[1]
    );
    assert_eq!(
        verdicts[2],
        format!("{denied}: not usable: access denied by server for {principal} (blacklisted or not whitelisted)")
    );
    assert!(
        verdicts[3].starts_with(&format!("{dead}: not usable: connect to {dead} failed: connection refused")),
        "{}",
        verdicts[3]
    );

    let good_block = host_block(&report, &good);
    for expected in [
        "  resolve            127.0.0.1 (",
        &format!("  connect            {}", good.trim_end_matches(",auth")),
        &format!("  client principal   {principal}"),
        "  target principal   host/localhost",
        "  service ticket     obtained",
        "  server verdict     access granted (y)",
        "  handshake          ",
        "  trivial compile    succeeded on the server (",
    ] {
        assert!(good_block.contains(expected), "missing '{expected}' in:\n{good_block}");
    }
    let plain_block = host_block(&report, &plain_as_auth);
    assert!(plain_block.contains("  service ticket     obtained"), "{plain_block}");
    assert!(plain_block.contains("  server verdict     none received"), "{plain_block}");
    assert!(!plain_block.contains("trivial compile"), "{plain_block}");
    let denied_block = host_block(&report, &denied);
    assert!(denied_block.contains("  server verdict     access denied (n)"), "{denied_block}");
    let dead_block = host_block(&report, &dead);
    assert!(dead_block.contains("  connect            failed: "), "{dead_block}");
    assert!(!dead_block.contains("principal"), "{dead_block}");

    // The server logs agree with the report.
    assert_eq!(log_lines_after_wait(&bed().log("AUTH1"), &["COMPILE_OK", "distcc-rs-check.i"], 1), 1);
    assert!(count_log_lines(&bed().log("AUTH1"), &["Successfully authenticated", principal]) >= 1);
    assert!(count_log_lines(&bed().log("DENY"), &["Access denied", "not whitelisted"]) >= 1);
    assert_eq!(count_log_lines(&bed().log("DENY"), &["COMPILE_OK", "distcc-rs-check.i"]), 0);

    // The same hosts as JSON: it parses and carries the same verdicts.
    let mut command = scratch.distcc(&hosts);
    command.args(["--check-hosts", "--format", "json"]).env("DISTCC_AUTH_TIMEOUT", "1");
    let output = run(&mut command);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let report: Value = serde_json::from_str(&stdout(&output)).expect("--format json prints valid JSON");
    let entries: Vec<&str> = report["hosts"].as_array().unwrap().iter().map(|h| h["entry"].as_str().unwrap()).collect();
    assert_eq!(entries, [good.as_str(), plain_as_auth.as_str(), denied.as_str(), dead.as_str()]);
    let usable: Vec<bool> = report["hosts"].as_array().unwrap().iter().map(|h| h["usable"].as_bool().unwrap()).collect();
    assert_eq!(usable, [true, false, false, false]);
    assert_eq!(report["usable"], 1);
    assert_eq!(report["not_usable"], 3);
    let host = |index: usize| &report["hosts"][index];
    assert_eq!(host(0)["auth"]["target_principal"]["name"], "host/localhost");
    assert_eq!(host(0)["auth"]["client_principal"]["name"], principal);
    assert_eq!(host(0)["auth"]["service_ticket"]["ok"], true);
    assert_eq!(host(0)["auth"]["access_granted"], true);
    assert!(host(0)["auth"]["handshake"]["ms"].as_f64().unwrap() > 0.0);
    assert_eq!(host(0)["compile"]["ok"], true);
    assert!(host(0)["compile"]["object_bytes"].as_u64().unwrap() > 0);
    assert_eq!(host(1)["auth"]["access_granted"], Value::Null);
    assert_eq!(host(1)["auth"]["handshake"]["ok"], false);
    assert_eq!(host(1)["compile"], Value::Null);
    assert_eq!(host(2)["auth"]["access_granted"], false);
    assert_eq!(host(3)["connect"]["ok"], false);
    assert_eq!(host(3)["auth"], Value::Null);
    assert!(host(3)["reason"].as_str().unwrap().contains("connection refused"));
    assert_eq!(log_lines_after_wait(&bed().log("AUTH1"), &["COMPILE_OK", "distcc-rs-check.i"], 2), 2);
}

#[test]
fn check_hosts_exits_zero_when_all_usable() {
    let scratch = Scratch::new();
    let named = format!("127.0.0.1:{},auth=build-auth.test", bed().port("NAMED"));
    let hosts = [auth_host("AUTH2"), named.clone(), plain_host("PLAIN"), "localhost".to_string()];
    let output = run(scratch.distcc(&hosts.join(" ")).arg("--check-hosts"));
    let report = stdout(&output);
    assert_eq!(output.status.code(), Some(0), "{report}{}", stderr(&output));
    let verdicts = verdict_lines(&report);
    assert_eq!(verdicts.len(), 4, "{report}");
    for (verdict, host) in verdicts.iter().zip(&hosts) {
        assert!(verdict.starts_with(&format!("{host}: usable: ")), "{verdict}");
    }
    assert!(host_block(&report, &named).contains("  target principal   host/build-auth.test"), "{report}");
    assert!(verdicts[3].contains("runs jobs on this machine"), "{}", verdicts[3]);
    assert!(report.contains("Verdicts (4 of 4 hosts usable):"), "{report}");
    assert_eq!(stderr(&output), "", "nothing on standard error when all is well");
}

#[test]
fn check_hosts_time_limit_bounds_silent_host() {
    let scratch = Scratch::new();
    // A server that accepts connections and never replies.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in silent.incoming().flatten() {
            let mut reader = stream.try_clone().unwrap();
            std::thread::spawn(move || {
                let mut sink = [0u8; 4096];
                while matches!(reader.read(&mut sink), Ok(n) if n > 0) {}
            });
            held.push(stream);
        }
    });

    let started = Instant::now();
    let mut command = scratch.distcc(&format!("127.0.0.1:{port} {}", plain_host("PLAIN")));
    command.args(["--check-hosts", "--timeout", "2"]);
    let output = run(&mut command);
    let elapsed = started.elapsed();
    let report = stdout(&output);
    assert_eq!(output.status.code(), Some(1), "{report}");
    assert!(elapsed < Duration::from_secs(6), "took {elapsed:?} with --timeout 2");
    let verdicts = verdict_lines(&report);
    assert_eq!(
        verdicts[0],
        format!("127.0.0.1:{port}: not usable: check did not finish within 2 s (--timeout) during the trivial compile step")
    );
    assert!(verdicts[1].starts_with(&format!("{}: usable", plain_host("PLAIN"))), "{}", verdicts[1]);
    assert!(host_block(&report, &format!("127.0.0.1:{port}")).contains("  connect            127.0.0.1:"), "{report}");
}

#[test]
fn check_hosts_rejects_invalid_list() {
    let scratch = Scratch::new();
    let output = run(scratch.distcc("127.0.0.1:99999").arg("--check-hosts"));
    assert_eq!(output.status.code(), Some(106));
    assert!(stderr(&output).contains("'127.0.0.1:99999'"), "{}", stderr(&output));
    assert!(output.stdout.is_empty());
}

#[test]
fn show_principal_names_client_and_targets() {
    let scratch = Scratch::new();
    let named = format!("127.0.0.1:{},auth=build-auth.test", bed().port("NAMED"));
    let hosts = format!("{} {named} {}", auth_host("AUTH1"), plain_host("PLAIN"));
    let principal = bed().var("TESTBED_USER_PRINCIPAL");

    let output = run(scratch.distcc(&hosts).arg("--show-principal"));
    let report = stdout(&output);
    assert!(output.status.success(), "{report}{}", stderr(&output));
    assert!(report.contains(&format!("client principal:  {principal}\n")), "{report}");
    assert!(report.contains(&format!("credential cache:  {}\n", bed().var("KRB5CCNAME"))), "{report}");
    let expiry = report.lines().find(|l| l.starts_with("ticket expires:")).expect("expiry line");
    assert!(expiry.contains(" UTC (in "), "{expiry}");
    assert!(report.contains(&format!("  {}: host/localhost\n", auth_host("AUTH1"))), "{report}");
    assert!(report.contains(&format!("  {named}: host/build-auth.test\n")), "{report}");
    assert!(!report.contains(&plain_host("PLAIN").to_string().replace(":", ": ")), "plain hosts are not listed: {report}");

    let output = run(scratch.distcc(&auth_host("SVC")).args(["--show-principal", "--format", "json"]).env("DISTCC_PRINCIPAL", "distcc"));
    assert!(output.status.success(), "{}", stderr(&output));
    let report: Value = serde_json::from_str(&stdout(&output)).expect("valid JSON");
    assert_eq!(report["client_principal"], principal);
    assert_eq!(report["service_name"], "distcc");
    assert_eq!(report["hosts"][0]["service_principal"], "distcc@localhost");
    assert_eq!(report["hosts"][0]["host_based_service"], true);
    let remaining = report["ticket_expires_in_seconds"].as_u64().expect("expiry in seconds");
    assert!(remaining > 60, "{remaining}");
    assert!(remaining <= 7 * 86_400, "{remaining}");
    assert!(report["ticket_expires"].as_str().unwrap().ends_with('Z'));
}

#[test]
fn show_principal_without_ticket_fails() {
    let scratch = Scratch::new();
    let cache = format!("FILE:{}", scratch.path().join("no-such-cache").display());
    let output = run(scratch.distcc(&auth_host("AUTH1")).arg("--show-principal").env("KRB5CCNAME", &cache));
    assert_eq!(output.status.code(), Some(119));
    assert!(stderr(&output).contains("no valid Kerberos ticket"), "{}", stderr(&output));
    assert!(stderr(&output).contains("run kinit"), "{}", stderr(&output));
    let report = stdout(&output);
    assert!(report.contains("client principal:  none ("), "{report}");
    assert!(report.contains(&format!("  {}: host/localhost", auth_host("AUTH1"))), "targets still shown: {report}");
}

const HELLO: &str = "int hello(void) { return 42; }\n";

/// A job that must run locally, and the text its reason must contain.
struct LocalCase {
    hosts: String,
    args: Vec<&'static str>,
    env: Vec<(&'static str, &'static str)>,
    reason: &'static str,
}

/// Returns the debug lines of a verbose run that explain a local compile.
fn local_reasons(log: &str) -> Vec<&str> {
    log.lines().filter(|line| line.contains("locally") || line.contains("local compile")).collect()
}

#[test]
fn verbose_says_why_each_job_ran_locally() {
    let scratch = Scratch::new();
    scratch.write("why.c", HELLO);
    scratch.write("conftest.c", HELLO);
    scratch.write("main.c", "int main(void) { return 0; }\n");
    let compiled = run(std::process::Command::new("gcc").current_dir(scratch.path()).args(["-c", "main.c", "-o", "main.o"]));
    assert!(compiled.status.success());
    let auth1 = auth_host("AUTH1");

    let case = |hosts: &str, args: &[&'static str], env: &[(&'static str, &'static str)], reason: &'static str| LocalCase {
        hosts: hosts.to_string(),
        args: args.to_vec(),
        env: env.to_vec(),
        reason,
    };
    let cases = [
        case(&auth1, &["-E", "why.c"], &[], "-E"),
        case(&auth1, &["-MM", "why.c"], &[], "-MM"),
        case(&auth1, &["-march=native", "-c", "why.c"], &[], "-march=native"),
        case(&auth1, &["main.o", "-o", "program"], &[], "main.o"),
        case(&auth1, &["-c", "conftest.c"], &[], "conftest"),
        case(&auth1, &["-c", "why.c"], &[("_DISTCC_SAFEGUARD", "1")], "_DISTCC_SAFEGUARD"),
        case("localhost", &["-c", "why.c"], &[], "localhost"),
        case(&format!("{auth1},down"), &["-c", "why.c"], &[], "no usable host"),
        case(&auth1, &["-c", "why.c"], &[("DISTCC_IO_TIMEOUT", "soon")], "DISTCC_IO_TIMEOUT='soon'"),
        case("", &["-c", "why.c"], &[], "no hosts in DISTCC_HOSTS"),
        case(&auth_host("DENY"), &["-c", "why.c"], &[], "access denied"),
    ];
    for LocalCase { hosts, args, env, reason } in cases {
        let mut command = scratch.distcc(&hosts);
        command.arg("gcc").args(&args).env("DISTCC_VERBOSE", "1");
        for (name, value) in &env {
            command.env(name, value);
        }
        let output = run(&mut command);
        let log = stderr(&output);
        assert!(output.status.success(), "{args:?} {env:?}: {log}");
        let reasons = local_reasons(&log);
        assert!(
            reasons.iter().any(|line| line.contains(reason)),
            "{hosts} {args:?} {env:?}: no line saying it ran locally because of '{reason}' in:\n{log}"
        );
        if hosts.ends_with(",down") {
            assert!(log.contains("marked ,down"), "the skipped host is named: {log}");
        }
    }
}

#[test]
fn remote_error_retry_says_why() {
    let scratch = Scratch::new();
    scratch.write("broken_why.c", "int f(void) { return undeclared; }\n");
    let output = run(scratch.distcc(&auth_host("AUTH1")).args(["gcc", "-c", "broken_why.c"]).env("DISTCC_VERBOSE", "1"));
    let log = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{log}");
    assert!(
        log.lines().any(|line| line.contains("exit code 1") && line.contains("confirming with a local compile")),
        "{log}"
    );
}

#[test]
fn quiet_local_jobs_print_nothing() {
    let scratch = Scratch::new();
    scratch.write("quiet.c", HELLO);
    scratch.write("conftest.c", HELLO);
    for args in [vec!["-E", "quiet.c"], vec!["-c", "conftest.c"], vec!["-MM", "quiet.c"]] {
        let output = run(scratch.distcc(&auth_host("AUTH1")).arg("gcc").args(&args));
        assert!(output.status.success(), "{args:?}: {}", stderr(&output));
        assert_eq!(stderr(&output), "", "{args:?}: a job that is not distributable is no problem, so no warning");
    }
}

#[test]
fn fallback_warning_is_identical_between_runs() {
    let scratch = Scratch::new();
    scratch.write("same.c", HELLO);
    let dead = format!("127.0.0.1:{}", dead_port());
    for hosts in [dead.clone(), auth_host("DENY"), auth_host("PLAIN"), format!("{dead} {}", auth_host("DENY"))] {
        let mut outputs = Vec::new();
        for _ in 0..2 {
            let output = run(scratch.distcc(&hosts).args(["gcc", "-c", "same.c", "-o", "same.o"]).env("DISTCC_AUTH_TIMEOUT", "1"));
            assert!(output.status.success(), "{hosts}: {}", stderr(&output));
            outputs.push(stderr(&output));
        }
        assert_eq!(outputs[0], outputs[1], "{hosts}: the warning differs between runs");
        let lines: Vec<&str> = outputs[0].lines().collect();
        assert_eq!(lines.len(), 1, "{hosts}: one warning line: {}", outputs[0]);
        assert!(lines[0].starts_with("distcc-rs: warning: same.c: "), "{}", lines[0]);
        assert!(lines[0].ends_with("; compiling locally"), "{}", lines[0]);
        for entry in hosts.split(' ') {
            assert!(lines[0].contains(&format!("{entry}: ")), "{hosts}: host {entry} not named: {}", lines[0]);
        }
        assert!(!lines[0].contains(".tmp"), "no temporary names: {}", lines[0]);
        assert!(!lines[0].contains("distcc-rs-"), "no temporary names: {}", lines[0]);

        // The later runs skipped the failed hosts during their backoff, and
        // still printed the first run's line.
        let output = run(scratch.distcc(&hosts).args(["gcc", "-c", "same.c", "-o", "same.o"]).env("DISTCC_VERBOSE", "1"));
        let log = stderr(&output);
        assert!(log.contains("backed off"), "{hosts}: the host was not backed off:\n{log}");
        assert!(log.contains("tried again in"), "{hosts}: the log does not say until when:\n{log}");
        assert!(log.lines().any(|line| line.ends_with(lines[0].trim_start_matches("distcc-rs: warning: ").trim_end())), "{log}");
    }
}

#[test]
fn fallback_warning_without_backoff_is_identical() {
    let scratch = Scratch::new();
    scratch.write("nobackoff.c", HELLO);
    let hosts = format!("127.0.0.1:{} {}", dead_port(), auth_host("DENY"));
    let mut outputs = Vec::new();
    for _ in 0..2 {
        let mut command = scratch.distcc(&hosts);
        command.args(["gcc", "-c", "nobackoff.c"]).env("DISTCC_BACKOFF_PERIOD", "0");
        let output = run(&mut command);
        assert!(output.status.success(), "{}", stderr(&output));
        outputs.push(stderr(&output));
    }
    assert_eq!(outputs[0], outputs[1]);
    assert_eq!(outputs[0].lines().count(), 1, "{}", outputs[0]);
}

/// Writes a stand-in for ssh that skips ssh's options and the host name and
/// runs the remote command on this machine, so no real ssh connection is made.
/// Like a real login, the command does not inherit the client's TMPDIR: the
/// scratch directory is private to root, and distccd run as root switches
/// to its own user.
fn write_fake_ssh(scratch: &Scratch) -> std::path::PathBuf {
    let script = "#!/bin/sh\n\
                  unset TMPDIR\n\
                  while [ $# -gt 0 ]; do\n\
                  \x20   case \"$1\" in\n\
                  \x20       -l|-o|-p|-i) shift 2 ;;\n\
                  \x20       -*) shift ;;\n\
                  \x20       *) break ;;\n\
                  \x20   esac\n\
                  done\n\
                  shift\n\
                  exec \"$@\"\n";
    let path = scratch.write("fake-ssh", script);
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    path
}

#[test]
fn check_hosts_covers_lzo_and_ssh_entries() {
    let scratch = Scratch::new();
    let fake_ssh = write_fake_ssh(&scratch);
    let lzo = format!("{},lzo", plain_host("PLAIN"));
    let ssh = "alice@build.example".to_string();
    let broken_ssh = "alice@broken.example:/nonexistent/distccd".to_string();
    let hosts = format!("{lzo} {ssh} {broken_ssh}");

    let mut command = scratch.distcc(&hosts);
    command.arg("--check-hosts").env("DISTCC_SSH", &fake_ssh);
    let output = run(&mut command);
    let report = stdout(&output);
    assert_eq!(output.status.code(), Some(1), "{report}{}", stderr(&output));
    let verdicts = verdict_lines(&report);
    assert_eq!(verdicts.len(), 3, "{report}");
    assert_eq!(verdicts[0], format!("{lzo}: usable: compiled remotely"));
    assert_eq!(verdicts[1], format!("{ssh}: usable: compiled remotely"));
    assert!(verdicts[2].starts_with(&format!("{broken_ssh}: not usable: ")), "{}", verdicts[2]);
    assert!(verdicts[2].contains("exited with status"), "the ssh command's status is named: {}", verdicts[2]);

    let ssh_block = host_block(&report, &ssh);
    assert!(ssh_block.contains("  connect            ssh to alice@build.example ("), "{ssh_block}");
    assert!(!ssh_block.contains("resolve"), "ssh resolves the name itself: {ssh_block}");
}

#[test]
fn check_hosts_reports_backoff() {
    let scratch = Scratch::new();
    scratch.write("backoff.c", HELLO);
    // A plain server listed with ,auth never replies to the handshake, so the
    // compile backs the host off.
    let mut compile = scratch.distcc(&auth_host("PLAIN"));
    compile.args(["gcc", "-c", "backoff.c"]).env("DISTCC_AUTH_TIMEOUT", "1");
    let output = run(&mut compile);
    assert!(output.status.success(), "{}", stderr(&output));

    let plain = plain_host("PLAIN");
    let output = run(scratch.distcc(&plain).arg("--check-hosts"));
    let report = stdout(&output);
    assert_eq!(output.status.code(), Some(0), "a backed-off host that works is usable: {report}");
    let verdicts = verdict_lines(&report);
    assert!(verdicts[0].starts_with(&format!("{plain}: usable: compiled remotely, but compiles skip it for ")), "{}", verdicts[0]);
    let block = host_block(&report, &plain);
    assert!(block.contains("  backoff            backed off "), "{block}");
    assert!(block.contains("after: server did not answer the authentication handshake"), "{block}");

    let output = run(scratch.distcc(&plain).args(["--check-hosts", "--format", "json"]));
    let report: Value = serde_json::from_str(&stdout(&output)).expect("valid JSON");
    let backoff = &report["hosts"][0]["backoff"];
    assert!(backoff["seconds_left"].as_u64().unwrap() > 0, "{backoff}");
    assert!(backoff["reason"].as_str().unwrap().contains("handshake"), "{backoff}");
}
