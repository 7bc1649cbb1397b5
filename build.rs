//! Link options for the distcc-rs binary.

fn main() {
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let env = std::env::var("CARGO_CFG_TARGET_ENV").unwrap_or_default();
    if os == "linux" && env == "gnu" {
        // Store the binary's 2000 relative relocations as a compact bitmap
        // (DT_RELR), which the dynamic loader applies in a fraction of the
        // instructions. The loader is most of what a short-lived client
        // executes. Needs GNU ld 2.38 or later and glibc 2.36 or later,
        // which Debian 12 has.
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
    println!("cargo:rerun-if-changed=build.rs");
}
