//! End-to-end jobs of one compile each, against the real test bed: a private
//! Kerberos realm and stock distccd servers with and without `--auth`.

mod common;

use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::Command;
use std::thread;
use std::time::Duration;

use common::{Scratch, assert_same_file, bed, count_log_lines, log_lines_after_wait, run, run_timed, stderr};

const HELLO: &str = "#include <stdio.h>\nint hello(void) { return printf(\"hello\\n\"); }\n";

fn auth_host(name: &str) -> String {
    format!("127.0.0.1:{},auth", bed().port(name))
}

fn plain_host(name: &str) -> String {
    format!("127.0.0.1:{}", bed().port(name))
}

/// Compiles `source` locally with gcc into `reference.o` for comparison.
fn local_reference(scratch: &Scratch, source: &str) -> std::path::PathBuf {
    let reference = scratch.path().join("reference.o");
    let status = Command::new("gcc")
        .current_dir(scratch.path())
        .args(["-O2", "-c", source, "-o"])
        .arg(&reference)
        .status()
        .unwrap();
    assert!(status.success());
    reference
}

fn compile(scratch: &Scratch, hosts: &str, source: &str, object: &str) -> Command {
    let mut command = scratch.distcc(hosts);
    command.args(["gcc", "-O2", "-c", source, "-o", object]);
    command
}

#[test]
fn auth_job_runs_remotely() {
    let scratch = Scratch::new();
    scratch.write("auth_remote.c", HELLO);
    let output = run(compile(&scratch, &auth_host("AUTH1"), "auth_remote.c", "auth_remote.o").env("DISTCC_VERBOSE", "1"));
    let log = stderr(&output);
    assert!(output.status.success(), "{log}");
    assert!(!log.contains("compiling locally"), "{log}");
    assert!(log.contains("server granted access"), "{log}");
    assert_same_file(&scratch.path().join("auth_remote.o"), &local_reference(&scratch, "auth_remote.c"));
    assert_eq!(log_lines_after_wait(&bed().log("AUTH1"), &["COMPILE_OK", "auth_remote.c"], 1), 1);
    assert!(count_log_lines(&bed().log("AUTH1"), &["Successfully authenticated", bed().var("TESTBED_USER_PRINCIPAL")]) >= 1);
}

#[test]
fn plain_job_runs_remotely_and_quietly() {
    let scratch = Scratch::new();
    scratch.write("plain_remote.c", HELLO);
    let output = run(&mut compile(&scratch, &plain_host("PLAIN"), "plain_remote.c", "plain_remote.o"));
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(stderr(&output), "", "a successful job prints nothing");
    assert!(output.stdout.is_empty());
    assert_same_file(&scratch.path().join("plain_remote.o"), &local_reference(&scratch, "plain_remote.c"));
    assert_eq!(log_lines_after_wait(&bed().log("PLAIN"), &["COMPILE_OK", "plain_remote.c"], 1), 1);
}

#[test]
fn plain_server_with_auth_entry_falls_back() {
    let scratch = Scratch::new();
    scratch.write("noauth.c", HELLO);
    let mut command = compile(&scratch, &auth_host("PLAIN"), "noauth.c", "noauth.o");
    command.env("DISTCC_AUTH_TIMEOUT", "1.5");
    let (output, elapsed) = run_timed(&mut command);
    let log = stderr(&output);
    assert!(output.status.success(), "{log}");
    assert!(log.contains("did not answer the authentication handshake within 1.5 s"), "{log}");
    assert!(log.contains("compiling locally"), "{log}");
    assert_eq!(log.lines().count(), 1, "one warning line: {log}");
    assert!(elapsed < Duration::from_millis(1500 + 3000), "took {elapsed:?}");
    assert_same_file(&scratch.path().join("noauth.o"), &local_reference(&scratch, "noauth.c"));
    assert_eq!(log_lines_after_wait(&bed().log("PLAIN"), &["COMPILE_OK", "noauth.c"], 0), 0);
}

