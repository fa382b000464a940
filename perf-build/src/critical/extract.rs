//! The critical part of one stylesheet for one template: its `@import`ed stylesheets
//! first (in place, with their conditions), then its own rules that can match, inside
//! their `@media`/`@supports`/`@layer`/`@container` wrappers; then the custom properties,
//! `@font-face`, `@keyframes` and `@property` rules that the kept rules use. URLs become
//! absolute, since the CSS moves into pages at any path.

use std::collections::HashSet;

use std::cell::OnceCell;

use lightningcss::dependencies::{Dependency, DependencyOptions};
use lightningcss::error::ErrorLocation;
use lightningcss::printer::PrinterOptions;
use lightningcss::rules::{CssRule, CssRuleList};
use lightningcss::stylesheet::{MinifyOptions, ParserOptions, StyleSheet};
use lightningcss::targets::Targets;
use lightningcss::traits::ToCss;

use super::select::Matcher;
use crate::Error;
use crate::finish::css_string_body;

/// A finished stylesheet: logical and hashed path, bytes.
pub struct Sheet<'a> {
    /// `css/app.css`
    pub logical: &'a str,
    /// `css/app.3f9a1c2e.css`
    pub hashed: &'a str,
    /// The finished (minified, URLs filled in) CSS.
    pub css: &'a str,
    /// Where it came from, for errors.
    pub file: &'a std::path::Path,
    /// The CSS parsed, on first use: every template's extraction starts from a copy,
    /// rather than parsing the stylesheet again.
    pub parsed: OnceCell<Result<StyleSheet<'a>, (Option<ErrorLocation>, String)>>,
}

impl<'a> Sheet<'a> {
    /// A finished stylesheet, not parsed yet.
    pub fn new(logical: &'a str, hashed: &'a str, css: &'a str, file: &'a std::path::Path) -> Self {
        Sheet {
            logical,
            hashed,
            css,
            file,
            parsed: OnceCell::new(),
        }
    }
}

/// Everything extraction needs besides the template.
pub struct Context<'s, 'a> {
    /// Every finished stylesheet, to follow `@import`.
    pub sheets: &'s [Sheet<'a>],
    /// The URL prefix: `/static`.
    pub prefix: &'s str,
    /// Browser targets of the pipeline.
    pub targets: Targets,
}

