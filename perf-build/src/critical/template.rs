//! An askama template with its structure resolved, read by askama's own parser
//! (`askama_parser`): `{% extends %}` with its blocks (and `super()`), `{% include %}`,
//! `{% import %}`, `{% macro %}` and `{% call %}`. What comes out is the markup the
//! template can produce, flattened: every branch of every `{% if %}`/`{% match %}` one
//! after the other between branch markers, each loop body once between loop markers, and
//! each `{{ … }}` as a marker that names what is known of the expression. Every piece of
//! markup is resolved as askama resolves it: `include`/`import`/`extends` paths next to
//! the template that writes them first, macros in that template's scope, and a call
//! block's body where the macro prints `caller()`.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use askama_parser::node::Macro;
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
/// Starts the branches of an `{% if %}`/`{% match %}`: the markup up to [`BRANCH_END`]
/// is alternatives, not a sequence.
pub const BRANCH_START: char = '\u{E005}';
/// Separates two branches (an `if` without `else` ends with an empty one).
pub const BRANCH_NEXT: char = '\u{E006}';
/// Ends the branches of a condition.
pub const BRANCH_END: char = '\u{E007}';

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
    /// `critical_css!("index.html")`: a template's critical CSS, inlined.
    Critical(String),
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

    /// Every template parsed once, for any number of [`Parsed::flatten`] and
    /// [`Parsed::flatten_chain`] calls. A template that does not parse is an error only
    /// when one of those reads it.
    pub fn parse(&self) -> Parsed<'_> {
        let syntax = Syntax::default();
        let asts = self
            .sources
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
            .collect();
        Parsed {
            templates: self,
            asts,
        }
    }

    /// Flattens each of `names` (see [`Parsed::flatten`]).
    #[cfg(test)]
    pub fn flatten(&self, names: &[&str]) -> Result<Vec<Flat>, Error> {
        let parsed = self.parse();
        names.iter().map(|name| parsed.flatten(name)).collect()
    }

    /// See [`Parsed::flatten_chain`].
    #[cfg(test)]
    pub fn flatten_chain(&self, name: &str) -> Result<Vec<Flat>, Error> {
        self.parse().flatten_chain(name)
    }
}

/// The templates of a [`Templates`], parsed.
pub struct Parsed<'t> {
    templates: &'t Templates,
    asts: HashMap<&'t str, Result<Ast<'t>, Error>>,
}

impl Parsed<'_> {
    fn resolver(&self, follow_extends: bool) -> Resolver<'_, '_> {
        Resolver {
            templates: self.templates,
            parsed: &self.asts,
            flat: Flat::default(),
            depth: 0,
            follow_extends,
            callers: Vec::new(),
        }
    }

    /// Flattens template `name`, its `extends` chain resolved. A template that does not
    /// parse is an error with its line and column; so is an `extends`/`include` of a
    /// missing template.
    pub fn flatten(&self, name: &str) -> Result<Flat, Error> {
        let mut r = self.resolver(true);
        r.template(name, None)?;
        Ok(r.flat)
    }

    /// Each template of `name`'s `extends` chain flattened on its own, blocks with
    /// their own content: what the layouts write in blocks that the page replaces.
    pub fn flatten_chain(&self, name: &str) -> Result<Vec<Flat>, Error> {
        let mut out = Vec::new();
        let mut current = name.to_string();
        let mut seen = Vec::new();
        while !seen.contains(&current) && seen.len() < MAX_DEPTH {
            seen.push(current.clone());
            let mut r = self.resolver(false);
            r.template(&current, None)?;
            let (key, nodes) = r.ast(&current, None)?;
            let parent = nodes.iter().find_map(|n| match &**n {
                Node::Extends(e) => Some(e.path),
                _ => None,
            });
            // The layout as askama finds it: next to this template first.
            let next = parent.map(|p| r.ast(p, Some(key))).transpose()?;
            out.push(r.flat);
            match next {
                Some((layout, _)) => current = layout.to_string(),
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

/// One template of an `extends` chain: its file and its blocks.
struct Level<'a> {
    /// The template's name: a block's `include`s, `import`s and macros are looked up
    /// from the template that defines the block, not from the one that renders it.
    file: &'a str,
    blocks: HashMap<&'a str, &'a Nodes<'a>>,
}

/// What the nodes of one template see: the chain's levels (most derived first).
struct Frame<'a> {
    levels: Vec<Level<'a>>,
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
    /// The bodies of the `{% call %}` blocks whose macros are being rendered, innermost
    /// last: what `caller()` prints.
    callers: Vec<Caller<'a>>,
}

/// The body of a `{% call %}` block, with where it was written.
struct Caller<'a> {
    nodes: &'a Nodes<'a>,
    /// The template that writes the call: the body's paths and macros are its own.
    file: &'a str,
    level: usize,
    /// Whether the macro printed it: if not (`caller` passed on under another name), it
    /// is flattened after the macro, so that its markup still counts.
    printed: bool,
}

