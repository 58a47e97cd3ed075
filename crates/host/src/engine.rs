//! The process-wide engine and the pre-linked component, loaded once.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::Engine;

use crate::bindings::{self, LinearOauthPre};
use crate::resolver::Ctx;
use crate::Error;

include!("engine_config.rs");

const CWASM: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/linear_oauth.cwasm"));

/// How often the epoch advances; call deadlines are counted in these ticks.
pub(crate) const EPOCH_TICK: Duration = Duration::from_millis(10);

/// How the component got loaded, for benchmarks and diagnostics.
#[derive(Debug, Clone, Copy)]
pub struct LoadInfo {
    /// True when the embedded precompiled artifact was rejected and the
    /// component was compiled from wasm instead.
    pub compiled_fallback: bool,
    pub load_time: Duration,
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
    let (component, compiled_fallback) = match precompiled {
        Ok(c) => (c, false),
        Err(e) => {
            tracing::warn!(target: "linear_oauth", error = %e, "precompiled component rejected by this engine; compiling from wasm");
            (Component::new(&engine, crate::COMPONENT_WASM)?, true)
        }
    };
    let mut linker = Linker::<Ctx>::new(&engine);
    wasmtime_wasi::p2::add_to_linker_sync(&mut linker)?;
    wasmtime_wasi_http::p2::add_only_http_to_linker_sync(&mut linker)?;
    bindings::types::add_to_linker::<Ctx, HasSelf<Ctx>>(&mut linker, |c| c)?;
    bindings::secret_store::add_to_linker::<Ctx, HasSelf<Ctx>>(&mut linker, |c| c)?;
    bindings::registry::add_to_linker::<Ctx, HasSelf<Ctx>>(&mut linker, |c| c)?;
    bindings::coordination::add_to_linker::<Ctx, HasSelf<Ctx>>(&mut linker, |c| c)?;
    bindings::log::add_to_linker::<Ctx, HasSelf<Ctx>>(&mut linker, |c| c)?;
    let pre = LinearOauthPre::new(linker.instantiate_pre(&component)?)?;

    let ticker = engine.clone();
    std::thread::Builder::new().name("linear-oauth-epoch".into()).spawn(move || loop {
        std::thread::sleep(EPOCH_TICK);
        ticker.increment_epoch();
    })?;
    Ok(Runtime { engine, pre, info: LoadInfo { compiled_fallback, load_time: started.elapsed() } })
}
