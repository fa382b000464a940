//! What the code `#[optimize_query]` generates calls: keys, prefix ownership, error
//! sharing, the global cache. Not a public API.

pub use super::{CacheOptions, ErrorSharing, KeyBuilder, QueryCache};
pub use core::convert::Infallible;
pub use core::result::Result;
pub use core::time::Duration;

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, OnceLock, RwLock};

/// The function a `type_name_of_val(&|| ())` written in its body names: the path with
/// the instance's type arguments and, for a method, the `impl`'s self type.
pub fn identity(closure_type: &'static str) -> &'static str {
    let mut id = closure_type;
    while let Some(rest) = id.strip_suffix("::{{closure}}") {
        id = rest;
    }
    id
}

/// Which function first used each key prefix.
static PREFIXES: RwLock<Option<HashMap<&'static str, &'static str>>> = RwLock::new(None);

/// Whether `prefix` belongs to the function `id` (the first to use it owns it); a
/// conflict is logged once per function and that function is not cached. With
/// `fn_generic`, the key carries the function's own type arguments, so they are left out
/// of its identity here: its instances share the prefix.
pub fn owns_prefix(prefix: &'static str, id: &'static str, fn_generic: bool) -> bool {
    let id = if fn_generic {
        without_last_generics(id)
    } else {
        id
    };
    if let Some(owner) = PREFIXES
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .as_ref()
        .and_then(|m| m.get(prefix))
    {
        return *owner == id || conflict(prefix, owner, id);
    }
    let mut map = PREFIXES.write().unwrap_or_else(|e| e.into_inner());
    let owner = *map
        .get_or_insert_with(HashMap::new)
        .entry(prefix)
        .or_insert(id);
    owner == id || conflict(prefix, owner, id)
}

/// The outcome of [`owns_prefix`] for one call site, remembered for the function instance
/// that asked first (a generic function's other instances ask [`owns_prefix`] each time).
pub struct PrefixOwner(OnceLock<(&'static str, &'static str, bool)>);

impl PrefixOwner {
    /// Nothing remembered yet.
    #[allow(clippy::new_without_default)]
    pub const fn new() -> Self {
        Self(OnceLock::new())
    }

    /// [`owns_prefix`], without its lock once this instance has asked.
    pub fn owns(&self, prefix: &'static str, id: &'static str, fn_generic: bool) -> bool {
        if let Some((p, i, owned)) = self.0.get()
            && same(p, prefix)
            && same(i, id)
        {
            return *owned;
        }
        let owned = owns_prefix(prefix, id, fn_generic);
        let _ = self.0.set((prefix, id, owned));
        owned
    }
}

/// String equality, at the cost of a pointer comparison when both are the same constant.
fn same(a: &str, b: &str) -> bool {
    (a.as_ptr() == b.as_ptr() && a.len() == b.len()) || a == b
}

/// `a::B<u8>::f<u32>` → `a::B<u8>::f`.
fn without_last_generics(id: &'static str) -> &'static str {
    if !id.ends_with('>') {
        return id;
    }
    let mut depth = 0usize;
    for (i, c) in id.char_indices().rev() {
        match c {
            '>' => depth += 1,
            '<' => {
                depth -= 1;
                if depth == 0 {
                    return &id[..i];
                }
            }
            _ => {}
        }
    }
    id
}

fn conflict(prefix: &str, owner: &str, id: &'static str) -> bool {
    static REPORTED: Mutex<Option<HashSet<&'static str>>> = Mutex::new(None);
    let mut reported = REPORTED.lock().unwrap_or_else(|e| e.into_inner());
    if reported.get_or_insert_with(HashSet::new).insert(id) {
        tracing::error!(
            key_prefix = prefix,
            first = owner,
            second = id,
            "#[optimize_query]: two functions share a key prefix and would return each \
             other's results; the second is not cached (give each its own key_prefix)"
        );
    }
    false
}

fn cache_for(key: &Result<String, super::CacheError>, owned: bool) -> Option<&'static QueryCache> {
    static WARNED: AtomicBool = AtomicBool::new(false);
    if !owned {
        return None;
    }
    let Some(cache) = QueryCache::global() else {
        if !WARNED.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                "#[optimize_query]: no global cache (perf_rt::cache::set_global); not caching"
            );
        }
        return None;
    };
    if let Err(e) = key {
        tracing::warn!(error = %e, "#[optimize_query]: not caching this call");
        return None;
    }
    Some(cache)
}

/// The error type of a function returning `Result`.
pub trait ResultParts {
    /// `T`.
    type Ok;
    /// `E`.
    type Err;
}

