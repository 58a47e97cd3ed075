//! `linear-oauth-precompile IN.wasm OUT.cwasm TARGET-TRIPLE`: compiles the
//! component ahead of time with the engine settings the runtime uses, for
//! `TARGET-TRIPLE` (which need not be this machine) and the documented CPU
//! baseline of its architecture, never this machine's own CPU features.
//! Prints the baseline it used.

use std::process::ExitCode;

include!("../../host/src/engine_config.rs");

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [input, output, target] = args.as_slice() else {
        eprintln!("usage: linear-oauth-precompile IN.wasm OUT.cwasm TARGET-TRIPLE");
        return ExitCode::from(2);
    };
    match precompile(input, output, target) {
        Ok(baseline) => {
            println!("{}", baseline.join(","));
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("linear-oauth-precompile: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn precompile(input: &str, output: &str, target: &str) -> wasmtime::Result<&'static [&'static str]> {
    let wasm = std::fs::read(input).map_err(|e| wasmtime::format_err!("reading {input}: {e}"))?;
    let mut config = engine_config();
    config.target(target)?;
    let baseline = cpu_baseline(target);
    for flag in baseline {
        // SAFETY: the flag only widens the instruction set Cranelift may use;
        // wasmtime re-checks every enabled flag against the running CPU before
        // it loads the artifact.
        #[allow(unsafe_code)]
        unsafe {
            config.cranelift_flag_enable(flag);
        }
    }
    let engine = wasmtime::Engine::new(&config)?;
    let cwasm = engine.precompile_component(&wasm)?;
    std::fs::write(output, cwasm).map_err(|e| wasmtime::format_err!("writing {output}: {e}"))?;
    Ok(baseline)
}
