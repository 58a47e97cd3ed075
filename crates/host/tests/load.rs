//! The embedded component is precompiled for the target this crate was built
//! for, with the documented CPU baseline, and loads without a compiler.

use linear_oauth_host::Resolver;

#[test]
fn the_precompiled_component_loads_without_compiling() {
    let info = Resolver::load_info().expect("the component loads");
    assert!(!info.compiled_fallback, "precompiled artifact rejected: {:?}", info.fallback_reason);
    assert!(info.fallback_reason.is_none());
    assert!(
        info.target.starts_with(std::env::consts::ARCH) && info.target.contains(std::env::consts::OS),
        "artifact for {} loaded on {}-{}",
        info.target,
        std::env::consts::ARCH,
        std::env::consts::OS
    );
    // An explicit baseline, not the build machine's CPU (which would list avx2 and friends).
    let expected = match std::env::consts::ARCH {
        "x86_64" => "has_sse3,has_ssse3,has_cmpxchg16b,has_sse41,has_sse42,has_popcnt",
        "aarch64" => "has_lse",
        _ => "",
    };
    assert_eq!(info.cpu_baseline, expected);
}
