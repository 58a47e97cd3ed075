//! Builds the guest component with a nested cargo (its own target dir, so the
//! outer build's lock is never contended), then precompiles it for the cargo
//! target being built (`TARGET`, which may differ from the machine running
//! this script) with an explicit CPU baseline, never the build machine's own
//! CPU features: an artifact built anywhere loads everywhere for its triple.

use std::path::PathBuf;
use std::process::Command;

include!("src/engine_config.rs");

fn main() {
    let manifest_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let root = manifest_dir.join("../..").canonicalize().unwrap();
    let out_dir = PathBuf::from(std::env::var("OUT_DIR").unwrap());
    let target = std::env::var("TARGET").expect("cargo sets TARGET for build scripts");
    let target_dir = std::env::var_os("LINEAR_OAUTH_GUEST_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target/guest"));

    for path in ["wit", "crates/core", "crates/component", "Cargo.lock", "Cargo.toml"] {
        println!("cargo:rerun-if-changed={}", root.join(path).display());
    }
    println!("cargo:rerun-if-changed=src/engine_config.rs");
    println!("cargo:rerun-if-env-changed=LINEAR_OAUTH_GUEST_TARGET_DIR");

    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.args(["build", "--package", "linear-oauth-component", "--target", "wasm32-wasip2"])
        .args(["--profile", "component", "--manifest-path"])
        .arg(root.join("Cargo.toml"))
        .env("CARGO_TARGET_DIR", &target_dir);
    // Flags meant for the host build must not leak into the guest build.
    for var in ["CARGO_ENCODED_RUSTFLAGS", "RUSTFLAGS", "CARGO_BUILD_TARGET", "CARGO_MAKEFLAGS", "MAKEFLAGS", "MFLAGS"] {
        cmd.env_remove(var);
    }
    let status = cmd.status().expect("running cargo for the guest component");
    assert!(
        status.success(),
        "building the guest component failed; is the target installed? (rustup target add wasm32-wasip2)"
    );

    let wasm_path = target_dir.join("wasm32-wasip2/component/linear_oauth_component.wasm");
    let wasm = std::fs::read(&wasm_path).unwrap_or_else(|e| panic!("reading {}: {e}", wasm_path.display()));
    std::fs::write(out_dir.join("linear_oauth.wasm"), &wasm).unwrap();

    let mut config = engine_config();
    config.target(&target).unwrap_or_else(|e| panic!("wasmtime cannot compile for {target}: {e}"));
    let baseline = cpu_baseline(&target);
    for flag in baseline {
        // SAFETY: the flag only widens the instruction set Cranelift may use;
        // wasmtime re-checks every enabled flag against the running CPU before
        // it loads the artifact.
        #[allow(unsafe_code)]
        unsafe {
            config.cranelift_flag_enable(flag);
        }
    }
    let engine = wasmtime::Engine::new(&config).expect("engine config");
    let cwasm = engine.precompile_component(&wasm).expect("precompiling the component");
    std::fs::write(out_dir.join("linear_oauth.cwasm"), cwasm).unwrap();
    println!("cargo:rustc-env=LINEAR_OAUTH_CWASM_TARGET={target}");
    println!("cargo:rustc-env=LINEAR_OAUTH_CPU_BASELINE={}", baseline.join(","));
    println!("cargo:rustc-env=LINEAR_OAUTH_WASM_SIZE={}", wasm.len());
}
