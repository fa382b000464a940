//! An askama template with its structure resolved, read by askama's own parser
//! (`askama_parser`): `{% extends %}` with its blocks (and `super()`), `{% include %}`,
//! `{% import %}`, `{% macro %}` and `{% call %}`. What comes out is the markup the
//! template can produce, flattened: every branch of every `{% if %}`/`{% match %}` one
//! after the other, each loop body once between loop markers, and each `{{ … }}` as a
//! marker that names what is known of the expression.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use askama_parser::{Ast, Expr as AExpr, LetValueOrBlock, Node, Syntax, WithSpan};

use crate::Error;
use crate::discover::discover;

/// Starts an expression marker: `EXPR_START`, the index in [`Flat::exprs`], `EXPR_END`.
pub const EXPR_START: char = '\u{E000}';
/// Ends an expression marker.
pub const EXPR_END: char = '\u{E001}';
/// Starts a loop body.
pub const LOOP_START: char = '\u{E002}';
/// Ends a loop body.
pub const LOOP_END: char = '\u{E003}';
/// The fold: `{# perf:fold #}` or `<!-- perf:fold -->`.
pub const FOLD: char = '\u{E004}';

/// What is known of a `{{ … }}` expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expr {
    /// `asset_url!("css/app.css")` or `"css/app.css"|asset_url`.
    AssetUrl(String),
    /// `image!("img/a.jpg", class = "c", …)` or `"img/a.jpg"|image(…)`.
    Image {
        /// The image's logical name.
        name: String,
        /// The literal `class = "…"`.
        class: Option<String>,
    },
    /// Anything else: its output is unknown.
    Other,
}

/// A template's markup, flattened.
#[derive(Debug, Clone, Default)]
pub struct Flat {
    /// The markup with markers.
    pub html: String,
    /// The expressions the markers name.
    pub exprs: Vec<Expr>,
    /// What `{# perf:keep a b-* #}` comments add to this template's safelist.
    pub keep: Vec<String>,
}

/// Every template under a directory, by name relative to it (`pages/index.html`).
#[derive(Debug)]
pub struct Templates {
    sources: BTreeMap<String, (PathBuf, String)>,
}

/// The file extensions read as HTML templates.
const HTML: &[&str] = &["html", "htm", "xhtml", "jinja", "j2", "askama"];

impl Templates {
    /// Reads every file under `dir` (a missing directory holds no templates).
    pub fn load(dir: &Path) -> Result<Templates, Error> {
        let mut sources = BTreeMap::new();
        if dir.is_dir() {
            for input in discover(dir)? {
                let Ok(text) = std::fs::read_to_string(&input.file) else {
                    continue;
                };
                sources.insert(input.logical, (input.file, text));
            }
        }
        Ok(Templates { sources })
    }

    /// Names and contents of every template, in name order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.sources
            .iter()
            .map(|(n, (_, text))| (n.as_str(), text.as_str()))
    }

    /// The names of the HTML templates.
    pub fn pages(&self) -> Vec<&str> {
        self.sources
            .keys()
            .filter(|n| {
                Path::new(n)
                    .extension()
                    .and_then(|e| e.to_str())
                    .is_some_and(|e| HTML.contains(&e.to_ascii_lowercase().as_str()))
            })
            .map(String::as_str)
            .collect()
    }

    /// The file of a template.
    pub fn path(&self, name: &str) -> Option<&Path> {
        self.sources.get(name).map(|(p, _)| p.as_path())
    }

    fn parse_all(&self) -> HashMap<&str, Result<Ast<'_>, Error>> {
        let syntax = Syntax::default();
        self.sources
            .iter()
            .map(|(name, (path, text))| {
                let ast = Ast::from_str(text, None, &syntax).map_err(|e| {
                    let (line, column) = line_column(text, e.offset);
                    Error::Template {
                        path: path.clone(),
                        line,
                        column,
                        message: e
                            .message
                            .map(|m| m.to_string())
                            .unwrap_or_else(|| "askama cannot parse this template".into()),
                    }
                });
                (name.as_str(), ast)
            })
            .collect()
    }

    /// Flattens each of `names`. A template that does not parse is an error with its
    /// line and column; so is an `extends`/`include` of a missing template.
    pub fn flatten(&self, names: &[&str]) -> Result<Vec<Flat>, Error> {
        let parsed = self.parse_all();
        names
            .iter()
            .map(|name| {
                let mut r = Resolver {
                    templates: self,
                    parsed: &parsed,
                    flat: Flat::default(),
                    depth: 0,
                    follow_extends: true,
                };
                r.template(name, None)?;
                Ok(r.flat)
            })
            .collect()
    }

    /// Each template of `name`'s `extends` chain flattened on its own, blocks with
    /// their own content: what the layouts write in blocks that the page replaces.
    pub fn flatten_chain(&self, name: &str) -> Result<Vec<Flat>, Error> {
        let parsed = self.parse_all();
        let mut out = Vec::new();
        let mut current = name.to_string();
        let mut seen = Vec::new();
        while !seen.contains(&current) && seen.len() < MAX_DEPTH {
            seen.push(current.clone());
            let mut r = Resolver {
                templates: self,
                parsed: &parsed,
                flat: Flat::default(),
                depth: 0,
                follow_extends: false,
            };
            r.template(&current, None)?;
            let (_, nodes) = r.ast(&current, None)?;
            out.push(r.flat);
            match nodes.iter().find_map(|n| match &**n {
                Node::Extends(e) => Some(e.path),
                _ => None,
            }) {
                Some(p) => current = p.to_string(),
                None => break,
            }
        }
        Ok(out)
    }
}

