//! Parallel builds against stock distccd: host slots shared between
//! processes (and with the stock distcc client), local slots, backoff, the
//! state directory, `--show-hosts`/`-j` and the records that stock
//! `distccmon-text` reads.
//!
//! Jobs on a server are counted from outside by a TCP proxy in front of it
//! (`CountingProxy`). Hosts that fail are a port where nothing listens
//! (connection refused) or a listener that closes every connection at once
//! (`ClosingHost`), which also counts the connection attempts.

mod common;
mod slots_support;

use std::ffi::OsString;
use std::fs;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use slots_support::*;

const NEEDED: &[&str] = &["distccd", "gcc", "make"];

/// Returns the Lua sources, or prints why the test is skipped.
fn lua_or_skip(test: &str, extra: &[&str]) -> Option<std::path::PathBuf> {
    let mut needed = NEEDED.to_vec();
    needed.extend_from_slice(extra);
    if let Some(program) = missing_program(&needed) {
        skip(test, &format!("{program} is not installed"));
        return None;
    }
    let sources = lua_sources();
    if sources.is_none() {
        skip(test, "Lua 5.4 sources not found (scripts/sources lua, or the lua-src crate in cargo's registry)");
    }
    sources
}

/// Programs that `scripts/testbed` runs.
const BED_PROGRAMS: &[&str] = &["krb5kdc", "kdb5_util", "kadmin.local", "kinit", "distccd", "python3"];

/// Ports of the test bed's two `--auth` servers and the Kerberos settings a
/// client needs for them, or `None` (with a message) when the programs
/// that run the bed are not installed.
fn auth_servers_or_skip(test: &str) -> Option<(u16, u16, Env)> {
    if let Some(program) = missing_program(BED_PROGRAMS) {
        skip(test, &format!("{program} is not installed; scripts/install-deps installs the test bed's programs"));
        return None;
    }
    let bed = common::bed();
    let kerberos = ["KRB5_CONFIG", "KRB5CCNAME"].into_iter().map(|name| (name, Some(OsString::from(bed.var(name))))).collect();
    Some((bed.port("AUTH1"), bed.port("AUTH2"), kerberos))
}

fn assert_success(what: &str, output: &std::process::Output) {
    assert!(
        output.status.success(),
        "{what} failed with {}:\nstdout:\n{}\nstderr:\n{}",
        output.status,
        text(&output.stdout),
        text(&output.stderr)
    );
}

#[test]
fn make_j8_two_hosts_limit_two() {
    let Some(sources) = lua_or_skip("make_j8_two_hosts_limit_two", &[]) else { return };
    let Some((first, second, kerberos)) = auth_servers_or_skip("make_j8_two_hosts_limit_two") else { return };
    let _exclusive = exclusive_test_lock();
    let tmp = tempfile::tempdir().unwrap();
    let reference = reference_build(&sources, &shared_temp_root());
    let first_proxy = CountingProxy::start(first);
    let second_proxy = CountingProxy::start(second);

    let build = tmp.path().join("build");
    let objects = write_lua_makefile(&build, &sources, &[]);
    let hosts = format!("127.0.0.1:{}/2,auth 127.0.0.1:{}/2,auth", first_proxy.port, second_proxy.port);
    let mut env = client_env(&tmp.path().join("distcc"), &hosts);
    env.extend(kerberos);
    let cc = format!("{} gcc", distcc_rs().display());
    let (output, elapsed) = run_make(&build, 8, &cc, &env);
    assert_success("make -j8", &output);
    eprintln!(
        "make -j8: {:.1} s; first host {} jobs, at most {} at once; second host {} jobs, at most {} at once",
        elapsed.as_secs_f64(),
        first_proxy.counts.total(),
        first_proxy.counts.max_open(),
        second_proxy.counts.total(),
        second_proxy.counts.max_open()
    );

    let compiled = objects.len();
    assert_eq!(first_proxy.counts.total() + second_proxy.counts.total(), compiled, "every object compiled remotely");
    assert!(first_proxy.counts.max_open() <= 2, "first host had {} jobs at once", first_proxy.counts.max_open());
    assert!(second_proxy.counts.max_open() <= 2, "second host had {} jobs at once", second_proxy.counts.max_open());
    assert!(first_proxy.counts.max_open() == 2 || second_proxy.counts.max_open() == 2, "no host ever had two jobs: the slots were not used");
    assert_eq!(differing_objects(&build, &reference, &objects), Vec::<String>::new(), "objects differ from a local build");
    assert_eq!(run_luatest(&build), LUATEST_OUTPUT);
    assert!(output.stderr.is_empty(), "unexpected messages:\n{}", text(&output.stderr));
}

