//! Procedural macros of perf-rt. Use them through `perf_rt`, which re-exports them.

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
