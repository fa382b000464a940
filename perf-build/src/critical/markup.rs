//! The elements a template can produce: its flattened markup (every branch of every
//! condition, each loop body once, expressions as wildcards; see [`super::template`])
//! read by a small tolerant HTML tokenizer into a tree that the selector matcher walks.

use super::template::{EXPR_END, EXPR_START, Expr, FOLD, Flat, LOOP_END, LOOP_START};

/// A string from the template where parts come from expressions: `mood-{{ m }}` is
/// `[Lit("mood-"), Any]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern(pub Vec<Seg>);

/// One part of a [`Pattern`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seg {
    /// Text written in the template.
    Lit(String),
    /// Whatever an expression prints: the index of the expression in [`Flat::exprs`]
    /// (`usize::MAX` for one perf-build wrote itself).
    Any(usize),
}

impl Pattern {
    /// A pattern of literal text only.
    pub fn lit(s: &str) -> Self {
        Pattern(vec![Seg::Lit(s.to_string())])
    }

    /// Whether the value is only an expression's output (nothing written around it).
    pub fn is_wildcard(&self) -> bool {
        self.0.iter().all(|s| matches!(s, Seg::Any(_)))
    }

    /// Whether some output of the template could equal `value`. `Any` stands for any
    /// string, the empty one included.
    pub fn can_equal(&self, value: &str, ignore_case: bool) -> bool {
        fn go(segs: &[Seg], v: &str, ic: bool) -> bool {
            match segs.split_first() {
                None => v.is_empty(),
                Some((Seg::Lit(l), rest)) => {
                    let n = l.len();
                    v.len() >= n
                        && v.is_char_boundary(n)
                        && if ic {
                            v[..n].eq_ignore_ascii_case(l)
                        } else {
                            &v[..n] == l
                        }
                        && go(rest, &v[n..], ic)
                }
                Some((Seg::Any(_), rest)) => {
                    (0..=v.len()).any(|i| v.is_char_boundary(i) && go(rest, &v[i..], ic))
                }
            }
        }
        go(&self.0, value, ignore_case)
    }

    /// The text when the pattern has no expression in it.
    pub fn literal(&self) -> Option<&str> {
        match self.0.as_slice() {
            [Seg::Lit(l)] => Some(l),
            [] => Some(""),
            _ => None,
        }
    }
}

/// One element the template can produce.
#[derive(Debug, Clone, Default)]
pub struct Element {
    /// Lowercase tag name.
    pub tag: String,
    /// Each whitespace-separated class token (wildcard-only tokens left out: nothing is
    /// known of them, the safelist covers them).
    pub classes: Vec<Pattern>,
    /// The `id`, when written.
    pub ids: Vec<Pattern>,
    /// Every attribute (lowercase name) and its value, `None` for a bare attribute.
    pub attrs: Vec<(String, Option<Pattern>)>,
    /// Whether an expression writes attributes of its own into the tag.
    pub any_attrs: bool,
    /// The element it sits in.
    pub parent: Option<usize>,
    /// Inside a loop: it may follow a copy of itself.
    pub repeated: bool,
}

/// The elements of a template, in document order.
#[derive(Debug, Default)]
pub struct Tree {
    /// Every element before the fold (all of them without a fold marker).
    pub elements: Vec<Element>,
    /// Logical names of the stylesheets linked by `<link rel="stylesheet">`, wherever
    /// they are (before or after the fold).
    pub stylesheets: Vec<String>,
}

impl Tree {
    /// The elements with the same parent as `i`, itself excluded unless it is repeated.
    pub fn siblings(&self, i: usize) -> impl Iterator<Item = usize> + '_ {
        let parent = self.elements[i].parent;
        let repeated = self.elements[i].repeated;
        self.elements
            .iter()
            .enumerate()
            .filter(move |(j, e)| e.parent == parent && (*j != i || repeated))
            .map(|(j, _)| j)
    }
}

