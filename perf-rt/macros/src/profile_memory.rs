//! `#[profile_memory]`: wraps a function body in a memory scope.
//!
//! A plain function gets a `ScopeGuard` as its first statement, so every exit (`return`,
//! `?`, falling off the end) is measured; an async function's body becomes a future
//! measured poll by poll by `profile_future`.

use proc_macro2::TokenStream;
use quote::quote;
use syn::parse::Parser;
use syn::punctuated::Punctuated;
use syn::{Expr, ItemFn, Lit, LitStr, Meta, Token};

struct Args {
    name: Option<LitStr>,
    threshold: Option<Expr>,
}

fn parse_args(attr: TokenStream) -> syn::Result<Args> {
    let mut args = Args {
        name: None,
        threshold: None,
    };
    let metas = Punctuated::<Meta, Token![,]>::parse_terminated.parse2(attr)?;
    for meta in metas {
        let nv = match meta {
            Meta::NameValue(nv) => nv,
            other => {
                return Err(syn::Error::new_spanned(
                    other,
                    "expected `name = \"…\"` or `threshold = <bytes>`",
                ));
            }
        };
        if nv.path.is_ident("name") {
            match &nv.value {
                Expr::Lit(syn::ExprLit {
                    lit: Lit::Str(s), ..
                }) => args.name = Some(s.clone()),
                other => {
                    return Err(syn::Error::new_spanned(
                        other,
                        "`name` takes a string literal",
                    ));
                }
            }
        } else if nv.path.is_ident("threshold") {
            args.threshold = Some(nv.value);
        } else {
            return Err(syn::Error::new_spanned(
                nv.path,
                "unknown argument: expected `name` or `threshold`",
            ));
        }
    }
    Ok(args)
}

/// Expands `#[profile_memory(...)]` on `item`.
pub fn expand(attr: TokenStream, item: TokenStream) -> TokenStream {
    match try_expand(attr, item) {
        Ok(tokens) => tokens,
        Err(e) => e.to_compile_error(),
    }
}

fn try_expand(attr: TokenStream, item: TokenStream) -> syn::Result<TokenStream> {
    let args = parse_args(attr)?;
    let mut function: ItemFn = syn::parse2(item)?;
    let ident = &function.sig.ident;
    let name = match &args.name {
        Some(name) => quote!(#name),
        None => {
            let ident = ident.to_string();
            quote!(::core::concat!(::core::module_path!(), "::", #ident))
        }
    };
    let threshold = match &args.threshold {
        Some(t) => quote!(::core::option::Option::Some((#t) as u64)),
        None => quote!(::core::option::Option::None),
    };
    let body = &function.block;
    let new_body = if function.sig.asyncness.is_some() {
        quote!({
            ::perf_rt::memory::profile_future(#name, #threshold, async move #body).await
        })
    } else {
        quote!({
            let __perf_rt_memory_scope = ::perf_rt::memory::ScopeGuard::enter(#name, #threshold);
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
