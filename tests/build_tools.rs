//! Real builds with the tools people use, against two `distccd --auth`
//! servers of the test bed: make with `CC='distcc-rs gcc'`, CMake with Ninja
//! and compiler launchers, ccache with `CCACHE_PREFIX`, and masquerade links
//! on `PATH`. The project is Lua 5.4 (32 C files) with a small main program
//! that runs a Lua expression, in C or C++.
//!
//! Each build must produce a working program, every compile must appear in a
//! server log exactly once, authenticated as the test user by the same
//! distccd process, and distcc-rs must log no local fallback.

mod common;

use std::collections::HashMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::{Scratch, bed, distcc_rs, stderr};

/// Parallel jobs of each build; the machine these tests were written for
/// has two cores, and two builds may run at once.
const JOBS: &str = "4";

const C_MAIN: &str = r#"#include <stdio.h>
#include "lua.h"
#include "lauxlib.h"
#include "lualib.h"

int main(int argc, char **argv) {
    lua_State *state = luaL_newstate();
    luaL_openlibs(state);
    if (luaL_dostring(state, argc > 1 ? argv[1] : "return 6 * 7") != LUA_OK) {
        fprintf(stderr, "%s\n", lua_tostring(state, -1));
        return 1;
    }
    printf("%s\n", lua_tostring(state, -1));
    lua_close(state);
    return 0;
}
"#;

const CXX_MAIN: &str = r#"extern "C" {
#include "lua.h"
#include "lauxlib.h"
#include "lualib.h"
}
#include <iostream>
#include <string>

int main(int argc, char **argv) {
    lua_State *state = luaL_newstate();
    luaL_openlibs(state);
    std::string chunk = argc > 1 ? argv[1] : "return 6 * 7";
    if (luaL_dostring(state, chunk.c_str()) != LUA_OK) {
        std::cerr << lua_tostring(state, -1) << '\n';
        return 1;
    }
    std::cout << lua_tostring(state, -1) << '\n';
    lua_close(state);
    return 0;
}
"#;

/// Copies the Lua sources and headers into `dir` and adds `main_name` with
/// `main_text`. Returns the source files to be compiled, as absolute paths.
fn lua_project(dir: &Path, main_name: &str, main_text: &str) -> Vec<PathBuf> {
    std::fs::create_dir_all(dir).unwrap();
    let lua = common::sources("lua");
    let mut sources = Vec::new();
    for entry in std::fs::read_dir(&lua).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_owned();
        if path.extension().is_some_and(|ext| ext == "c" || ext == "h") {
            std::fs::copy(&path, dir.join(&name)).unwrap();
            if path.extension().is_some_and(|ext| ext == "c") {
                sources.push(dir.join(&name));
            }
        }
    }
    assert!(sources.len() >= 30, "expected the Lua 5.4 sources in {}", lua.display());
    std::fs::write(dir.join(main_name), main_text).unwrap();
    sources.push(dir.join(main_name));
    sources.sort();
    sources
}

/// Writes a Makefile that builds `embed` in `build_dir` from the sources in
/// `source_dir`. Each source is named by its absolute path, so that server
/// logs show which test's file they compiled.
fn write_makefile(build_dir: &Path, source_dir: &Path) {
    let makefile = format!(
        "SRC = {}\n\
         CFLAGS = -O2 -DLUA_USE_POSIX\n\
         OBJECTS = $(patsubst $(SRC)/%.c,%.o,$(wildcard $(SRC)/*.c))\n\
         embed: $(OBJECTS)\n\
         \t$(CC) -o $@ $^ -lm\n\
         %.o: $(SRC)/%.c\n\
         \t$(CC) $(CFLAGS) -c $< -o $@\n",
        source_dir.display()
    );
    std::fs::create_dir_all(build_dir).unwrap();
    std::fs::write(build_dir.join("Makefile"), makefile).unwrap();
}