/// Recursion limit for includes and macro calls (a template including itself).
const MAX_DEPTH: usize = 64;

impl<'a> Resolver<'_, 'a> {
    /// The parsed template `name`, looked up as askama does (`find_template`): next to
    /// the including template first, then from the templates directory.
    fn ast(&self, name: &str, from: Option<&str>) -> Result<(&'a str, &'a Nodes<'a>), Error> {
        let relative = from.and_then(|f| {
            let dir = f.rsplit_once('/').map_or("", |(d, _)| d);
            (!dir.is_empty() && !name.starts_with('/')).then(|| normalize(&format!("{dir}/{name}")))
        });
        let candidates = relative.into_iter().chain([normalize(name)]);
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
            block: None,
            keep: Vec::new(),
        };
        let mut seen = vec![key];
        loop {
            let mut level = Level {
                file: key,
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
                Node::Expr(_, e) => match callee(e) {
                    Some((None, "super")) => {
                        if let Some((name, at)) = frame.block {
                            self.block(name, at + 1, frame)?;
                        }
                    }
                    Some((None, "caller")) if !self.callers.is_empty() => self.caller(frame)?,
                    // `{{ card() }}`, `{{ m::card() }}`: a macro called as an expression.
                    Some((scope, name)) if self.depth <= MAX_DEPTH => {
                        match self.find_macro(scope, name, file, frame) {
                            Some((m, at)) => {
                                self.depth += 1;
                                self.nodes(&m.nodes, frame, level, at)?;
                                self.depth -= 1;
                            }
                            None => self.marker(classify(e)),
                        }
                    }
                    _ => self.marker(classify(e)),
                },
                // Branches between markers (the markup reads them as alternatives), each
                // followed by a space: inside an attribute value,
                // `btn-{% if a %}x{% else %}y{% endif %}`-style alternatives stay two tokens.
                Node::If(i) => {
                    self.flat.html.push(BRANCH_START);
                    for (n, branch) in i.branches.iter().enumerate() {
                        if n > 0 {
                            self.flat.html.push(BRANCH_NEXT);
                        }
                        self.nodes(&branch.nodes, frame, level, file)?;
                        self.flat.html.push(' ');
                    }
                    // Without an `else`, the condition may print nothing at all.
                    if i.branches.last().is_some_and(|b| b.cond.is_some()) {
                        self.flat.html.push(BRANCH_NEXT);
                    }
                    self.flat.html.push(BRANCH_END);
                }
                // A match is exhaustive: one of its arms prints.
                Node::Match(m) => {
                    self.flat.html.push(BRANCH_START);
                    for (n, arm) in m.arms.iter().enumerate() {
                        if n > 0 {
                            self.flat.html.push(BRANCH_NEXT);
                        }
                        self.nodes(&arm.nodes, frame, level, file)?;
                        self.flat.html.push(' ');
                    }
                    self.flat.html.push(BRANCH_END);
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
                    self.block(name, start, frame)?;
                }
                Node::Include(i) => {
                    self.template(i.path, Some(file))?;
                }
                Node::Call(c) => {
                    if self.depth > MAX_DEPTH {
                        continue;
                    }
                    let scope = c.scope.as_ref().map(|s| **s);
                    let Some((m, at)) = self.find_macro(scope, *c.name, file, frame) else {
                        self.nodes(&c.nodes, frame, level, file)?;
                        continue;
                    };
                    self.callers.push(Caller {
                        nodes: &c.nodes,
                        file,
                        level,
                        printed: false,
                    });
                    self.depth += 1;
                    let rendered = self.nodes(&m.nodes, frame, level, at);
                    self.depth -= 1;
                    let caller = self.callers.pop().expect("pushed above");
                    rendered?;
                    if !caller.printed {
                        self.nodes(&c.nodes, frame, level, file)?;
                    }
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

    /// Renders the definition of block `name` found at `from` or a less derived level,
    /// as a part of the template that defines it.
    fn block(&mut self, name: &'a str, from: usize, frame: &mut Frame<'a>) -> Result<(), Error> {
        let Some(at) =
            (from..frame.levels.len()).find(|&i| frame.levels[i].blocks.contains_key(name))
        else {
            return Ok(());
        };
        // A block that holds a block of its own name (askama refuses it, but the build
        // must not overflow its stack on the way) renders its content once.
        if self.depth > MAX_DEPTH || frame.block.is_some_and(|(n, l)| n == name && l == at) {
            return Ok(());
        }
        let nodes = frame.levels[at].blocks[name];
        let file = frame.levels[at].file;
        let outer = frame.block.replace((name, at));
        self.depth += 1;
        let result = self.nodes(nodes, frame, at, file);
        self.depth -= 1;
        frame.block = outer;
        result
    }

    /// Renders the body of the innermost call block, where its macro prints `caller()`.
    /// The body itself sees the calls around it: inside it, `caller()` is the outer one's.
    fn caller(&mut self, frame: &mut Frame<'a>) -> Result<(), Error> {
        let Some(mut caller) = self.callers.pop() else {
            return Ok(());
        };
        caller.printed = true;
        let rendered = if self.depth > MAX_DEPTH {
            Ok(())
        } else {
            self.depth += 1;
            let r = self.nodes(caller.nodes, frame, caller.level, caller.file);
            self.depth -= 1;
            r
        };
        self.callers.push(caller);
        rendered
    }

    /// The macro a call in template `file` names, and the template that defines it: as
    /// askama scopes them, a bare name among `file`'s own macros and `scope::name` among
    /// the macros of the template `file` imports as `scope`. Then, more lenient than
    /// askama, the same lookup from each template of the chain being rendered.
    fn find_macro(
        &self,
        scope: Option<&str>,
        name: &str,
        file: &'a str,
        frame: &Frame<'a>,
    ) -> Option<(&'a Macro<'a>, &'a str)> {
        let files = std::iter::once(file).chain(frame.levels.iter().map(|l| l.file));
        for from in files {
            let Some(Ok(ast)) = self.parsed.get(from) else {
                continue;
            };
            let found = match scope {
                None => macro_in(ast.nodes(), name).map(|m| (m, from)),
                Some(scope) => import_in(ast.nodes(), scope)
                    .and_then(|path| self.ast(path, Some(from)).ok())
                    .and_then(|(key, nodes)| macro_in(nodes, name).map(|m| (m, key))),
            };
            if found.is_some() {
                return found;
            }
        }
        None
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

/// A template path with its `.` and `..` segments resolved, as a template name.
fn normalize(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for seg in path.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            s => parts.push(s),
        }
    }
    parts.join("/")
}

/// Calls `f` on every node of `nodes`, at any depth outside macros.
fn walk<'a>(nodes: &'a Nodes<'a>, f: &mut impl FnMut(&'a Node<'a>)) {
    for node in nodes {
        f(node);
        match &**node {
            Node::BlockDef(b) => walk(&b.nodes, f),
            Node::If(i) => i.branches.iter().for_each(|b| walk(&b.nodes, f)),
            Node::Match(m) => m.arms.iter().for_each(|a| walk(&a.nodes, f)),
            Node::Loop(l) => {
                walk(&l.body, f);
                walk(&l.else_nodes, f);
            }
            Node::FilterBlock(b) => walk(&b.nodes, f),
            _ => {}
        }
    }
}

/// The macro `name` a template defines.
fn macro_in<'a>(nodes: &'a Nodes<'a>, name: &str) -> Option<&'a Macro<'a>> {
    let mut found = None;
    walk(nodes, &mut |n| {
        if let Node::Macro(m) = n
            && *m.name == name
            && found.is_none()
        {
            found = Some(&**m);
        }
    });
    found
}

