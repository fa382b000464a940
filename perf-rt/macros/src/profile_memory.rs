//! `#[profile_memory]`: wraps a function body in a memory scope.
//!
//! A plain function gets a `ScopeGuard` as its first statement, so every exit (`return`,
//! `?`, falling off the end) is measured; an async function's body becomes a future
//! measured poll by poll by `profile_future`.

use proc_macro2::TokenStream;
use quote::quote;

use crate::function;

/// Expands `#[profile_memory(...)]` on `item`.
pub fn expand(attr: TokenStream, item: TokenStream) -> TokenStream {
    function::or_error(function::parse_args(attr, true).and_then(|args| {
        let threshold = match &args.threshold {
            Some(t) => quote!(::core::option::Option::Some((#t) as u64)),
            None => quote!(::core::option::Option::None),
        };
        function::expand(args.name.as_ref(), item, |name, body, is_async| {
            if is_async {
                quote!({
                    ::perf_rt::memory::profile_future(#name, #threshold, async move #body).await
                })
            } else {
                quote!({
                    let __perf_rt_memory_scope =
                        ::perf_rt::memory::ScopeGuard::enter(#name, #threshold);
                    #body
                })
            }
        })
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sync_functions_get_a_guard_and_async_ones_a_measured_future() {
        let sync = expand(
            quote!(),
            quote!(
                fn f() -> u8 {
                    1
                }
            ),
        )
        .to_string();
        assert!(sync.contains("ScopeGuard :: enter"), "{sync}");
        let asynchronous = expand(
            quote!(name = "x"),
            quote!(
                async fn g() {}
            ),
        )
        .to_string();
        assert!(asynchronous.contains("profile_future"), "{asynchronous}");
        assert!(asynchronous.contains("\"x\""), "{asynchronous}");
        let bad = expand(
            quote!(nme = "x"),
            quote!(
                fn f() {}
            ),
        )
        .to_string();
        assert!(bad.contains("compile_error"), "{bad}");
    }
}