fn write_cmake_project(project_dir: &Path) {
    let cmake = "cmake_minimum_required(VERSION 3.13)\n\
                 project(lua_embed C CXX)\n\
                 file(GLOB LUA_SOURCES ${CMAKE_SOURCE_DIR}/src/*.c)\n\
                 add_library(lua STATIC ${LUA_SOURCES})\n\
                 target_compile_definitions(lua PRIVATE LUA_USE_POSIX)\n\
                 add_executable(embed src/main.cpp)\n\
                 target_link_libraries(embed lua m)\n";
    std::fs::write(project_dir.join("CMakeLists.txt"), cmake).unwrap();
}

/// Returns the two authenticated servers, written as a user would list them.
fn auth_hosts() -> String {
    format!("127.0.0.1:{},auth 127.0.0.1:{},auth", bed().port("AUTH1"), bed().port("AUTH2"))
}

/// Builds a command that runs in `dir` with the scratch environment of the
/// harness and the two authenticated servers, and that logs every decision
/// of distcc-rs to `log`.
fn tool(scratch: &Scratch, program: &str, dir: &Path, log: &Path) -> Command {
    let mut command = Command::new(program);
    scratch.prepare(&mut command, &auth_hosts());
    command.current_dir(dir).env("DISTCC_VERBOSE", "1").env("DISTCC_LOG", log);
    command
}

fn run_ok(command: &mut Command, what: &str) -> Output {
    let output = command.output().unwrap_or_else(|e| panic!("{what}: cannot run: {e}"));
    assert!(
        output.status.success(),
        "{what} failed ({}):\n{}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        stderr(&output)
    );
    output
}

/// Runs the built program and checks that Lua works in it.
fn assert_program_runs(program: &Path) {
    let output = Command::new(program).arg("return 6 * 7").output().unwrap();
    assert!(output.status.success(), "{} failed: {}", program.display(), stderr(&output));
    assert_eq!(String::from_utf8_lossy(&output.stdout), "42\n");
}

/// One job in a distccd log: the source it compiled and the principal the
/// same distccd process authenticated on that connection, if any.
#[derive(Debug)]
struct ServerJob {
    source: String,
    principal: Option<String>,
}

/// Reads the jobs of a distccd log whose source path starts with `dir`.
/// A distccd worker process serves one connection at a time and logs
/// `connection from`, then `Successfully authenticated PRINCIPAL.` (for
/// `--auth`), then the `COMPILE_OK` summary ending in the source path.
fn server_jobs(log: &Path, dir: &Path) -> Vec<ServerJob> {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let dir = dir.display().to_string();
    let mut principal_of: HashMap<&str, Option<String>> = HashMap::new();
    let mut jobs = Vec::new();
    for line in text.lines() {
        let Some((pid, message)) = line.strip_prefix("distccd[").and_then(|rest| rest.split_once(']')) else {
            continue;
        };
        if message.contains("connection from") {
            principal_of.insert(pid, None);
        } else if let Some(principal) = message.split("Successfully authenticated ").nth(1) {
            principal_of.insert(pid, Some(principal.trim_end_matches('.').to_string()));
        } else if message.contains("COMPILE_OK") {
            let source = message.rsplit(' ').next().unwrap_or("");
            if source.starts_with(&dir) {
                jobs.push(ServerJob { source: source.to_string(), principal: principal_of.get(pid).cloned().flatten() });
            }
        }
    }
    jobs
}

