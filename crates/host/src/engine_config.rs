// Shared verbatim by build.rs (which precompiles the component) and the
// runtime (which loads it): a `.cwasm` only loads into an identical engine.

/// The one wasmtime configuration this project uses.
pub fn engine_config() -> wasmtime::Config {
    let mut config = wasmtime::Config::new();
    config.wasm_component_model(true);
    // On by default with component-model-async; costs 3-5x per call and we
    // call synchronously.
    config.concurrency_support(false);
    // A deadline on every call into the component.
    config.epoch_interruption(true);
    config.cranelift_opt_level(wasmtime::OptLevel::Speed);
    config
}
