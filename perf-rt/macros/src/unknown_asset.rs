//! The error path of `asset_url!`: an unknown name becomes a `compile_error!` that says
//! which file was expected and suggests the nearest embedded asset.

use proc_macro2::TokenStream;
use quote::quote_spanned;
use syn::parse::{Parse, ParseStream};
use syn::{LitStr, Token, bracketed, punctuated::Punctuated};

struct Input {
    macro_name: syn::Ident,
    static_dir: LitStr,
    requested: syn::Lit,
    known: Vec<String>,
}

impl Parse for Input {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let macro_name = input.parse()?;
        input.parse::<Token![,]>()?;
        let static_dir = input.parse()?;
        input.parse::<Token![,]>()?;
        let requested = input.parse()?;
        input.parse::<Token![,]>()?;
        let content;
        bracketed!(content in input);
        let known = Punctuated::<LitStr, Token![,]>::parse_terminated(&content)?
            .into_iter()
            .map(|l| l.value())
            .collect();
        Ok(Input {
            macro_name,
            static_dir,
            requested,
            known,
        })
    }
}

pub(crate) fn expand(input: TokenStream) -> TokenStream {
    let input = match syn::parse2::<Input>(input) {
        Ok(input) => input,
        Err(e) => return e.to_compile_error(),
    };
    let span = input.requested.span();
    let mac = &input.macro_name;
    let message = match &input.requested {
        syn::Lit::Str(s) => {
            let name = s.value();
            // `critical_css!` names a template, and `static_dir` is then the templates
            // directory.
            let mut message = if mac == "critical_css" {
                format!(
                    "{mac}!(\"{name}\"): no critical CSS for a template \"{name}\" \
                     (expected the file {}/{name}, linking a stylesheet)",
                    input.static_dir.value()
                )
            } else {
                format!(
                    "{mac}!(\"{name}\"): no asset named \"{name}\" was embedded \
                     (expected the file {}/{name})",
                    input.static_dir.value()
                )
            };
            if let Some(near) = closest(&name, &input.known) {
                message.push_str(&format!("; did you mean \"{near}\"?"));
            }
            message
        }
        _ => format!(
            "{mac}! takes the asset's path as a string literal, \
             for example {mac}!(\"css/app.css\")"
        ),
    };
    quote_spanned!(span=> ::core::compile_error!(#message))
}

/// The known name nearest to `name`, if one is near enough to be a likely typo or a
/// file in another folder.
fn closest<'a>(name: &str, known: &'a [String]) -> Option<&'a str> {
    let file = |p: &str| p.rsplit('/').next().unwrap_or(p).to_string();
    known
        .iter()
        .map(|k| {
            let mut d = strsim::levenshtein(name, k);
            if file(k) == file(name) {
                d = d.min(1);
            }
            (d, k.as_str())
        })
        .filter(|(d, _)| *d <= (name.chars().count() / 3).max(2))
        .min()
        .map(|(_, k)| k)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_typos_and_moved_files() {
        let known = vec!["css/app.css".to_string(), "js/app.js".to_string()];
        assert_eq!(closest("css/ap.css", &known), Some("css/app.css"));
        assert_eq!(closest("styles/app.css", &known), Some("css/app.css"));
        assert_eq!(closest("img/logo.png", &known), None);
    }
}