/// Returns the jobs of both servers for sources under `dir`, once `expected`
/// are logged or after 10 s: distccd writes the summary after its reply.
fn wait_for_server_jobs(dir: &Path, expected: usize) -> Vec<ServerJob> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mut jobs = server_jobs(&bed().log("AUTH1"), dir);
        jobs.extend(server_jobs(&bed().log("AUTH2"), dir));
        if jobs.len() >= expected || Instant::now() >= deadline {
            return jobs;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Asserts that every source was compiled exactly once by a server, each
/// time for the test user after authentication, and that distcc-rs fell
/// back for none of them.
fn assert_all_remote_and_authenticated(sources: &[PathBuf], source_dir: &Path, distcc_log: &Path) {
    let jobs = wait_for_server_jobs(source_dir, sources.len());
    let principal = bed().var("TESTBED_USER_PRINCIPAL");
    for source in sources {
        let source = source.display().to_string();
        let matching: Vec<&ServerJob> = jobs.iter().filter(|job| job.source == source).collect();
        assert_eq!(matching.len(), 1, "{source}: {} server jobs, expected 1", matching.len());
        assert_eq!(matching[0].principal.as_deref(), Some(principal), "{source} compiled without authentication");
    }
    assert_eq!(jobs.len(), sources.len(), "server jobs for files that are not sources: {jobs:?}");

    let log = std::fs::read_to_string(distcc_log).unwrap_or_default();
    let fallbacks: Vec<&str> = log.lines().filter(|line| line.contains("compiling locally")).collect();
    assert!(fallbacks.is_empty(), "distcc-rs fell back to local compiles:\n{}", fallbacks.join("\n"));
    let granted = log.lines().filter(|line| line.contains(&format!("server granted access to {principal}"))).count();
    assert_eq!(granted, sources.len(), "one authentication per job");
}

#[test]
fn make_with_cc_distcc_rs() {
    let scratch = Scratch::new();
    let source_dir = scratch.path().join("make-src");
    let build_dir = scratch.path().join("make-build");
    let sources = lua_project(&source_dir, "main.c", C_MAIN);
    write_makefile(&build_dir, &source_dir);
    let log = scratch.path().join("distcc-make.log");

    let cc = format!("CC={} gcc", distcc_rs().display());
    run_ok(tool(&scratch, "make", &build_dir, &log).args(["-j", JOBS, &cc]), "make");

    assert_program_runs(&build_dir.join("embed"));
    assert_all_remote_and_authenticated(&sources, &source_dir, &log);
}

#[test]
fn cmake_ninja_with_compiler_launchers() {
    let scratch = Scratch::new();
    let project = scratch.path().join("cmake-project");
    let source_dir = project.join("src");
    let sources = lua_project(&source_dir, "main.cpp", CXX_MAIN);
    write_cmake_project(&project);
    let build_dir = project.join("build");
    let log = scratch.path().join("distcc-cmake.log");

    let launcher = distcc_rs().display().to_string();
    run_ok(
        tool(&scratch, "cmake", &project, &log).args([
            "-G",
            "Ninja",
            "-DCMAKE_BUILD_TYPE=Release",
            &format!("-DCMAKE_C_COMPILER_LAUNCHER={launcher}"),
            &format!("-DCMAKE_CXX_COMPILER_LAUNCHER={launcher}"),
            "-S",
            ".",
            "-B",
            "build",
        ]),
        "cmake",
    );
    run_ok(tool(&scratch, "ninja", &project, &log).args(["-C", "build", "-j", JOBS]), "ninja");

    assert_program_runs(&build_dir.join("embed"));
    assert_all_remote_and_authenticated(&sources, &source_dir, &log);
    let log_text = std::fs::read_to_string(&log).unwrap();
    assert!(log_text.contains("main.cpp on 127.0.0.1:"), "the C++ main went through the CXX launcher:\n{log_text}");
}

/// Returns ccache's counters by name; `ccache` runs ccache with the
/// test's cache directory.
fn ccache_stats(ccache: &mut Command) -> HashMap<String, u64> {
    let output = run_ok(ccache.arg("--print-stats"), "ccache --print-stats");
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| line.split_once('\t'))
        .filter_map(|(name, value)| value.trim().parse().ok().map(|value| (name.to_string(), value)))
        .collect()
}