#[test]
fn dead_first_host_costs_little() {
    let Some(sources) = lua_or_skip("dead_first_host_costs_little", &[]) else { return };
    let Some((first, second, kerberos)) = auth_servers_or_skip("dead_first_host_costs_little") else { return };
    let _exclusive = exclusive_test_lock();
    let tmp = tempfile::tempdir().unwrap();
    let reference = reference_build(&sources, &shared_temp_root());
    let dead = ClosingHost::start();
    let live_hosts = format!("127.0.0.1:{first}/2,auth 127.0.0.1:{second}/2,auth");
    let cc = format!("{} gcc", distcc_rs().display());

    // One build without and one with the dead host listed first. The wall
    // time ratio is a speed target, measured by scripts/bench; here only the
    // behaviour is checked: the build completes and is correct, and the dead
    // host costs a handful of connection attempts, not one per job.
    for with_dead in [false, true] {
        let name = format!("build-{with_dead}");
        let build = tmp.path().join(&name);
        let objects = write_lua_makefile(&build, &sources, &[]);
        let hosts = if with_dead { format!("127.0.0.1:{} {live_hosts}", dead.port) } else { live_hosts.clone() };
        let mut env = client_env(&tmp.path().join(format!("distcc-{name}")), &hosts);
        env.extend(kerberos.clone());
        let attempts_before = dead.counts.total();
        let (output, elapsed) = run_make(&build, 8, &cc, &env);
        assert_success(&name, &output);
        assert_eq!(differing_objects(&build, &reference, &objects), Vec::<String>::new(), "{name}: objects differ");
        assert_eq!(run_luatest(&build), LUATEST_OUTPUT);
        let attempts = dead.counts.total() - attempts_before;
        eprintln!("{name}: {:.2} s, dead host tried {attempts} times", elapsed.as_secs_f64());
        if with_dead {
            assert!(attempts >= 1, "the dead host was never tried: it is listed first");
            assert!(attempts <= 5, "the dead host was tried {attempts} times in one build");
        } else {
            assert_eq!(attempts, 0, "the dead host is not in the list");
        }
    }
}

/// Compiles one small source with distcc-rs and returns the output and the time.
fn compile_one(dir: &Path, name: &str, env: &[(&str, Option<OsString>)]) -> (std::process::Output, Duration) {
    fs::write(dir.join(format!("{name}.c")), format!("int {name}(int x) {{ return x * 3 + 1; }}\n")).unwrap();
    let source = format!("{name}.c");
    let object = format!("{name}.o");
    run_client(dir, &distcc_rs(), &["gcc", "-O2", "-c", &source, "-o", &object], env)
}

fn local_object(dir: &Path, name: &str) -> Vec<u8> {
    let status = Command::new("gcc")
        .current_dir(dir)
        .args(["-O2", "-c", &format!("{name}.c"), "-o", &format!("{name}.local.o")])
        .status()
        .unwrap();
    assert!(status.success());
    fs::read(dir.join(format!("{name}.local.o"))).unwrap()
}

#[test]
fn zero_backoff_dead_host_alone() {
    let _shared = shared_test_lock();
    if let Some(program) = missing_program(&["gcc"]) {
        return skip("zero_backoff_dead_host_alone", &format!("{program} is not installed"));
    }
    let tmp = tempfile::tempdir().unwrap();
    let closing = ClosingHost::start();
    let refused = refused_port();
    for (kind, hosts) in [("closing", format!("127.0.0.1:{}", closing.port)), ("refused", format!("127.0.0.1:{refused}"))] {
        let distcc_dir = tmp.path().join(format!("distcc-{kind}"));
        let env = with(client_env(&distcc_dir, &hosts), "DISTCC_BACKOFF_PERIOD", Some("0"));
        for job in 0..3 {
            let name = format!("{kind}{job}");
            let before = closing.counts.total();
            let (output, elapsed) = compile_one(tmp.path(), &name, &env);
            assert_success(&name, &output);
            assert_eq!(fs::read(tmp.path().join(format!("{name}.o"))).unwrap(), local_object(tmp.path(), &name));
            assert!(elapsed < Duration::from_secs(5), "{name} took {elapsed:?}");
            let attempts = closing.counts.total() - before;
            if kind == "closing" {
                assert!((1..=3).contains(&attempts), "{name}: {attempts} connection attempts");
            }
            let stderr = text(&output.stderr);
            assert!(stderr.contains("compiling locally"), "{name}: no fallback message:\n{stderr}");
        }
        let backoff_files: Vec<_> = fs::read_dir(distcc_dir.join("lock"))
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with("backoff_"))
            .collect();
        assert!(backoff_files.is_empty(), "DISTCC_BACKOFF_PERIOD=0 wrote {backoff_files:?}");
    }
}

