//! Procedural macros of perf-rt. Use them through `perf_rt`, which re-exports them.

mod profile_memory;
mod unknown_asset;

use proc_macro::TokenStream;

/// Turns an `asset_url!` call naming an asset that was not embedded into a compile error
/// that names the closest embedded asset. Called only by the code perf-build generates:
/// `unknown_asset!(macro_name, "static dir", "requested", ["known", …])`.
#[doc(hidden)]
#[proc_macro]
pub fn unknown_asset(input: TokenStream) -> TokenStream {
    unknown_asset::expand(input.into()).into()
}

/// Measures a function's allocations: count, bytes, peak during the call and bytes still
/// held after it, recorded per name and logged above a threshold. Use it through
/// `perf_rt::memory::profile_memory`; works on plain and async functions.
///
/// Arguments: `name = "…"` (default: the function's module path and name),
/// `threshold = <bytes>` (peak above which a call is logged; default
/// `PERF_MEMORY_LOG_THRESHOLD`, 1 MiB).
#[proc_macro_attribute]
pub fn profile_memory(attr: TokenStream, item: TokenStream) -> TokenStream {
    profile_memory::expand(attr.into(), item.into()).into()
}