const VOID: &[&str] = &[
    "area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track",
    "wbr",
];
const RAW_TEXT: &[&str] = &["script", "style", "textarea", "title", "xmp"];
/// Start tags that close an open `<p>` (HTML's "in body" insertion mode).
const CLOSES_P: &[&str] = &[
    "address",
    "article",
    "aside",
    "blockquote",
    "details",
    "div",
    "dl",
    "fieldset",
    "figcaption",
    "figure",
    "footer",
    "form",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "header",
    "hr",
    "main",
    "menu",
    "nav",
    "ol",
    "p",
    "pre",
    "section",
    "table",
    "ul",
];

/// What the tokenizer hands over.
struct Builder<'a> {
    flat: &'a Flat,
    tree: Tree,
    stack: Vec<usize>,
    loops: usize,
    folded: bool,
    url_prefix: &'a str,
    placeholder: &'a dyn Fn(&str) -> Option<String>,
}

/// Reads the flattened markup of a template into its [`Tree`]. `url_prefix` turns a
/// literal `href="/static/css/app.css"` into the logical `css/app.css`; `placeholder`
/// gives the placeholder class of an embedded image.
pub fn parse(flat: &Flat, url_prefix: &str, placeholder: &dyn Fn(&str) -> Option<String>) -> Tree {
    let mut b = Builder {
        flat,
        tree: Tree::default(),
        stack: Vec::new(),
        loops: 0,
        folded: false,
        url_prefix,
        placeholder,
    };
    b.run(&flat.html);
    b.tree
}

