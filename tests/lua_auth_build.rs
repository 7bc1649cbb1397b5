//! Every C file of Lua 5.4 compiled through distcc-rs on two `distccd --auth`
//! servers: each object must be byte-identical to a local gcc build, each
//! server must log the user's authentication and its jobs, and no job may run
//! locally.

mod common;

use std::path::PathBuf;
use std::process::Command;
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

use common::{Scratch, assert_same_file, bed, count_log_lines, stderr};

#[test]
fn lua_builds_on_two_auth_servers() {
    let lua = common::sources("lua");
    let files = common::c_files(&lua, &[]);
    assert!(files.len() >= 30, "expected the Lua 5.4 sources in {}", lua.display());

    let scratch = Scratch::new();
    let remote_dir = scratch.path().join("remote");
    let local_dir = scratch.path().join("local");
    std::fs::create_dir_all(&remote_dir).unwrap();
    std::fs::create_dir_all(&local_dir).unwrap();
    let first = format!("127.0.0.1:{},auth", bed().port("AUTH1"));
    let second = format!("127.0.0.1:{},auth", bed().port("AUTH2"));

    // Alternate the host order so that both servers receive jobs; two
    // compiles at a time, as the machine has two cores.
    let queue = Mutex::new(files.iter().enumerate().collect::<Vec<_>>());
    let failures = Mutex::new(Vec::<String>::new());
    thread::scope(|scope| {
        for _ in 0..2 {
            scope.spawn(|| {
                while let Some((index, source)) = queue.lock().unwrap().pop() {
                    let hosts = if index % 2 == 0 { format!("{first} {second}") } else { format!("{second} {first}") };
                    let object = object_path(&remote_dir, source);
                    let mut command = scratch.distcc(&hosts);
                    command.env("DISTCC_VERBOSE", "1").arg("gcc").arg("-O2").arg("-c").arg(source).arg("-o").arg(&object);
                    let output = command.output().unwrap();
                    let log = stderr(&output);
                    if !output.status.success() || log.contains("compiling locally") || log.contains("running locally") {
                        failures.lock().unwrap().push(format!("{}: {}\n{log}", source.display(), output.status));
                    }
                }
            });
        }
    });
    let failures = failures.into_inner().unwrap();
    assert!(failures.is_empty(), "jobs failed or ran locally:\n{}", failures.join("\n"));

    for source in &files {
        let reference = object_path(&local_dir, source);
        let status = Command::new("gcc").arg("-O2").arg("-c").arg(source).arg("-o").arg(&reference).status().unwrap();
        assert!(status.success());
        assert_same_file(&object_path(&remote_dir, source), &reference);
    }

    // distccd logs a job after sending its reply: wait until every job is logged.
    let principal = bed().var("TESTBED_USER_PRINCIPAL");
    let count_jobs = |server: &str| -> usize {
        let log = bed().log(server);
        files.iter().map(|f| count_log_lines(&log, &["COMPILE_OK", &f.display().to_string()])).sum()
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while count_jobs("AUTH1") + count_jobs("AUTH2") < files.len() && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(100));
    }
    let mut total = 0;
    for server in ["AUTH1", "AUTH2"] {
        let jobs = count_jobs(server);
        assert!(jobs > 0, "{server} completed no Lua job");
        let authentications = count_log_lines(&bed().log(server), &["Successfully authenticated", principal]);
        assert!(authentications >= jobs, "{server}: {authentications} authentications for {jobs} jobs");
        total += jobs;
    }
    assert_eq!(total, files.len(), "every file compiled remotely exactly once");
}

fn object_path(dir: &std::path::Path, source: &std::path::Path) -> PathBuf {
    dir.join(source.file_stem().unwrap()).with_extension("o")
}