#[test]
fn zero_backoff_dead_and_live_host() {
    let _shared = shared_test_lock();
    if let Some(program) = missing_program(&["gcc", "distccd"]) {
        return skip("zero_backoff_dead_and_live_host", &format!("{program} is not installed"));
    }
    let tmp = tempfile::tempdir().unwrap();
    let server = Distccd::start(tmp.path(), 4);
    let live = CountingProxy::start(server.port);
    let dead = ClosingHost::start();
    let hosts = format!("127.0.0.1:{}/4 127.0.0.1:{}/4", dead.port, live.port);
    let env = with(client_env(&tmp.path().join("distcc"), &hosts), "DISTCC_BACKOFF_PERIOD", Some("0"));
    let jobs = 6;
    let handles: Vec<_> = (0..jobs)
        .map(|job| {
            let dir = tmp.path().to_path_buf();
            let env = env.clone();
            thread::spawn(move || compile_one(&dir, &format!("both{job}"), &env))
        })
        .collect();
    for (job, handle) in handles.into_iter().enumerate() {
        let (output, _) = handle.join().unwrap();
        assert_success(&format!("job {job}"), &output);
        let name = format!("both{job}");
        assert_eq!(fs::read(tmp.path().join(format!("{name}.o"))).unwrap(), local_object(tmp.path(), &name));
    }
    assert_eq!(live.counts.total(), jobs, "every job compiled on the live host");
    assert!(dead.counts.total() >= 1, "the dead host, listed first, was never tried");
    assert!(dead.counts.total() <= jobs, "the dead host was tried {} times by {jobs} jobs", dead.counts.total());
}

/// Writes a stand-in linker that records when it runs: `start NAME TIME`
/// and `end NAME TIME` lines, NAME being the program it links.
fn write_slow_linker(path: &Path, log: &Path, seconds: &str) {
    write_script(
        path,
        &format!(
            "#!/bin/sh\nname=$3\necho \"start $name $(date +%s.%N)\" >> {log}\nsleep {seconds}\necho \"end $name $(date +%s.%N)\" >> {log}\n",
            log = log.display()
        ),
    );
}

#[test]
fn localslots_one_serializes_local_jobs() {
    let _shared = shared_test_lock();
    let tmp = tempfile::tempdir().unwrap();
    let log = tmp.path().join("intervals.log");
    // Link steps run locally. distcc-rs runs the linker as a child and
    // keeps the slot locked until it exits.
    let linker = tmp.path().join("slowld");
    write_slow_linker(&linker, &log, "0.6");
    let hosts = format!("--localslots=1 127.0.0.1:{}", refused_port());
    let env = client_env(&tmp.path().join("distcc"), &hosts);

    run_parallel(tmp.path(), &env, 3, |job| {
        vec![linker.display().to_string(), "a.o".into(), "-o".into(), format!("prog{job}")]
    });

    assert_no_overlap(&log, 3);
}

#[test]
fn localslots_default_allows_four() {
    let _shared = shared_test_lock();
    let tmp = tempfile::tempdir().unwrap();
    let log = tmp.path().join("intervals.log");
    let linker = tmp.path().join("slowld");
    write_slow_linker(&linker, &log, "2");
    let env = client_env(&tmp.path().join("distcc"), &format!("127.0.0.1:{}", refused_port()));

    run_parallel(tmp.path(), &env, 5, |job| {
        vec![linker.display().to_string(), "a.o".into(), "-o".into(), format!("prog{job}")]
    });

    let runs: Vec<(f64, f64)> = intervals(&fs::read_to_string(&log).unwrap()).into_values().collect();
    assert_eq!(runs.len(), 5, "{runs:?}");
    let max_at_once = runs
        .iter()
        .map(|(start, _)| runs.iter().filter(|(s, e)| s <= start && start < e).count())
        .max()
        .unwrap();
    assert_eq!(max_at_once, 4, "local jobs at once with the default --localslots: {runs:?}");
}

#[test]
fn state_dir_with_missing_parents_is_created() {
    let _shared = shared_test_lock();
    if let Some(program) = missing_program(&["gcc", "distccd"]) {
        return skip("state_dir_with_missing_parents_is_created", &format!("{program} is not installed"));
    }
    let tmp = tempfile::tempdir().unwrap();
    let server = Distccd::start(tmp.path(), 2);
    let proxy = CountingProxy::start(server.port);
    let distcc_dir = tmp.path().join("x/a/b");
    let env = client_env(&distcc_dir, &format!("127.0.0.1:{}", proxy.port));
    let (output, _) = compile_one(tmp.path(), "parents", &env);
    assert_success("compile", &output);
    assert!(distcc_dir.join("lock").is_dir());
    assert!(distcc_dir.join("state").is_dir());
    assert_eq!(proxy.counts.total(), 1, "the job was not distributed");
    assert!(output.stderr.is_empty(), "{}", text(&output.stderr));
}