/// Forwards one connection at a time to `target`, holding back everything
/// the server sends for `delay` first.
fn delaying_proxy(target: u16, delay: Duration) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    thread::spawn(move || {
        for client in listener.incoming().take(4) {
            let Ok(client) = client else { continue };
            let server = TcpStream::connect(("127.0.0.1", target)).unwrap();
            let (mut client_in, mut server_out) = (client.try_clone().unwrap(), server.try_clone().unwrap());
            thread::spawn(move || {
                let _ = std::io::copy(&mut client_in, &mut server_out);
                let _ = server_out.shutdown(std::net::Shutdown::Write);
            });
            let (mut server_in, mut client_out) = (server, client);
            thread::spawn(move || {
                thread::sleep(delay);
                let _ = std::io::copy(&mut server_in, &mut client_out);
                let _ = client_out.shutdown(std::net::Shutdown::Write);
            });
        }
    });
    port
}

#[test]
fn slow_handshake_within_timeout_is_used() {
    let scratch = Scratch::new();
    scratch.write("slowauth.c", HELLO);
    let port = delaying_proxy(bed().port("AUTH2"), Duration::from_millis(1500));
    let mut command = compile(&scratch, &format!("127.0.0.1:{port},auth"), "slowauth.c", "slowauth.o");
    command.env("DISTCC_AUTH_TIMEOUT", "3");
    let output = run(&mut command);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(stderr(&output), "");
    assert_eq!(log_lines_after_wait(&bed().log("AUTH2"), &["COMPILE_OK", "slowauth.c"], 1), 1);
}

#[test]
fn plain_entry_on_auth_server_falls_back() {
    let scratch = Scratch::new();
    scratch.write("needsauth.c", HELLO);
    let output = run(&mut compile(&scratch, &plain_host("AUTH1"), "needsauth.c", "needsauth.o"));
    let log = stderr(&output);
    assert!(output.status.success(), "{log}");
    assert!(log.contains("may require authentication"), "{log}");
    assert!(log.contains("compiling locally"), "{log}");
    assert_same_file(&scratch.path().join("needsauth.o"), &local_reference(&scratch, "needsauth.c"));
}

#[test]
fn missing_ticket_falls_back() {
    let scratch = Scratch::new();
    scratch.write("noticket.c", HELLO);
    let cache = scratch.path().join("no-such-cache");
    let mut command = compile(&scratch, &auth_host("AUTH1"), "noticket.c", "noticket.o");
    command.env("KRB5CCNAME", format!("FILE:{}", cache.display()));
    let output = run(&mut command);
    let log = stderr(&output);
    assert!(output.status.success(), "{log}");
    assert!(log.contains("no valid Kerberos ticket"), "{log}");
    assert!(log.contains("compiling locally"), "{log}");
    assert!(scratch.path().join("noticket.o").exists());

    let mut strict = compile(&scratch, &auth_host("AUTH1"), "noticket.c", "strict.o");
    strict.env("KRB5CCNAME", format!("FILE:{}", cache.display())).env("DISTCC_FALLBACK", "0");
    let output = run(&mut strict);
    let code = output.status.code().expect("exit code");
    assert!((100..=127).contains(&code), "exit code {code}");
    assert!(stderr(&output).contains("no valid Kerberos ticket"), "{}", stderr(&output));
    assert!(stderr(&output).contains("DISTCC_FALLBACK=0"), "{}", stderr(&output));
    assert!(!scratch.path().join("strict.o").exists());
}

#[test]
fn expired_ticket_falls_back() {
    let scratch = Scratch::new();
    scratch.write("expired.c", HELLO);
    let cache = scratch.path().join("short-cache");
    bed().kinit(&cache, "3s");
    thread::sleep(Duration::from_secs(5));
    let ccname = format!("FILE:{}", cache.display());

    let output = run(compile(&scratch, &auth_host("AUTH1"), "expired.c", "expired.o").env("KRB5CCNAME", &ccname));
    let log = stderr(&output);
    assert!(output.status.success(), "{log}");
    assert!(log.contains("expired") || log.contains("no valid Kerberos ticket"), "{log}");
    assert!(scratch.path().join("expired.o").exists());

    let output = run(compile(&scratch, &auth_host("AUTH1"), "expired.c", "strict.o")
        .env("KRB5CCNAME", &ccname)
        .env("DISTCC_FALLBACK", "0"));
    let code = output.status.code().expect("exit code");
    assert!((100..=127).contains(&code), "exit code {code}");
    assert!(stderr(&output).contains("expired") || stderr(&output).contains("no valid Kerberos ticket"));
    assert!(!scratch.path().join("strict.o").exists());
}

