//! The elements a template can produce: its flattened markup (every branch of every
//! condition, each loop body once, expressions as wildcards; see [`super::template`])
//! read by a small tolerant HTML tokenizer into a tree that the selector matcher walks.
//!
//! The branches of a condition are alternatives: when they leave different elements open
//! (a wrapper written in each branch), what follows may sit in any of them, so an element
//! has every parent it may have. The tree also has the elements the HTML parser implies:
//! a `<tbody>` around rows written straight into a `<table>`, and a page's `<html>`,
//! `<head>` and `<body>` when its template leaves their tags out.

use super::template::{
    BRANCH_END, BRANCH_NEXT, BRANCH_START, EXPR_END, EXPR_START, Expr, FOLD, Flat, LOOP_END,
    LOOP_START,
};

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
    /// The element it sits in (`None`: the top level).
    pub parent: Option<usize>,
    /// The other elements it may sit in, when the branches of a condition before it left
    /// different elements open (`None`: the top level).
    pub alt_parents: Vec<Option<usize>>,
    /// Inside a loop: it may follow a copy of itself.
    pub repeated: bool,
}

impl Element {
    /// Every element it may sit in (`None`: the top level).
    pub fn parents(&self) -> impl Iterator<Item = Option<usize>> + '_ {
        std::iter::once(self.parent).chain(self.alt_parents.iter().copied())
    }

    /// Sets the elements it may sit in (at least one).
    fn set_parents(&mut self, parents: Vec<Option<usize>>) {
        let mut parents = parents.into_iter();
        self.parent = parents.next().flatten();
        self.alt_parents = parents.collect();
    }
}

/// The elements of a template, in document order (but the `<html>`, `<head>` and
/// `<body>` that the parser implies come last).
#[derive(Debug, Default)]
pub struct Tree {
    /// Every element before the fold (all of them without a fold marker).
    pub elements: Vec<Element>,
    /// Logical names of the stylesheets linked by `<link rel="stylesheet">`, wherever
    /// they are (before or after the fold).
    pub stylesheets: Vec<String>,
}

impl Tree {
    /// The elements that may have the same parent as `i`, itself excluded unless it is
    /// repeated.
    pub fn siblings(&self, i: usize) -> impl Iterator<Item = usize> + '_ {
        let me = &self.elements[i];
        self.elements
            .iter()
            .enumerate()
            .filter(move |(j, e)| {
                (*j != i || me.repeated) && e.parents().any(|p| me.parents().any(|q| q == p))
            })
            .map(|(j, _)| j)
    }

    /// Every element `i` may sit in, at any depth, each once.
    pub fn ancestors(&self, i: usize) -> Vec<usize> {
        let mut out: Vec<usize> = Vec::new();
        let mut todo: Vec<usize> = self.elements[i].parents().flatten().collect();
        while let Some(a) = todo.pop() {
            if !out.contains(&a) {
                out.push(a);
                todo.extend(self.elements[a].parents().flatten());
            }
        }
        out
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
/// What may stand in a document's `<head>`: before anything else, the parser puts them
/// there.
const HEAD: &[&str] = &[
    "base", "link", "meta", "noscript", "script", "style", "template", "title",
];

/// Elements that a start tag may close as well as their end tag: their end tag may be
/// a stray one.
const IMPLIED_END: &[&str] = &[
    "dd", "dt", "li", "option", "p", "tbody", "td", "tfoot", "th", "thead", "tr",
];

/// At most this many states of the open elements are followed through conditions.
const MAX_STATES: usize = 32;

/// The states of the open elements: one stack each, innermost last.
type States = Vec<Vec<usize>>;

/// What the tokenizer hands over.
struct Builder<'a> {
    flat: &'a Flat,
    tree: Tree,
    /// The open elements, innermost last: one stack for each state the branches read so
    /// far may leave the document in (one without conditions).
    stacks: States,
    /// For each condition being read: the states before it, and those its finished
    /// branches leave.
    branches: Vec<(States, States)>,
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
        stacks: vec![Vec::new()],
        branches: Vec::new(),
        loops: 0,
        folded: false,
        url_prefix,
        placeholder,
    };
    b.run(&flat.html);
    if is_page(&flat.html, &b.tree) {
        imply_document(&mut b.tree);
    }
    b.tree
}