/// The critical CSS of `sheet` for the elements `matcher` knows.
pub fn extract(
    sheet: &Sheet,
    ctx: &Context,
    matcher: &Matcher,
    depth: usize,
) -> Result<String, Error> {
    let error = |loc: Option<lightningcss::error::ErrorLocation>, message: String| Error::Css {
        path: sheet.file.to_path_buf(),
        line: loc.as_ref().map_or(1, |l| l.line + 1),
        column: loc.as_ref().map_or(1, |l| l.column),
        message: format!("critical CSS: {message}"),
    };
    let mut parsed = match sheet.parsed.get_or_init(|| {
        StyleSheet::parse(
            sheet.css,
            ParserOptions {
                filename: sheet.logical.to_string(),
                ..ParserOptions::default()
            },
        )
        .map_err(|e| (e.loc, e.kind.to_string()))
    }) {
        Ok(parsed) => parsed.clone(),
        Err((loc, message)) => return Err(error(loc.clone(), message.clone())),
    };

    // `@import`: the imported sheet's critical part, where the rule stood.
    let mut out = String::new();
    for rule in &parsed.rules.0 {
        let CssRule::Import(import) = rule else {
            continue;
        };
        let target = resolve(sheet.logical, &import.url);
        let Some(imported) = ctx
            .sheets
            .iter()
            .find(|s| Some(s.hashed) == target.as_deref())
        else {
            continue;
        };
        if depth > 16 {
            continue;
        }
        let inner = extract(imported, ctx, matcher, depth + 1)?;
        if inner.is_empty() {
            continue;
        }
        let mut wrapped = inner;
        if !import.media.media_queries.is_empty()
            && let Ok(m) = import.media.to_css_string(PrinterOptions::default())
            && m != "all"
        {
            wrapped = format!("@media {m}{{{wrapped}}}");
        }
        if let Some(supports) = &import.supports
            && let Ok(s) = supports.to_css_string(PrinterOptions::default())
        {
            wrapped = format!("@supports {s}{{{wrapped}}}");
        }
        if let Some(layer) = &import.layer {
            let name = match layer {
                Some(n) => n
                    .to_css_string(PrinterOptions::default())
                    .unwrap_or_default(),
                None => String::new(),
            };
            wrapped = format!("@layer {name}{{{wrapped}}}");
        }
        out.push_str(&wrapped);
    }
    parsed.rules.0.retain(|r| !matches!(r, CssRule::Import(_)));

    filter(&mut parsed.rules, matcher);
    parsed
        .minify(MinifyOptions {
            targets: ctx.targets,
            ..MinifyOptions::default()
        })
        .map_err(|e| error(e.loc, e.kind.to_string()))?;
    let printed = parsed
        .to_css(PrinterOptions {
            minify: true,
            targets: ctx.targets,
            analyze_dependencies: Some(DependencyOptions {
                remove_imports: true,
            }),
            ..PrinterOptions::default()
        })
        .map_err(|e| error(e.loc, e.kind.to_string()))?;
    let mut code = printed.code;
    let dir = sheet.logical.rsplit_once('/').map_or("", |(d, _)| d);
    for dep in printed.dependencies.unwrap_or_default() {
        let (placeholder, url) = match dep {
            Dependency::Url(d) => (d.placeholder, d.url),
            Dependency::Import(d) => (d.placeholder, d.url),
        };
        code = code.replacen(
            &placeholder,
            &css_string_body(&absolute(ctx.prefix, dir, &url)),
            1,
        );
    }
    out.push_str(&code);
    Ok(out)
}

/// The critical CSS of a page from the critical parts of its stylesheets, in order:
/// custom properties, fonts, keyframes and `@property` rules that nothing kept uses
/// (in any of the stylesheets) dropped, minified once more.
pub fn finish(css: &str, targets: Targets) -> Result<String, String> {
    let mut sheet = StyleSheet::parse(css, ParserOptions::default()).map_err(|e| e.to_string())?;
    prune(&mut sheet.rules);
    sheet
        .minify(MinifyOptions {
            targets,
            ..MinifyOptions::default()
        })
        .map_err(|e| e.to_string())?;
    sheet
        .to_css(PrinterOptions {
            minify: true,
            targets,
            ..PrinterOptions::default()
        })
        .map(|p| p.code)
        .map_err(|e| e.to_string())
}

/// Keeps the rules that can match, with their wrappers; drops empty wrappers.
fn filter(rules: &mut CssRuleList, matcher: &Matcher) {
    rules.0.retain_mut(|rule| match rule {
        CssRule::Style(s) => {
            s.selectors.0.retain(|sel| matcher.any(sel));
            if s.selectors.0.is_empty() {
                return false;
            }
            filter(&mut s.rules, matcher);
            true
        }
        CssRule::Nesting(n) => {
            n.style.selectors.0.retain(|sel| matcher.any(sel));
            filter(&mut n.style.rules, matcher);
            !n.style.selectors.0.is_empty()
        }
        CssRule::Media(m) => keep_group(&mut m.rules, matcher),
        CssRule::Supports(s) => keep_group(&mut s.rules, matcher),
        CssRule::LayerBlock(l) => keep_group(&mut l.rules, matcher),
        CssRule::Container(c) => keep_group(&mut c.rules, matcher),
        CssRule::Scope(s) => keep_group(&mut s.rules, matcher),
        CssRule::StartingStyle(s) => keep_group(&mut s.rules, matcher),
        // Printing and old Firefox document rules never style the first screen.
        CssRule::Page(_) | CssRule::MozDocument(_) | CssRule::Viewport(_) | CssRule::Ignored => {
            false
        }
        CssRule::Import(_) => false,
        _ => true,
    })
}