/// Line and column (from 1, in characters) of a byte offset.
fn line_column(text: &str, offset: usize) -> (u32, u32) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() as u32 + 1;
    let column = before.rsplit('\n').next().unwrap_or("").chars().count() as u32 + 1;
    (line, column)
}

type Nodes<'a> = [Box<Node<'a>>];

/// One template of an `extends` chain: its blocks and macros.
struct Level<'a> {
    blocks: HashMap<&'a str, &'a Nodes<'a>>,
}

/// What the nodes of one template see: the chain's levels (most derived first) and the
/// macros in scope.
struct Frame<'a> {
    levels: Vec<Level<'a>>,
    macros: HashMap<String, &'a askama_parser::node::Macro<'a>>,
    imports: HashMap<&'a str, &'a str>,
    /// The block being rendered and its level, for `super()`.
    block: Option<(&'a str, usize)>,
    /// `{# perf:keep … #}` anywhere in the chain (a page's comments outside its blocks
    /// are not rendered, but they count).
    keep: Vec<String>,
}

struct Resolver<'t, 'a> {
    templates: &'t Templates,
    parsed: &'a HashMap<&'a str, Result<Ast<'a>, Error>>,
    flat: Flat,
    depth: usize,
    /// Off: a template is flattened alone, its blocks with their own content.
    follow_extends: bool,
}

/// Recursion limit for includes and macro calls (a template including itself).
const MAX_DEPTH: usize = 64;

