//! The one `bindgen!` for the host side of `wit/linear-oauth.wit`.

wasmtime::component::bindgen!({
    path: "../../wit",
    world: "linear-oauth",
    with: {
        "wasi:http": wasmtime_wasi_http::p2::bindings::http,
        "wasi:io": wasmtime_wasi::p2::bindings::sync::io,
        "wasi:clocks": wasmtime_wasi::p2::bindings::clocks,
        "wasi:random": wasmtime_wasi::p2::bindings::random,
    },
    require_store_data_send: true,
});

pub use exports::linear::oauth::{admin, install, resolver, webhook};
pub use linear::oauth::{coordination, log, metrics, registry, secret_store, types};