fn keep_group(rules: &mut CssRuleList, matcher: &Matcher) -> bool {
    filter(rules, matcher);
    !rules.0.is_empty()
}

/// The text of every declaration value of the kept style rules, and the custom property
/// definitions (name, value) among them. `@keyframes` are left out: what they use counts
/// only if they are kept ([`keyframes`]).
fn usage(rules: &CssRuleList, text: &mut String, customs: &mut Vec<(String, String)>) {
    for rule in &rules.0 {
        match rule {
            CssRule::Style(s) => {
                declarations(&s.declarations, text, customs);
                usage(&s.rules, text, customs);
            }
            CssRule::Nesting(n) => {
                declarations(&n.style.declarations, text, customs);
                usage(&n.style.rules, text, customs);
            }
            CssRule::NestedDeclarations(d) => declarations(&d.declarations, text, customs),
            CssRule::Media(m) => usage(&m.rules, text, customs),
            CssRule::Supports(s) => usage(&s.rules, text, customs),
            CssRule::LayerBlock(l) => usage(&l.rules, text, customs),
            CssRule::Container(c) => usage(&c.rules, text, customs),
            CssRule::Scope(s) => usage(&s.rules, text, customs),
            CssRule::StartingStyle(s) => usage(&s.rules, text, customs),
            _ => {}
        }
    }
}

/// What one `@keyframes` rule uses: its name (as [`mentions`] looks for it), the text of
/// its declaration values and its custom property definitions.
struct Frames {
    name: String,
    text: String,
    customs: Vec<(String, String)>,
}

/// Every `@keyframes` rule, inside wrappers too.
fn keyframes(rules: &CssRuleList, out: &mut Vec<Frames>) {
    for rule in &rules.0 {
        match rule {
            CssRule::Keyframes(k) => {
                let mut f = Frames {
                    name: keyframes_name(k),
                    text: String::new(),
                    customs: Vec::new(),
                };
                for frame in &k.keyframes {
                    declarations(&frame.declarations, &mut f.text, &mut f.customs);
                }
                out.push(f);
            }
            CssRule::Media(m) => keyframes(&m.rules, out),
            CssRule::Supports(s) => keyframes(&s.rules, out),
            CssRule::LayerBlock(l) => keyframes(&l.rules, out),
            CssRule::Container(c) => keyframes(&c.rules, out),
            CssRule::Scope(s) => keyframes(&s.rules, out),
            CssRule::StartingStyle(s) => keyframes(&s.rules, out),
            _ => {}
        }
    }
}

/// The name of a `@keyframes` rule, lowercase, unquoted.
fn keyframes_name(k: &lightningcss::rules::keyframes::KeyframesRule) -> String {
    k.name
        .to_css_string(PrinterOptions::default())
        .unwrap_or_default()
        .trim_matches(['"', '\''])
        .to_lowercase()
}

fn declarations(
    block: &lightningcss::declaration::DeclarationBlock,
    text: &mut String,
    customs: &mut Vec<(String, String)>,
) {
    for p in block
        .declarations
        .iter()
        .chain(&block.important_declarations)
    {
        let value = p
            .value_to_css_string(PrinterOptions::default())
            .unwrap_or_default();
        let name = p.property_id().name().to_string();
        if name.starts_with("--") {
            customs.push((name, value));
        } else {
            text.push_str(&value);
            text.push(';');
        }
    }
}

/// Every `--name` written in `text`.
fn dashed_idents(text: &str) -> impl Iterator<Item = &str> {
    let mut rest = text;
    std::iter::from_fn(move || {
        loop {
            let at = rest.find("--")?;
            let before_ok = at == 0 || !is_ident(rest[..at].chars().next_back().unwrap_or(' '));
            let tail = &rest[at..];
            let len = tail
                .char_indices()
                .skip(2)
                .find(|(_, c)| !is_ident(*c))
                .map_or(tail.len(), |(i, _)| i);
            rest = &tail[len.max(2)..];
            if before_ok && len > 2 {
                return Some(&tail[..len]);
            }
        }
    })
}

