//! A small pool of component instances. Every call that is not a cache hit
//! takes one instance for its duration, so a slow refresh of one workspace
//! holds one instance and never blocks calls for others.
//!
//! At most `Options::max_instances` calls are in instances at once; later
//! callers queue for a slot before entering wasm. Without the bound every
//! concurrent uncached caller got an instance (a `Store` whose linear memory
//! may grow to `max_memory_bytes`). The bound cannot deadlock the in-process
//! single flight: a caller waits for a slot holding nothing, and whoever
//! holds a refresh lock (`coord.rs`) is inside an instance already and never
//! waits for a slot, so the refresh completes and frees the lock and its
//! waiters' slots. (`Resolver` also keeps callers of one id that is already
//! in flight out of the queue; see `resolver.rs`.)

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use wasmtime::component::ResourceTable;
use wasmtime::{Store, StoreLimitsBuilder};
use wasmtime_wasi::WasiCtx;
use wasmtime_wasi_http::WasiHttpCtx;

use crate::bindings::{self, LinearOauth};
use crate::ctx::{Ctx, Shared};
use crate::engine::{runtime, EPOCH_TICK};
use crate::http::EgressPolicy;
use crate::{Error, LogLevel, Result};

/// How many idle instances a pool keeps; more are made on demand.
const MAX_IDLE: usize = 8;

pub(crate) struct Instance {
    pub store: Store<Ctx>,
    pub api: LinearOauth,
}

pub(crate) struct Pool {
    pub shared: Arc<Shared>,
    idle: Mutex<Vec<Instance>>,
    slots: Slots,
    created: AtomicUsize,
}

/// How the pool has been used: for tests and benchmarks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolStats {
    /// The bound: most calls in an instance at once (`Options::max_instances`).
    pub max_instances: usize,
    /// Most calls that were in an instance at once so far.
    pub peak_in_use: usize,
    /// Instances made so far (discarded ones included).
    pub instances_created: usize,
}

/// A counting semaphore: calls in an instance now, and the most so far.
struct Slots {
    max: usize,
    state: Mutex<(usize, usize)>,
    freed: Condvar,
}

/// One slot, given back when dropped (also when the call panics).
struct Slot<'a>(&'a Slots);

impl Slots {
    fn take(&self) -> Slot<'_> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        while state.0 >= self.max {
            state = self.freed.wait(state).unwrap_or_else(|e| e.into_inner());
        }
        state.0 += 1;
        state.1 = state.1.max(state.0);
        Slot(self)
    }
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        self.0.state.lock().unwrap_or_else(|e| e.into_inner()).0 -= 1;
        self.0.freed.notify_one();
    }
}

pub(crate) fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// wasi-http's sync bindings block on a Tokio runtime of their own, which
/// panics on a thread that is already inside one; such callers get a plain
/// thread for the call.
fn off_tokio<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    if tokio::runtime::Handle::try_current().is_ok() {
        std::thread::scope(|s| s.spawn(f).join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
    } else {
        f()
    }
}

impl Pool {
    /// Makes the first instance now, so configuration errors surface at
    /// construction.
    pub fn new(shared: Arc<Shared>) -> Result<Self> {
        let slots = Slots { max: shared.options.max_instances, state: Mutex::default(), freed: Condvar::new() };
        let pool = Self { shared, idle: Mutex::default(), slots, created: AtomicUsize::new(0) };
        let inst = pool.instantiate()?;
        pool.idle.lock().unwrap().push(inst);
        Ok(pool)
    }

    pub fn stats(&self) -> PoolStats {
        PoolStats {
            max_instances: self.slots.max,
            peak_in_use: self.slots.state.lock().unwrap_or_else(|e| e.into_inner()).1,
            instances_created: self.created.load(Ordering::Relaxed),
        }
    }

    fn instantiate(&self) -> Result<Instance> {
        self.created.fetch_add(1, Ordering::Relaxed);
        let rt = runtime()?;
        let ctx = Ctx {
            wasi: WasiCtx::builder().build(),
            table: ResourceTable::new(),
            http: WasiHttpCtx::new(),
            egress: EgressPolicy::new(self.shared.origin.clone(), self.shared.options.http_timeout),
            limits: StoreLimitsBuilder::new().memory_size(self.shared.options.max_memory_bytes).instances(4).build(),
            shared: self.shared.clone(),
            held: Vec::new(),
            leases: Vec::new(),
            events: Default::default(),
        };
        let mut store = Store::new(&rt.engine, ctx);
        store.limiter(|c| &mut c.limits);
        self.arm_deadline(&mut store);
        let api = rt.pre.instantiate(&mut store).map_err(Error::internal)?;
        api.linear_oauth_resolver().call_init(&mut store, &self.shared.settings).map_err(Error::internal)??;
        Ok(Instance { store, api })
    }

    /// Starts the call's clock: the epoch deadline traps wasm that runs past
    /// it, and HTTP requests made during the call end before it.
    fn arm_deadline(&self, store: &mut Store<Ctx>) {
        let deadline = self.shared.options.call_deadline;
        let ticks = ms(deadline) / ms(EPOCH_TICK).max(1) + 1;
        store.set_epoch_deadline(ticks);
        store.data_mut().egress.call_started(deadline);
    }

    /// One call into an instance from the pool, once a slot is free. A trap
    /// (deadline, memory cap, bug) discards the instance and its locks;
    /// errors the component returns keep it.
    pub fn call<R: Send>(
        &self,
        f: impl FnOnce(&mut Instance) -> wasmtime::Result<std::result::Result<R, bindings::types::Error>> + Send,
    ) -> Result<R> {
        let _slot = self.slots.take();
        off_tokio(|| {
            let popped = self.idle.lock().unwrap().pop();
            let mut inst = match popped {
                Some(i) => i,
                None => self.instantiate()?,
            };
            self.arm_deadline(&mut inst.store);
            match f(&mut inst) {
                Ok(result) => {
                    // The call returned: whatever leases it kept are its decision.
                    inst.store.data_mut().leases.clear();
                    self.shared.write_call_metrics(&std::mem::take(&mut inst.store.data_mut().events));
                    let mut idle = self.idle.lock().unwrap();
                    if idle.len() < MAX_IDLE {
                        idle.push(inst);
                    }
                    result.map_err(Error::from)
                }
                Err(trap) => {
                    // Dropping `inst` below releases the locks and leases it held.
                    Err(self.trap_error(&trap))
                }
            }
        })
    }

    /// The caller's error for a trapped call. Running past the call deadline
    /// (a slow store or network) is `Transport`; anything else is a bug and
    /// `Internal`. The wasm backtrace goes to the log, never into the message.
    fn trap_error(&self, trap: &wasmtime::Error) -> Error {
        let deadline = trap.downcast_ref::<wasmtime::Trap>() == Some(&wasmtime::Trap::Interrupt);
        let (level, message) = if deadline {
            (LogLevel::Warn, "component call ran past its deadline; instance discarded")
        } else {
            (LogLevel::Error, "component call failed; instance discarded")
        };
        self.shared.sink.log(level, message, &[("error".into(), format!("{trap:#}"))]);
        if deadline {
            let secs = self.shared.options.call_deadline.as_secs_f64();
            Error::Transport(format!("the call ran past its {secs} s deadline (slow store or network); retry"))
        } else {
            let cause =
                trap.downcast_ref::<wasmtime::Trap>().map_or_else(|| trap.root_cause().to_string(), |t| t.to_string());
            Error::Internal(format!("component call failed: {cause}"))
        }
    }
}
