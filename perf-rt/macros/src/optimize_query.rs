//! `#[optimize_query]`: caches a function's result in the global query cache.

use proc_macro2::TokenStream;
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{Expr, FnArg, ItemFn, LitStr, Pat, ReturnType, Type};

#[derive(Default)]
struct Args {
    expire: Option<Expr>,
    key_prefix: Option<LitStr>,
    tags: Vec<LitStr>,
    skip: Vec<syn::Ident>,
}

fn parse_args(attr: TokenStream) -> syn::Result<Args> {
    let mut args = Args::default();
    let parser = syn::meta::parser(|meta| {
        if meta.path.is_ident("expire") {
            args.expire = Some(meta.value()?.parse()?);
        } else if meta.path.is_ident("key_prefix") {
            args.key_prefix = Some(meta.value()?.parse()?);
        } else if meta.path.is_ident("tags") {
            let list: syn::ExprArray = meta.value()?.parse()?;
            for tag in list.elems {
                match tag {
                    Expr::Lit(syn::ExprLit {
                        lit: syn::Lit::Str(s),
                        ..
                    }) => args.tags.push(s),
                    other => {
                        return Err(syn::Error::new(other.span(), "tags are string literals"));
                    }
                }
            }
        } else if meta.path.is_ident("skip") {
            meta.parse_nested_meta(|arg| {
                let ident = arg
                    .path
                    .get_ident()
                    .cloned()
                    .ok_or_else(|| arg.error("expected an argument name"))?;
                args.skip.push(ident);
                Ok(())
            })?;
        } else {
            return Err(meta.error(
                "unknown option; expected `expire = <seconds>`, `key_prefix = \"…\"`, \
                 `tags = [\"…\"]` or `skip(arg, …)`",
            ));
        }
        Ok(())
    });
    syn::parse::Parser::parse2(parser, attr)?;
    Ok(args)
}

fn returns_result(ty: &Type) -> bool {
    match ty {
        Type::Path(p) => p.path.segments.last().is_some_and(|s| s.ident == "Result"),
        _ => false,
    }
}

pub(crate) fn expand(attr: TokenStream, item: TokenStream) -> TokenStream {
    match try_expand(attr, item) {
        Ok(tokens) => tokens,
        Err(e) => e.to_compile_error(),
    }
}

