//! Resolving the references one asset makes to another (`url()`, `@import`, module
//! imports) into logical paths, and writing relative URLs between hashed files.

/// What a reference points at.
#[derive(Debug, PartialEq, Eq)]
pub enum Target {
    /// Not a file of ours: another site, a `data:` URL, a fragment, a bare module name.
    External,
    /// A logical path under the static dir, plus the `?query#fragment` written after it.
    Local {
        /// `img/logo.png`
        logical: String,
        /// `?v=2#icon`, or empty.
        suffix: String,
    },
    /// A local path that climbs above the static dir.
    Outside,
}

/// Which language wrote the reference: a bare name means a relative file in CSS and an
/// external package in JavaScript.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    /// Stylesheets.
    Css,
    /// Scripts and modules.
    Js,
}

/// Classifies `specifier`, written in the asset at logical path `from`.
pub fn classify(from: &str, specifier: &str, url_prefix: &str, lang: Lang) -> Target {
    let s = specifier.trim();
    if s.is_empty() || s.starts_with('#') || s.starts_with("//") {
        return Target::External;
    }
    // A scheme: `data:`, `https:`, `blob:` … (a colon before any slash).
    if let Some(colon) = s.find(':')
        && !s[..colon].contains('/')
    {
        return Target::External;
    }
    let cut = s.find(['?', '#']).unwrap_or(s.len());
    let (path, suffix) = s.split_at(cut);
    let path = percent_decode(path);
    let joined = if let Some(abs) = path.strip_prefix('/') {
        match abs.strip_prefix(url_prefix.trim_start_matches('/')) {
            Some(rest) if url_prefix.is_empty() || rest.starts_with('/') => {
                rest.trim_start_matches('/').to_string()
            }
            _ if url_prefix.is_empty() => abs.to_string(),
            _ => return Target::External,
        }
    } else if lang == Lang::Js && !(path.starts_with("./") || path.starts_with("../")) {
        return Target::External;
    } else {
        match from.rsplit_once('/') {
            Some((dir, _)) => format!("{dir}/{path}"),
            None => path,
        }
    };
    let mut parts: Vec<&str> = Vec::new();
    for seg in joined.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                if parts.pop().is_none() {
                    return Target::Outside;
                }
            }
            seg => parts.push(seg),
        }
    }
    Target::Local {
        logical: parts.join("/"),
        suffix: suffix.to_string(),
    }
}

fn percent_decode(s: &str) -> String {
    if !s.contains('%') {
        return s.to_string();
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        if b[i] == b'%'
            && let (Some(h), Some(l)) = (
                b.get(i + 1).copied().and_then(hex),
                b.get(i + 2).copied().and_then(hex),
            )
        {
            out.push((h * 16 + l) as u8);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The relative URL from the file at `from` to the file at `to` (both paths under the
/// same root): `css/app.css` → `img/a.png` gives `../img/a.png`.
pub fn relative(from: &str, to: &str) -> String {
    let from_dir: Vec<&str> =
        from.split('/').collect::<Vec<_>>()[..from.matches('/').count()].to_vec();
    let to_parts: Vec<&str> = to.split('/').collect();
    let common = from_dir
        .iter()
        .zip(&to_parts)
        .take_while(|(a, b)| a == b)
        .count()
        .min(to_parts.len() - 1);
    let mut out = "../".repeat(from_dir.len() - common);
    out.push_str(&to_parts[common..].join("/"));
    if !out.starts_with("../") && (from_dir.len() == common) {
        // Same folder or below: `./` keeps a JS specifier relative.
        out.insert_str(0, "./");
    }
    out
}

/// Percent-encodes a path for use in a URL: everything but unreserved characters, `/`
/// and the sub-delimiters that paths commonly carry stays as it is.
pub fn url_encode(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for b in path.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/!$&'()*+,;=:@".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The known name closest to `name`, when close enough to be a likely typo.
pub fn closest<'a>(name: &str, known: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let limit = (name.chars().count() / 3).max(2);
    known
        .into_iter()
        .map(|k| (strsim::levenshtein(name, k), k))
        .filter(|(d, _)| *d <= limit)
        .min()
        .map(|(_, k)| k)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn local(l: &str, s: &str) -> Target {
        Target::Local {
            logical: l.into(),
            suffix: s.into(),
        }
    }

    #[test]
    fn classifies_css_references() {
        let c = |s| classify("css/app.css", s, "/static", Lang::Css);
        assert_eq!(c("../img/a.png"), local("img/a.png", ""));
        assert_eq!(
            c("fonts/x.woff2?v=3#iefix"),
            local("css/fonts/x.woff2", "?v=3#iefix")
        );
        assert_eq!(c("/static/img/a.png"), local("img/a.png", ""));
        assert_eq!(c("/other/a.png"), Target::External);
        assert_eq!(c("data:image/png;base64,AAA"), Target::External);
        assert_eq!(c("https://cdn.example/x.css"), Target::External);
        assert_eq!(c("//cdn.example/x.css"), Target::External);
        assert_eq!(c("#filter"), Target::External);
        assert_eq!(c("../../x.png"), Target::Outside);
        assert_eq!(c("my%20pic.png"), local("css/my pic.png", ""));
    }

    #[test]
    fn classifies_js_specifiers() {
        let c = |s| classify("js/app.js", s, "/static", Lang::Js);
        assert_eq!(c("./util.js"), local("js/util.js", ""));
        assert_eq!(c("../vendor/x.js"), local("vendor/x.js", ""));
        assert_eq!(c("lodash"), Target::External);
        assert_eq!(c("/static/js/a.js"), local("js/a.js", ""));
    }

    #[test]
    fn relative_urls() {
        assert_eq!(relative("css/app.css", "img/a.png"), "../img/a.png");
        assert_eq!(relative("css/app.css", "css/b.css"), "./b.css");
        assert_eq!(relative("app.css", "img/a.png"), "./img/a.png");
        assert_eq!(relative("a/b/c.css", "a/d.png"), "../d.png");
    }

    #[test]
    fn encodes_urls() {
        assert_eq!(
            url_encode("data/my notes.1a2b.txt"),
            "data/my%20notes.1a2b.txt"
        );
        assert_eq!(url_encode("img/ünï.png"), "img/%C3%BCn%C3%AF.png");
        assert_eq!(url_encode("css/app.3f9a1c2e.css"), "css/app.3f9a1c2e.css");
    }

    #[test]
    fn hints() {
        assert_eq!(
            closest("js/utl.js", ["js/util.js", "css/app.css"]),
            Some("js/util.js")
        );
        assert_eq!(closest("zzz", ["js/util.js"]), None);
    }
}