#[test]
fn state_dir_without_home_is_private() {
    let _shared = shared_test_lock();
    if let Some(program) = missing_program(&["gcc", "distccd"]) {
        return skip("state_dir_without_home_is_private", &format!("{program} is not installed"));
    }
    let tmp = tempfile::tempdir().unwrap();
    let server = Distccd::start(tmp.path(), 2);
    let proxy = CountingProxy::start(server.port);
    let private_tmp = tmp.path().join("tmp");
    fs::create_dir(&private_tmp).unwrap();
    let env = client_env(tmp.path(), &format!("127.0.0.1:{}", proxy.port));
    let env = with(env, "DISTCC_DIR", None);
    let env = with(env, "HOME", None);
    let env = with(env, "TMPDIR", Some(private_tmp.to_str().unwrap()));
    let (first, _) = compile_one(tmp.path(), "nohome1", &env);
    let (second, _) = compile_one(tmp.path(), "nohome2", &env);
    assert_success("first compile", &first);
    assert_success("second compile", &second);
    assert_eq!(proxy.counts.total(), 2, "jobs were not distributed");
    let first_err = text(&first.stderr);
    assert_eq!(first_err.lines().count(), 1, "{first_err}");
    assert!(first_err.contains("private state directory"), "{first_err}");
    assert!(second.stderr.is_empty(), "the fallback was announced twice:\n{}", text(&second.stderr));
    let uid = unsafe { libc::geteuid() };
    assert!(private_tmp.join(format!("distcc-rs-{uid}/lock")).is_dir());
}

#[test]
fn state_dir_that_is_a_file_compiles_locally() {
    let _shared = shared_test_lock();
    if let Some(program) = missing_program(&["gcc", "distccd"]) {
        return skip("state_dir_that_is_a_file_compiles_locally", &format!("{program} is not installed"));
    }
    let tmp = tempfile::tempdir().unwrap();
    let server = Distccd::start(tmp.path(), 2);
    let proxy = CountingProxy::start(server.port);
    let file = tmp.path().join("not-a-dir");
    fs::write(&file, "").unwrap();
    let env = client_env(&file, &format!("127.0.0.1:{}", proxy.port));
    let (output, _) = compile_one(tmp.path(), "filedir", &env);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    let stderr = text(&output.stderr);
    assert_eq!(stderr.lines().count(), 1, "expected one error line:\n{stderr}");
    assert!(stderr.contains(&format!("DISTCC_DIR '{}'", file.display())), "{stderr}");
    assert!(stderr.contains("not a directory"), "{stderr}");
    assert_eq!(fs::read(tmp.path().join("filedir.o")).unwrap(), local_object(tmp.path(), "filedir"));
    assert_eq!(proxy.counts.total(), 0);
}

#[test]
fn show_hosts_rejects_bad_lists() {
    let _shared = shared_test_lock();
    if let Some(program) = missing_program(&["gcc"]) {
        return skip("show_hosts_rejects_bad_lists", &format!("{program} is not installed"));
    }
    let tmp = tempfile::tempdir().unwrap();
    let cases = [
        ("127.0.0.1:notaport", "'127.0.0.1:notaport'"),
        ("127.0.0.1:99999", "'127.0.0.1:99999'"),
        ("127.0.0.1:3632/0", "'127.0.0.1:3632/0'"),
        ("127.0.0.1:3632,bogus", "'127.0.0.1:3632,bogus'"),
        ("", "no hosts in DISTCC_HOSTS"),
    ];
    for (index, (list, named)) in cases.iter().enumerate() {
        let env = client_env(&tmp.path().join("distcc"), list);
        for option in ["--show-hosts", "-j"] {
            let (output, _) = run_client(tmp.path(), &distcc_rs(), &[option], &env);
            assert_ne!(output.status.code(), Some(0), "{option} with {list:?} succeeded");
            assert!(output.stdout.is_empty(), "{option} with {list:?} printed {}", text(&output.stdout));
            let stderr = text(&output.stderr);
            assert!(stderr.contains(named), "{option} with {list:?}: message does not name it:\n{stderr}");
        }
        let name = format!("badlist{index}");
        let (output, _) = compile_one(tmp.path(), &name, &env);
        assert_success(&format!("compile with {list:?}"), &output);
        assert!(text(&output.stderr).contains(named), "{}", text(&output.stderr));
        assert_eq!(fs::read(tmp.path().join(format!("{name}.o"))).unwrap(), local_object(tmp.path(), &name));
    }
}