fn try_expand(attr: TokenStream, item: TokenStream) -> syn::Result<TokenStream> {
    let args = parse_args(attr)?;
    let func: ItemFn = syn::parse2(item)?;
    let ItemFn {
        attrs,
        vis,
        sig,
        block,
    } = &func;

    let ret = match &sig.output {
        ReturnType::Type(_, ty) => ty.as_ref().clone(),
        ReturnType::Default => {
            return Err(syn::Error::new(
                sig.span(),
                "#[optimize_query] caches a return value; this function returns nothing",
            ));
        }
    };

    let mut key_args = Vec::new();
    let mut used_skips = Vec::new();
    for input in &sig.inputs {
        let (ident, span) = match input {
            FnArg::Receiver(r) => (format_ident!("self", span = r.self_token.span), r.span()),
            FnArg::Typed(pt) => match pt.pat.as_ref() {
                Pat::Ident(pi) => (pi.ident.clone(), pt.span()),
                other => {
                    return Err(syn::Error::new(
                        other.span(),
                        "#[optimize_query] needs plain argument names (they become the cache key)",
                    ));
                }
            },
        };
        if args.skip.contains(&ident) {
            used_skips.push(ident);
            continue;
        }
        // Spanned so that "`Db: Serialize` is not satisfied" points at the argument.
        key_args.push(quote_spanned!(span=> __perf_key.arg(&#ident);));
    }
    if let Some(unknown) = args.skip.iter().find(|s| !used_skips.contains(s)) {
        return Err(syn::Error::new(unknown.span(), "no argument of this name"));
    }

    let p = quote!(::perf_rt::cache::__private);
    // The function's identity: its path with the instance's type arguments and, in an
    // `impl`, the self type (a closure's type name carries all of it).
    let identity = quote!(#p::identity(::core::any::type_name_of_val(&|| ())));
    let (prefix, generic_args) = match &args.key_prefix {
        Some(lit) => {
            // The prefix is the same for every instance: the type arguments join the key.
            let generic_args: Vec<TokenStream> = sig
                .generics
                .params
                .iter()
                .filter_map(|param| match param {
                    syn::GenericParam::Type(t) => {
                        let t = &t.ident;
                        Some(quote!(__perf_key.arg(::core::any::type_name::<#t>());))
                    }
                    syn::GenericParam::Const(c) => {
                        let c = &c.ident;
                        Some(quote!(__perf_key.arg(&#c);))
                    }
                    syn::GenericParam::Lifetime(_) => None,
                })
                .collect();
            (quote!(#lit), generic_args)
        }
        None => (quote!(__perf_id), Vec::new()),
    };
    let fn_generic = !generic_args.is_empty();
    let expire = match &args.expire {
        Some(e) => quote!(::core::option::Option::Some(
            #p::Duration::from_secs(#e)
        )),
        None => quote!(::core::option::Option::None),
    };
    let tags = &args.tags;
    let setup = quote! {
        let __perf_id: &'static str = #identity;
        let __perf_prefix: &'static str = #prefix;
        static __PERF_OWNER: #p::PrefixOwner = #p::PrefixOwner::new();
        let __perf_owned = __PERF_OWNER.owns(__perf_prefix, __perf_id, #fn_generic);
        let mut __perf_key = {
            let mut __perf_key = #p::KeyBuilder::new(__perf_prefix);
            #(#generic_args)*
            #(#key_args)*
            __perf_key.finish()
        };
        let __perf_options = #p::CacheOptions {
            expire: #expire,
            tags: &[#(#tags),*],
        };
    };

    let is_result = returns_result(&ret);
    // Waiters behind a failing load get a clone of its error when the type is `Clone`.
    let sharing = if is_result {
        quote! {{
            #[allow(unused_imports)]
            use #p::{NoSharing as _, ShareByClone as _};
            // The borrow picks the trait: without it, every type would get `NoSharing`.
            #[allow(clippy::needless_borrow)]
            let __perf_sharing = (&#p::Probe::<<#ret as #p::ResultParts>::Err>::new()).sharing();
            __perf_sharing
        }}
    } else {
        quote!(::core::option::Option::None::<#p::ErrorSharing<#p::Infallible>>)
    };
    let head = quote!(__perf_key, __perf_owned, __perf_options, #sharing);
    // A hit returns before the loading future or closure is built.
    let hit = if is_result {
        quote! {
            if let ::core::option::Option::Some(__perf_v) =
                #p::hit::<<#ret as #p::ResultParts>::Ok>(&mut __perf_key, __perf_owned)
            {
                return #p::Result::Ok(__perf_v);
            }
        }
    } else {
        quote! {
            if let ::core::option::Option::Some(__perf_v) =
                #p::hit::<#ret>(&mut __perf_key, __perf_owned)
            {
                return __perf_v;
            }
        }
    };
    let body = match (sig.asyncness.is_some(), is_result) {
        (true, true) => quote! {
            #p::get_or_load(#head, async move {
                let __perf_out: #ret = #block;
                __perf_out
            }).await
        },
        (true, false) => quote! {
            #p::infallible(#p::get_or_load(#head, async move {
                let __perf_out: #ret = async move #block.await;
                #p::Result::Ok::<#ret, #p::Infallible>(__perf_out)
            }).await)
        },
        (false, true) => quote! {
            #p::get_or_load_blocking(#head, move || -> #ret #block)
        },
        (false, false) => quote! {
            #p::infallible(#p::get_or_load_blocking(#head, move || {
                let __perf_out: #ret = (move || -> #ret #block)();
                #p::Result::Ok::<#ret, #p::Infallible>(__perf_out)
            }))
        },
    };

    Ok(quote! {
        #(#attrs)*
        #vis #sig {
            #setup
            #hit
            #body
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_unknown_skip_and_options() {
        let item = quote!(
            async fn f(a: i32) -> i32 {
                a
            }
        );
        let out = expand(quote!(skip(b)), item.clone()).to_string();
        assert!(out.contains("no argument of this name"), "{out}");
        let out = expand(quote!(expires = 3), item.clone()).to_string();
        assert!(out.contains("unknown option"), "{out}");
        let out = expand(quote!(expire = 3, tags = ["t"]), item).to_string();
        assert!(out.contains("get_or_load"), "{out}");
        assert!(out.contains("__perf_key . arg (& a)"), "{out}");
    }
}
