//! Reading settings from the environment, shared by the features that do.

/// A boolean setting as the `PERF_*` variables write it: `1`/`true`/`yes`/`on` or
/// `0`/`false`/`no`/`off`, in any case, spaces around ignored; `None` for anything else.
pub(crate) fn flag(value: &str) -> Option<bool> {
    match value.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Some(true),
        "0" | "false" | "no" | "off" => Some(false),
        _ => None,
    }
}