#[test]
fn show_hosts_and_slot_count() {
    let _shared = shared_test_lock();
    let tmp = tempfile::tempdir().unwrap();
    let env = client_env(&tmp.path().join("distcc"), "--localslots=3 a/3 localhost b,down [::1]:4000/5,lzo c,auth");
    let (output, _) = run_client(tmp.path(), &distcc_rs(), &["--show-hosts"], &env);
    assert_success("--show-hosts", &output);
    assert_eq!(text(&output.stdout), "a:3632/3\nlocalhost/2\nb:3632/4,down\n[::1]:4000/5,lzo\nc:3632/4,auth\n");
    let (output, _) = run_client(tmp.path(), &distcc_rs(), &["-j"], &env);
    assert_success("-j", &output);
    assert_eq!(text(&output.stdout), "14\n");

    // Without ,down entries the count equals stock distcc's.
    let Some(stock) = which("distcc") else {
        return skip("show_hosts_and_slot_count (comparison with stock distcc)", "distcc is not installed");
    };
    let env = client_env(&tmp.path().join("distcc"), "--localslots=3 a/3 localhost c:5/7,lzo d,auth");
    let (ours, _) = run_client(tmp.path(), &distcc_rs(), &["-j"], &env);
    let (theirs, _) = run_client(tmp.path(), &stock, &["-j"], &env);
    assert_success("-j", &ours);
    assert_eq!(text(&ours.stdout), "16\n");
    assert_eq!(text(&ours.stdout), text(&theirs.stdout));
}

#[test]
fn backoff_files_shared_with_stock_client() {
    let _shared = shared_test_lock();
    if let Some(program) = missing_program(&["gcc", "distcc"]) {
        return skip("backoff_files_shared_with_stock_client", &format!("{program} is not installed"));
    }
    let tmp = tempfile::tempdir().unwrap();
    let dead = ClosingHost::start();
    let hosts = format!("127.0.0.1:{}", dead.port);
    let stock = which("distcc").unwrap();

    // distcc-rs marks the host and logs why; stock distcc then skips it.
    let env = client_env(&tmp.path().join("rs-first"), &hosts);
    let (output, _) = compile_one(tmp.path(), "mark_rs", &with(env.clone(), "DISTCC_VERBOSE", Some("1")));
    assert_success("distcc-rs", &output);
    assert_eq!(dead.counts.total(), 1);
    let stderr = text(&output.stderr);
    assert!(stderr.contains(&format!("backing off 127.0.0.1:{} after: ", dead.port)), "{stderr}");
    assert!(tmp.path().join(format!("rs-first/lock/backoff_tcp_127.0.0.1_{}_0", dead.port)).is_file());
    fs::write(tmp.path().join("stock1.c"), "int f(void) { return 1; }\n").unwrap();
    let (output, _) = run_client(tmp.path(), &stock, &["gcc", "-c", "stock1.c", "-o", "stock1.o"], &env);
    assert_success("stock distcc", &output);
    assert_eq!(dead.counts.total(), 1, "stock distcc ignored the backoff that distcc-rs recorded");

    // Stock distcc marks the host; distcc-rs then skips it. Stock distcc
    // 3.4 does not create DISTCC_DIR itself.
    fs::create_dir(tmp.path().join("stock-first")).unwrap();
    let env = client_env(&tmp.path().join("stock-first"), &hosts);
    fs::write(tmp.path().join("stock2.c"), "int g(void) { return 2; }\n").unwrap();
    let (output, _) = run_client(tmp.path(), &stock, &["gcc", "-c", "stock2.c", "-o", "stock2.o"], &env);
    assert_success("stock distcc", &output);
    assert_eq!(dead.counts.total(), 2);
    let verbose = with(env, "DISTCC_VERBOSE", Some("1"));
    let (output, _) = compile_one(tmp.path(), "skip_rs", &verbose);
    assert_success("distcc-rs", &output);
    assert_eq!(dead.counts.total(), 2, "distcc-rs ignored the backoff that stock distcc recorded");
    let stderr = text(&output.stderr);
    assert!(stderr.contains(&format!("skipping 127.0.0.1:{}", dead.port)), "{stderr}");
}

#[test]
fn stock_and_rs_share_one_host() {
    let Some(sources) = lua_or_skip("stock_and_rs_share_one_host", &["distcc"]) else { return };
    let _exclusive = exclusive_test_lock();
    let tmp = tempfile::tempdir().unwrap();
    let reference = reference_build(&sources, &shared_temp_root());
    let server = Distccd::start(tmp.path(), 4);
    let proxy = CountingProxy::start(server.port);
    let build = tmp.path().join("build");
    let stock = format!("{} gcc", which("distcc").unwrap().display());
    let ours = format!("{} gcc", distcc_rs().display());
    let objects = write_lua_makefile(&build, &sources, &[&stock, &ours]);
    // Stock distcc 3.4 does not create DISTCC_DIR, and without it runs
    // every job locally without a lock.
    fs::create_dir(tmp.path().join("distcc")).unwrap();
    let env = client_env(&tmp.path().join("distcc"), &format!("127.0.0.1:{}/2", proxy.port));
    let (output, elapsed) = run_make(&build, 8, &ours, &env);
    assert_success("make -j8 with both clients", &output);
    eprintln!(
        "both clients: {:.1} s, {} jobs, at most {} at once",
        elapsed.as_secs_f64(),
        proxy.counts.total(),
        proxy.counts.max_open()
    );
    assert_eq!(proxy.counts.total(), objects.len(), "every object compiled remotely");
    assert!(proxy.counts.max_open() <= 2, "the /2 host had {} jobs at once", proxy.counts.max_open());
    assert_eq!(proxy.counts.max_open(), 2, "the host never had two jobs at once");
    assert_eq!(differing_objects(&build, &reference, &objects), Vec::<String>::new());
    assert_eq!(run_luatest(&build), LUATEST_OUTPUT);
}