#[test]
fn whitelist_denial_falls_back() {
    let scratch = Scratch::new();
    scratch.write("denied.c", HELLO);
    let output = run(&mut compile(&scratch, &auth_host("DENY"), "denied.c", "denied.o"));
    let log = stderr(&output);
    assert!(output.status.success(), "{log}");
    let expected = format!("access denied by server for {}", bed().var("TESTBED_USER_PRINCIPAL"));
    assert!(log.contains(&expected), "{log}");
    assert_same_file(&scratch.path().join("denied.o"), &local_reference(&scratch, "denied.c"));
    assert_eq!(log_lines_after_wait(&bed().log("DENY"), &["COMPILE_OK", "denied.c"], 0), 0);
}

#[test]
fn service_principal_from_environment() {
    let scratch = Scratch::new();
    scratch.write("service.c", HELLO);
    let output = run(compile(&scratch, &auth_host("SVC"), "service.c", "service.o").env("DISTCC_PRINCIPAL", "distcc"));
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(stderr(&output), "");
    assert_eq!(log_lines_after_wait(&bed().log("SVC"), &["COMPILE_OK", "service.c"], 1), 1);
}

#[test]
fn auth_name_selects_target() {
    let scratch = Scratch::new();
    scratch.write("named.c", HELLO);
    let hosts = format!("127.0.0.1:{},auth=build-auth.test", bed().port("NAMED"));
    let output = run(compile(&scratch, &hosts, "named.c", "named.o").env("DISTCC_VERBOSE", "1"));
    let log = stderr(&output);
    assert!(output.status.success(), "{log}");
    assert!(log.contains("target principal host/build-auth.test"), "{log}");
    assert_eq!(log_lines_after_wait(&bed().log("NAMED"), &["COMPILE_OK", "named.c"], 1), 1);
}

#[test]
fn ipv6_auth_host() {
    if !bed().has("TESTBED_AUTH6_PORT") {
        eprintln!("SKIPPED ipv6_auth_host: the test bed has no IPv6 loopback");
        return;
    }
    let scratch = Scratch::new();
    scratch.write("ipv6.c", HELLO);
    let hosts = format!("[::1]:{},auth", bed().port("AUTH6"));
    let output = run(&mut compile(&scratch, &hosts, "ipv6.c", "ipv6.o"));
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(stderr(&output), "");
    assert_eq!(log_lines_after_wait(&bed().log("AUTH6"), &["COMPILE_OK", "ipv6.c"], 1), 1);
}

#[test]
fn compile_error_reported_once() {
    let scratch = Scratch::new();
    scratch.write("broken.c", "int f(void){return undeclared;}\n");
    let local = Command::new("gcc").current_dir(scratch.path()).args(["-O2", "-c", "broken.c", "-o", "local.o"]).output().unwrap();
    for hosts in [auth_host("AUTH1"), plain_host("PLAIN")] {
        let output = run(&mut compile(&scratch, &hosts, "broken.c", "broken.o"));
        let log = stderr(&output);
        assert_eq!(output.status.code(), Some(1), "{log}");
        assert_eq!(log, stderr(&local), "diagnostics identical to a local compile");
        assert!(!log.contains("distcc"), "{log}");
        assert!(!scratch.path().join("broken.o").exists());
    }
}

#[test]
fn dead_host_then_live_host() {
    let scratch = Scratch::new();
    scratch.write("deadfirst.c", HELLO);
    let dead = TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_port = dead.local_addr().unwrap().port();
    drop(dead);
    let hosts = format!("127.0.0.1:{dead_port} {}", plain_host("PLAIN"));
    let output = run(&mut compile(&scratch, &hosts, "deadfirst.c", "deadfirst.o"));
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(log_lines_after_wait(&bed().log("PLAIN"), &["COMPILE_OK", "deadfirst.c"], 1), 1);
}