impl<'a> Resolver<'_, 'a> {
    /// The parsed template `name`, looked up as askama does: relative to the templates
    /// directory, then to the including template's folder.
    fn ast(&self, name: &str, from: Option<&str>) -> Result<(&'a str, &'a Nodes<'a>), Error> {
        let relative = from.and_then(|f| {
            let dir = f.rsplit_once('/').map_or("", |(d, _)| d);
            (!dir.is_empty()).then(|| format!("{dir}/{name}"))
        });
        let candidates = std::iter::once(name.trim_start_matches('/').to_string()).chain(relative);
        for candidate in candidates {
            if let Some((key, ast)) = self.parsed.get_key_value(candidate.as_str()) {
                return match ast {
                    Ok(ast) => Ok((key, ast.nodes())),
                    Err(e) => Err(clone_error(e)),
                };
            }
        }
        let path = from
            .and_then(|f| self.templates.path(f))
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from(name));
        Err(Error::Template {
            path,
            line: 1,
            column: 1,
            message: format!("`{name}` names no template in the templates directory"),
        })
    }

    /// Flattens template `name` (extends chain resolved) into `self.flat`.
    fn template(&mut self, name: &str, from: Option<&str>) -> Result<(), Error> {
        if self.depth > MAX_DEPTH {
            return Ok(());
        }
        self.depth += 1;
        let (mut key, mut nodes) = self.ast(name, from)?;
        let mut frame = Frame {
            levels: Vec::new(),
            macros: HashMap::new(),
            imports: HashMap::new(),
            block: None,
            keep: Vec::new(),
        };
        let mut seen = vec![key];
        loop {
            let mut level = Level {
                blocks: HashMap::new(),
            };
            collect(nodes, &mut level, &mut frame);
            frame.levels.push(level);
            let parent = nodes.iter().find_map(|n| match &**n {
                Node::Extends(e) => Some(e.path),
                _ => None,
            });
            match parent.filter(|_| self.follow_extends) {
                Some(p) => {
                    let (k, n) = self.ast(p, Some(key))?;
                    if seen.contains(&k) {
                        break;
                    }
                    seen.push(k);
                    key = k;
                    nodes = n;
                }
                None => break,
            }
        }
        // Macros of imported templates, by scope.
        let imports: Vec<(&'a str, &'a str)> =
            frame.imports.iter().map(|(s, p)| (*s, *p)).collect();
        for (scope, path) in imports {
            if let Ok((_, nodes)) = self.ast(path, Some(key)) {
                for n in nodes {
                    if let Node::Macro(m) = &**n {
                        frame.macros.entry(intern(scope, *m.name)).or_insert(m);
                    }
                }
            }
        }
        for k in std::mem::take(&mut frame.keep) {
            if !self.flat.keep.contains(&k) {
                self.flat.keep.push(k);
            }
        }
        let base = frame.levels.len() - 1;
        // The base template's nodes: the last level's source.
        self.nodes(nodes, &mut frame, base, key)?;
        self.depth -= 1;
        Ok(())
    }

    fn nodes(
        &mut self,
        nodes: &'a Nodes<'a>,
        frame: &mut Frame<'a>,
        level: usize,
        file: &'a str,
    ) -> Result<(), Error> {
        for node in nodes {
            match &**node {
                Node::Lit(l) => {
                    self.flat.html.push_str(&l.lws);
                    self.flat.html.push_str(&l.val);
                    self.flat.html.push_str(&l.rws);
                }
                Node::Raw(r) => {
                    self.flat.html.push_str(&r.lit.lws);
                    self.flat.html.push_str(&r.lit.val);
                    self.flat.html.push_str(&r.lit.rws);
                }
                Node::Comment(c) => {
                    let text = c.content.trim_matches(|ch: char| {
                        ch.is_whitespace() || matches!(ch, '#' | '-' | '+' | '~')
                    });
                    if text == "perf:fold" {
                        self.flat.html.push(FOLD);
                    }
                }
                Node::Expr(_, e) => {
                    if is_super(e) {
                        if let Some((name, at)) = frame.block {
                            self.block(name, at + 1, frame, file)?;
                        }
                    } else {
                        let expr = classify(e);
                        self.marker(expr);
                    }
                }
                // Branches one after the other, a space apart: inside an attribute value,
                // `btn-{% if a %}x{% else %}y{% endif %}`-style alternatives stay two tokens.
                Node::If(i) => {
                    for branch in &i.branches {
                        self.nodes(&branch.nodes, frame, level, file)?;
                        self.flat.html.push(' ');
                    }
                }
                Node::Match(m) => {
                    for arm in &m.arms {
                        self.nodes(&arm.nodes, frame, level, file)?;
                        self.flat.html.push(' ');
                    }
                }
                Node::Loop(l) => {
                    self.flat.html.push(LOOP_START);
                    self.nodes(&l.body, frame, level, file)?;
                    self.flat.html.push(LOOP_END);
                    self.nodes(&l.else_nodes, frame, level, file)?;
                }
                Node::FilterBlock(f) => self.nodes(&f.nodes, frame, level, file)?,
                Node::BlockDef(b) => {
                    let name: &'a str = *b.name;
                    let start = frame.levels[..=level.min(frame.levels.len() - 1)]
                        .iter()
                        .position(|l| l.blocks.contains_key(name))
                        .unwrap_or(level);
                    self.block(name, start, frame, file)?;
                }
                Node::Include(i) => {
                    self.template(i.path, Some(file))?;
                }
                Node::Call(c) => {
                    if self.depth > MAX_DEPTH {
                        continue;
                    }
                    let name: &str = *c.name;
                    let key = match &c.scope {
                        Some(scope) => intern(**scope, name),
                        None => name.to_string(),
                    };
                    if let Some(m) = frame.macros.get(key.as_str()).copied() {
                        self.depth += 1;
                        self.nodes(&m.nodes, frame, level, file)?;
                        self.depth -= 1;
                    }
                    self.nodes(&c.nodes, frame, level, file)?;
                }
                Node::Let(l) => {
                    if let LetValueOrBlock::Block { nodes, .. } = &l.val {
                        // Captured markup is printed later by an expression: count it here.
                        self.nodes(nodes, frame, level, file)?;
                    }
                }
                Node::Extends(_)
                | Node::Import(_)
                | Node::Macro(_)
                | Node::Break(_)
                | Node::Continue(_)
                | Node::Declare(_)
                | Node::Compound(_) => {}
            }
        }
        Ok(())
    }

    /// Renders the definition of block `name` found at `from` or a less derived level.
    fn block(
        &mut self,
        name: &'a str,
        from: usize,
        frame: &mut Frame<'a>,
        file: &'a str,
    ) -> Result<(), Error> {
        let Some(at) =
            (from..frame.levels.len()).find(|&i| frame.levels[i].blocks.contains_key(name))
        else {
            return Ok(());
        };
        let nodes = frame.levels[at].blocks[name];
        let outer = frame.block.replace((name, at));
        self.nodes(nodes, frame, at, file)?;
        frame.block = outer;
        Ok(())
    }

    fn marker(&mut self, expr: Expr) {
        let index = self.flat.exprs.len();
        self.flat.exprs.push(expr);
        self.flat.html.push(EXPR_START);
        self.flat.html.push_str(&index.to_string());
        self.flat.html.push(EXPR_END);
    }
}