#[test]
fn ccache_with_distcc_rs_prefix() {
    let scratch = Scratch::new();
    let source_dir = scratch.path().join("ccache-src");
    let build_dir = scratch.path().join("ccache-build");
    let sources = lua_project(&source_dir, "main.c", C_MAIN);
    write_makefile(&build_dir, &source_dir);
    let log = scratch.path().join("distcc-ccache.log");
    let ccache = |program: &str| {
        let mut command = tool(&scratch, program, &build_dir, &log);
        command.env("CCACHE_DIR", scratch.path().join("ccache")).env("CCACHE_PREFIX", distcc_rs());
        command
    };

    run_ok(ccache("make").args(["-j", JOBS, "CC=ccache gcc"]), "first make");
    assert_program_runs(&build_dir.join("embed"));
    assert_all_remote_and_authenticated(&sources, &source_dir, &log);
    let first = ccache_stats(&mut ccache("ccache"));
    assert_eq!(first.get("cache_miss"), Some(&(sources.len() as u64)), "{first:?}");

    // Second build from a clean tree: every object comes from the cache.
    for entry in std::fs::read_dir(&build_dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|ext| ext == "o") || path.ends_with("embed") {
            std::fs::remove_file(path).unwrap();
        }
    }
    run_ok(ccache("ccache").arg("--zero-stats"), "ccache --zero-stats");
    let log_before = std::fs::read_to_string(&log).unwrap();
    run_ok(ccache("make").args(["-j", JOBS, "CC=ccache gcc"]), "second make");
    assert_program_runs(&build_dir.join("embed"));

    let second = ccache_stats(&mut ccache("ccache"));
    let hits = second.get("direct_cache_hit").copied().unwrap_or(0) + second.get("preprocessed_cache_hit").copied().unwrap_or(0);
    assert_eq!(hits, sources.len() as u64, "{second:?}");
    assert_eq!(second.get("cache_miss").copied().unwrap_or(0), 0, "{second:?}");
    std::thread::sleep(Duration::from_millis(500));
    let jobs = wait_for_server_jobs(&source_dir, sources.len());
    assert_eq!(jobs.len(), sources.len(), "the second build sent jobs to a server");
    let log_after = std::fs::read_to_string(&log).unwrap();
    let new_lines = &log_after[log_before.len()..];
    assert!(!new_lines.contains("sending job to"), "distcc-rs sent a job in the second build:\n{new_lines}");
}

#[test]
fn masquerade_links_on_path_twice() {
    let scratch = Scratch::new();
    let source_dir = scratch.path().join("masq-src");
    let build_dir = scratch.path().join("masq-build");
    let sources = lua_project(&source_dir, "main.c", C_MAIN);
    write_makefile(&build_dir, &source_dir);
    let log = scratch.path().join("distcc-masq.log");
    let masq = scratch.path().join("masquerade");

    let install = run_ok(
        Command::new(distcc_rs()).arg("--install-masquerade").arg(&masq),
        "distcc-rs --install-masquerade",
    );
    let report = String::from_utf8_lossy(&install.stdout);
    for name in ["cc", "gcc"] {
        assert!(report.contains(&format!("created {}", masq.join(name).display())), "{report}");
    }

    // The masquerade directory first on PATH, and once more further down.
    let system_path = std::env::var_os("PATH").unwrap_or_default();
    let mut entries: Vec<PathBuf> = vec![masq.clone()];
    entries.extend(std::env::split_paths(&system_path));
    entries.push(masq.clone());
    let path: OsString = std::env::join_paths(entries).unwrap();

    // make's default CC is cc, which is now the masquerade link.
    run_ok(tool(&scratch, "make", &build_dir, &log).env("PATH", &path).args(["-j", JOBS]), "make with masquerade links");

    assert_program_runs(&build_dir.join("embed"));
    assert_all_remote_and_authenticated(&sources, &source_dir, &log);
    let log_text = std::fs::read_to_string(&log).unwrap();
    assert!(log_text.contains("compiler 'cc' is "), "{log_text}");
    assert!(!log_text.contains(&format!("compiler 'cc' is {}", masq.display())), "a masquerade link was taken for the compiler");
}
