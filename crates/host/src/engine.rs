//! The process-wide engine and the pre-linked component, loaded once.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use wasmtime::component::{Component, Linker};
use wasmtime::Engine;

use crate::bindings::LinearOauthPre;
use crate::ctx::{self, Ctx};
use crate::Error;

include!("engine_config.rs");

const CWASM: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/linear_oauth.cwasm"));

/// How often the epoch advances; call deadlines are counted in these ticks.
pub(crate) const EPOCH_TICK: Duration = Duration::from_millis(10);

/// How the component got loaded, for benchmarks and diagnostics.
#[derive(Debug, Clone)]
pub struct LoadInfo {
    /// True when the embedded precompiled artifact was rejected and the
    /// component was compiled from wasm instead (only possible with the `jit`
    /// feature; without it a rejected artifact is an error).
    pub compiled_fallback: bool,
    /// Why the precompiled artifact was rejected, when it was.
    pub fallback_reason: Option<String>,
    pub load_time: Duration,
    /// The target triple the embedded artifact was compiled for.
    pub target: &'static str,
    /// The Cranelift CPU flags it assumes (comma-separated; see `cpu_baseline`).
    pub cpu_baseline: &'static str,
}

pub(crate) struct Runtime {
    pub engine: Engine,
    pub pre: LinearOauthPre<Ctx>,
    pub info: LoadInfo,
}

static RUNTIME: OnceLock<Result<Runtime, String>> = OnceLock::new();

pub(crate) fn runtime() -> Result<&'static Runtime, Error> {
    RUNTIME.get_or_init(|| load().map_err(|e| format!("{e:#}"))).as_ref().map_err(|e| Error::Internal(e.clone()))
}

fn load() -> wasmtime::Result<Runtime> {
    let started = Instant::now();
    let engine = Engine::new(&engine_config())?;
    // SAFETY: these bytes were produced by `Engine::precompile_component` of
    // this same wasmtime version at build time and are embedded read-only in
    // this binary; wasmtime still checks version and settings before use.
    #[allow(unsafe_code)]
    let precompiled = unsafe { Component::deserialize(&engine, CWASM) };
    let (component, fallback_reason) = match precompiled {
        Ok(c) => (c, None),
        Err(e) => (fallback(&engine, &e)?, Some(format!("{e:#}"))),
    };
    let mut linker = Linker::<Ctx>::new(&engine);
    ctx::link(&mut linker)?;
    let pre = LinearOauthPre::new(linker.instantiate_pre(&component)?)?;

    let ticker = engine.clone();
    std::thread::Builder::new().name("linear-oauth-epoch".into()).spawn(move || loop {
        std::thread::sleep(EPOCH_TICK);
        ticker.increment_epoch();
    })?;
    let info = LoadInfo {
        compiled_fallback: fallback_reason.is_some(),
        fallback_reason,
        load_time: started.elapsed(),
        target: env!("LINEAR_OAUTH_CWASM_TARGET"),
        cpu_baseline: env!("LINEAR_OAUTH_CPU_BASELINE"),
    };
    Ok(Runtime { engine, pre, info })
}

/// With the `jit` feature, a rejected artifact is compiled from the embedded
/// wasm (70-90 ms on every cold start; each `Resolver` logs a warning).
#[cfg(feature = "jit")]
fn fallback(engine: &Engine, _rejected: &wasmtime::Error) -> wasmtime::Result<Component> {
    Component::new(engine, crate::COMPONENT_WASM)
}

/// Without it there is no compiler in the binary: say what to do instead.
#[cfg(not(feature = "jit"))]
fn fallback(_engine: &Engine, rejected: &wasmtime::Error) -> wasmtime::Result<Component> {
    Err(wasmtime::format_err!(
        "the embedded precompiled component (for {} with CPU features [{}]) does not load on this machine: {rejected:#}; \
         use a build for this platform, or build with the `jit` feature to compile it at load",
        env!("LINEAR_OAUTH_CWASM_TARGET"),
        env!("LINEAR_OAUTH_CPU_BASELINE"),
    ))
}
