//! Builds the guest component, then precompiles it for the cargo target being
//! built (`TARGET`, which may differ from the machine running this script)
//! with an explicit CPU baseline, never the build machine's own CPU features:
//! an artifact built anywhere loads everywhere for its triple.
//!
//! Both steps run a nested cargo with a target dir of its own
//! (`target/guest`): the outer build's lock is never contended, and the
//! precompiler (wasmtime with Cranelift) compiles once per machine with one
//! feature set, whatever the outer build is (cargo test, maturin, napi, a
//! cross build).

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    let manifest_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let root = manifest_dir.join("../..").canonicalize().unwrap();
    let out_dir = PathBuf::from(std::env::var("OUT_DIR").unwrap());
    let target = std::env::var("TARGET").expect("cargo sets TARGET for build scripts");
    let target_dir = std::env::var_os("LINEAR_OAUTH_GUEST_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target/guest"));

    for path in ["wit", "crates/core", "crates/component", "crates/precompile", "Cargo.lock", "Cargo.toml"] {
        println!("cargo:rerun-if-changed={}", root.join(path).display());
    }
    println!("cargo:rerun-if-changed=src/engine_config.rs");
    println!("cargo:rerun-if-env-changed=LINEAR_OAUTH_GUEST_TARGET_DIR");

    nested_cargo(&root, &target_dir)
        .args(["build", "--package", "linear-oauth-component", "--target", "wasm32-wasip2", "--profile", "component"])
        .status()
        .ok()
        .filter(|s| s.success())
        .expect("building the guest component failed; is the target installed? (rustup target add wasm32-wasip2)");
    let wasm_path = target_dir.join("wasm32-wasip2/component/linear_oauth_component.wasm");
    let wasm = std::fs::read(&wasm_path).unwrap_or_else(|e| panic!("reading {}: {e}", wasm_path.display()));
    std::fs::write(out_dir.join("linear_oauth.wasm"), &wasm).unwrap();

    nested_cargo(&root, &target_dir)
        .args(["build", "--package", "linear-oauth-precompile"])
        .status()
        .ok()
        .filter(|s| s.success())
        .expect("building the precompiler failed");
    let cwasm_path = out_dir.join("linear_oauth.cwasm");
    let out = Command::new(target_dir.join("debug/linear-oauth-precompile"))
        .arg(&wasm_path)
        .arg(&cwasm_path)
        .arg(&target)
        .output()
        .expect("running the precompiler");
    assert!(out.status.success(), "precompiling for {target}: {}", String::from_utf8_lossy(&out.stderr));
    let baseline = String::from_utf8(out.stdout).unwrap();
    println!("cargo:rustc-env=LINEAR_OAUTH_CWASM_TARGET={target}");
    println!("cargo:rustc-env=LINEAR_OAUTH_CPU_BASELINE={}", baseline.trim());
    println!("cargo:rustc-env=LINEAR_OAUTH_WASM_SIZE={}", wasm.len());
}

/// A cargo for the host machine, untouched by the outer build's target,
/// flags and linker settings (cross builds set those for their target).
fn nested_cargo(root: &Path, target_dir: &Path) -> Command {
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    // --locked as the outer build is run in CI and dist (the same Cargo.lock).
    cmd.args(["--quiet", "--locked"]).current_dir(root);
    for (var, _) in std::env::vars() {
        let outer_only =
            ["CARGO_ENCODED_RUSTFLAGS", "RUSTFLAGS", "CARGO_BUILD_TARGET", "CARGO_MAKEFLAGS", "MAKEFLAGS", "MFLAGS"]
                .contains(&var.as_str())
                || var.starts_with("CARGO_TARGET_")
                || var.starts_with("CARGO_PROFILE_")
                || var.starts_with("CARGO_CFG_")
                || var.starts_with("CARGO_FEATURE_");
        if outer_only {
            cmd.env_remove(var);
        }
    }
    // After the loop, which removes an outer CARGO_TARGET_DIR. Set before it,
    // the nested cargo used <root>/target; with CARGO_TARGET_DIR=<root>/target
    // outside, that is the outer build's dir, whose lock the outer cargo holds
    // while it waits for this script: a deadlock.
    cmd.env("CARGO_TARGET_DIR", target_dir);
    cmd
}
