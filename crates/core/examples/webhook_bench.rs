//! The native cost of one webhook verification (core alone: claim, HMAC,
//! event parse) on a signed 4 KiB body. Each host adds its call overhead
//! (see hosts/python/bench.py, hosts/node/bench.mjs, crates/host/examples/bench.rs).
//!
//! cargo run --release -p linear-oauth-core --example webhook_bench

use std::time::Instant;

use linear_oauth_core::{claimed_organization, verify_webhook, Signature, SigningSecret};

fn main() {
    let now = 1_800_000_000_000_i64;
    let pad = "x".repeat(3800);
    let body = format!(
        r#"{{"action":"create","type":"Issue","createdAt":"2026-12-06T00:00:00.000Z","organizationId":"org-bench","webhookId":"wh-1","webhookTimestamp":{now},"data":{{"id":"issue-1","title":"bench","description":"{pad}"}}}}"#
    )
    .into_bytes();
    let secret = SigningSecret::new("whsec-bench");
    let sig = Signature::parse(&Signature::sign(&body, b"whsec-bench")).unwrap();
    let n = 200_000;
    let time = |label: &str, f: &dyn Fn()| {
        let t = Instant::now();
        for _ in 0..n {
            f();
        }
        println!("{label:<40} {:>7.2} us/call", t.elapsed().as_secs_f64() * 1e6 / f64::from(n));
    };
    println!("{} B body", body.len());
    time("claimed_organization", &|| {
        std::hint::black_box(claimed_organization(&body).unwrap());
    });
    time("HMAC-SHA256 check", &|| {
        std::hint::black_box(sig.matches(&body, b"whsec-bench"));
    });
    time("verify (claim excluded)", &|| {
        std::hint::black_box(verify_webhook(&body, &sig, &secret, "workspace", now, 60_000).unwrap());
    });
}
