// Shared verbatim by build.rs (which precompiles the component) and the
// runtime (which loads it): a `.cwasm` only loads into an engine whose
// settings match those it was compiled with.

/// The one wasmtime configuration this project runs with. Only settings
/// that exist without a compiler belong here; build.rs adds the target and
/// CPU baseline on top.
pub fn engine_config() -> wasmtime::Config {
    let mut config = wasmtime::Config::new();
    config.wasm_component_model(true);
    // On by default with component-model-async; costs 3-5x per call and we
    // call synchronously.
    config.concurrency_support(false);
    // A deadline on every call into the component.
    config.epoch_interruption(true);
    config
}

/// The CPU features the embedded artifact may use on `triple`, as Cranelift
/// flags. Chosen so that one artifact loads on every CPU of its architecture
/// that can run Lambda: x86-64-v2 (SSE4.2, POPCNT, CMPXCHG16B; every x86_64
/// server CPU since 2009) and Armv8.1 LSE atomics (Graviton2 / Neoverse N1
/// and later). At load, wasmtime checks each enabled flag against the CPU it
/// runs on, so a wider baseline would turn into a refusal, never a crash.
#[allow(dead_code)] // used by build.rs; the runtime reports what build.rs chose
pub fn cpu_baseline(triple: &str) -> &'static [&'static str] {
    match triple.split('-').next().unwrap_or_default() {
        "x86_64" => &["has_sse3", "has_ssse3", "has_cmpxchg16b", "has_sse41", "has_sse42", "has_popcnt"],
        "aarch64" => &["has_lse"],
        _ => &[],
    }
}