/// Whether the markup is a whole document rather than a fragment: it has a doctype, an
/// `<html>`, `<head>` or `<body>` tag, or at its top level what only a document's head
/// holds. A template whose critical CSS is inlined is a page; a partial is flattened
/// inside its page.
fn is_page(html: &str, tree: &Tree) -> bool {
    let head_only = ["base", "link", "meta", "style", "title"];
    tree.elements.iter().any(|e| {
        matches!(e.tag.as_str(), "html" | "head" | "body")
            || (head_only.contains(&e.tag.as_str()) && e.parents().any(|p| p.is_none()))
    }) || html
        .as_bytes()
        .windows(9)
        .any(|w| w.eq_ignore_ascii_case(b"<!doctype"))
}

/// Adds what the HTML parser implies around a document's elements: the `<html>` at the
/// top (the one written, else a new one), and in it a `<head>` with the head elements
/// written before anything else and a `<body>` with the rest (the ones written, else new
/// ones; every document has both). Text is not followed: a head element after text that
/// starts the body still counts as the head's.
fn imply_document(tree: &mut Tree) {
    let top = |e: &Element| e.parents().any(|p| p.is_none());
    let els = &mut tree.elements;
    let mut roots: Vec<usize> = (0..els.len())
        .filter(|&i| els[i].tag == "html" && top(&els[i]))
        .collect();
    let implied = |tag: &str, parents: Vec<Option<usize>>| {
        let mut e = Element {
            tag: tag.into(),
            ..Element::default()
        };
        e.set_parents(parents);
        e
    };
    if roots.is_empty() {
        els.push(implied("html", vec![None]));
        roots.push(els.len() - 1);
    }
    let in_roots: Vec<Option<usize>> = roots.iter().map(|&r| Some(r)).collect();
    for (i, e) in els.iter_mut().enumerate() {
        if !roots.contains(&i) && top(e) {
            reparent(e, &[None], &in_roots);
        }
    }
    let children: Vec<usize> = (0..els.len())
        .filter(|&i| !roots.contains(&i) && els[i].parents().any(|p| in_roots.contains(&p)))
        .collect();
    let (mut to_head, mut to_body) = (Vec::new(), Vec::new());
    let mut in_body = false;
    for &c in &children {
        match els[c].tag.as_str() {
            "head" => {}
            "body" => in_body = true,
            t if !in_body && HEAD.contains(&t) => to_head.push(c),
            _ => {
                in_body = true;
                to_body.push(c);
            }
        }
    }
    for (tag, moved) in [("head", to_head), ("body", to_body)] {
        let written = children.iter().copied().find(|&c| els[c].tag == tag);
        let into = written.unwrap_or_else(|| {
            els.push(implied(tag, in_roots.clone()));
            els.len() - 1
        });
        for m in moved {
            reparent(&mut els[m], &in_roots, &[Some(into)]);
        }
    }
}

/// Replaces every parent of `e` among `from` by `to`.
fn reparent(e: &mut Element, from: &[Option<usize>], to: &[Option<usize>]) {
    let mut parents: Vec<Option<usize>> = Vec::new();
    for p in e.parents() {
        let new: &[Option<usize>] = if from.contains(&p) { to } else { &[p] };
        for &n in new {
            if !parents.contains(&n) {
                parents.push(n);
            }
        }
    }
    e.set_parents(parents);
}

/// The marker characters of [`super::template`] other than expressions'.
fn is_marker(c: char) -> bool {
    matches!(
        c,
        LOOP_START | LOOP_END | FOLD | BRANCH_START | BRANCH_NEXT | BRANCH_END
    )
}

/// The distinct states among `states`. Past [`MAX_STATES`], one state per innermost
/// open element: the possible parents of what follows stay exact, what an end tag
/// reopens may not.
fn distinct(states: States) -> States {
    let mut out: States = Vec::new();
    for s in states {
        if !out.contains(&s) {
            out.push(s);
        }
    }
    if out.len() > MAX_STATES {
        let mut tops = Vec::new();
        out.retain(|s| {
            let top = s.last().copied();
            let new = !tops.contains(&top);
            if new {
                tops.push(top);
            }
            new
        });
        out.truncate(MAX_STATES);
    }
    out
}