/// The entries of a `{# perf:keep a b-* #}` comment.
fn keep_list(content: &str) -> Option<Vec<String>> {
    let text =
        content.trim_matches(|ch: char| ch.is_whitespace() || matches!(ch, '#' | '-' | '+' | '~'));
    text.strip_prefix("perf:keep")
        .map(|list| list.split_whitespace().map(str::to_string).collect())
}

/// The name a macro is called by through an import scope.
fn intern(scope: &str, name: &str) -> String {
    format!("{scope}::{name}")
}

/// Collects the block definitions (at any depth), macros and imports of one template.
fn collect<'a>(nodes: &'a Nodes<'a>, level: &mut Level<'a>, frame: &mut Frame<'a>) {
    for node in nodes {
        match &**node {
            Node::BlockDef(b) => {
                level.blocks.entry(*b.name).or_insert(&b.nodes);
                collect(&b.nodes, level, frame);
            }
            Node::Macro(m) => {
                frame.macros.entry((*m.name).to_string()).or_insert(m);
            }
            Node::Import(i) => {
                frame.imports.insert(i.scope, i.path);
            }
            Node::Comment(c) => {
                if let Some(list) = keep_list(c.content) {
                    frame.keep.extend(list);
                }
            }
            Node::If(i) => {
                for b in &i.branches {
                    collect(&b.nodes, level, frame);
                }
            }
            Node::Match(m) => {
                for a in &m.arms {
                    collect(&a.nodes, level, frame);
                }
            }
            Node::Loop(l) => {
                collect(&l.body, level, frame);
                collect(&l.else_nodes, level, frame);
            }
            Node::FilterBlock(f) => collect(&f.nodes, level, frame),
            _ => {}
        }
    }
}

fn is_super(e: &WithSpan<Box<AExpr<'_>>>) -> bool {
    match &***e {
        AExpr::Call(c) => matches!(&**c.path, AExpr::Var("super")),
        AExpr::Filter(f) => f.arguments.first().is_some_and(is_super),
        _ => false,
    }
}

/// What is known of an expression's output.
fn classify(e: &WithSpan<Box<AExpr<'_>>>) -> Expr {
    match &***e {
        AExpr::RustMacro(path, args) => {
            let name = path.last().map(|p| **p).unwrap_or("");
            let args: &str = args;
            let (first, named) = macro_args(args);
            match (name, first) {
                ("asset_url", Some(f)) => Expr::AssetUrl(f),
                ("image", Some(f)) => Expr::Image {
                    name: f,
                    class: named.get("class").cloned(),
                },
                _ => Expr::Other,
            }
        }
        AExpr::Filter(f) => {
            let name = match &f.name {
                askama_parser::PathOrIdentifier::Identifier(i) => **i,
                askama_parser::PathOrIdentifier::Path(p) => p.last().map_or("", |c| *c.name),
            };
            let input = f.arguments.first();
            let literal = input.and_then(|a| match &***a {
                AExpr::StrLit(s) => Some(s.content.to_string()),
                _ => None,
            });
            match (name, literal) {
                ("asset_url", Some(l)) => Expr::AssetUrl(l),
                ("image", Some(l)) => Expr::Image {
                    name: l,
                    class: None,
                },
                // `safe`, `escape` and the like print their input.
                ("safe" | "escape" | "e" | "trim", _) => input.map_or(Expr::Other, classify),
                _ => Expr::Other,
            }
        }
        AExpr::Group(inner) => classify(inner),
        _ => Expr::Other,
    }
}

