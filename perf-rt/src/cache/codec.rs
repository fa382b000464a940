//! Cache keys built from arguments, and the versioned byte format of stored values.
//!
//! ```
//! use perf_rt::cache::KeyBuilder;
//!
//! let mut key = KeyBuilder::new("posts::by_author");
//! key.arg(&42_i64).arg("draft");
//! assert_eq!(key.finish().unwrap(), "posts::by_author:54:056472616674");
//! ```

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::CacheError;

/// First bytes of every value this cache writes to Redis: a magic number and the format
/// version. Bump the version when the envelope changes; older entries then decode as misses.
/// Then comes a fingerprint of the value's type (postcard is not self-describing: a `String`
/// decodes as a `Vec<u64>`), then postcard of `(tags, value)`.
const HEADER: [u8; 3] = [b'P', b'Q', 2];

/// FNV-1a of the type's name: a renamed or different type reads as a miss. Changing a
/// struct's fields keeps its name: change the key prefix (or the type name) with it.
fn fingerprint<T: ?Sized>() -> [u8; 4] {
    let mut hash: u32 = 0x811c_9dc5;
    for byte in std::any::type_name::<T>().bytes() {
        hash = (hash ^ u32::from(byte)).wrapping_mul(0x0100_0193);
    }
    hash.to_le_bytes()
}

/// Builds a cache key: a prefix, then each argument serialised with postcard and
/// hex-encoded, separated by `:`.
///
/// Postcard is a deterministic, self-delimiting encoding, so for one function signature two
/// different argument lists never produce the same key (unlike a hash, which can collide),
/// and the key is the same in every process and on every machine (unlike `Hash`, whose
/// `RandomState` is seeded per process). Arguments must therefore implement
/// [`serde::Serialize`].
#[derive(Debug)]
pub struct KeyBuilder {
    key: String,
    prefix_len: usize,
    error: Option<postcard::Error>,
}

struct HexSink<'a>(&'a mut String);

impl Extend<u8> for HexSink<'_> {
    fn extend<I: IntoIterator<Item = u8>>(&mut self, iter: I) {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        for byte in iter {
            self.0.push(DIGITS[usize::from(byte >> 4)] as char);
            self.0.push(DIGITS[usize::from(byte & 0xf)] as char);
        }
    }
}

thread_local! {
    static SPARE: std::cell::Cell<String> = const { std::cell::Cell::new(String::new()) };
}

/// Keeps a finished key's buffer for this thread's next [`KeyBuilder`] (small ones only).
pub(crate) fn recycle(key: String) {
    if key.capacity() <= 512 {
        SPARE.set(key);
    }
}

impl KeyBuilder {
    /// Starts a key with `prefix` (for `#[optimize_query]`: the function's path).
    pub fn new(prefix: &str) -> Self {
        // A hit hands its key back (`recycle`): this thread's next key reuses the buffer.
        let mut key = SPARE.take();
        key.clear();
        key.reserve(prefix.len() + 24);
        key.push_str(prefix);
        Self {
            key,
            prefix_len: prefix.len(),
            error: None,
        }
    }

    /// Appends one argument. A serialisation failure (a sequence of unknown length, a
    /// failing `Serialize` implementation) is reported by [`Self::finish`].
    pub fn arg<T: Serialize + ?Sized>(&mut self, value: &T) -> &mut Self {
        if self.error.is_none() {
            self.key.push(':');
            if let Err(e) = postcard::to_extend(value, HexSink(&mut self.key)) {
                self.error = Some(e);
            }
        }
        self
    }

    /// The finished key.
    ///
    /// # Errors
    ///
    /// [`CacheError::Key`] if an argument could not be serialised.
    pub fn finish(self) -> Result<String, CacheError> {
        match self.error {
            None => Ok(self.key),
            Some(source) => Err(CacheError::Key {
                prefix: self.key[..self.prefix_len].to_owned(),
                source,
            }),
        }
    }
}

/// Serialises `value` and its tags behind the versioned header.
pub(crate) fn encode<T: Serialize>(tags: &[&str], value: &T) -> Result<Vec<u8>, postcard::Error> {
    let mut out = Vec::with_capacity(64);
    out.extend_from_slice(&HEADER);
    out.extend_from_slice(&fingerprint::<T>());
    postcard::to_extend(&(tags, value), out)
}

/// Reads a value written by [`encode`]: `None` for a foreign header, an older format or
/// bytes that are not a `T`.
#[cfg_attr(not(feature = "cache-redis"), allow(dead_code))]
pub(crate) fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Option<(Vec<String>, T)> {
    let body = bytes
        .strip_prefix(&HEADER)?
        .strip_prefix(&fingerprint::<T>())?;
    postcard::from_bytes(body).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn different_arguments_give_different_keys() {
        let key = |a: &str, b: &str| {
            let mut k = KeyBuilder::new("f");
            k.arg(a).arg(b);
            k.finish().unwrap()
        };
        // A naive concatenation would give "ab" for both.
        assert_ne!(key("a", "b"), key("ab", ""));
        assert_eq!(key("a", "b"), key("a", "b"));
    }

    #[test]
    fn round_trip_and_rejects() {
        let bytes = encode(&["posts"], &(1u32, "x".to_string())).unwrap();
        let (tags, value): (Vec<String>, (u32, String)) = decode(&bytes).unwrap();
        assert_eq!(tags, ["posts"]);
        assert_eq!(value, (1, "x".to_string()));
        assert!(decode::<(u32, String)>(&bytes[1..]).is_none());
        let mut old = bytes.clone();
        old[2] = 0;
        assert!(decode::<(u32, String)>(&old).is_none());
        assert!(decode::<(u32, String)>(&bytes[..bytes.len() - 1]).is_none());
        let s = encode(&[], &"abc".to_string()).unwrap();
        assert!(decode::<Vec<u64>>(&s).is_none(), "other type");
    }
}