impl Builder<'_> {
    fn run(&mut self, s: &str) {
        let mut i = 0;
        while i < s.len() {
            let c = s[i..].chars().next().expect("in bounds");
            match c {
                '<' => i = self.tag(s, i),
                EXPR_START => {
                    let end = s[i..].find(EXPR_END).map_or(s.len(), |e| i + e);
                    let index: usize = s[i + c.len_utf8()..end].parse().unwrap_or(usize::MAX);
                    if let Some(Expr::Image { name, class }) = self.flat.exprs.get(index) {
                        self.image(name, class.as_deref());
                    }
                    i = (end + EXPR_END.len_utf8()).min(s.len());
                }
                _ => {
                    self.marker(c);
                    i += c.len_utf8();
                }
            }
        }
    }

    /// Follows a loop, fold or branch marker; whether `c` is one.
    fn marker(&mut self, c: char) -> bool {
        match c {
            LOOP_START => self.loops += 1,
            LOOP_END => self.loops = self.loops.saturating_sub(1),
            FOLD => self.folded = true,
            BRANCH_START => self.branches.push((self.stacks.clone(), Vec::new())),
            BRANCH_NEXT => {
                if let Some((before, after)) = self.branches.last_mut() {
                    after.append(&mut self.stacks);
                    self.stacks = before.clone();
                }
            }
            BRANCH_END => {
                if let Some((_, mut after)) = self.branches.pop() {
                    after.append(&mut self.stacks);
                    self.stacks = distinct(after);
                }
            }
            _ => return false,
        }
        true
    }

    /// Follows the markers in text the tokenizer steps over (comments, attributes, raw
    /// text): a condition that starts there may end outside.
    fn markers(&mut self, text: &str) {
        for c in text.chars() {
            self.marker(c);
        }
    }

    /// Adds `e` as a child of the innermost open element of every state.
    fn push(&mut self, mut e: Element) -> usize {
        let mut parents: Vec<Option<usize>> = Vec::new();
        for s in &self.stacks {
            let top = s.last().copied();
            if !parents.contains(&top) {
                parents.push(top);
            }
        }
        e.set_parents(parents);
        e.repeated = self.loops > 0;
        self.tree.elements.push(e);
        self.tree.elements.len() - 1
    }

    /// Opens element `i` in every state.
    fn open(&mut self, i: usize) {
        for s in &mut self.stacks {
            s.push(i);
        }
    }

    /// Adds the element `tag` that the parser implies in the states whose innermost open
    /// element is one of `under` (a `<tbody>` in a `<table>`), and opens it there.
    fn imply(&mut self, tag: &str, under: &[&str]) {
        let elements = &self.tree.elements;
        let within: Vec<usize> = (0..self.stacks.len())
            .filter(|&k| {
                self.stacks[k]
                    .last()
                    .is_some_and(|&t| under.contains(&elements[t].tag.as_str()))
            })
            .collect();
        if within.is_empty() {
            return;
        }
        let mut parents: Vec<Option<usize>> = Vec::new();
        for &k in &within {
            let top = self.stacks[k].last().copied();
            if !parents.contains(&top) {
                parents.push(top);
            }
        }
        let mut e = Element {
            tag: tag.into(),
            ..Element::default()
        };
        e.set_parents(parents);
        e.repeated = self.loops > 0;
        self.tree.elements.push(e);
        let index = self.tree.elements.len() - 1;
        for k in within {
            self.stacks[k].push(index);
        }
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
        self.open(picture);
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
        for s in &mut self.stacks {
            s.pop();
        }
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
            self.markers(text);
            return end;
        }
        if rest.starts_with("<!") || rest.starts_with("<?") {
            let end = rest.find('>').map_or(s.len(), |e| at + e + 1);
            self.markers(&s[at..end]);
            return end;
        }
        let closing = rest.starts_with("</");
        let name_start = at + if closing { 2 } else { 1 };
        let name_len = s[name_start..]
            .find(|c: char| c.is_ascii_whitespace() || c == '/' || c == '>' || is_marker(c))
            .unwrap_or(s.len() - name_start);
        let name = s[name_start..name_start + name_len].to_ascii_lowercase();
        if name.is_empty() || !name.starts_with(|c: char| c.is_ascii_alphabetic()) {
            // `<` in text, or a tag name written by an expression.
            return at + 1;
        }
        let (attrs, any_attrs, self_closing, end) = attributes(s, name_start + name_len, self);
        if closing {
            self.close(&name);
            return end;
        }
        if name == "link" {
            self.link(&attrs);
        }
        if self.folded {
            return self.raw_text(s, end, &name);
        }
        if name == "li" || name == "dt" || name == "dd" || name == "option" {
            self.close_open(&[&name], &["ul", "ol", "dl", "select", "datalist", "menu"]);
        }
        if CLOSES_P.contains(&name.as_str()) {
            self.close_open(&["p"], &["button", "div", "section", "article", "main"]);
        }
        // A table's rows and cells close the open ones, and sit in the row group and
        // row that the parser implies when the template leaves them out.
        match name.as_str() {
            "tr" => {
                self.close_open(&["tr"], &["table"]);
                self.imply("tbody", &["table"]);
            }
            "td" | "th" => {
                self.close_open(&["td", "th"], &["tr", "table"]);
                self.imply("tbody", &["table"]);
                self.imply("tr", &["tbody", "thead", "tfoot"]);
            }
            "tbody" | "thead" | "tfoot" => {
                self.close_open(&["tbody", "thead", "tfoot"], &["table"]);
            }
            "col" => self.imply("colgroup", &["table"]),
            _ => {}
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
            self.open(index);
        }
        self.raw_text(s, end, &name)
    }

    /// After the start tag of `name` ending at `end`, where the markup goes on: past the
    /// text of a raw-text element, whose markers still count.
    fn raw_text(&mut self, s: &str, end: usize, name: &str) -> usize {
        let next = skip_raw_text(s, end, name);
        self.markers(&s[end..next]);
        next
    }

    /// An end tag: closes the innermost open `name`. A template writes an end tag for an
    /// element it opened, so the states where no `name` is open (the other branch of the
    /// condition that opened it) are not the ones it is written in: they are left out.
    /// Not for an element a start tag may have closed already (`<p>`, `<li>`): there the
    /// end tag may be a stray one in some states, which the parser ignores.
    fn close(&mut self, name: &str) {
        let tags = &self.tree.elements;
        let open: Vec<Option<usize>> = self
            .stacks
            .iter()
            .map(|s| s.iter().rposition(|&e| tags[e].tag == name))
            .collect();
        if open.iter().all(Option::is_none) {
            return;
        }
        let stray = IMPLIED_END.contains(&name);
        let states = std::mem::take(&mut self.stacks)
            .into_iter()
            .zip(open)
            .filter_map(|(mut s, pos)| match pos {
                Some(pos) => {
                    s.truncate(pos);
                    Some(s)
                }
                None => stray.then_some(s),
            })
            .collect();
        self.stacks = distinct(states);
    }

    /// In every state, closes the innermost open element among `tags` unless a `scope`
    /// element sits between it and the top.
    fn close_open(&mut self, tags: &[&str], scope: &[&str]) {
        let elements = &self.tree.elements;
        for stack in &mut self.stacks {
            for pos in (0..stack.len()).rev() {
                let t = elements[stack[pos]].tag.as_str();
                if tags.contains(&t) {
                    stack.truncate(pos);
                    break;
                }
                if scope.contains(&t) {
                    break;
                }
            }
        }
        let states = std::mem::take(&mut self.stacks);
        self.stacks = distinct(states);
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
    // Loop, fold and branch markers inside a value are not part of it.
    for seg in &mut segs {
        if let Seg::Lit(l) = seg {
            l.retain(|c| !is_marker(c));
        }
    }
    segs.retain(|s| !matches!(s, Seg::Lit(l) if l.is_empty()));
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
            if !b.marker(c) {
                name.push(c.to_ascii_lowercase());
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
            b.markers(text);
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

    fn tags(t: &Tree, parents: impl Iterator<Item = Option<usize>>) -> Vec<&str> {
        parents
            .map(|p| p.map_or("", |p| t.elements[p].tag.as_str()))
            .collect()
    }

    #[test]
    fn content_after_a_conditional_wrapper_sits_in_each_branch_s_element() {
        let t = tree(&format!(
            "<main>{BRANCH_START}<section> {BRANCH_NEXT}<div> {BRANCH_END}<p>in</p>\
             {BRANCH_START}</section> {BRANCH_NEXT}</div> {BRANCH_END}<footer></footer></main>"
        ));
        let p = t.elements.iter().position(|e| e.tag == "p").unwrap();
        assert_eq!(tags(&t, t.elements[p].parents()), ["section", "div"]);
        assert_eq!(t.ancestors(p).len(), 3);
        // Each end tag closes its own branch's wrapper: the footer follows both.
        let footer = t.elements.iter().position(|e| e.tag == "footer").unwrap();
        assert_eq!(tags(&t, t.elements[footer].parents()), ["main"]);
        assert!(t.siblings(footer).any(|s| t.elements[s].tag == "section"));

        // Without an `else`, the content may also sit where the condition stands.
        let t = tree(&format!(
            "{BRANCH_START}<a href=x> {BRANCH_NEXT}{BRANCH_END}<span></span>"
        ));
        assert_eq!(tags(&t, t.elements[1].parents()), ["a", ""]);
    }

    #[test]
    fn markers_inside_tags_and_raw_text_do_not_break_elements() {
        let t = tree(&format!(
            "<div{BRANCH_START} hidden {BRANCH_NEXT}{BRANCH_END} class=\"a {BRANCH_START}b {BRANCH_NEXT}c {BRANCH_END}\">\
             <script>{BRANCH_START}x {BRANCH_NEXT}{BRANCH_END}</script><i></i></div>"
        ));
        let names: Vec<&str> = t.elements.iter().map(|e| e.tag.as_str()).collect();
        assert_eq!(names, ["div", "script", "i"]);
        assert_eq!(t.elements[0].classes.len(), 3);
        assert_eq!(t.elements[0].attrs[0].0, "hidden");
        assert_eq!(t.elements[2].parent, Some(0));
        assert!(t.elements[2].alt_parents.is_empty());
    }

    #[test]
    fn rows_sit_in_the_tbody_the_parser_implies() {
        let t = tree(
            "<table><tr><td>1<td>2<tr><th>3</table><table><thead><tr></tr></thead><td></td></table>",
        );
        let names: Vec<&str> = t.elements.iter().map(|e| e.tag.as_str()).collect();
        assert_eq!(
            names,
            [
                "table", "tbody", "tr", "td", "td", "tr", "th", "table", "thead", "tr", "tbody",
                "tr", "td"
            ]
        );
        let parent = |i: usize| t.elements[i].parent.map(|p| t.elements[p].tag.as_str());
        assert_eq!(parent(2), Some("tbody"));
        assert_eq!(parent(4), Some("tr"), "<td> closes the open <td>");
        assert_eq!(parent(5), Some("tbody"), "<tr> closes the open <tr>");
        assert_eq!(parent(9), Some("thead"));
        assert_eq!(parent(12), Some("tr"));
    }

    #[test]
    fn a_page_without_html_head_and_body_tags_has_them() {
        let t = tree("<!DOCTYPE html><title>x</title><meta charset=utf-8><p class=x><b></b></p>");
        let find = |tag: &str| t.elements.iter().position(|e| e.tag == tag).unwrap();
        let parent = |i: usize| t.elements[i].parent.map(|p| t.elements[p].tag.as_str());
        assert_eq!(parent(find("html")), None);
        assert_eq!(parent(find("head")), Some("html"));
        assert_eq!(parent(find("body")), Some("html"));
        assert_eq!(parent(find("title")), Some("head"));
        assert_eq!(parent(find("meta")), Some("head"));
        assert_eq!(parent(find("p")), Some("body"));
        assert_eq!(parent(find("b")), Some("p"));

        // The tags written stay; the missing ones are added around the rest.
        let t = tree("<html lang=en><link rel=stylesheet href=/static/a.css><main></main></html>");
        assert_eq!(t.elements.iter().filter(|e| e.tag == "html").count(), 1);
        let main = t.elements.iter().position(|e| e.tag == "main").unwrap();
        assert_eq!(tags(&t, t.elements[main].parents()), ["body"]);

        // A fragment stays one.
        let t = tree("<p class=x></p>");
        assert_eq!(t.elements.len(), 1);
        assert_eq!(t.elements[0].parent, None);
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