fn is_ident(c: char) -> bool {
    c.is_alphanumeric() || c == '-' || c == '_' || !c.is_ascii()
}

/// Whether `name` is written in `text` as a whole identifier (or string content).
fn mentions(text: &str, name: &str) -> bool {
    if name.is_empty() {
        return false;
    }
    let mut from = 0;
    while let Some(i) = text[from..].find(name) {
        let at = from + i;
        let before = text[..at].chars().next_back();
        let after = text[at + name.len()..].chars().next();
        if !before.is_some_and(is_ident) && !after.is_some_and(is_ident) {
            return true;
        }
        from = at + name.len();
    }
    false
}

/// Drops the custom properties no kept rule uses (directly or through another custom
/// property), then the `@font-face`, `@keyframes` and `@property` rules nothing uses.
/// A `@keyframes` rule's own declarations count only once a kept rule names it: what
/// an unused animation uses goes with it.
fn prune(rules: &mut CssRuleList) {
    let mut text = String::new();
    let mut customs = Vec::new();
    usage(rules, &mut text, &mut customs);
    let mut frames = Vec::new();
    keyframes(rules, &mut frames);
    // A kept animation may use a custom property that names another animation (or a
    // font): until nothing more is named.
    let (used, names) = loop {
        let mut used: HashSet<String> = dashed_idents(&text).map(str::to_string).collect();
        loop {
            let before = used.len();
            for (name, value) in &customs {
                if used.contains(name) {
                    let refs: Vec<String> = dashed_idents(value).map(str::to_string).collect();
                    used.extend(refs);
                }
            }
            if used.len() == before {
                break;
            }
        }
        // What the kept declarations name: families and animation names may hide in a
        // custom property's value.
        let mut names = text.to_lowercase();
        for (name, value) in &customs {
            if used.contains(name) {
                names.push_str(&value.to_lowercase());
                names.push(';');
            }
        }
        let (named, rest): (Vec<Frames>, Vec<Frames>) =
            frames.into_iter().partition(|f| mentions(&names, &f.name));
        frames = rest;
        if named.is_empty() {
            break (used, names);
        }
        for f in named {
            text.push_str(&f.text);
            customs.extend(f.customs);
        }
    };
    drop_customs(rules, &used);
    drop_unused_at_rules(rules, &names, &used);
}

fn drop_customs(rules: &mut CssRuleList, used: &HashSet<String>) {
    let keep = |block: &mut lightningcss::declaration::DeclarationBlock| {
        for list in [&mut block.declarations, &mut block.important_declarations] {
            list.retain(|p| {
                let name = p.property_id().name().to_string();
                !name.starts_with("--") || used.contains(&name)
            });
        }
        !(block.declarations.is_empty() && block.important_declarations.is_empty())
    };
    rules.0.retain_mut(|rule| match rule {
        CssRule::Style(s) => {
            let has = keep(&mut s.declarations);
            drop_customs(&mut s.rules, used);
            has || !s.rules.0.is_empty()
        }
        CssRule::Nesting(n) => {
            let has = keep(&mut n.style.declarations);
            drop_customs(&mut n.style.rules, used);
            has || !n.style.rules.0.is_empty()
        }
        CssRule::Media(m) => group_customs(&mut m.rules, used),
        CssRule::Supports(s) => group_customs(&mut s.rules, used),
        CssRule::LayerBlock(l) => group_customs(&mut l.rules, used),
        CssRule::Container(c) => group_customs(&mut c.rules, used),
        CssRule::Scope(s) => group_customs(&mut s.rules, used),
        CssRule::StartingStyle(s) => group_customs(&mut s.rules, used),
        _ => true,
    });
}

fn group_customs(rules: &mut CssRuleList, used: &HashSet<String>) -> bool {
    drop_customs(rules, used);
    !rules.0.is_empty()
}