impl Builder<'_> {
    fn run(&mut self, s: &str) {
        let mut i = 0;
        while i < s.len() {
            let c = s[i..].chars().next().expect("in bounds");
            match c {
                '<' => i = self.tag(s, i),
                LOOP_START => {
                    self.loops += 1;
                    i += c.len_utf8();
                }
                LOOP_END => {
                    self.loops = self.loops.saturating_sub(1);
                    i += c.len_utf8();
                }
                FOLD => {
                    self.folded = true;
                    i += c.len_utf8();
                }
                EXPR_START => {
                    let end = s[i..].find(EXPR_END).map_or(s.len(), |e| i + e);
                    let index: usize = s[i + c.len_utf8()..end].parse().unwrap_or(usize::MAX);
                    if let Some(Expr::Image { name, class }) = self.flat.exprs.get(index) {
                        self.image(name, class.as_deref());
                    }
                    i = (end + EXPR_END.len_utf8()).min(s.len());
                }
                _ => i += c.len_utf8(),
            }
        }
    }

    fn push(&mut self, mut e: Element) -> usize {
        e.parent = self.stack.last().copied();
        e.repeated = self.loops > 0;
        self.tree.elements.push(e);
        self.tree.elements.len() - 1
    }

    /// What `image!` renders: `<picture><source><img class="perf-img perf-ph-… class">`.
    fn image(&mut self, name: &str, class: Option<&str>) {
        if self.folded {
            return;
        }
        let any = || Some(Pattern(vec![Seg::Any(usize::MAX)]));
        let picture = self.push(Element {
            tag: "picture".into(),
            ..Element::default()
        });
        self.stack.push(picture);
        for tag in ["source", "img"] {
            let mut e = Element {
                tag: tag.into(),
                ..Element::default()
            };
            let names: &[&str] = if tag == "source" {
                &["type", "srcset", "sizes"]
            } else {
                &[
                    "src",
                    "srcset",
                    "sizes",
                    "width",
                    "height",
                    "alt",
                    "loading",
                    "fetchpriority",
                    "decoding",
                    "class",
                ]
            };
            e.attrs = names.iter().map(|n| (n.to_string(), any())).collect();
            if tag == "img" {
                e.classes.push(Pattern::lit("perf-img"));
                if let Some(p) = (self.placeholder)(name) {
                    e.classes.push(Pattern::lit(&p));
                }
                for c in class.unwrap_or("").split_ascii_whitespace() {
                    e.classes.push(Pattern::lit(c));
                }
            }
            self.push(e);
        }
        self.stack.pop();
    }

    /// Reads the markup from `<` at `at`; returns where to go on.
    fn tag(&mut self, s: &str, at: usize) -> usize {
        let rest = &s[at..];
        if let Some(body) = rest.strip_prefix("<!--") {
            let end = body.find("-->").map_or(s.len(), |e| at + 4 + e + 3);
            let text = &body[..body.find("-->").unwrap_or(body.len())];
            if text.trim() == "perf:fold" {
                self.folded = true;
            }
            // A marker inside a comment (a loop around commented-out markup) still counts.
            for c in text.chars() {
                match c {
                    LOOP_START => self.loops += 1,
                    LOOP_END => self.loops = self.loops.saturating_sub(1),
                    FOLD => self.folded = true,
                    _ => {}
                }
            }
            return end;
        }
        if rest.starts_with("<!") || rest.starts_with("<?") {
            return rest.find('>').map_or(s.len(), |e| at + e + 1);
        }
        let closing = rest.starts_with("</");
        let name_start = at + if closing { 2 } else { 1 };
        let name_len = s[name_start..]
            .find(|c: char| c.is_ascii_whitespace() || c == '/' || c == '>')
            .unwrap_or(s.len() - name_start);
        let name = s[name_start..name_start + name_len].to_ascii_lowercase();
        if name.is_empty() || !name.starts_with(|c: char| c.is_ascii_alphabetic()) {
            // `<` in text, or a tag name written by an expression.
            return at + 1;
        }
        let (attrs, any_attrs, self_closing, end) = attributes(s, name_start + name_len, self);
        if closing {
            if let Some(pos) = self
                .stack
                .iter()
                .rposition(|&e| self.tree.elements[e].tag == name)
            {
                self.stack.truncate(pos);
            }
            return end;
        }
        if name == "link" {
            self.link(&attrs);
        }
        if self.folded {
            return skip_raw_text(s, end, &name);
        }
        if name == "li" || name == "dt" || name == "dd" || name == "option" {
            self.close_open(&name, &["ul", "ol", "dl", "select", "datalist", "menu"]);
        }
        if CLOSES_P.contains(&name.as_str()) {
            self.close_open("p", &["button", "div", "section", "article", "main"]);
        }
        let mut e = Element {
            tag: name.clone(),
            any_attrs,
            ..Element::default()
        };
        for (attr, value) in attrs {
            match (attr.as_str(), &value) {
                ("class", Some(v)) => e.classes.extend(class_tokens(v)),
                ("id", Some(v)) if !v.is_wildcard() => e.ids.push(v.clone()),
                _ => {}
            }
            e.attrs.push((attr, value));
        }
        let index = self.push(e);
        if !self_closing && !VOID.contains(&name.as_str()) {
            self.stack.push(index);
        }
        skip_raw_text(s, end, &name)
    }

    /// Closes an open `tag` unless a `scope` element sits between it and the top.
    fn close_open(&mut self, tag: &str, scope: &[&str]) {
        for pos in (0..self.stack.len()).rev() {
            let t = &self.tree.elements[self.stack[pos]].tag;
            if t == tag {
                self.stack.truncate(pos);
                return;
            }
            if scope.contains(&t.as_str()) {
                return;
            }
        }
    }

    /// Records the stylesheet of a `<link rel="stylesheet" href="…">`.
    fn link(&mut self, attrs: &[(String, Option<Pattern>)]) {
        let get = |n: &str| {
            attrs
                .iter()
                .find(|(a, _)| a == n)
                .and_then(|(_, v)| v.as_ref())
        };
        let is_stylesheet = get("rel").and_then(Pattern::literal).is_some_and(|r| {
            r.split_ascii_whitespace()
                .any(|t| t.eq_ignore_ascii_case("stylesheet"))
        });
        if !is_stylesheet {
            return;
        }
        let Some(href) = get("href") else { return };
        let name = match href.0.as_slice() {
            [Seg::Lit(l)] => {
                let path = l.split(['?', '#']).next().unwrap_or(l);
                match path.strip_prefix(self.url_prefix) {
                    Some(rest) if rest.starts_with('/') => Some(rest[1..].to_string()),
                    _ => None,
                }
            }
            [Seg::Any(i)] => match self.flat.exprs.get(*i) {
                Some(Expr::AssetUrl(name)) => Some(name.clone()),
                _ => None,
            },
            _ => None,
        };
        if let Some(name) = name
            && !self.tree.stylesheets.contains(&name)
        {
            self.tree.stylesheets.push(name);
        }
    }
}

