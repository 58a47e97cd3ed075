//! `Ctx`, the `T` of every instance's wasmtime `Store`, and `link`, which
//! adds every capability the component imports to a `Linker<Ctx>`. Each WIT
//! `Host` impl lives next to the capability it wraps, on a view of just the
//! state it needs (`store/wit.rs` for secret-store and registry, `coord.rs`,
//! `log.rs`), so those modules know nothing of `Ctx`: imports go one way.

use std::sync::Arc;

use wasmtime::component::{HasSelf, Linker, ResourceTable};
use wasmtime::StoreLimits;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use crate::bindings::{self, resolver as wit_resolver};
use crate::coord::{Coord, CoordView, Coordination};
use crate::hints::HintStore;
use crate::http::{EgressPolicy, Origin};
use crate::log::{Log, LogView};
use crate::metrics::{CallEvents, Counter, Emf, EmfSink, Metrics};
use crate::store::wit::{Storage, StoreView};
use crate::store::Backends;
use crate::{LogLevel, LogSink, Options};

/// Everything instances of one resolver share.
pub(crate) struct Shared {
    pub backends: Backends,
    pub coord: Coordination,
    pub hints: Arc<dyn HintStore>,
    pub sink: Arc<dyn LogSink>,
    pub origin: Origin,
    pub options: Options,
    pub settings: wit_resolver::Settings,
    pub metrics: Metrics,
    /// EMF lines on (`metrics_emf`), and where they go.
    pub emf: Option<(Emf, Arc<dyn EmfSink>)>,
}

/// The `T` of each instance's `Store`.
pub(crate) struct Ctx {
    pub wasi: WasiCtx,
    pub table: ResourceTable,
    pub http: WasiHttpCtx,
    pub egress: EgressPolicy,
    pub limits: StoreLimits,
    pub shared: Arc<Shared>,
    /// Locks this instance holds; released if it traps mid-call.
    pub held: Vec<String>,
    /// Store leases (key, holder) taken during the current call; released if
    /// it traps, so a deadline does not leave a refresh blocked until expiry.
    pub leases: Vec<(String, String)>,
    /// The current call's metric events, kept only while EMF is on.
    pub events: CallEvents,
}

impl Drop for Ctx {
    fn drop(&mut self) {
        // Leases first: an in-process waiter woken by the unlock below must
        // find the store lease free.
        for (key, holder) in self.leases.drain(..) {
            if let Err(e) = self.shared.backends.registry.release_lease(&key, &holder) {
                self.shared.sink.log(
                    LogLevel::Warn,
                    "releasing the refresh lease of a failed call failed; it will expire",
                    &[("lease".into(), key.clone()), ("error".into(), e.to_string())],
                );
            }
        }
        for key in self.held.drain(..) {
            self.shared.coord.unlock(&key);
        }
        self.shared.write_call_metrics(&std::mem::take(&mut self.events));
    }
}

impl WasiView for Ctx {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

impl WasiHttpView for Ctx {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView { ctx: &mut self.http, table: &mut self.table, hooks: &mut self.egress }
    }
}

impl bindings::types::Host for Ctx {}

/// The component's `metrics` import: counted at once, and kept for the
/// call's EMF line when that is on.
impl bindings::metrics::Host for Ctx {
    fn count(&mut self, e: bindings::metrics::Event, workspace_id: String) {
        let c = Counter::from(e);
        self.shared.metrics.add(c);
        if self.shared.emf.is_some() {
            self.events.counts.push((c, workspace_id));
        }
    }
    fn refresh_latency(&mut self, ms: u64, workspace_id: String) {
        self.shared.metrics.refresh_latency(ms);
        if self.shared.emf.is_some() {
            self.events.latencies.push((ms, workspace_id));
        }
    }
}

impl Shared {
    /// Writes the EMF lines of a call's events, if EMF is on and there were any.
    pub fn write_call_metrics(&self, events: &CallEvents) {
        let Some((emf, sink)) = &self.emf else { return };
        if events.is_empty() {
            return;
        }
        for line in emf.call_lines(events, crate::store::now_ms()) {
            sink.write_line(&line);
        }
    }
}

impl Ctx {
    fn store(&mut self) -> StoreView<'_> {
        StoreView { backends: &self.shared.backends, leases: &mut self.leases }
    }
}

/// Everything the component imports: WASI (sync), outgoing HTTP only, and
/// this crate's capabilities.
pub(crate) fn link(linker: &mut Linker<Ctx>) -> wasmtime::Result<()> {
    wasmtime_wasi::p2::add_to_linker_sync(linker)?;
    wasmtime_wasi_http::p2::add_only_http_to_linker_sync(linker)?;
    bindings::types::add_to_linker::<Ctx, HasSelf<Ctx>>(linker, |c| c)?;
    bindings::metrics::add_to_linker::<Ctx, HasSelf<Ctx>>(linker, |c| c)?;
    bindings::secret_store::add_to_linker::<Ctx, Storage>(linker, Ctx::store)?;
    bindings::registry::add_to_linker::<Ctx, Storage>(linker, Ctx::store)?;
    bindings::coordination::add_to_linker::<Ctx, Coord>(linker, |c| CoordView {
        coord: &c.shared.coord,
        hints: c.shared.hints.as_ref(),
        held: &mut c.held,
    })?;
    bindings::log::add_to_linker::<Ctx, Log>(linker, |c| LogView(c.shared.sink.as_ref()))?;
    Ok(())
}