/// The path a template imports as `scope`.
fn import_in<'a>(nodes: &'a Nodes<'a>, scope: &str) -> Option<&'a str> {
    let mut found = None;
    walk(nodes, &mut |n| {
        if let Node::Import(i) = n
            && i.scope == scope
        {
            found = Some(i.path);
        }
    });
    found
}

/// Collects the block definitions (at any depth) and `perf:keep` comments of one
/// template.
fn collect<'a>(nodes: &'a Nodes<'a>, level: &mut Level<'a>, frame: &mut Frame<'a>) {
    for node in nodes {
        match &**node {
            Node::BlockDef(b) => {
                level.blocks.entry(*b.name).or_insert(&b.nodes);
                collect(&b.nodes, level, frame);
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

/// The function an expression prints the result of, through filters and parentheses
/// (`caller()|safe`): `(None, "super")`, `(Some("m"), "card")` for `m::card(…)`.
fn callee<'a>(e: &WithSpan<Box<AExpr<'a>>>) -> Option<(Option<&'a str>, &'a str)> {
    match &***e {
        AExpr::Call(c) => match &**c.path {
            AExpr::Var(name) => Some((None, *name)),
            AExpr::Path(p) => match p.as_slice() {
                [scope, name] => Some((Some(*scope.name), *name.name)),
                _ => None,
            },
            _ => None,
        },
        AExpr::Filter(f) => f.arguments.first().and_then(callee),
        AExpr::Group(inner) => callee(inner),
        _ => None,
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
                ("critical_css", Some(f)) => Expr::Critical(f),
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
                BRANCH_START => '(',
                BRANCH_NEXT => '/',
                BRANCH_END => ')',
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
            "<html><link rel=stylesheet><style></style><body><main>(<a> /<b> )[<li>{0}</li>]<aside>|</aside><div class=card></div></main></body></html>"
        );
        assert_eq!(f.keep, ["is-open", "mood-*"]);
    }

    #[test]
    fn paths_and_macros_resolve_from_the_template_that_writes_them() {
        let files = [
            (
                "base.html",
                "{% macro m() %}<base-m>{% endmacro %}<html>{% block content %}{% endblock %}{% call m() %}{% endcall %}</html>",
            ),
            (
                "pages/home.html",
                "{% extends \"../base.html\" %}{% macro m() %}<page-m>{% endmacro %}{% block content %}{% include \"card.html\" %}{{ m() }}{% endblock %}",
            ),
            ("pages/card.html", "<pcard>"),
            ("card.html", "<rootcard>"),
        ];
        assert_eq!(
            text(&flat(&files, "pages/home.html")),
            "<html><pcard><page-m><base-m></html>"
        );
    }

    #[test]
    fn a_call_body_goes_where_the_macro_prints_caller() {
        let f = flat(
            &[
                (
                    "m/macros.html",
                    "{% macro card() %}<article>{{ caller()|safe }}</article>{% endmacro %}\
                     {% macro boxed() %}<div>{{ caller() }}{% call card() %}<i>{% endcall %}</div>{% endmacro %}\
                     {% macro plain() %}<hr>{% endmacro %}",
                ),
                (
                    "page.html",
                    "{% import \"m/macros.html\" as m %}{% call m::card() %}<p>{% endcall %}|\
                     {% call m::boxed() %}<b>{% endcall %}|{% call m::plain() %}<q>{% endcall %}",
                ),
            ],
            "page.html",
        );
        assert_eq!(
            text(&f),
            "<article><p></article>|<div><b><article><i></article></div>|<hr><q>"
        );
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
