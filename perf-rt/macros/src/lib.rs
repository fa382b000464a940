//! Procedural macros of perf-rt. Use them through `perf_rt`, which re-exports them.

mod function;
mod optimize_query;
mod profile_memory;
mod profile_performance;
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

/// Times a function into the performance monitor (`perf_rt::monitor`): per-name latency
/// quantiles in the `/api/performance/metrics` report and Prometheus. Use it through
/// `perf_rt::monitor::profile_performance`; works on plain and async functions.
///
/// Arguments: `name = "…"` (default: the function's module path and name).
#[proc_macro_attribute]
pub fn profile_performance(attr: TokenStream, item: TokenStream) -> TokenStream {
    profile_performance::expand(attr.into(), item.into()).into()
}

/// Caches the result of a function in the global query cache
/// (`perf_rt::cache::set_global`); use it as `perf_rt::optimize_query`.
///
/// ```ignore
/// #[perf_rt::optimize_query(expire = 300, key_prefix = "posts", tags = ["posts"], skip(db))]
/// async fn posts_by_author(db: &Db, author: i64) -> Result<Vec<Post>, Error> { … }
/// ```
///
/// - The key is the function's identity plus every argument not listed in `skip(…)`,
///   serialised with serde (arguments must implement `serde::Serialize`); so two calls with
///   different arguments never share an entry. The identity is the function's path with the
///   type arguments of the instance and, for a method, the `impl`'s self type (from
///   `std::any::type_name`, which may change between compiler versions: instances built by
///   different compilers then simply miss each other's entries). `key_prefix` replaces the
///   path; the function's own type arguments still join the key, and a prefix claimed by
///   two functions is reported on their first calls (the second runs uncached).
/// - Concurrent misses run one load; when the error type is `Clone`, a failure is shared
///   with the callers waiting for it.
/// - `expire` is in seconds; without it the cache's default applies
///   (`PERF_QUERY_CACHE_DEFAULT_EXPIRE`, 300 s).
/// - `tags` are invalidated by writes to the tables of the same name (`SqliteInvalidator`)
///   or by `QueryCache::invalidate_tag`.
/// - Async functions use both tiers; plain functions the in-memory tier. A function that
///   returns `Result` caches only `Ok`. The return value must be
///   `Serialize + DeserializeOwned + Clone + Send + Sync + 'static`.
/// - Without a global cache, the function runs uncached (logged once).
#[proc_macro_attribute]
pub fn optimize_query(attr: TokenStream, item: TokenStream) -> TokenStream {
    optimize_query::expand(attr.into(), item.into()).into()
}
