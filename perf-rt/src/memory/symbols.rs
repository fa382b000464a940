//! Symbol resolution, done only when a report asks for it, and cached per address.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use serde::{Deserialize, Serialize};

use super::allocator::without_sampling;

/// One resolved frame of a sampled stack (inlined functions give several per address).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct StackFrame {
    /// Demangled function name, without the hash suffix; `None` if unknown.
    pub function: Option<String>,
    /// Source file, when debug info has it.
    pub file: Option<String>,
    /// Source line, when debug info has it.
    pub line: Option<u32>,
}

impl StackFrame {
    /// `function (file:line)`, or as much of it as is known.
    pub fn describe(&self) -> String {
        let function = self.function.as_deref().unwrap_or("<unknown>");
        match (&self.file, self.line) {
            (Some(file), Some(line)) => format!("{function} ({file}:{line})"),
            (Some(file), None) => format!("{function} ({file})"),
            _ => function.to_owned(),
        }
    }
}

/// Where memory was allocated: the innermost frame outside the allocator, `alloc`,
/// `core`, `std` and collection internals.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct CallSite {
    /// The attributed frame.
    pub frame: StackFrame,
    /// The full resolved stack, innermost first, allocator frames removed.
    pub stack: Vec<StackFrame>,
}

impl CallSite {
    /// The key reports group by: the attributed frame, as text.
    pub fn key(&self) -> String {
        self.frame.describe()
    }
}

/// Crates whose frames are plumbing between user code and the allocator.
const INTERNAL_PREFIXES: &[&str] = &[
    "backtrace::",
    "perf_rt::memory::",
    "alloc::",
    "core::",
    "std::",
    "hashbrown::",
    "__rust",
    "__rdl",
    "__rg_",
    "_Unwind",
    "rust_begin_unwind",
];

fn is_internal(function: &str) -> bool {
    let name = function.strip_prefix('<').unwrap_or(function);
    INTERNAL_PREFIXES.iter().any(|p| name.starts_with(p))
}

/// Frames compiled from the standard library's sources (`<u8 as alloc::…>::from_elem`
/// has a user-looking name) count as plumbing too.
fn is_internal_frame(frame: &StackFrame) -> bool {
    frame.function.as_deref().is_some_and(is_internal)
        || frame
            .file
            .as_deref()
            .is_some_and(|f| f.starts_with("/rustc/") || f.contains("/library/alloc/src/"))
        // A std generic instantiated in a dependency built without debug info (shared
        // generics) has no file: recognise it by the std paths in its name.
        || (frame.file.is_none()
            && frame
                .function
                .as_deref()
                .is_some_and(|f| ["alloc::", "core::", "std::"].iter().any(|p| f.contains(p))))
}

/// Where std's short backtraces stop: frames below belong to the runtime, not the app.
fn is_runtime_entry(frame: &StackFrame) -> bool {
    frame
        .function
        .as_deref()
        .is_some_and(|f| f.contains("__rust_begin_short_backtrace"))
}

fn cache() -> &'static Mutex<HashMap<usize, Vec<StackFrame>>> {
    static CACHE: OnceLock<Mutex<HashMap<usize, Vec<StackFrame>>>> = OnceLock::new();
    CACHE.get_or_init(Default::default)
}

fn resolve_ip(ip: usize, cache: &mut HashMap<usize, Vec<StackFrame>>) -> Vec<StackFrame> {
    cache
        .entry(ip)
        .or_insert_with(|| {
            let mut frames = Vec::new();
            backtrace::resolve(ip as *mut std::ffi::c_void, |symbol| {
                frames.push(StackFrame {
                    function: symbol.name().map(|n| format!("{n:#}")),
                    file: symbol.filename().map(|f| f.display().to_string()),
                    line: symbol.lineno(),
                });
            });
            if frames.is_empty() {
                frames.push(StackFrame {
                    function: Some(format!("{ip:#x}")),
                    file: None,
                    line: None,
                });
            }
            frames
        })
        .clone()
}

/// Resolves a sampled stack (raw instruction pointers) into a call site.
pub(crate) fn call_site(ips: &[usize]) -> CallSite {
    without_sampling(|| {
        let mut cache = cache().lock().unwrap_or_else(|e| e.into_inner());
        let all: Vec<StackFrame> = ips
            .iter()
            .flat_map(|&ip| resolve_ip(ip, &mut cache))
            .collect();
        // Drop the capture machinery and allocator plumbing above the first user frame,
        // and the runtime's frames below the program's entry.
        let first_user = all.iter().position(|f| !is_internal_frame(f));
        let mut stack = match first_user {
            Some(i) => all[i..].to_vec(),
            None => all,
        };
        if let Some(end) = stack.iter().position(is_runtime_entry) {
            stack.truncate(end.max(1));
        }
        let frame = stack.first().cloned().unwrap_or(StackFrame {
            function: None,
            file: None,
            line: None,
        });
        CallSite { frame, stack }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_frames_are_recognised_and_user_frames_are_not() {
        assert!(is_internal("alloc::raw_vec::RawVec<T,A>::grow_one"));
        assert!(is_internal(
            "<alloc::vec::Vec<T> as core::clone::Clone>::clone"
        ));
        assert!(is_internal("perf_rt::memory::allocator::on_alloc"));
        assert!(!is_internal(
            "<my_app::Session as core::clone::Clone>::clone"
        ));
        assert!(!is_internal("memory_leaks::leaky_function"));
        let std_frame = StackFrame {
            function: Some("<u8 as alloc::vec::spec_from_elem::SpecFromElem>::from_elem".into()),
            file: Some("/rustc/59807616e/library/alloc/src/vec/spec_from_elem.rs".into()),
            line: Some(53),
        };
        assert!(is_internal_frame(&std_frame));
        let user_frame = StackFrame {
            function: Some("<app::Session as core::clone::Clone>::clone".into()),
            file: Some("src/session.rs".into()),
            line: Some(3),
        };
        assert!(!is_internal_frame(&user_frame));
    }
}