/// The first string literal of a macro's arguments and its `key = "literal"` arguments.
fn macro_args(args: &str) -> (Option<String>, HashMap<String, String>) {
    let mut first = None;
    let mut named = HashMap::new();
    let mut key: Option<String> = None;
    let mut chars = args.char_indices().peekable();
    let mut word = String::new();
    while let Some((_, c)) = chars.next() {
        match c {
            '"' => {
                let mut lit = String::new();
                while let Some((_, c)) = chars.next() {
                    match c {
                        '\\' => {
                            if let Some((_, n)) = chars.next() {
                                lit.push(n);
                            }
                        }
                        '"' => break,
                        _ => lit.push(c),
                    }
                }
                match key.take() {
                    Some(k) => {
                        named.insert(k, lit);
                    }
                    None if first.is_none() => first = Some(lit),
                    None => {}
                }
                word.clear();
            }
            '=' => {
                key = Some(std::mem::take(&mut word).trim().to_string());
            }
            ',' => {
                key = None;
                word.clear();
            }
            _ => word.push(c),
        }
    }
    (first, named)
}

/// Errors are not `Clone` (they may hold an `io::Error`); a template error is.
fn clone_error(e: &Error) -> Error {
    match e {
        Error::Template {
            path,
            line,
            column,
            message,
        } => Error::Template {
            path: path.clone(),
            line: *line,
            column: *column,
            message: message.clone(),
        },
        other => Error::Template {
            path: PathBuf::new(),
            line: 1,
            column: 1,
            message: other.to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flat(files: &[(&str, &str)], name: &str) -> Flat {
        let dir = tempfile::tempdir().unwrap();
        for (n, text) in files {
            let p = dir.path().join(n);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        }
        let t = Templates::load(dir.path()).unwrap();
        t.flatten(&[name]).unwrap().pop().unwrap()
    }

    fn text(f: &Flat) -> String {
        f.html
            .chars()
            .map(|c| match c {
                EXPR_START => '{',
                EXPR_END => '}',
                LOOP_START => '[',
                LOOP_END => ']',
                FOLD => '|',
                c => c,
            })
            .collect()
    }

    #[test]
    fn resolves_extends_blocks_super_includes_and_macros() {
        let f = flat(
            &[
                (
                    "base.html",
                    "<html>{% block head %}<link rel=stylesheet>{% endblock %}<body>{% block content %}base{% endblock %}</body></html>",
                ),
                (
                    "mid.html",
                    "{% extends \"base.html\" %}{% block content %}<main>{% block inner %}mid{% endblock %}</main>{% endblock %}",
                ),
                (
                    "page.html",
                    "{% extends \"mid.html\" %}{% import \"m.html\" as m %}{% block head %}{{ super() }}<style></style>{% endblock %}{% block inner %}{% if a %}<a>{% else %}<b>{% endif %}{% for x in xs %}<li>{{ x }}</li>{% endfor %}{% include \"part.html\" %}{% call m::card() %}{% endcall %}{% endblock %}",
                ),
                (
                    "part.html",
                    "<aside>{# perf:fold #}{# perf:keep is-open mood-* #}</aside>",
                ),
                (
                    "m.html",
                    "{% macro card() %}<div class=card></div>{% endmacro %}",
                ),
            ],
            "page.html",
        );
        assert_eq!(
            text(&f),
            "<html><link rel=stylesheet><style></style><body><main><a> <b> [<li>{0}</li>]<aside>|</aside><div class=card></div></main></body></html>"
        );
        assert_eq!(f.keep, ["is-open", "mood-*"]);
    }

    #[test]
    fn classifies_asset_and_image_expressions() {
        let f = flat(
            &[(
                "a.html",
                "{{ asset_url!(\"css/app.css\") }}{{ image!(\"img/a.jpg\", alt = \"x, y\", class = \"hero\") }}{{ \"img/b.png\"|image(alt = \"b\") }}{{ \"css/b.css\"|asset_url }}{{ user.name }}",
            )],
            "a.html",
        );
        assert_eq!(
            f.exprs,
            [
                Expr::AssetUrl("css/app.css".into()),
                Expr::Image {
                    name: "img/a.jpg".into(),
                    class: Some("hero".into())
                },
                Expr::Image {
                    name: "img/b.png".into(),
                    class: None
                },
                Expr::AssetUrl("css/b.css".into()),
                Expr::Other,
            ]
        );
    }

    #[test]
    fn a_parse_error_names_line_and_column() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("bad.html"), "<p>\n  {% if %}</p>").unwrap();
        let t = Templates::load(dir.path()).unwrap();
        let e = t.flatten(&["bad.html"]).unwrap_err();
        match e {
            Error::Template { line, .. } => assert_eq!(line, 2),
            other => panic!("{other:?}"),
        }
    }
}