#[test]
fn silent_server_times_out() {
    let scratch = Scratch::new();
    scratch.write("silent.c", HELLO);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let holder = thread::spawn(move || {
        // Accept and read everything, never reply.
        let (mut stream, _) = listener.accept().unwrap();
        let mut sink = Vec::new();
        let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
        let _ = stream.read_to_end(&mut sink);
    });
    let mut command = compile(&scratch, &format!("127.0.0.1:{port}"), "silent.c", "silent.o");
    command.env("DISTCC_IO_TIMEOUT", "3");
    let (output, elapsed) = run_timed(&mut command);
    let log = stderr(&output);
    assert!(output.status.success(), "{log}");
    assert!(elapsed < Duration::from_secs(5), "took {elapsed:?}");
    assert!(log.contains("timed out after 3 s (DISTCC_IO_TIMEOUT)"), "{log}");
    assert_same_file(&scratch.path().join("silent.o"), &local_reference(&scratch, "silent.c"));
    drop(holder);
}

#[test]
fn masquerade_link_distributes() {
    let scratch = Scratch::new();
    scratch.write("masq.c", HELLO);
    let masq_dir = scratch.path().join("masq");
    std::fs::create_dir(&masq_dir).unwrap();
    std::os::unix::fs::symlink(common::distcc_rs(), masq_dir.join("gcc")).unwrap();
    let mut command = Command::new(masq_dir.join("gcc"));
    scratch.prepare(&mut command, &plain_host("PLAIN"));
    let path = format!("{}:{}:{}", masq_dir.display(), masq_dir.display(), std::env::var("PATH").unwrap());
    command.env("PATH", path).args(["-O2", "-c", "masq.c", "-o", "masq.o"]);
    let output = run(&mut command);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(log_lines_after_wait(&bed().log("PLAIN"), &["COMPILE_OK", "masq.c"], 1), 1);
    assert_same_file(&scratch.path().join("masq.o"), &local_reference(&scratch, "masq.c"));
}

#[test]
fn implicit_compiler_is_cc() {
    let scratch = Scratch::new();
    scratch.write("implicit.c", HELLO);
    let mut command = scratch.distcc(&plain_host("PLAIN"));
    command.args(["-O2", "-c", "implicit.c", "-o", "implicit.o"]);
    let output = run(&mut command);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(log_lines_after_wait(&bed().log("PLAIN"), &["COMPILE_OK", "implicit.c"], 1), 1);
}

#[test]
fn local_job_passes_status_through() {
    let scratch = Scratch::new();
    scratch.write("main.c", "int main(void) { return 0; }\n");
    let mut command = scratch.distcc(&plain_host("PLAIN"));
    command.args(["gcc", "main.c", "-o", "prog"]);
    let output = run(&mut command);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(Path::new(&scratch.path().join("prog")).exists());
    let mut failing = scratch.distcc(&plain_host("PLAIN"));
    failing.args(["gcc", "missing.c", "-o", "prog"]);
    let output = run(&mut failing);
    let local = Command::new("gcc").current_dir(scratch.path()).args(["missing.c", "-o", "prog"]).output().unwrap();
    assert_eq!(output.status.code(), local.status.code());
    assert_eq!(output.stderr, local.stderr);
}

#[test]
fn invalid_host_list_compiles_locally() {
    let scratch = Scratch::new();
    scratch.write("badlist.c", HELLO);
    let output = run(&mut compile(&scratch, "127.0.0.1:notaport", "badlist.c", "badlist.o"));
    let log = stderr(&output);
    assert!(output.status.success(), "{log}");
    assert!(log.contains("127.0.0.1:notaport"), "{log}");
    assert!(scratch.path().join("badlist.o").exists());
}

#[test]
fn log_file_receives_warnings() {
    let scratch = Scratch::new();
    scratch.write("logged.c", HELLO);
    let log_path = scratch.path().join("distcc.log");
    let output = run(compile(&scratch, "127.0.0.1:notaport", "logged.c", "logged.o").env("DISTCC_LOG", &log_path));
    assert!(output.status.success());
    assert_eq!(stderr(&output), "", "warnings go to DISTCC_LOG");
    let logged = std::fs::read_to_string(&log_path).unwrap();
    assert!(logged.contains("notaport"), "{logged}");
}

#[test]
fn output_naming_source_is_refused() {
    let scratch = Scratch::new();
    let source = scratch.write("same.c", HELLO);
    let output = run(&mut compile(&scratch, &plain_host("PLAIN"), "same.c", "./same.c"));
    let local = Command::new("gcc").current_dir(scratch.path()).args(["-O2", "-c", "same.c", "-o", "./same.c"]).output().unwrap();
    assert_eq!(output.status.code(), local.status.code(), "{}", stderr(&output));
    assert_eq!(std::fs::read_to_string(&source).unwrap(), HELLO, "the source is intact");
}