/// The class tokens of a `class` value; tokens that are nothing but an expression's
/// output are left out.
fn class_tokens(v: &Pattern) -> Vec<Pattern> {
    let mut tokens = Vec::new();
    let mut current: Vec<Seg> = Vec::new();
    let flush = |current: &mut Vec<Seg>, tokens: &mut Vec<Pattern>| {
        if !current.is_empty() {
            let p = Pattern(std::mem::take(current));
            if !p.is_wildcard() {
                tokens.push(p);
            }
        }
    };
    for seg in &v.0 {
        match seg {
            Seg::Any(i) => current.push(Seg::Any(*i)),
            Seg::Lit(text) => {
                let mut word = String::new();
                for c in text.chars() {
                    if c.is_ascii_whitespace() {
                        if !word.is_empty() {
                            current.push(Seg::Lit(std::mem::take(&mut word)));
                        }
                        flush(&mut current, &mut tokens);
                    } else {
                        word.push(c);
                    }
                }
                if !word.is_empty() {
                    current.push(Seg::Lit(word));
                }
            }
        }
    }
    flush(&mut current, &mut tokens);
    tokens
}

/// Turns attribute text with expression markers into a [`Pattern`].
fn pattern(text: &str) -> Pattern {
    let mut segs = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find(EXPR_START) {
        if start > 0 {
            segs.push(Seg::Lit(decode_entities(&rest[..start])));
        }
        let after = &rest[start + EXPR_START.len_utf8()..];
        let end = after.find(EXPR_END).unwrap_or(after.len());
        segs.push(Seg::Any(after[..end].parse().unwrap_or(usize::MAX)));
        rest = after
            .find(EXPR_END)
            .map_or("", |e| &after[e + EXPR_END.len_utf8()..]);
    }
    if !rest.is_empty() {
        segs.push(Seg::Lit(decode_entities(rest)));
    }
    // Loop and fold markers inside a value are not part of it.
    for seg in &mut segs {
        if let Seg::Lit(l) = seg {
            l.retain(|c| !matches!(c, LOOP_START | LOOP_END | FOLD));
        }
    }
    Pattern(segs)
}

/// The few character references that show up in class names and URLs.
fn decode_entities(s: &str) -> String {
    if !s.contains('&') {
        return s.to_string();
    }
    s.replace("&amp;", "&")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
}

type Attrs = Vec<(String, Option<Pattern>)>;

/// Reads attributes from `from` to the end of the tag: (attributes, whether an
/// expression writes attributes, self-closing, index after `>`).
fn attributes(s: &str, from: usize, b: &mut Builder) -> (Attrs, bool, bool, usize) {
    let mut attrs = Vec::new();
    let mut any = false;
    let mut i = from;
    let bytes = s.as_bytes();
    let skip_ws = |i: &mut usize| {
        while *i < s.len() && bytes[*i].is_ascii_whitespace() {
            *i += 1;
        }
    };
    loop {
        skip_ws(&mut i);
        if i >= s.len() {
            return (attrs, any, false, s.len());
        }
        match bytes[i] {
            b'>' => return (attrs, any, false, i + 1),
            b'/' if bytes.get(i + 1) == Some(&b'>') => return (attrs, any, true, i + 2),
            b'/' => {
                i += 1;
                continue;
            }
            _ => {}
        }
        let start = i;
        while i < s.len()
            && !bytes[i].is_ascii_whitespace()
            && !matches!(bytes[i], b'=' | b'>' | b'/')
        {
            i += 1;
        }
        let raw_name = &s[start..i];
        // Markers may sit between attributes (`{% if %} disabled{% endif %}`).
        let mut name = String::new();
        for c in raw_name.chars() {
            match c {
                LOOP_START => b.loops += 1,
                LOOP_END => b.loops = b.loops.saturating_sub(1),
                FOLD => b.folded = true,
                _ => name.push(c.to_ascii_lowercase()),
            }
        }
        if name.contains(EXPR_START) {
            any = true;
            name.clear();
        }
        if i == start {
            // A stray `=`: step over it.
            i += 1;
            continue;
        }
        skip_ws(&mut i);
        let mut value = None;
        if i < s.len() && bytes[i] == b'=' {
            i += 1;
            skip_ws(&mut i);
            let (text, next) = match bytes.get(i) {
                Some(&q @ (b'"' | b'\'')) => {
                    let end = s[i + 1..].find(q as char).map_or(s.len(), |e| i + 1 + e);
                    (&s[i + 1..end], (end + 1).min(s.len()))
                }
                _ => {
                    let end = s[i..]
                        .find(|c: char| c.is_ascii_whitespace() || c == '>')
                        .map_or(s.len(), |e| i + e);
                    (&s[i..end], end)
                }
            };
            for c in text.chars() {
                match c {
                    LOOP_START => b.loops += 1,
                    LOOP_END => b.loops = b.loops.saturating_sub(1),
                    FOLD => b.folded = true,
                    _ => {}
                }
            }
            value = Some(pattern(text));
            i = next;
        }
        if !name.is_empty() {
            attrs.push((name, value));
        }
    }
}

