//! `#[profile_performance]`: times a function into the performance monitor.
//!
//! A plain function gets a `FunctionTimer` as its first statement, so every exit is timed;
//! an async function's body becomes a future timed from first poll to completion.

use proc_macro2::TokenStream;
use quote::quote;

use crate::function;

/// Expands `#[profile_performance(...)]` on `item`.
pub fn expand(attr: TokenStream, item: TokenStream) -> TokenStream {
    function::or_error(function::parse_args(attr, false).and_then(|args| {
        function::expand(args.name.as_ref(), item, |name, body, is_async| {
            if is_async {
                quote!({
                    ::perf_rt::monitor::profile_future(#name, async move #body).await
                })
            } else {
                quote!({
                    let __perf_rt_function_timer = ::perf_rt::monitor::FunctionTimer::start(#name);
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
    fn plain_functions_get_a_timer_and_async_ones_a_timed_future() {
        let sync = expand(
            quote!(),
            quote!(
                fn f() -> u8 {
                    1
                }
            ),
        )
        .to_string();
        assert!(sync.contains("FunctionTimer :: start"), "{sync}");
        assert!(sync.contains("module_path"), "{sync}");
        let asynchronous = expand(
            quote!(name = "render"),
            quote!(
                async fn g() {}
            ),
        )
        .to_string();
        assert!(asynchronous.contains("profile_future"), "{asynchronous}");
        assert!(asynchronous.contains("\"render\""), "{asynchronous}");
        let threshold = expand(
            quote!(threshold = 1),
            quote!(
                fn f() {}
            ),
        )
        .to_string();
        assert!(threshold.contains("unknown argument"), "{threshold}");
        let bad = expand(
            quote!(label = "x"),
            quote!(
                fn f() {}
            ),
        )
        .to_string();
        assert!(bad.contains("compile_error"), "{bad}");
    }
}