#[test]
fn deleted_working_directory_still_compiles() {
    let scratch = Scratch::new();
    let source = scratch.write("gone.c", HELLO);
    let doomed = scratch.path().join("doomed");
    std::fs::create_dir(&doomed).unwrap();
    let object = scratch.path().join("gone.o");
    // The shell enters the directory and removes it before it runs distcc-rs.
    let mut command = Command::new("sh");
    scratch.prepare(&mut command, &plain_host("PLAIN"));
    command
        .args(["-c", "cd \"$1\" && rmdir \"$1\" && shift && exec \"$@\"", "sh"])
        .arg(&doomed)
        .arg(common::distcc_rs())
        .args(["gcc", "-c"])
        .arg(&source)
        .arg("-o")
        .arg(&object);
    let output = run(&mut command);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(object.exists());
}

#[test]
fn corrupt_credential_cache_falls_back() {
    let scratch = Scratch::new();
    scratch.write("corrupt.c", HELLO);
    let text_cache = scratch.write("text.cc", "this is not a credential cache\n");
    let mut random = vec![0u8; 97];
    // Fixed pseudo-random bytes: such a file crashed MIT Kerberos 1.20 inside
    // gss_acquire_cred before distcc-rs checked the file's header.
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    for byte in random.iter_mut() {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        *byte = state as u8;
    }
    let random_cache = scratch.path().join("random.cc");
    std::fs::write(&random_cache, &random).unwrap();
    for cache in [&text_cache, &random_cache] {
        let ccname = format!("FILE:{}", cache.display());
        let output = run(compile(&scratch, &auth_host("AUTH1"), "corrupt.c", "corrupt.o").env("KRB5CCNAME", &ccname));
        let log = stderr(&output);
        assert!(output.status.success(), "{}: {:?} {log}", cache.display(), output.status);
        assert!(log.contains("compiling locally"), "{log}");
        assert!(scratch.path().join("corrupt.o").exists());
        std::fs::remove_file(scratch.path().join("corrupt.o")).unwrap();

        let mut principal = scratch.distcc(&auth_host("AUTH1"));
        principal.env("KRB5CCNAME", &ccname).arg("--show-principal");
        let output = run(&mut principal);
        assert_eq!(output.status.code(), Some(119), "{:?} {}", output.status, stderr(&output));
    }
}

#[test]
fn unknown_service_principal_backs_off_nothing() {
    let scratch = Scratch::new();
    scratch.write("typo.c", HELLO);
    let output = run(compile(&scratch, &auth_host("AUTH2"), "typo.c", "typo.o").env("DISTCC_PRINCIPAL", "nosuchservice"));
    let log = stderr(&output);
    assert!(output.status.success(), "{log}");
    assert!(log.contains("nosuchservice"), "{log}");
    assert!(log.contains("compiling locally"), "{log}");

    // The client's mistake must not keep the healthy server from the next job.
    let output = run(compile(&scratch, &auth_host("AUTH2"), "typo.c", "typo2.o").env("DISTCC_VERBOSE", "1"));
    let log = stderr(&output);
    assert!(output.status.success(), "{log}");
    assert!(!log.contains("compiling locally"), "{log}");
    assert_eq!(log_lines_after_wait(&bed().log("AUTH2"), &["COMPILE_OK", "typo.c"], 1), 1);
}

#[test]
fn wrong_principal_names_the_cause() {
    let scratch = Scratch::new();
    scratch.write("wrongkey.c", HELLO);
    // SVC's keytab contains distcc/localhost only; without DISTCC_PRINCIPAL the
    // client asks for host/localhost, which the server cannot accept.
    let output = run(&mut compile(&scratch, &auth_host("SVC"), "wrongkey.c", "wrongkey.o"));
    let log = stderr(&output);
    assert!(output.status.success(), "{log}");
    assert!(log.contains("instead of accepting the ticket for host/localhost"), "{log}");
    assert!(log.contains("compiling locally"), "{log}");
    assert!(scratch.path().join("wrongkey.o").exists());
}
