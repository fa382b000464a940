//! `#[profile_performance]`: times a function into the performance monitor.
//!
//! A plain function gets a `FunctionTimer` as its first statement, so every exit is timed;
//! an async function's body becomes a future timed from first poll to completion.

use proc_macro2::TokenStream;
use quote::quote;
use syn::parse::Parser;
use syn::punctuated::Punctuated;
use syn::{Expr, ItemFn, Lit, LitStr, Meta, Token};

fn parse_name(attr: TokenStream) -> syn::Result<Option<LitStr>> {
    let mut name = None;
    for meta in Punctuated::<Meta, Token![,]>::parse_terminated.parse2(attr)? {
        match meta {
            Meta::NameValue(nv) if nv.path.is_ident("name") => match &nv.value {
                Expr::Lit(syn::ExprLit {
                    lit: Lit::Str(s), ..
                }) => name = Some(s.clone()),
                other => {
                    return Err(syn::Error::new_spanned(
                        other,
                        "`name` takes a string literal",
                    ));
                }
            },
            other => {
                return Err(syn::Error::new_spanned(
                    other,
                    "unknown argument: expected `name = \"…\"`",
                ));
            }
        }
    }
    Ok(name)
}

/// Expands `#[profile_performance(...)]` on `item`.
pub fn expand(attr: TokenStream, item: TokenStream) -> TokenStream {
    match try_expand(attr, item) {
        Ok(tokens) => tokens,
        Err(e) => e.to_compile_error(),
    }
}

fn try_expand(attr: TokenStream, item: TokenStream) -> syn::Result<TokenStream> {
    let name = parse_name(attr)?;
    let mut function: ItemFn = syn::parse2(item)?;
    let name = match name {
        Some(name) => quote!(#name),
        None => {
            let ident = function.sig.ident.to_string();
            quote!(::core::concat!(::core::module_path!(), "::", #ident))
        }
    };
    let body = &function.block;
    let new_body = if function.sig.asyncness.is_some() {
        quote!({
            ::perf_rt::monitor::profile_future(#name, async move #body).await
        })
    } else {
        quote!({
            let __perf_rt_function_timer = ::perf_rt::monitor::FunctionTimer::start(#name);
            #body
        })
    };
    function.block = syn::parse2(new_body)?;
    Ok(quote!(#function))
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