#[test]
fn distccmon_text_lists_running_jobs() {
    let Some(sources) = lua_or_skip("distccmon_text_lists_running_jobs", &["distccmon-text"]) else { return };
    let _exclusive = exclusive_test_lock();
    let tmp = tempfile::tempdir().unwrap();
    let server = Distccd::start(tmp.path(), 4);
    let build = tmp.path().join("build");
    let objects = write_lua_makefile(&build, &sources, &[]);
    let distcc_dir = tmp.path().join("distcc");
    let env = client_env(&distcc_dir, &format!("127.0.0.1:{}/2", server.port));

    // The monitor needs the state directory before the first job creates it.
    fs::create_dir_all(distcc_dir.join("state")).unwrap();
    let mut monitor = Command::new("distccmon-text");
    monitor.arg("1").stdout(Stdio::piped()).stderr(Stdio::null());
    apply_env(&mut monitor, &env);
    let mut monitor = monitor.spawn().unwrap();
    let lines = Arc::new(Mutex::new(Vec::<String>::new()));
    let reader = {
        let stdout = monitor.stdout.take().unwrap();
        let lines = Arc::clone(&lines);
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                lines.lock().unwrap().push(line);
            }
        })
    };
    let cc = format!("{} gcc", distcc_rs().display());
    let (output, _) = run_make(&build, 4, &cc, &env);
    // SAFETY: signals only the monitor this test started.
    unsafe { libc::kill(monitor.id() as i32, libc::SIGTERM) };
    monitor.wait().unwrap();
    reader.join().unwrap();
    assert_success("make -j4", &output);

    let lines = lines.lock().unwrap();
    let host = format!("127.0.0.1:{}", server.port);
    let sources: Vec<String> = objects.iter().map(|o| o.replace(".o", ".c")).collect();
    let remote_lines: Vec<&String> =
        lines.iter().filter(|l| l.contains(&host) && sources.iter().any(|s| l.contains(s.as_str()))).collect();
    eprintln!("distccmon-text printed {} lines, {} of remote jobs; first: {:?}", lines.len(), remote_lines.len(), remote_lines.first());
    assert!(!remote_lines.is_empty(), "distccmon-text never showed a remote job:\n{}", lines.join("\n"));
    // Remote jobs remove their records, and so do local jobs (here the link
    // of `luatest`) when their compiler exits. A record of a killed client
    // stays until the next job sweeps records of ended processes, so any
    // record left must be a local one.
    for entry in fs::read_dir(distcc_dir.join("state")).unwrap().flatten() {
        let record = fs::read(entry.path()).unwrap();
        assert_eq!(record.len(), 296, "{:?}", entry.file_name());
        let host = &record[152..280];
        let host = &host[..host.iter().position(|b| *b == 0).unwrap()];
        assert_eq!(host, b"localhost", "a remote job left its record {:?}", entry.file_name());
    }
}

/// Writes a stand-in compiler that logs when it preprocesses (`-E`): it
/// records the interval, sleeps, and prints the source. Any other call writes an
/// empty object to the file after `-o`.
fn write_slow_preprocessor(path: &Path, log: &Path) {
    write_script(
        path,
        &format!(
            r#"#!/bin/sh
for arg; do last=$arg; done
case " $* " in
*" -E "*)
    echo "start $last $(date +%s.%N)" >> {log}
    sleep 0.6
    echo "end $last $(date +%s.%N)" >> {log}
    cat "$last"
    ;;
*)
    while [ $# -gt 0 ]; do
        if [ "$1" = -o ]; then : > "$2"; fi
        shift
    done
    ;;
esac
"#,
            log = log.display()
        ),
    );
}

fn assert_no_overlap(log: &Path, expected_runs: usize) {
    let runs = intervals(&fs::read_to_string(log).unwrap());
    assert_eq!(runs.len(), expected_runs, "{runs:?}");
    let mut sorted: Vec<(f64, f64)> = runs.values().copied().collect();
    sorted.sort_by(|a, b| a.0.total_cmp(&b.0));
    for pair in sorted.windows(2) {
        assert!(pair[1].0 >= pair[0].1, "two runs overlapped: {sorted:?}");
    }
}