fn drop_unused_at_rules(rules: &mut CssRuleList, names: &str, used: &HashSet<String>) {
    rules.0.retain_mut(|rule| match rule {
        CssRule::FontFace(f) => f.properties.iter().any(|p| match p {
            lightningcss::rules::font_face::FontFaceProperty::FontFamily(family) => {
                let family = family
                    .to_css_string(PrinterOptions::default())
                    .unwrap_or_default();
                let family = family.trim_matches(['"', '\'']).to_lowercase();
                mentions(names, &family)
            }
            _ => false,
        }),
        CssRule::Keyframes(k) => mentions(names, &keyframes_name(k)),
        CssRule::Property(p) => used.contains(p.name.as_ref() as &str),
        CssRule::Media(m) => at_rule_group(&mut m.rules, names, used),
        CssRule::Supports(s) => at_rule_group(&mut s.rules, names, used),
        CssRule::LayerBlock(l) => at_rule_group(&mut l.rules, names, used),
        CssRule::Container(c) => at_rule_group(&mut c.rules, names, used),
        _ => true,
    });
}

fn at_rule_group(rules: &mut CssRuleList, names: &str, used: &HashSet<String>) -> bool {
    drop_unused_at_rules(rules, names, used);
    !rules.0.is_empty()
}

/// The logical path a relative URL in stylesheet `from` points at (`None` for absolute
/// URLs and `data:`).
fn resolve(from: &str, url: &str) -> Option<String> {
    if url.contains(':') || url.starts_with('/') || url.starts_with('#') {
        return None;
    }
    let url = url.split(['?', '#']).next().unwrap_or(url);
    let mut parts: Vec<&str> = from.split('/').collect();
    parts.pop();
    for seg in url.split('/') {
        match seg {
            "." | "" => {}
            ".." => {
                parts.pop();
            }
            s => parts.push(s),
        }
    }
    Some(parts.join("/"))
}

/// A URL written in a stylesheet under `dir`, as seen from any page.
fn absolute(prefix: &str, dir: &str, url: &str) -> String {
    if url.contains(':') || url.starts_with('/') || url.starts_with('#') {
        return url.to_string();
    }
    let mut parts: Vec<&str> = if dir.is_empty() {
        Vec::new()
    } else {
        dir.split('/').collect()
    };
    let (path, tail) = match url.find(['?', '#']) {
        Some(i) => (&url[..i], &url[i..]),
        None => (url, ""),
    };
    for seg in path.split('/') {
        match seg {
            "." | "" => {}
            ".." => {
                parts.pop();
            }
            s => parts.push(s),
        }
    }
    format!("{prefix}/{}{tail}", parts.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_become_absolute() {
        assert_eq!(
            absolute("/static", "css", "../img/a.1.svg"),
            "/static/img/a.1.svg"
        );
        assert_eq!(absolute("", "css", "a.svg#x"), "/css/a.svg#x");
        assert_eq!(
            absolute("/static", "css", "data:image/png;base64,AA"),
            "data:image/png;base64,AA"
        );
        assert_eq!(
            resolve("css/app.css", "base.1.css").as_deref(),
            Some("css/base.1.css")
        );
    }

    #[test]
    fn what_only_an_unused_animation_uses_goes_with_it() {
        let css = finish(
            ".a{animation:var(--n) 1s}:root{--n:spin;--kf:.5;--spare:1}\
             @keyframes spin{from{opacity:var(--kf)}}@keyframes gone{from{opacity:var(--spare)}}",
            Targets::default(),
        )
        .unwrap();
        assert!(css.contains("@keyframes spin"), "{css}");
        assert!(css.contains("--kf:.5"), "{css}");
        assert!(!css.contains("gone"), "{css}");
        assert!(!css.contains("--spare"), "{css}");
    }

    #[test]
    fn finds_custom_property_names() {
        let names: Vec<&str> = dashed_idents("var(--a) calc(var(--b-c)*2) x--y --").collect();
        assert_eq!(names, ["--a", "--b-c"]);
        assert!(mentions("fade 1s ease", "fade"));
        assert!(!mentions("fade-in 1s", "fade"));
    }
}
