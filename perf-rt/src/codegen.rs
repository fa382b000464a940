//! Items named by the code that `perf-build` generates. Not an API: the generated file
//! names only `::perf_rt::codegen::*`, so an application never depends on the generator's
//! own dependencies (phf included).

pub use perf_rt_macros::unknown_asset;
pub use phf;

#[cfg(feature = "assets")]
pub use crate::assets::{
    Asset, Assets, Critical, DevScript, Entry, Image, ImageFormat, ImageSource, Picture,
};

/// Version of the contract between the generated code and this crate. perf-build writes
/// the version it generates for; [`check_abi`] refuses any other at compile time.
pub const ABI_VERSION: u32 = 4;

/// Fails compilation (it runs in a `const` item) when the generated code was written for
/// another version of this crate.
pub const fn check_abi(generated_for: u32) {
    if generated_for != ABI_VERSION {
        panic!(
            "perf-build and perf-rt disagree on the generated code's format: \
             use the same version of both crates in Cargo.toml"
        );
    }
}

/// Brings in the code perf-build wrote into `OUT_DIR`: the `ASSETS` manifest and the
/// `asset_url!` macro.
///
/// Write it once at the crate root, before the modules that use `asset_url!` (a
/// `macro_rules!` macro is visible only after its definition):
///
/// ```ignore
/// perf_rt::include_assets!();
/// mod pages; // may use asset_url!("css/app.css")
/// ```
///
/// `include_assets!(export)` also exports `asset_url!` from the crate with
/// `#[macro_export]`, for a library whose users name assets through it.
#[macro_export]
macro_rules! include_assets {
    () => {
        include!(concat!(env!("OUT_DIR"), "/perf_assets.rs"));
        include!(concat!(env!("OUT_DIR"), "/perf_asset_url.rs"));
    };
    (export) => {
        include!(concat!(env!("OUT_DIR"), "/perf_assets.rs"));
        include!(concat!(env!("OUT_DIR"), "/perf_asset_url_export.rs"));
    };
}