/// Runs `jobs` distcc-rs commands at once, each with the arguments that
/// `args(job)` returns, and asserts that all succeed.
fn run_parallel(dir: &Path, env: &[(&'static str, Option<OsString>)], jobs: usize, args: impl Fn(usize) -> Vec<String>) {
    let handles: Vec<_> = (0..jobs)
        .map(|job| {
            let (dir, env, args) = (dir.to_path_buf(), env.to_vec(), args(job));
            thread::spawn(move || {
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                run_client(&dir, &distcc_rs(), &args, &env)
            })
        })
        .collect();
    for (job, handle) in handles.into_iter().enumerate() {
        assert_success(&format!("job {job}"), &handle.join().unwrap().0);
    }
}

#[test]
fn localslots_cpp_one_serializes_preprocessing() {
    let _shared = shared_test_lock();
    let tmp = tempfile::tempdir().unwrap();
    let cpp = tmp.path().join("slowcpp");
    for job in 0..3 {
        fs::write(tmp.path().join(format!("p{job}.c")), "int x;\n").unwrap();
    }

    // Preprocess-only jobs.
    let log = tmp.path().join("only-e.log");
    write_slow_preprocessor(&cpp, &log);
    let hosts = format!("--localslots_cpp=1 127.0.0.1:{}", refused_port());
    let env = client_env(&tmp.path().join("distcc-e"), &hosts);
    run_parallel(tmp.path(), &env, 3, |job| vec![cpp.display().to_string(), "-E".into(), format!("p{job}.c")]);
    assert_no_overlap(&log, 3);

    // The preprocessor of remote jobs. The host closes every connection and
    // backoff is off, so every job preprocesses before it falls back.
    let log = tmp.path().join("remote.log");
    write_slow_preprocessor(&cpp, &log);
    let closing = ClosingHost::start();
    let hosts = format!("--localslots_cpp=1 127.0.0.1:{}", closing.port);
    let env = with(client_env(&tmp.path().join("distcc-remote"), &hosts), "DISTCC_BACKOFF_PERIOD", Some("0"));
    run_parallel(tmp.path(), &env, 3, |job| {
        vec![cpp.display().to_string(), "-c".into(), format!("p{job}.c"), "-o".into(), format!("p{job}.o")]
    });
    assert_eq!(closing.counts.total(), 3);
    assert_no_overlap(&log, 3);
}

#[test]
fn localhost_entry_runs_jobs_in_its_slots() {
    let _shared = shared_test_lock();
    let tmp = tempfile::tempdir().unwrap();
    let log = tmp.path().join("intervals.log");
    // Records each compile; the source name is the last argument but two.
    let compiler = tmp.path().join("slowcc");
    write_script(
        &compiler,
        &format!(
            "#!/bin/sh\nname=$2\necho \"start $name $(date +%s.%N)\" >> {log}\nsleep 0.6\necho \"end $name $(date +%s.%N)\" >> {log}\n: > \"$4\"\n",
            log = log.display()
        ),
    );
    for job in 0..3 {
        fs::write(tmp.path().join(format!("h{job}.c")), "int x;\n").unwrap();
    }
    let env = client_env(&tmp.path().join("distcc"), "localhost/1");
    run_parallel(tmp.path(), &env, 3, |job| {
        vec![compiler.display().to_string(), "-c".into(), format!("h{job}.c"), "-o".into(), format!("h{job}.o")]
    });
    assert_no_overlap(&log, 3);
}

#[test]
fn killed_job_frees_its_slot() {
    let _shared = shared_test_lock();
    let tmp = tempfile::tempdir().unwrap();
    let log = tmp.path().join("intervals.log");
    let linker = tmp.path().join("slowld");
    write_slow_linker(&linker, &log, "3");
    let env = client_env(&tmp.path().join("distcc"), &format!("--localslots=1 127.0.0.1:{}", refused_port()));
    let mut first = Command::new(distcc_rs());
    first.current_dir(tmp.path()).args([linker.to_str().unwrap(), "a.o", "-o", "first"]);
    apply_env(&mut first, &env);
    let mut first = first.spawn().unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !fs::read_to_string(&log).unwrap_or_default().contains("start first") {
        assert!(std::time::Instant::now() < deadline, "the first job never started");
        thread::sleep(Duration::from_millis(20));
    }
    // SAFETY: signals only the process this test started (now the linker).
    unsafe { libc::kill(first.id() as i32, libc::SIGKILL) };
    first.wait().unwrap();

    let mut second = Command::new(distcc_rs());
    second.current_dir(tmp.path()).args([linker.to_str().unwrap(), "a.o", "-o", "second"]);
    apply_env(&mut second, &with(env, "DISTCC_PAUSE_TIME_MSEC", Some("50")));
    let mut second = second.spawn().unwrap();
    let started = std::time::Instant::now();
    while !fs::read_to_string(&log).unwrap_or_default().contains("start second") {
        assert!(started.elapsed() < Duration::from_secs(2), "the killed job's slot was not freed");
        thread::sleep(Duration::from_millis(20));
    }
    assert!(second.wait().unwrap().success());
}

#[test]
fn client_side_failures_do_not_back_off() {
    let _shared = shared_test_lock();
    if let Some(program) = missing_program(&["gcc", "distccd"]) {
        return skip("client_side_failures_do_not_back_off", &format!("{program} is not installed"));
    }
    let tmp = tempfile::tempdir().unwrap();
    let server = Distccd::start(tmp.path(), 2);
    let distcc_dir = tmp.path().join("distcc");
    let backoff = distcc_dir.join(format!("lock/backoff_tcp_127.0.0.1_{}_0", server.port));

    // A genuine compile error on the server.
    fs::write(tmp.path().join("broken.c"), "int f(void) { return }\n").unwrap();
    let env = client_env(&distcc_dir, &format!("127.0.0.1:{}", server.port));
    let (output, _) = run_client(tmp.path(), &distcc_rs(), &["gcc", "-c", "broken.c", "-o", "broken.o"], &env);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output.stderr));
    assert!(!backoff.exists(), "a compile error backed off the host");
    assert!(!tmp.path().join("broken.o").exists());

    // No Kerberos ticket for an ,auth host.
    let env = client_env(&distcc_dir, &format!("127.0.0.1:{},auth", server.port));
    let env = with(env, "KRB5CCNAME", Some(&format!("FILE:{}", tmp.path().join("no-such-cache").display())));
    let (output, _) = compile_one(tmp.path(), "noticket", &env);
    assert_success("compile without a ticket", &output);
    assert!(text(&output.stderr).contains("compiling locally"), "{}", text(&output.stderr));
    assert!(!backoff.exists(), "a missing ticket backed off the host");
    assert_eq!(fs::read(tmp.path().join("noticket.o")).unwrap(), local_object(tmp.path(), "noticket"));
}

