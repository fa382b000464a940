//! What `#[profile_memory]` and `#[profile_performance]` share: their arguments and the
//! wrapping of a function's body, plain or async.

use proc_macro2::TokenStream;
use quote::quote;
use syn::parse::Parser;
use syn::punctuated::Punctuated;
use syn::{Block, Expr, ItemFn, Lit, LitStr, Meta, Token};

/// The arguments: `name = "…"` for both, `threshold = <bytes>` where the macro takes it.
pub(crate) struct Args {
    /// The name the figures are recorded under.
    pub(crate) name: Option<LitStr>,
    /// `#[profile_memory]`'s logging threshold.
    pub(crate) threshold: Option<Expr>,
}

/// Parses the attribute's arguments; `threshold` is refused unless `takes_threshold`.
pub(crate) fn parse_args(attr: TokenStream, takes_threshold: bool) -> syn::Result<Args> {
    let expected = if takes_threshold {
        "expected `name = \"…\"` or `threshold = <bytes>`"
    } else {
        "expected `name = \"…\"`"
    };
    let mut args = Args {
        name: None,
        threshold: None,
    };
    for meta in Punctuated::<Meta, Token![,]>::parse_terminated.parse2(attr)? {
        let Meta::NameValue(nv) = meta else {
            return Err(syn::Error::new_spanned(meta, expected));
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
        } else if takes_threshold && nv.path.is_ident("threshold") {
            args.threshold = Some(nv.value);
        } else {
            return Err(syn::Error::new_spanned(
                nv.path,
                format!("unknown argument: {expected}"),
            ));
        }
    }
    Ok(args)
}

/// Parses the function `item` and replaces its body with what `wrap` makes of it, given
/// the name expression (the `name` argument, or the function's module path and name), the
/// body and whether the function is async. Errors become compile errors.
pub(crate) fn expand(
    name: Option<&LitStr>,
    item: TokenStream,
    wrap: impl FnOnce(TokenStream, &Block, bool) -> TokenStream,
) -> syn::Result<TokenStream> {
    let mut function: ItemFn = syn::parse2(item)?;
    let name = match name {
        Some(name) => quote!(#name),
        None => {
            let ident = function.sig.ident.to_string();
            quote!(::core::concat!(::core::module_path!(), "::", #ident))
        }
    };
    let body = wrap(name, &function.block, function.sig.asyncness.is_some());
    function.block = syn::parse2(body)?;
    Ok(quote!(#function))
}

/// A result of [`expand`] or its compile error.
pub(crate) fn or_error(result: syn::Result<TokenStream>) -> TokenStream {
    result.unwrap_or_else(|e| e.to_compile_error())
}