impl<T, E> ResultParts for Result<T, E> {
    type Ok = T;
    type Err = E;
}

/// The value the memory tier holds for `key`, checked before the function builds any
/// future or closure: a hit is this call alone (the key's buffer is kept for the next).
pub fn hit<T: Clone + 'static>(
    key: &mut Result<String, super::CacheError>,
    owned: bool,
) -> Option<T> {
    if !owned {
        return None;
    }
    let (Some(cache), Ok(k)) = (QueryCache::global(), key) else {
        return None;
    };
    let value = cache.inner.memory.get::<T>(k)?;
    super::codec::recycle(std::mem::take(k));
    Some(value)
}

/// Picks [`ErrorSharing`] for `E` when `E: Clone` (autoref specialisation: write
/// `(&Probe::<E>::new()).sharing()` with both traits in scope).
pub struct Probe<E>(PhantomData<E>);

impl<E> Probe<E> {
    /// A probe.
    #[allow(clippy::new_without_default)]
    pub fn new() -> Self {
        Self(PhantomData)
    }
}

/// Chosen when `E: Clone + Send + Sync + 'static`.
pub trait ShareByClone<E> {
    /// Sharing by clone.
    fn sharing(&self) -> Option<ErrorSharing<E>>;
}

impl<E: Clone + Send + Sync + 'static> ShareByClone<E> for Probe<E> {
    fn sharing(&self) -> Option<ErrorSharing<E>> {
        Some(ErrorSharing::cloning())
    }
}

/// Chosen otherwise.
pub trait NoSharing<E> {
    /// No sharing.
    fn sharing(&self) -> Option<ErrorSharing<E>>;
}

impl<E> NoSharing<E> for &Probe<E> {
    fn sharing(&self) -> Option<ErrorSharing<E>> {
        None
    }
}

/// Async functions.
pub async fn get_or_load<T, E, Fut>(
    key: Result<String, super::CacheError>,
    owned: bool,
    options: CacheOptions<'_>,
    sharing: Option<ErrorSharing<E>>,
    load: Fut,
) -> Result<T, E>
where
    T: super::Cacheable,
    Fut: Future<Output = Result<T, E>>,
{
    match (cache_for(&key, owned), key) {
        (Some(cache), Ok(key)) => {
            cache
                .get_or_load_with(&key, options, || load, sharing)
                .await
        }
        _ => load.await,
    }
}

/// Plain functions.
pub fn get_or_load_blocking<T, E>(
    key: Result<String, super::CacheError>,
    owned: bool,
    options: CacheOptions<'_>,
    sharing: Option<ErrorSharing<E>>,
    load: impl FnOnce() -> Result<T, E>,
) -> Result<T, E>
where
    T: super::Cacheable,
{
    match (cache_for(&key, owned), key) {
        (Some(cache), Ok(key)) => {
            let result = cache.get_or_load_blocking_with(&key, options, load, sharing);
            super::codec::recycle(key);
            result
        }
        _ => load(),
    }
}

/// Unwraps the result of a function that does not return `Result`.
pub fn infallible<T>(result: Result<T, Infallible>) -> T {
    match result {
        Ok(v) => v,
        Err(never) => match never {},
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone)]
    struct CloneErr;
    struct PlainErr;

    #[allow(clippy::needless_borrow)]
    fn generic<E>() -> bool {
        (&Probe::<E>::new()).sharing().is_some()
    }

    #[test]
    #[allow(clippy::needless_borrow)] // the borrow is what picks the trait
    fn clone_errors_are_shared_others_not() {
        assert!((&Probe::<CloneErr>::new()).sharing().is_some());
        assert!((&Probe::<PlainErr>::new()).sharing().is_none());
        assert!(
            !generic::<CloneErr>(),
            "unknown in a generic context: not shared"
        );
    }

    #[test]
    fn identities_and_prefix_owners() {
        assert_eq!(
            identity("a::B<u8>::f::{{closure}}::{{closure}}"),
            "a::B<u8>::f"
        );
        assert!(owns_prefix("test-prefix", "a::f", false));
        assert!(owns_prefix("test-prefix", "a::f", false));
        assert!(!owns_prefix("test-prefix", "a::g", false));
        assert!(owns_prefix("generic", "a::B<u8>::f<u32>", true));
        assert!(owns_prefix("generic", "a::B<u8>::f<Vec<u8>>", true));
        assert!(!owns_prefix("generic", "a::B<u16>::f<u32>", true));
    }
}