/// After the start tag of a raw-text element, the index after its end tag.
fn skip_raw_text(s: &str, from: usize, name: &str) -> usize {
    if !RAW_TEXT.contains(&name) {
        return from;
    }
    let close = format!("</{name}");
    let lower = s[from..].to_ascii_lowercase();
    match lower.find(&close) {
        Some(e) => from + e,
        None => s.len(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(html: &str) -> Tree {
        let flat = Flat {
            html: html.to_string(),
            exprs: Vec::new(),
            keep: Vec::new(),
        };
        parse(&flat, "/static", &|_| None)
    }

    #[test]
    fn patterns_match_like_globs() {
        let p = Pattern(vec![Seg::Lit("mood-".into()), Seg::Any(0)]);
        assert!(p.can_equal("mood-calm", false));
        assert!(p.can_equal("mood-", false));
        assert!(!p.can_equal("moo", false));
        let q = Pattern(vec![Seg::Any(0), Seg::Lit("-x".into()), Seg::Any(1)]);
        assert!(q.can_equal("a-xb", false));
        assert!(!q.can_equal("a-yb", false));
        assert!(Pattern::lit("A").can_equal("a", true));
    }

    #[test]
    fn builds_a_tree_with_void_and_raw_text_elements() {
        let t = tree(
            "<div class=\"a b\" id=x><img src=a.png><p>text<script>if (a<b) {}</script><span data-k=\"v\">s</span></p></div><ul><li>1<li>2</ul>",
        );
        let tags: Vec<&str> = t.elements.iter().map(|e| e.tag.as_str()).collect();
        assert_eq!(
            tags,
            ["div", "img", "p", "script", "span", "ul", "li", "li"]
        );
        assert_eq!(t.elements[1].parent, Some(0));
        assert_eq!(t.elements[4].parent, Some(2));
        assert_eq!(t.elements[6].parent, Some(5));
        assert_eq!(t.elements[7].parent, Some(5), "<li> closes the open <li>");
        assert_eq!(t.elements[0].classes.len(), 2);
        assert_eq!(t.elements[0].ids, [Pattern::lit("x")]);
    }

    #[test]
    fn fold_comment_ends_the_critical_part_but_not_the_links() {
        let t = tree(
            "<header></header><!-- perf:fold --><footer></footer><link rel=stylesheet href=\"/static/css/late.css\">",
        );
        let tags: Vec<&str> = t.elements.iter().map(|e| e.tag.as_str()).collect();
        assert_eq!(tags, ["header"]);
        assert_eq!(t.stylesheets, ["css/late.css"]);
    }

    #[test]
    fn class_tokens_keep_prefixes_and_drop_bare_expressions() {
        let v = pattern(&format!(
            "card mood-{EXPR_START}0{EXPR_END} {EXPR_START}1{EXPR_END}"
        ));
        let tokens = class_tokens(&v);
        assert_eq!(tokens.len(), 2);
        assert_eq!(tokens[0], Pattern::lit("card"));
        assert_eq!(
            tokens[1],
            Pattern(vec![Seg::Lit("mood-".into()), Seg::Any(0)])
        );
    }
}
