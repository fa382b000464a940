//! Live instance counts per type, for the types an application opts in.
//!
//! Either wrap a value, `Tracked::new(value)`, or embed a [`Track<Self>`] field in the
//! type (it is `Default` and `Clone`, so derives keep working):
//!
//! ```
//! use perf_rt::memory::{Track, live_instances};
//!
//! #[derive(Clone, Default)]
//! struct Session {
//!     user: String,
//!     _track: Track<Session>,
//! }
//!
//! let a = Session::default();
//! let _b = a.clone();
//! let counts = live_instances();
//! let session = counts.iter().find(|t| t.type_name.ends_with("Session")).unwrap();
//! assert_eq!(session.live, 2);
//! ```

use std::any::TypeId;
use std::collections::HashMap;
use std::fmt;
use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::atomic::{AtomicI64, AtomicU64};
use std::sync::{OnceLock, RwLock};

use serde::{Deserialize, Serialize};

struct TypeCounter {
    type_name: &'static str,
    live: AtomicI64,
    created: AtomicU64,
    peak: AtomicI64,
}

impl TypeCounter {
    fn created(&self) {
        self.created.fetch_add(1, Relaxed);
        let live = self.live.fetch_add(1, Relaxed) + 1;
        self.peak.fetch_max(live, Relaxed);
    }
}

type Registry = RwLock<HashMap<TypeId, &'static TypeCounter>>;

fn registry() -> &'static Registry {
    static REGISTRY: OnceLock<Registry> = OnceLock::new();
    REGISTRY.get_or_init(Default::default)
}

fn counter_for<T: ?Sized + 'static>() -> &'static TypeCounter {
    let id = TypeId::of::<T>();
    if let Some(counter) = registry()
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .get(&id)
    {
        return counter;
    }
    let mut map = registry().write().unwrap_or_else(|e| e.into_inner());
    map.entry(id).or_insert_with(|| {
        // One small counter per tracked type, for the life of the process.
        Box::leak(Box::new(TypeCounter {
            type_name: std::any::type_name::<T>(),
            live: AtomicI64::new(0),
            created: AtomicU64::new(0),
            peak: AtomicI64::new(0),
        }))
    })
}

/// A counting token: while it exists, it counts as one live instance of `T`.
///
/// Embed it as a field (`_track: Track<Self>`) to count a type's instances; cloning the
/// token counts a new instance, dropping it ends one.
pub struct Track<T: ?Sized + 'static> {
    counter: &'static TypeCounter,
    _type: PhantomData<fn() -> T>,
}

impl<T: ?Sized + 'static> Track<T> {
    /// Counts one new live instance of `T`.
    pub fn new() -> Self {
        let counter = counter_for::<T>();
        counter.created();
        Self {
            counter,
            _type: PhantomData,
        }
    }
}

impl<T: ?Sized + 'static> Default for Track<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: ?Sized + 'static> Clone for Track<T> {
    fn clone(&self) -> Self {
        self.counter.created();
        Self {
            counter: self.counter,
            _type: PhantomData,
        }
    }
}

impl<T: ?Sized + 'static> Drop for Track<T> {
    fn drop(&mut self) {
        self.counter.live.fetch_sub(1, Relaxed);
    }
}

impl<T: ?Sized + 'static> fmt::Debug for Track<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Track")
            .field("type", &self.counter.type_name)
            .finish()
    }
}

/// A value counted as a live instance of `T` for as long as it exists.
#[derive(Clone, Debug, Default)]
pub struct Tracked<T: 'static> {
    value: T,
    _track: Track<T>,
}

impl<T: 'static> Tracked<T> {
    /// Wraps `value`, counting one live instance of `T`.
    pub fn new(value: T) -> Self {
        Self {
            value,
            _track: Track::new(),
        }
    }

    /// Unwraps the value; it is no longer counted.
    pub fn into_inner(self) -> T {
        self.value
    }
}

impl<T: 'static> Deref for Tracked<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.value
    }
}

impl<T: 'static> DerefMut for Tracked<T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.value
    }
}

/// Instance counts of one tracked type.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TypeInstances {
    /// The type's name, as `std::any::type_name` spells it.
    pub type_name: String,
    /// Instances alive now.
    pub live: u64,
    /// Instances created since start.
    pub created: u64,
    /// Instances dropped since start.
    pub dropped: u64,
    /// Most instances alive at once.
    pub peak: u64,
}

/// Instance counts of every tracked type, sorted by type name.
pub fn live_instances() -> Vec<TypeInstances> {
    let map = registry().read().unwrap_or_else(|e| e.into_inner());
    let mut out: Vec<TypeInstances> = map
        .values()
        .map(|c| {
            let created = c.created.load(Relaxed);
            let live = c.live.load(Relaxed).max(0) as u64;
            TypeInstances {
                type_name: c.type_name.to_owned(),
                live,
                created,
                dropped: created.saturating_sub(live),
                peak: c.peak.load(Relaxed).max(0) as u64,
            }
        })
        .collect();
    out.sort_by(|a, b| a.type_name.cmp(&b.type_name));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Widget;

    fn widget_counts() -> TypeInstances {
        live_instances()
            .into_iter()
            .find(|t| t.type_name.ends_with("Widget"))
            .unwrap()
    }

    #[test]
    fn counts_follow_creation_clone_and_drop() {
        let a = Tracked::new(Widget);
        let b = a._track.clone();
        assert_eq!(widget_counts().live, 2);
        drop(a);
        assert_eq!(widget_counts().live, 1);
        let c: Vec<Tracked<Widget>> = (0..10).map(|_| Tracked::new(Widget)).collect();
        let counts = widget_counts();
        assert_eq!((counts.live, counts.created, counts.peak), (11, 12, 11));
        drop(c);
        drop(b);
        let counts = widget_counts();
        assert_eq!((counts.live, counts.dropped), (0, 12));
    }
}