#[test]
fn randomize_spreads_sequential_jobs() {
    let _shared = shared_test_lock();
    if let Some(program) = missing_program(&["gcc", "distccd"]) {
        return skip("randomize_spreads_sequential_jobs", &format!("{program} is not installed"));
    }
    let tmp = tempfile::tempdir().unwrap();
    let server = Distccd::start(tmp.path(), 2);
    let first = CountingProxy::start(server.port);
    let second = CountingProxy::start(server.port);
    let ordered = format!("127.0.0.1:{} 127.0.0.1:{}", first.port, second.port);

    // Without --randomize, a lone job always takes the first host.
    let env = client_env(&tmp.path().join("distcc"), &ordered);
    for job in 0..5 {
        assert_success("ordered job", &compile_one(tmp.path(), &format!("ordered{job}"), &env).0);
    }
    assert_eq!((first.counts.total(), second.counts.total()), (5, 0));

    // With it, each job shuffles the order: 20 jobs all on one host would
    // happen with probability 2 * 2^-20.
    let env = client_env(&tmp.path().join("distcc"), &format!("--randomize {ordered}"));
    for job in 0..20 {
        assert_success("randomized job", &compile_one(tmp.path(), &format!("random{job}"), &env).0);
    }
    assert_eq!(first.counts.total() + second.counts.total(), 25);
    assert!(first.counts.total() > 5, "no randomized job used the first host");
    assert!(second.counts.total() > 0, "no randomized job used the second host");
}

#[test]
fn waiting_job_takes_released_slot() {
    let _shared = shared_test_lock();
    let tmp = tempfile::tempdir().unwrap();
    let server = Distccd::start(tmp.path(), 4);
    let proxy = CountingProxy::start(server.port);
    for job in 0..4 {
        fs::write(tmp.path().join(format!("w{job}.c")), format!("int w{job}(void) {{ return {job}; }}\n")).unwrap();
    }
    // With one slot, three of the four jobs find it taken. Sleeping through
    // a 60 s pause, as stock distcc does, would take minutes.
    let env = with(
        client_env(&tmp.path().join("distcc"), &format!("127.0.0.1:{}/1", proxy.port)),
        "DISTCC_PAUSE_TIME_MSEC",
        Some("60000"),
    );
    let started = std::time::Instant::now();
    run_parallel(tmp.path(), &env, 4, |job| {
        vec!["gcc".into(), "-c".into(), format!("w{job}.c"), "-o".into(), format!("w{job}.o")]
    });
    let elapsed = started.elapsed();
    assert_eq!(proxy.counts.total(), 4, "every job ran on the host");
    assert_eq!(proxy.counts.max_open(), 1, "the /1 host had more than one job at once");
    assert!(elapsed < Duration::from_secs(30), "the jobs slept through the pause: {elapsed:?}");
}
