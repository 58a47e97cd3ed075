//! Prints the host's numbers: component size, cold load, cached resolve
//! latency, refresh-path latency against the local test server.
//!
//! cargo run --release -p linear-oauth-host --example bench

use std::time::{Duration, Instant};

use linear_oauth_host::{Backends, Options, Resolver, Target};
use linear_oauth_testserver::{ServerConfig, TestServer};

mod common;

fn main() {
    let server = TestServer::start(ServerConfig::default()).unwrap();
    let (backends, _) = common::seeded(&server, 86_399, "2099-01-01T00:00:00.000Z");
    let options = Options {
        store: "memory:".into(),
        api_base: server.base_url(),
        authorize_url: server.authorize_url(),
        log_sink: Some(std::sync::Arc::new(common::Quiet)),
        ..Options::default()
    };

    println!("component wasm size        {:>10} bytes", linear_oauth_host::COMPONENT_WASM_SIZE);
    let t = Instant::now();
    let r = Resolver::with_backends(options.clone(), backends.clone()).unwrap();
    let cold = t.elapsed();
    let info = Resolver::load_info().unwrap();
    println!(
        "cold load (engine+deserialize+link) {:>8.2} ms{}",
        info.load_time.as_secs_f64() * 1e3,
        if info.compiled_fallback { " (FALLBACK: compiled)" } else { "" }
    );
    println!("first Resolver (load+instantiate+init) {:>5.2} ms", cold.as_secs_f64() * 1e3);
    let t = Instant::now();
    let n = 200;
    for _ in 0..n {
        Resolver::with_backends(options.clone(), backends.clone()).unwrap();
    }
    println!("warm Resolver::new (instantiate+init) {:>6.1} us", t.elapsed().as_secs_f64() * 1e6 / n as f64);

    let t = Instant::now();
    r.resolve("org-bench").unwrap();
    println!("first resolve (component+store)  {:>8.1} us", t.elapsed().as_secs_f64() * 1e6);
    let n = 2_000_000;
    let t = Instant::now();
    for _ in 0..n {
        std::hint::black_box(r.resolve("org-bench").unwrap());
    }
    println!("cached resolve (host fast path)  {:>8.0} ns/call", t.elapsed().as_nanos() as f64 / n as f64);
    let n = 20_000;
    let t = Instant::now();
    for _ in 0..n {
        r.invalidate("org-bench");
    }
    let inv = t.elapsed();
    let t = Instant::now();
    for _ in 0..n {
        r.invalidate("org-bench");
        std::hint::black_box(r.resolve("org-bench").unwrap());
    }
    println!(
        "resolve through component (cache miss, store read) {:>6.1} us/call",
        (t.elapsed() - inv).as_secs_f64() * 1e6 / n as f64
    );

    webhook_cost(&r);
    refresh_latency("refresh path, memory store", &r, "bgagent-linear-oauth-bench", 200);

    // The aws store through moto, when one is running (tests/with-moto.sh).
    if std::env::var_os("AWS_ENDPOINT_URL").is_some() {
        let table = format!("lo-bench-{}", std::process::id());
        let aws = linear_oauth_host::store::AwsBackend::open(&table).unwrap();
        aws.bootstrap().unwrap();
        let aws = Backends::from_backend(aws);
        aws.secrets
            .put(
                "bgagent-linear-oauth-bench",
                &backends.secrets.get("bgagent-linear-oauth-bench").unwrap().unwrap().value,
                None,
            )
            .unwrap();
        let r = Resolver::with_backends(Options { store: "aws".into(), registry_table: Some(table), ..options }, aws)
            .unwrap();
        refresh_latency("refresh path, aws store (moto)", &r, "bgagent-linear-oauth-bench", 50);
    }
}

/// One verification of a signed 4 KiB delivery with the signing secret cached.
fn webhook_cost(r: &Resolver) {
    r.set_webhook_secret(Some(Target::Workspace("org-bench")), &"whsec-bench".into()).unwrap();
    let spec = serde_json::json!({ "secret": "whsec-bench", "organization_id": "org-bench", "size": 4096 });
    let d = linear_oauth_testserver::webhook::deliver(&serde_json::from_value(spec).unwrap()).unwrap();
    r.verify_webhook(d.body.as_bytes(), &d.signature, None).unwrap();
    let n = 200_000;
    let t = Instant::now();
    for _ in 0..n {
        std::hint::black_box(r.verify_webhook(d.body.as_bytes(), &d.signature, None).unwrap());
    }
    let us = t.elapsed().as_secs_f64() * 1e6 / n as f64;
    let verdict = if us < 10.0 { "ok" } else { "OVER TARGET" };
    println!("verify_webhook, {} B body, cached  {us:>6.2} us/call  [target < 10 us: {verdict}]", d.body.len());
}

fn refresh_latency(label: &str, r: &Resolver, secret: &str, n: usize) {
    let mut samples: Vec<Duration> = (0..n)
        .map(|_| {
            let t = Instant::now();
            r.force_refresh(Target::Secret(secret)).unwrap();
            t.elapsed()
        })
        .collect();
    samples.sort();
    println!(
        "{label:<34} p50 {:>8.0} us  p99 {:>8.0} us",
        samples[n / 2].as_secs_f64() * 1e6,
        samples[n * 99 / 100].as_secs_f64() * 1e6
    );
}
