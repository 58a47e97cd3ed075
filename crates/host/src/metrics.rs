//! What a platform team alerts on, declared once in [`metrics!`] below: each
//! metric's name, kind, unit and help make [`METRICS`], the [`Counter`]
//! enum, the `Metrics` store and every binding's snapshot. Counts are
//! process-wide per resolver, kept in relaxed atomics (a cached resolve adds
//! one uncontended increment); the component reports the events of a
//! refresh through its `metrics` import. Names and dimensions never carry
//! secrets; a workspace id appears only in EMF lines, and only when
//! `metrics_by_workspace` is on.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;

use crate::bindings::metrics as wit;

/// Whether a metric counts occurrences or times them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricKind {
    Counter,
    Timing,
}

/// One row of [`METRICS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Metric {
    /// Stable snake_case name: snapshot keys, EMF metric names.
    pub name: &'static str,
    pub kind: MetricKind,
    /// The CloudWatch unit (`Count`, `Milliseconds`).
    pub unit: &'static str,
    pub help: &'static str,
}

macro_rules! metrics {
    (
        counters { $( $(#[doc = $doc:literal])+ $variant:ident = $name:literal; )* }
        timing { $(#[doc = $tdoc:literal])+ $tname:literal }
    ) => {
        /// Every counter of [`METRICS`], in its order.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum Counter { $($variant,)* }

        impl Counter {
            pub const ALL: [Counter; [$($name),*].len()] = [$(Counter::$variant,)*];
            pub fn name(self) -> &'static str {
                match self { $(Counter::$variant => $name,)* }
            }
        }

        /// The metrics table: every counter, then the refresh latency timing.
        pub const METRICS: [Metric; [$($name),*].len() + 1] = [
            $(Metric { name: $name, kind: MetricKind::Counter, unit: "Count",
                help: concat!($($doc),+).trim_ascii_start() },)*
            Metric { name: $tname, kind: MetricKind::Timing, unit: "Milliseconds",
                help: concat!($($tdoc),+).trim_ascii_start() },
        ];
    };
}

metrics! {
    counters {
        /// resolves served from the resolver's memory, without entering the component
        ResolvesCached = "resolves_cached";
        /// resolves that called into the component (store reads, maybe a refresh)
        ResolvesUncached = "resolves_uncached";
        /// renewals whose token request succeeded and whose token was written back
        RefreshesOk = "refreshes_ok";
        /// renewals Linear answered with invalid_grant that still served a token (rotated elsewhere, or refreshed again)
        RefreshesInvalidGrantRecovered = "refreshes_invalid_grant_recovered";
        /// renewals that ended in reauthorization required: Linear refused the refresh token (invalid_grant)
        RefreshesReauthorizationInvalidGrant = "refreshes_reauthorization_required_invalid_grant";
        /// renewals that ended in reauthorization required: Linear refused the stored client secret (invalid_client)
        RefreshesReauthorizationInvalidClient = "refreshes_reauthorization_required_invalid_client";
        /// transient refresh failures (429, 5xx, transport; new or remembered) that served the unexpired stored token
        RefreshesServedStale = "refreshes_served_stale";
        /// 429 answers of Linear's token endpoint (each, retries included)
        RefreshesRateLimited = "refreshes_rate_limited";
        /// renewals that ended in an error other than reauthorization required (nothing served)
        RefreshesFailed = "refreshes_failed";
        /// calls that waited for another process's refresh lease
        LeaseWaits = "lease_waits";
        /// leases taken over from a holder that died mid-refresh
        LeaseTakeovers = "lease_takeovers";
        /// write-back attempts after a failed one
        WriteBackRetries = "write_back_retries";
        /// renewed tokens no write-back attempt could store
        WriteBackFailures = "write_back_failures";
    }
    timing {
        /// one renewal, from holding the lease to its outcome (token request, retries, write-back)
        "refresh_latency_ms"
    }
}

/// The name of the timing row of [`METRICS`].
pub const REFRESH_LATENCY: &str = METRICS[METRICS.len() - 1].name;

/// Upper bounds (ms, inclusive) of the latency histogram's buckets; a last
/// bucket holds everything slower.
pub const LATENCY_BUCKETS_MS: [u64; 8] = [50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000];

impl From<wit::Event> for Counter {
    fn from(e: wit::Event) -> Self {
        use wit::Event as E;
        match e {
            E::RefreshOk => Self::RefreshesOk,
            E::InvalidGrantRecovered => Self::RefreshesInvalidGrantRecovered,
            E::ReauthorizationRequiredInvalidGrant => Self::RefreshesReauthorizationInvalidGrant,
            E::ReauthorizationRequiredInvalidClient => Self::RefreshesReauthorizationInvalidClient,
            E::ServedStale => Self::RefreshesServedStale,
            E::RateLimited => Self::RefreshesRateLimited,
            E::RefreshFailed => Self::RefreshesFailed,
            E::LeaseWait => Self::LeaseWaits,
            E::LeaseTakeover => Self::LeaseTakeovers,
            E::WriteBackRetry => Self::WriteBackRetries,
            E::WriteBackFailure => Self::WriteBackFailures,
        }
    }
}

/// A resolver's counters and latency, in relaxed atomics.
#[derive(Debug)]
pub(crate) struct Metrics {
    counters: [AtomicU64; Counter::ALL.len()],
    latency_count: AtomicU64,
    latency_sum: AtomicU64,
    latency_min: AtomicU64,
    latency_max: AtomicU64,
    buckets: [AtomicU64; LATENCY_BUCKETS_MS.len() + 1],
    /// The counters as the last EMF resolve line wrote them (deltas follow).
    emitted: Mutex<[u64; Counter::ALL.len()]>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self {
            counters: Default::default(),
            latency_count: AtomicU64::new(0),
            latency_sum: AtomicU64::new(0),
            latency_min: AtomicU64::new(u64::MAX),
            latency_max: AtomicU64::new(0),
            buckets: Default::default(),
            emitted: Mutex::new([0; Counter::ALL.len()]),
        }
    }
}

impl Metrics {
    #[inline]
    pub fn add(&self, c: Counter) {
        self.counters[c as usize].fetch_add(1, Relaxed);
    }

    pub fn add_n(&self, c: Counter, n: u64) {
        self.counters[c as usize].fetch_add(n, Relaxed);
    }

    pub fn refresh_latency(&self, ms: u64) {
        self.latency_count.fetch_add(1, Relaxed);
        self.latency_sum.fetch_add(ms, Relaxed);
        self.latency_min.fetch_min(ms, Relaxed);
        self.latency_max.fetch_max(ms, Relaxed);
        let bucket = LATENCY_BUCKETS_MS.iter().position(|&b| ms <= b).unwrap_or(LATENCY_BUCKETS_MS.len());
        self.buckets[bucket].fetch_add(1, Relaxed);
    }

    pub fn snapshot(&self) -> MetricsSnapshot {
        let count = self.latency_count.load(Relaxed);
        MetricsSnapshot {
            counters: std::array::from_fn(|i| self.counters[i].load(Relaxed)),
            refresh_latency: Timing {
                count,
                sum_ms: self.latency_sum.load(Relaxed),
                min_ms: if count == 0 { 0 } else { self.latency_min.load(Relaxed) },
                max_ms: self.latency_max.load(Relaxed),
                buckets: std::array::from_fn(|i| (LATENCY_BUCKETS_MS.get(i).copied(), self.buckets[i].load(Relaxed))),
            },
        }
    }

    /// The counters' growth since the last call (for EMF lines), then
    /// remembers them.
    fn take_deltas(&self) -> [u64; Counter::ALL.len()] {
        let now: [u64; Counter::ALL.len()] = std::array::from_fn(|i| self.counters[i].load(Relaxed));
        let mut last = self.emitted.lock().unwrap_or_else(|e| e.into_inner());
        let delta = std::array::from_fn(|i| now[i].saturating_sub(last[i]));
        *last = now;
        delta
    }
}

/// A timing's summary since the resolver was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    pub count: u64,
    pub sum_ms: u64,
    /// 0 when `count` is 0.
    pub min_ms: u64,
    pub max_ms: u64,
    /// `(upper bound ms inclusive, count)`, the last bound `None` (slower).
    pub buckets: [(Option<u64>, u64); LATENCY_BUCKETS_MS.len() + 1],
}

/// Every metric of [`METRICS`] at one moment ([`crate::Resolver::metrics`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricsSnapshot {
    counters: [u64; Counter::ALL.len()],
    pub refresh_latency: Timing,
}

impl MetricsSnapshot {
    pub fn get(&self, c: Counter) -> u64 {
        self.counters[c as usize]
    }

    /// `(name, value)` for every counter, in table order.
    pub fn counters(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        Counter::ALL.iter().map(|c| (c.name(), self.get(*c)))
    }

    /// The JSON the CLI prints: every counter by name, and the timing as
    /// `{count, sum_ms, min_ms, max_ms, buckets: [{le_ms, count}]}`
    /// (`le_ms` null for the last bucket).
    pub fn to_json(&self) -> serde_json::Value {
        let mut m: serde_json::Map<String, serde_json::Value> =
            self.counters().map(|(k, v)| (k.to_owned(), v.into())).collect();
        let t = &self.refresh_latency;
        let buckets: Vec<_> = t.buckets.iter().map(|(le, n)| serde_json::json!({ "le_ms": le, "count": n })).collect();
        m.insert(
            REFRESH_LATENCY.into(),
            serde_json::json!({
                "count": t.count, "sum_ms": t.sum_ms, "min_ms": t.min_ms, "max_ms": t.max_ms, "buckets": buckets,
            }),
        );
        serde_json::Value::Object(m)
    }
}

/// Where EMF lines go: stdout by default (CloudWatch Logs picks them up in
/// Lambda); tests capture them.
pub trait EmfSink: Send + Sync + fmt::Debug {
    fn write_line(&self, line: &str);
}

/// Writes each line to stdout, whole.
#[derive(Debug, Default, Clone, Copy)]
pub struct StdoutEmf;

impl EmfSink for StdoutEmf {
    fn write_line(&self, line: &str) {
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{line}");
        let _ = out.flush();
    }
}

/// One component call's events, kept while EMF is on to write its line.
#[derive(Debug, Default)]
pub(crate) struct CallEvents {
    pub counts: Vec<(Counter, String)>,
    pub latencies: Vec<(u64, String)>,
}

impl CallEvents {
    pub fn is_empty(&self) -> bool {
        self.counts.is_empty() && self.latencies.is_empty()
    }
}

/// The EMF settings of a resolver.
#[derive(Debug, Clone)]
pub(crate) struct Emf {
    pub namespace: String,
    pub workspace_dimension: bool,
}

impl Emf {
    /// One EMF line per workspace the call's events are about (one line
    /// without a workspace dimension unless it is opted in): the counts
    /// that occurred, and the latencies as a value array.
    pub fn call_lines(&self, events: &CallEvents, now_ms: u64) -> Vec<String> {
        let mut workspaces: Vec<&str> = events
            .counts
            .iter()
            .map(|(_, w)| w.as_str())
            .chain(events.latencies.iter().map(|(_, w)| w.as_str()))
            .collect();
        workspaces.sort_unstable();
        workspaces.dedup();
        let groups: Vec<Option<&str>> =
            if self.workspace_dimension { workspaces.into_iter().map(Some).collect() } else { vec![None] };
        groups
            .into_iter()
            .map(|ws| {
                let of = |w: &str| ws.is_none_or(|x| x == w);
                let mut values: Vec<(&'static str, &'static str, serde_json::Value)> = Vec::new();
                for c in Counter::ALL {
                    let n = events.counts.iter().filter(|(k, w)| *k == c && of(w)).count();
                    if n > 0 {
                        values.push((c.name(), "Count", n.into()));
                    }
                }
                let ms: Vec<u64> = events.latencies.iter().filter(|(_, w)| of(w)).map(|(m, _)| *m).collect();
                if !ms.is_empty() {
                    values.push((REFRESH_LATENCY, "Milliseconds", ms.into()));
                }
                self.line(now_ms, ws, &values)
            })
            .collect()
    }

    /// The resolve counters' growth since the last such line (never per
    /// workspace), or none when nothing was resolved.
    pub fn resolve_line(&self, metrics: &Metrics, now_ms: u64) -> Option<String> {
        let delta = metrics.take_deltas();
        let values: Vec<_> = [Counter::ResolvesCached, Counter::ResolvesUncached]
            .into_iter()
            .map(|c| (c.name(), "Count", serde_json::Value::from(delta[c as usize])))
            .collect();
        values.iter().any(|(_, _, v)| v.as_u64() != Some(0)).then(|| self.line(now_ms, None, &values))
    }

    /// The documented EMF shape: `_aws` metadata, then each value (and the
    /// dimension) at top level.
    fn line(&self, now_ms: u64, workspace: Option<&str>, values: &[(&str, &str, serde_json::Value)]) -> String {
        let dims: Vec<&str> = workspace.map(|_| "WorkspaceId").into_iter().collect();
        let metrics: Vec<_> = values.iter().map(|(n, u, _)| serde_json::json!({ "Name": n, "Unit": u })).collect();
        let mut root = serde_json::Map::new();
        root.insert(
            "_aws".into(),
            serde_json::json!({
                "Timestamp": now_ms,
                "CloudWatchMetrics": [{ "Namespace": self.namespace, "Dimensions": [dims], "Metrics": metrics }],
            }),
        );
        if let Some(w) = workspace {
            root.insert("WorkspaceId".into(), w.into());
        }
        for (n, _, v) in values {
            root.insert((*n).into(), v.clone());
        }
        serde_json::Value::Object(root).to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_names_each_metric_once_in_snake_case_with_a_unit_and_help() {
        let mut names: Vec<_> = METRICS.iter().map(|m| m.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), METRICS.len());
        for m in METRICS {
            assert!(m.name.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'), "{}", m.name);
            assert!(!m.help.is_empty() && !m.help.ends_with('.'), "{}", m.name);
            assert_eq!(m.unit, if m.kind == MetricKind::Counter { "Count" } else { "Milliseconds" });
        }
        for (i, c) in Counter::ALL.iter().enumerate() {
            assert_eq!(METRICS[i].name, c.name());
        }
    }

    #[test]
    fn latency_summary_and_histogram() {
        let m = Metrics::default();
        assert_eq!(m.snapshot().refresh_latency.min_ms, 0);
        for ms in [40, 120, 120, 20_000] {
            m.refresh_latency(ms);
        }
        let t = m.snapshot().refresh_latency;
        assert_eq!((t.count, t.sum_ms, t.min_ms, t.max_ms), (4, 20_280, 40, 20_000));
        assert_eq!(t.buckets[0], (Some(50), 1));
        assert_eq!(t.buckets[2], (Some(250), 2));
        assert_eq!(t.buckets[8], (None, 1));
    }

    #[test]
    fn emf_lines_follow_the_documented_shape() {
        let emf = Emf { namespace: "NS".into(), workspace_dimension: false };
        let events = CallEvents {
            counts: vec![(Counter::RefreshesOk, "ws-a".into()), (Counter::LeaseWaits, "ws-b".into())],
            latencies: vec![(12, "ws-a".into())],
        };
        let lines = emf.call_lines(&events, 1_700_000_000_000);
        assert_eq!(lines.len(), 1);
        let v: serde_json::Value = serde_json::from_str(&lines[0]).unwrap();
        assert_eq!(v["_aws"]["Timestamp"], 1_700_000_000_000u64);
        let cw = &v["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(cw["Namespace"], "NS");
        assert_eq!(cw["Dimensions"], serde_json::json!([[]]));
        assert_eq!(cw["Metrics"][0], serde_json::json!({"Name": "refreshes_ok", "Unit": "Count"}));
        assert_eq!((v["refreshes_ok"].clone(), v["lease_waits"].clone()), (1.into(), 1.into()));
        assert_eq!(v["refresh_latency_ms"], serde_json::json!([12]));
        assert!(v.get("WorkspaceId").is_none() && !lines[0].contains("ws-a"), "{}", lines[0]);
        // Opted in: one line per workspace, each with its own events only.
        let emf = Emf { workspace_dimension: true, ..emf };
        let lines = emf.call_lines(&events, 1);
        assert_eq!(lines.len(), 2);
        let a: serde_json::Value = serde_json::from_str(&lines[0]).unwrap();
        assert_eq!(a["_aws"]["CloudWatchMetrics"][0]["Dimensions"], serde_json::json!([["WorkspaceId"]]));
        assert_eq!((a["WorkspaceId"].as_str(), a.get("lease_waits")), (Some("ws-a"), None));
        // Resolve counts: deltas, and no line when nothing changed.
        let m = Metrics::default();
        m.add(Counter::ResolvesCached);
        m.add(Counter::ResolvesCached);
        let v: serde_json::Value = serde_json::from_str(&emf.resolve_line(&m, 1).unwrap()).unwrap();
        assert_eq!((v["resolves_cached"].clone(), v["resolves_uncached"].clone()), (2.into(), 0.into()));
        assert!(emf.resolve_line(&m, 2).is_none());
    }
}
