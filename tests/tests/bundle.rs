//! Bundling and code splitting on real inputs, with real execution: each test writes a
//! small application into a temporary folder, builds it in-process and lays every built
//! asset out under its logical path, where the chunks' relative imports find each other
//! as the import map makes them find each other in a browser; then runs the entries with
//! `node` and compares what they print with what the unbundled sources print.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

use perf_build::{AssetReport, Builder, BundleConfig, Error, Report};

/// An application in a temporary folder: `static/`, `templates/`, its cache.
struct App {
    dir: tempfile::TempDir,
    bundle: BundleConfig,
}

/// One build: its report and the folder its hashed files were written to.
struct Build {
    report: Report,
    dist: tempfile::TempDir,
}

impl App {
    /// `files` are (path relative to the package, contents).
    fn new(files: &[(&str, &str)]) -> App {
        let app = App {
            dir: tempfile::tempdir().unwrap(),
            bundle: BundleConfig {
                // Test modules are tiny: without this, small shared chunks may be merged.
                min_chunk_size: 0,
                npm_install: false,
                ..BundleConfig::default()
            },
        };
        for (path, text) in files {
            app.write(path, text);
        }
        app
    }

    fn root(&self) -> &Path {
        self.dir.path()
    }

    fn write(&self, path: &str, text: &str) {
        let p = self.root().join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }

    fn builder(&self) -> Builder {
        Builder::new()
            .cargo_instructions(false)
            .root(self.root())
            .static_dir("static")
            .templates_dir("templates")
            .cache_dir(self.root().join("cache"))
            .precompress(false)
            .bundle(self.bundle.clone())
    }

    fn try_build(&self) -> Result<Build, Error> {
        let dist = tempfile::tempdir().unwrap();
        let report = self.builder().build_dist(dist.path(), &|_, _| {})?;
        Ok(Build { report, dist })
    }

    fn build(&self) -> Build {
        self.try_build()
            .unwrap_or_else(|e| panic!("{}", e.render(self.root())))
    }

    /// What `logical` prints run from the sources themselves, unbundled: what its bundle
    /// must print.
    fn run_sources(&self, logical: &str) -> String {
        let site = Site::new();
        copy_dir(&self.root().join("static"), site.path());
        site.run(logical)
    }
}

impl Build {
    fn asset(&self, logical: &str) -> &AssetReport {
        self.report
            .assets
            .iter()
            .find(|a| a.path == logical)
            .unwrap_or_else(|| panic!("no asset `{logical}` among {:?}", self.paths()))
    }

    fn has(&self, logical: &str) -> bool {
        self.report.assets.iter().any(|a| a.path == logical)
    }

    fn paths(&self) -> Vec<&str> {
        self.report.assets.iter().map(|a| a.path.as_str()).collect()
    }

    /// The built bytes of an asset, as served.
    fn text(&self, logical: &str) -> String {
        std::fs::read_to_string(self.dist.path().join(&self.asset(logical).file)).unwrap()
    }

    /// Logical path → URL, for every asset.
    fn urls(&self) -> BTreeMap<String, String> {
        self.report
            .assets
            .iter()
            .map(|a| (a.path.clone(), a.url.clone()))
            .collect()
    }

    /// The JavaScript assets, built-ins excluded.
    fn scripts(&self) -> Vec<&str> {
        self.paths()
            .into_iter()
            .filter(|p| p.ends_with(".js") && !p.starts_with("_perf/code-splitter"))
            .collect()
    }

    /// The scripts whose built text contains `needle`.
    fn scripts_containing(&self, needle: &str) -> Vec<&str> {
        self.scripts()
            .into_iter()
            .filter(|s| self.text(s).contains(needle))
            .collect()
    }

    /// The one chunk whose module list names `module`.
    fn chunk_of(&self, module: &str) -> &str {
        let holding: Vec<&str> = self
            .report
            .assets
            .iter()
            .filter(|a| {
                a.chunk
                    .as_ref()
                    .is_some_and(|c| c.modules.iter().any(|m| m == module))
            })
            .map(|a| a.path.as_str())
            .collect();
        assert_eq!(holding.len(), 1, "chunks holding {module}: {holding:?}");
        holding[0]
    }

    fn kind(&self, logical: &str) -> &'static str {
        self.asset(logical)
            .chunk
            .as_ref()
            .unwrap_or_else(|| panic!("{logical} is not a chunk"))
            .kind
    }

    /// The chunks a first load of `logical` needs, itself first.
    fn first_load(&self, logical: &str) -> Vec<String> {
        self.asset(logical)
            .chunk
            .as_ref()
            .and_then(|c| c.first_load.as_ref())
            .unwrap_or_else(|| panic!("{logical} has no first load"))
            .chunks
            .clone()
    }

    /// What `logical` statically imports, as logical paths (absolute URLs as written).
    fn imports(&self, logical: &str) -> BTreeSet<String> {
        static_imports(&self.text(logical))
            .into_iter()
            .map(|s| resolve(logical, &s))
            .collect()
    }

    /// Every asset under its logical path.
    fn lay_out(&self) -> Site {
        let site = Site::new();
        for a in &self.report.assets {
            let to = site.path().join(&a.path);
            std::fs::create_dir_all(to.parent().unwrap()).unwrap();
            std::fs::copy(self.dist.path().join(&a.file), to).unwrap();
        }
        site
    }

    /// Runs the entry `logical` with node over the laid-out assets.
    fn run(&self, logical: &str) -> String {
        self.lay_out().run(logical)
    }
}

/// A folder node runs modules from: `"type": "module"`, and a resolve hook that maps
/// `/static/…` (how modules import built-ins and classic scripts) into the folder.
struct Site(tempfile::TempDir);

const HOOKS: &str = "const root = new URL('../', import.meta.url);\n\
export async function resolve(specifier, context, next) {\n\
  if (specifier.startsWith('/static/')) {\n\
    return next(new URL(specifier.slice('/static/'.length), root).href, context);\n\
  }\n\
  return next(specifier, context);\n\
}\n";

const REGISTER: &str =
    "import { register } from 'node:module';\nregister('./hooks.mjs', import.meta.url);\n";

impl Site {
    fn new() -> Site {
        Site(tempfile::tempdir().unwrap())
    }

    fn path(&self) -> &Path {
        self.0.path()
    }

    /// What node prints running `logical`, with the folder's `file://` URL left out.
    fn run(&self, logical: &str) -> String {
        // Written last: a `package.json` among the assets does not count.
        std::fs::write(self.path().join("package.json"), "{\"type\":\"module\"}\n").unwrap();
        std::fs::create_dir_all(self.path().join("_node")).unwrap();
        std::fs::write(self.path().join("_node/hooks.mjs"), HOOKS).unwrap();
        std::fs::write(self.path().join("_node/register.mjs"), REGISTER).unwrap();
        let register = format!("file://{}/_node/register.mjs", self.path().display());
        let out = Command::new("node")
            .arg("--import")
            .arg(register)
            .arg(self.path().join(logical))
            .output()
            .expect("node (Node 20) is installed");
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "node {logical} failed ({}):\nstdout:\n{stdout}\nstderr:\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        stdout.replace(&format!("file://{}/", self.path().display()), "")
    }
}

fn copy_dir(from: &Path, to: &Path) {
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            std::fs::create_dir_all(&target).unwrap();
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), target).unwrap();
        }
    }
}

/// The specifiers of a minified module's static imports and re-exports
/// (`import…from"x"`, `import"x"`, `export…from"x"`); `import("x")` is not one.
fn static_imports(code: &str) -> Vec<String> {
    let mut found = Vec::new();
    for keyword in ["from", "import"] {
        let mut rest = code;
        while let Some(i) = rest.find(keyword) {
            rest = &rest[i + keyword.len()..];
            let after = rest.trim_start();
            let Some(quote) = after.chars().next().filter(|c| *c == '"' || *c == '\'') else {
                continue;
            };
            if let Some(end) = after[1..].find(quote) {
                found.push(after[1..1 + end].to_string());
            }
        }
    }
    found
}

/// The logical path `specifier` names, imported from `from`; absolute URLs as they are.
fn resolve(from: &str, specifier: &str) -> String {
    if !specifier.starts_with('.') {
        return specifier.to_string();
    }
    let mut parts: Vec<&str> = from.split('/').collect();
    parts.pop();
    for p in specifier.split('/') {
        match p {
            "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    parts.join("/")
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

// ---------------------------------------------------------------------------------------
// Chunk graphs.

#[test]
fn a_module_shared_by_two_entries_is_extracted_once_into_a_chunk_both_import() {
    let mut app = App::new(&[
        (
            "static/js/one.js",
            "import { greet } from './lib/greet.js';\nimport { only } from './only-one.js';\nconsole.log(greet('one'), only());\n",
        ),
        (
            "static/js/two.js",
            "import { greet } from './lib/greet.js';\nconsole.log(greet('two'));\n",
        ),
        (
            "static/js/lib/greet.js",
            "export function greet(who) { return 'shared-greeting-marker ' + who; }\n",
        ),
        (
            "static/js/only-one.js",
            "export function only() { return 'only-one-marker'; }\n",
        ),
    ]);
    // The default minimum chunk size: a tiny shared module is still never duplicated.
    app.bundle.min_chunk_size = BundleConfig::default().min_chunk_size;
    let b = app.build();

    let shared = b.chunk_of("js/lib/greet.js");
    assert!(shared.starts_with("_perf/chunks/"), "{shared}");
    assert_eq!(b.kind(shared), "shared");
    assert_eq!(b.scripts_containing("shared-greeting-marker"), [shared]);
    // Bundled into a chunk, the module is not emitted on its own.
    assert!(!b.has("js/lib/greet.js"), "{:?}", b.paths());
    // A module of one entry alone is in that entry.
    assert_eq!(b.chunk_of("js/only-one.js"), "js/one.js");
    assert_eq!(b.scripts_containing("only-one-marker"), ["js/one.js"]);
    assert!(!b.has("js/only-one.js"));

    for entry in ["js/one.js", "js/two.js"] {
        assert_eq!(b.kind(entry), "entry");
        // Imported by its logical URL (the import map resolves it), not a hashed one.
        assert_eq!(b.imports(entry), set(&[shared]), "{}", b.text(entry));
        assert_eq!(b.first_load(entry), [entry, shared]);
    }
    assert_eq!(
        b.run("js/one.js"),
        "shared-greeting-marker one only-one-marker\n"
    );
    assert_eq!(b.run("js/two.js"), app.run_sources("js/two.js"));
}

#[test]
fn a_feature_and_a_split_point_are_chunks_of_their_own_loaded_on_demand() {
    let app = App::new(&[
        (
            "static/js/page.js",
            "import { greet } from './lib/greet.js';\n\
             console.log(greet('page'));\n\
             const chat = await import('../features/chat.js');\n\
             console.log(chat.open());\n\
             const { later } = await import('./later.js');\n\
             console.log(later());\n",
        ),
        (
            "static/js/lib/greet.js",
            "export function greet(who) { return 'hello ' + who; }\n",
        ),
        (
            "static/features/chat.js",
            "import { greet } from '../js/lib/greet.js';\nimport { prompts } from '../js/chat/prompts.js';\n\
             export function open() { return greet('chat') + ': ' + prompts.join(', '); }\n",
        ),
        (
            "static/js/chat/prompts.js",
            "export const prompts = ['feature-prompt-marker', 'second'];\n",
        ),
        (
            "static/js/later.js",
            "export function later() { return 'split-point-marker'; }\n",
        ),
    ]);
    let b = app.build();

    let chat = b.asset("features/chat.js").chunk.clone().unwrap();
    assert_eq!(
        (chat.kind, chat.feature.as_deref()),
        ("feature", Some("chat"))
    );
    assert_eq!(b.chunk_of("js/chat/prompts.js"), "features/chat.js");
    assert_eq!(
        b.scripts_containing("feature-prompt-marker"),
        ["features/chat.js"]
    );
    // The split point keeps its own name, as the source calls it.
    assert_eq!(b.kind("js/later.js"), "dynamic");
    assert_eq!(b.scripts_containing("split-point-marker"), ["js/later.js"]);
    assert_eq!(b.first_load("js/later.js"), ["js/later.js"]);

    // The module the page and the feature share is a chunk of its own, which both load
    // first; the page's first load has neither the feature nor the split point.
    let greet = b.chunk_of("js/lib/greet.js");
    assert_eq!(b.kind(greet), "shared");
    assert_eq!(b.first_load("js/page.js"), ["js/page.js", greet]);
    assert_eq!(
        b.first_load("features/chat.js"),
        ["features/chat.js", greet]
    );
    assert_eq!(b.imports("js/page.js"), set(&[greet]));
    let page = b.text("js/page.js");
    assert!(
        page.contains("import(\"../features/chat.js\")") && page.contains("import(\"./later.js\")"),
        "{page}"
    );

    let out = b.run("js/page.js");
    assert_eq!(
        out,
        "hello page\nhello chat: feature-prompt-marker, second\nsplit-point-marker\n"
    );
    assert_eq!(out, app.run_sources("js/page.js"));
}

#[test]
fn a_script_a_template_names_is_an_entry_even_when_a_module_imports_it() {
    let app = App::new(&[
        (
            "static/js/page.js",
            "import { widget } from './widget.js';\nconsole.log(widget());\n",
        ),
        (
            "static/js/widget.js",
            "export function widget() { return 'widget-marker'; }\n",
        ),
        (
            "templates/widget.html",
            "<script type=\"module\" src=\"{{ asset_url!(\"js/widget.js\") }}\"></script>\n",
        ),
    ]);
    let b = app.build();
    assert_eq!(b.kind("js/widget.js"), "entry");
    assert_eq!(b.scripts_containing("widget-marker"), ["js/widget.js"]);
    assert_eq!(b.imports("js/page.js"), set(&["js/widget.js"]));
    assert_eq!(b.run("js/page.js"), "widget-marker\n");
}

// ---------------------------------------------------------------------------------------
// What a bundler must keep: cycles, re-exports, live bindings, import.meta, top-level await.

const CYCLE_A: &str = "import { b } from './b.js';\nconsole.log('eval a');\nexport const a = 'A';\n\
    export function fromA() { return 'a sees ' + b; }\n";
const CYCLE_B: &str = "import { a, fromA } from './a.js';\n\
    console.log('eval b; fromA is a', typeof fromA);\nexport const b = 'B';\n\
    export function fromB() { return 'b sees ' + a; }\n";

#[test]
fn a_cycle_runs_in_source_order_with_every_value_bound() {
    let app = App::new(&[
        (
            "static/js/page.js",
            "import { fromA } from './a.js';\nimport { fromB } from './b.js';\nconsole.log(fromA(), fromB());\n",
        ),
        ("static/js/a.js", CYCLE_A),
        ("static/js/b.js", CYCLE_B),
    ]);
    let b = app.build();
    assert_eq!(b.first_load("js/page.js"), ["js/page.js"]);
    // page → a → b → (a, in progress): b runs first, seeing a's hoisted function.
    let expected = "eval b; fromA is a function\neval a\na sees B b sees A\n";
    assert_eq!(app.run_sources("js/page.js"), expected);
    assert_eq!(b.run("js/page.js"), expected);
}

/// A page's module that loads a panel which imports the page back.
const PAGE_AND_PANEL: [(&str, &str); 2] = [
    (
        "static/js/page.js",
        "export let clicks = 1;\nexport function click() { clicks += 1; }\n\
         import('./panel.js').then((panel) => { click(); console.log(panel.render()); });\n",
    ),
    (
        "static/js/panel.js",
        "import { clicks, click } from './page.js';\nclick();\n\
         export function render() { return 'panel sees ' + clicks; }\n",
    ),
];

#[test]
fn a_cycle_across_chunks_keeps_live_values() {
    // The entry (the template's script) loads a split point that imports the entry back:
    // two chunks, each importing the other.
    let app = App::new(&[
        (
            "templates/page.html",
            "<script type=\"module\" src=\"{{ asset_url!(\"js/page.js\") }}\"></script>\n",
        ),
        PAGE_AND_PANEL[0],
        PAGE_AND_PANEL[1],
    ]);
    let b = app.build();
    assert_eq!(b.kind("js/page.js"), "entry");
    assert_eq!(b.kind("js/panel.js"), "dynamic");
    assert_eq!(b.imports("js/panel.js"), set(&["js/page.js"]));
    assert_eq!(app.run_sources("js/page.js"), "panel sees 3\n");
    assert_eq!(b.run("js/page.js"), "panel sees 3\n");
}

/// The same modules with no template naming the page: every module is imported by
/// another, so none is an entry by the "nothing imports it" rule; the build must still
/// bundle them (or say what to do), not fail with rolldown's "You must supply
/// `options.input`".
#[test]
fn modules_that_only_import_each_other_still_build() {
    let app = App::new(&PAGE_AND_PANEL);
    let b = app.build();
    assert!(
        b.has("js/page.js") && b.has("js/panel.js"),
        "{:?}",
        b.paths()
    );
    assert_eq!(b.run("js/page.js"), "panel sees 3\n");
}

/// Two entries import the same modules in opposite orders, so the modules land in one
/// shared chunk: each entry must still run them in its own order, as the browser runs
/// the unbundled sources.
#[test]
fn shared_modules_run_in_each_entrys_own_import_order_with_strict_execution_order() {
    let mut app = App::new(&[
        (
            "static/js/one.js",
            "import { fromA } from './a.js';\nimport { fromB } from './b.js';\nimport './x.js';\nimport './y.js';\n\
             console.log(fromA(), fromB());\n",
        ),
        (
            "static/js/two.js",
            "import { fromB } from './b.js';\nimport { fromA } from './a.js';\nimport './y.js';\nimport './x.js';\n\
             console.log(fromA(), fromB());\n",
        ),
        ("static/js/a.js", CYCLE_A),
        ("static/js/b.js", CYCLE_B),
        ("static/js/x.js", "console.log('x');\nexport {};\n"),
        ("static/js/y.js", "console.log('y');\nexport {};\n"),
    ]);
    // Off by default (as in Rollup, esbuild and Vite, a shared chunk runs its modules in
    // one order): the setting makes each entry run them in its own.
    app.bundle.strict_execution_order = true;
    let b = app.build();
    assert_eq!(b.kind(b.chunk_of("js/a.js")), "shared");
    assert_eq!(
        app.run_sources("js/one.js"),
        "eval b; fromA is a function\neval a\nx\ny\na sees B b sees A\n"
    );
    assert_eq!(
        app.run_sources("js/two.js"),
        "eval a\neval b; fromA is a function\ny\nx\na sees B b sees A\n"
    );
    for entry in ["js/one.js", "js/two.js"] {
        assert_eq!(b.run(entry), app.run_sources(entry), "{entry}");
    }
}

#[test]
fn re_exports_and_live_bindings_survive_chunk_boundaries() {
    let app = App::new(&[
        (
            "static/js/one.js",
            "import { current, inc, total, twice as double, label, describe } from './lib/index.js';\n\
             import * as counter from './lib/counter.js';\n\
             console.log('before', current, counter.count);\ninc(); inc();\n\
             console.log('after', current, counter.count, total(2, 3), double(4), label, describe());\n",
        ),
        (
            "static/js/two.js",
            "import { current, inc, describe } from './lib/index.js';\ninc();\nconsole.log('two', current, describe());\n",
        ),
        (
            "static/js/lib/index.js",
            "export * from './math.js';\nexport { count as current, inc } from './counter.js';\n\
             export { default as label } from './label.js';\n\
             export function describe() { return 'index-own-code'; }\n",
        ),
        (
            "static/js/lib/math.js",
            "export function total(a, b) { return a + b; }\nexport function twice(a) { return a * 2; }\n",
        ),
        (
            "static/js/lib/counter.js",
            "export let count = 0;\nexport function inc() { count += 1; }\n",
        ),
        ("static/js/lib/label.js", "export default 'the-label';\n"),
    ]);
    let b = app.build();
    // The counter is shared: its `let` lives in a chunk both entries import, and a write
    // through `inc()` must be seen through the re-export and through the namespace.
    let counter = b.chunk_of("js/lib/counter.js");
    assert_eq!(b.kind(counter), "shared");
    assert!(b.imports("js/one.js").contains(counter));
    assert!(b.imports("js/two.js").contains(counter));
    let one = b.run("js/one.js");
    assert_eq!(one, "before 0 0\nafter 2 2 5 8 the-label index-own-code\n");
    assert_eq!(one, app.run_sources("js/one.js"));
    assert_eq!(b.run("js/two.js"), "two 1 index-own-code\n");
}

/// A "barrel" (`index.js` that only re-exports) leaves no code of its own in any chunk:
/// it is bundled all the same, never shipped alone with imports of modules that are not.
#[test]
fn a_module_of_re_exports_only_is_bundled_not_shipped_on_its_own() {
    let app = App::new(&[
        (
            "static/js/page.js",
            "import { inc, twice } from './lib/index.js';\nconsole.log(inc(), twice(2));\n",
        ),
        (
            "static/js/lib/index.js",
            "export { inc } from './counter.js';\nexport * from './math.js';\n",
        ),
        (
            "static/js/lib/counter.js",
            "export function inc() { return 'inc-body'; }\n",
        ),
        (
            "static/js/lib/math.js",
            "export function twice(a) { return a * 2; }\n",
        ),
    ]);
    let b = app.build();
    assert_eq!(b.scripts(), ["js/page.js"]);
    assert_eq!(b.run("js/page.js"), "inc-body 4\n");
}

#[test]
fn import_meta_url_is_the_url_of_each_chunk() {
    let app = App::new(&[
        (
            "static/js/one.js",
            "import { sharedUrl } from './lib/where.js';\nimport { innerUrl } from './inner.js';\n\
             const lazy = await import('./lazy.js');\n\
             console.log(import.meta.url);\nconsole.log(innerUrl);\nconsole.log(sharedUrl);\nconsole.log(lazy.lazyUrl);\n",
        ),
        (
            "static/js/two.js",
            "import { sharedUrl } from './lib/where.js';\nconsole.log(sharedUrl);\n",
        ),
        (
            "static/js/lib/where.js",
            "export const sharedUrl = import.meta.url;\n",
        ),
        (
            "static/js/inner.js",
            "export const innerUrl = import.meta.url;\n",
        ),
        (
            "static/js/lazy.js",
            "export const lazyUrl = import.meta.url;\n",
        ),
    ]);
    let b = app.build();
    let shared = b.chunk_of("js/lib/where.js");
    assert_ne!(shared, "js/one.js");
    // A module bundled into the entry has the entry's URL: the file the browser loaded.
    assert_eq!(
        b.run("js/one.js"),
        format!("js/one.js\njs/one.js\n{shared}\njs/lazy.js\n")
    );
    assert_eq!(b.run("js/two.js"), format!("{shared}\n"));
}

#[test]
fn top_level_await_works_in_an_entry_and_in_a_shared_module() {
    let app = App::new(&[
        (
            "static/js/one.js",
            "import { config } from './lib/config.js';\n\
             const local = await new Promise(r => setTimeout(() => r('entry-awaited'), 10));\n\
             console.log('one', config, local);\n",
        ),
        (
            "static/js/two.js",
            "import { config } from './lib/config.js';\nconsole.log('two', config);\n",
        ),
        (
            "static/js/lib/config.js",
            "console.log('config starts');\n\
             export const config = await new Promise(r => setTimeout(() => r('config-awaited'), 20));\n\
             console.log('config done');\n",
        ),
    ]);
    let b = app.build();
    let config = b.chunk_of("js/lib/config.js");
    assert_eq!(b.kind(config), "shared");
    // The entries wait for the shared module's await before their own bodies run.
    let one = b.run("js/one.js");
    assert_eq!(
        one,
        "config starts\nconfig done\none config-awaited entry-awaited\n"
    );
    assert_eq!(one, app.run_sources("js/one.js"));
    assert_eq!(
        b.run("js/two.js"),
        "config starts\nconfig done\ntwo config-awaited\n"
    );
}

#[test]
fn unused_exports_are_tree_shaken_from_every_chunk() {
    let mut app = App::new(&[
        (
            "static/js/one.js",
            "import { used } from './lib/shared.js';\nimport { alsoUsed } from './own.js';\nconsole.log(used(), alsoUsed());\n",
        ),
        (
            "static/js/two.js",
            "import { used } from './lib/shared.js';\nconsole.log(used());\n",
        ),
        (
            "static/js/lib/shared.js",
            "export function used() { return 'kept-shared-body'; }\n\
             export function unused() { return 'unused-shared-body'; }\n",
        ),
        (
            "static/js/own.js",
            "export function alsoUsed() { return 'kept-own-body'; }\n\
             export const unusedToo = ['unused-own-body'];\n",
        ),
    ]);
    let b = app.build();
    assert_eq!(b.scripts_containing("kept-shared-body").len(), 1);
    assert_eq!(b.scripts_containing("kept-own-body"), ["js/one.js"]);
    for gone in ["unused-shared-body", "unused-own-body"] {
        assert_eq!(b.scripts_containing(gone), Vec::<&str>::new(), "{gone}");
    }
    assert_eq!(b.run("js/one.js"), "kept-shared-body kept-own-body\n");

    // The check itself: unbundled, the unused bodies ship.
    app.bundle.enabled = false;
    let unbundled = app.build();
    assert_eq!(
        unbundled.scripts_containing("unused-shared-body"),
        ["js/lib/shared.js"]
    );
    assert_eq!(
        unbundled.scripts_containing("unused-own-body"),
        ["js/own.js"]
    );
}

#[test]
fn classic_scripts_stay_files_of_their_own_and_the_code_splitter_rides_in_its_importers_chunk() {
    let app = App::new(&[
        (
            "static/js/page.js",
            "import './legacy.js';\nimport { CodeSplitter } from '/static/_perf/code-splitter.js';\n\
             console.log(globalThis.legacyValue, typeof CodeSplitter);\n",
        ),
        (
            "static/js/legacy.js",
            "var legacyCounter = 41;\nglobalThis.legacyValue = legacyCounter + 1;\n",
        ),
    ]);
    let b = app.build();
    assert!(b.asset("js/legacy.js").chunk.is_none());
    assert_eq!(
        b.scripts_containing("legacyValue"),
        ["js/legacy.js", "js/page.js"]
    );
    // The CodeSplitter is bundled into the chunk of the module that imports it (no
    // request of its own), with the URL prefix written in; the built-in file stays, for
    // inline scripts.
    let page = b.text("js/page.js");
    assert!(page.contains("perf-reload-build"), "{page}");
    assert!(page.contains("\"/static\""), "{page}");
    assert!(!page.contains("__PERF_URL_PREFIX__"), "{page}");
    assert!(b.asset("_perf/code-splitter.js").chunk.is_none());
    assert_eq!(b.imports("js/page.js"), set(&["/static/js/legacy.js"]));
    // In node, the built-in finds a CodeSplitter already there and keeps it.
    let site = b.lay_out();
    std::fs::write(
        site.path().join("start.js"),
        "globalThis.CodeSplitter = { loadModule() {} };\nawait import('./js/page.js');\n",
    )
    .unwrap();
    assert_eq!(site.run("start.js"), "42 object\n");
}

#[test]
fn a_package_type_commonjs_above_does_not_make_modules_commonjs() {
    let app = App::new(&[
        ("package.json", "{\"name\":\"app\",\"type\":\"commonjs\"}\n"),
        ("static/package.json", "{\"type\":\"commonjs\"}\n"),
        (
            "static/js/one.js",
            "import { hello } from './util.js';\nimport settings from './settings.js';\nimport * as env from './env.js';\n\
             console.log(hello('one'), settings.theme, env.kinds());\n",
        ),
        (
            "static/js/two.js",
            "import { hello } from './util.js';\nconsole.log(hello('two'));\n",
        ),
        (
            "static/js/util.js",
            "export function hello(x) { return 'hello ' + x; }\n",
        ),
        (
            "static/js/settings.js",
            "export default { theme: 'dark' };\n",
        ),
        (
            "static/js/env.js",
            "export function kinds() { return [typeof module, typeof exports].join(); }\n",
        ),
    ]);
    let b = app.build();
    for s in b.scripts() {
        let text = b.text(s);
        for wrapper in ["__commonJS", "__toESM", "__toCommonJS", "module.exports"] {
            assert!(!text.contains(wrapper), "{wrapper} in {s}: {text}");
        }
    }
    assert_eq!(b.kind("js/one.js"), "entry");
    assert_eq!(b.run("js/one.js"), "hello one dark undefined,undefined\n");
}

// ---------------------------------------------------------------------------------------
// No cascading hashes.

#[test]
fn changing_one_leaf_changes_only_the_url_of_the_chunk_holding_it() {
    let app = App::new(&[
        (
            "static/js/one.js",
            "import { greet } from './lib/greet.js';\nimport { own } from './own.js';\n\
             console.log(greet('one'), own());\nconst { later } = await import('./later.js');\nconsole.log(later());\n",
        ),
        (
            "static/js/two.js",
            "import { greet } from './lib/greet.js';\nconsole.log(greet('two'));\n",
        ),
        (
            "static/features/chat.js",
            "import { greet } from '../js/lib/greet.js';\nimport { prompts } from '../js/chat/prompts.js';\n\
             export function open() { return greet(prompts[0]); }\n",
        ),
        (
            "static/js/lib/greet.js",
            "export function greet(who) { return 'hello ' + who; }\n",
        ),
        (
            "static/js/own.js",
            "export function own() { return 'own v1'; }\n",
        ),
        (
            "static/js/chat/prompts.js",
            "export const prompts = ['prompt v1'];\n",
        ),
        (
            "static/js/later.js",
            "export function later() { return 'later v1'; }\n",
        ),
        ("static/js/classic.js", "var classic = 1;\n"),
        ("static/css/app.css", "body { color: #123456; }\n"),
    ]);
    let first = app.build();
    let greet = first.chunk_of("js/lib/greet.js").to_string();
    let mut before = first.urls();

    for (leaf, body, holder) in [
        (
            "js/lib/greet.js",
            "export function greet(who) { return 'hi there ' + who; }\n",
            greet.as_str(),
        ),
        (
            "js/own.js",
            "export function own() { return 'own v2'; }\n",
            "js/one.js",
        ),
        (
            "js/chat/prompts.js",
            "export const prompts = ['prompt v2'];\n",
            "features/chat.js",
        ),
        (
            "js/later.js",
            "export function later() { return 'later v2'; }\n",
            "js/later.js",
        ),
    ] {
        app.write(&format!("static/{leaf}"), body);
        let next = app.build();
        let after = next.urls();
        assert_eq!(
            before.keys().collect::<Vec<_>>(),
            after.keys().collect::<Vec<_>>(),
            "the same assets after changing {leaf}"
        );
        let changed: Vec<&str> = before
            .iter()
            .filter(|(path, url)| after[*path] != **url)
            .map(|(path, _)| path.as_str())
            .collect();
        assert_eq!(changed, [holder], "changing {leaf}");
        before = after;
    }
    let last = app.build();
    assert_eq!(last.run("js/one.js"), "hi there one own v2\nlater v2\n");
}

// ---------------------------------------------------------------------------------------
// npm packages.

#[test]
fn bare_imports_resolve_from_node_modules_by_browser_and_import_conditions_then_fields() {
    let app = App::new(&[
        ("package.json", "{\"name\":\"app\",\"private\":true}\n"),
        (
            "node_modules/cond/package.json",
            r#"{"name":"cond","version":"1.0.0","main":"./main.cjs","module":"./module.js",
               "exports":{".":{"require":"./require.cjs","browser":"./browser.js","import":"./import.mjs","default":"./main.cjs"},
                          "./extra":{"import":"./extra.mjs","require":"./extra.cjs"}}}"#,
        ),
        (
            "node_modules/cond/browser.js",
            "export const which = 'cond: browser condition';\n",
        ),
        (
            "node_modules/cond/import.mjs",
            "export const which = 'cond: import condition';\n",
        ),
        (
            "node_modules/cond/require.cjs",
            "exports.which = 'cond: require condition';\n",
        ),
        (
            "node_modules/cond/module.js",
            "export const which = 'cond: module field';\n",
        ),
        (
            "node_modules/cond/main.cjs",
            "exports.which = 'cond: main field';\n",
        ),
        (
            "node_modules/cond/extra.mjs",
            "export const extra = 'cond/extra: import condition';\n",
        ),
        (
            "node_modules/cond/extra.cjs",
            "exports.extra = 'cond/extra: require condition';\n",
        ),
        (
            "node_modules/fields/package.json",
            r#"{"name":"fields","version":"1.0.0","main":"./main.cjs","module":"./module.js"}"#,
        ),
        (
            "node_modules/fields/module.js",
            "export const which = 'fields: module field';\n",
        ),
        (
            "node_modules/fields/main.cjs",
            "exports.which = 'fields: main field';\n",
        ),
        (
            "node_modules/@scope/browserish/package.json",
            r#"{"name":"@scope/browserish","version":"1.0.0","main":"./main.cjs","module":"./module.js","browser":"./browser-field.js"}"#,
        ),
        (
            "node_modules/@scope/browserish/browser-field.js",
            "export const which = 'browserish: browser field';\n",
        ),
        (
            "node_modules/@scope/browserish/module.js",
            "export const which = 'browserish: module field';\n",
        ),
        (
            "node_modules/@scope/browserish/main.cjs",
            "exports.which = 'browserish: main field';\n",
        ),
        (
            "static/js/page.js",
            "import { which as a } from 'cond';\nimport { extra } from 'cond/extra';\n\
             import { which as b } from 'fields';\nimport { which as c } from '@scope/browserish';\n\
             console.log(a);\nconsole.log(extra);\nconsole.log(b);\nconsole.log(c);\n",
        ),
    ]);
    let b = app.build();
    assert_eq!(
        b.run("js/page.js"),
        "cond: browser condition\ncond/extra: import condition\nfields: module field\nbrowserish: browser field\n"
    );
    let modules = &b.asset("js/page.js").chunk.as_ref().unwrap().modules;
    for m in [
        "node_modules/cond/browser.js",
        "node_modules/cond/extra.mjs",
        "node_modules/fields/module.js",
        "node_modules/@scope/browserish/browser-field.js",
    ] {
        assert!(modules.iter().any(|x| x == m), "{m} in {modules:?}");
    }
    // Bundled, not imported: nothing bare is left for the browser.
    assert_eq!(b.imports("js/page.js"), BTreeSet::new());
    assert!(
        !b.text("js/page.js").contains("require"),
        "{}",
        b.text("js/page.js")
    );
}

#[test]
fn a_missing_package_fails_the_build_at_its_import_with_the_npm_install_hint() {
    let app = App::new(&[
        ("package.json", "{\"name\":\"app\",\"private\":true}\n"),
        ("static/js/ok.js", "export const ok = 1;\n"),
        (
            "static/js/page.js",
            "import { ok } from './ok.js';\nimport { max } from 'not-installed/sub/max.js';\nconsole.log(ok, max);\n",
        ),
        // Another broken input: reported in the same run.
        ("static/css/bad.css", ".a {\n  color: {\n}\n"),
    ]);
    let err = match app.try_build() {
        Ok(b) => panic!("the build succeeded; page.js is:\n{}", b.text("js/page.js")),
        Err(e) => e,
    };
    let rendered = err.render(app.root());
    let errors = err.errors();
    assert_eq!(errors.len(), 2, "{rendered}");
    assert!(
        errors.iter().any(|e| matches!(e, Error::Css { .. })),
        "{rendered}"
    );
    let missing = errors
        .iter()
        .find(|e| matches!(e, Error::MissingPackage { .. }))
        .unwrap_or_else(|| panic!("{rendered}"));
    let Error::MissingPackage {
        path,
        line,
        column,
        specifier,
        package,
        package_dir,
    } = missing
    else {
        unreachable!()
    };
    assert!(path.ends_with("static/js/page.js"), "{}", path.display());
    assert_eq!((*line, *column), (2, 21), "{rendered}");
    assert_eq!(specifier, "not-installed/sub/max.js");
    assert_eq!(package, "not-installed");
    assert_eq!(package_dir.as_deref(), Some(app.root()));
    for wanted in [
        "the npm package `not-installed` is not installed",
        " --> static/js/page.js:2:21",
        "run `npm install not-installed` in",
    ] {
        assert!(rendered.contains(wanted), "`{wanted}` in\n{rendered}");
    }
}

#[test]
fn npm_dependencies_are_installed_when_node_modules_is_missing_or_older_than_the_lock() {
    let mut app = App::new(&[
        (
            "package.json",
            "{\"name\":\"app\",\"private\":true,\"dependencies\":{\"local-lib\":\"file:./local-lib\"}}\n",
        ),
        (
            "local-lib/package.json",
            r#"{"name":"local-lib","version":"1.0.0","type":"module","exports":{".":{"import":"./index.js"}}}"#,
        ),
        (
            "local-lib/index.js",
            "export const greeting = 'hello from local-lib';\n",
        ),
        (
            "static/js/page.js",
            "import { greeting } from 'local-lib';\nconsole.log(greeting);\n",
        ),
    ]);
    app.bundle.npm_install = true;
    let ran = |b: &Build| {
        b.report
            .warnings
            .iter()
            .filter(|w| w.contains("ran `npm"))
            .cloned()
            .collect::<Vec<_>>()
    };

    // No node_modules, no lock: `npm install`, which writes the lock.
    assert!(!app.root().join("node_modules").exists());
    let first = app.build();
    assert_eq!(ran(&first).len(), 1, "{:?}", first.report.warnings);
    assert!(
        ran(&first)[0].contains("npm install --ignore-scripts"),
        "{:?}",
        ran(&first)
    );
    assert!(app.root().join("node_modules/local-lib").exists());
    assert!(app.root().join("package-lock.json").is_file());
    assert_eq!(first.run("js/page.js"), "hello from local-lib\n");

    // Installed and up to date: nothing runs.
    let second = app.build();
    assert_eq!(ran(&second), Vec::<String>::new());

    // A lock newer than node_modules (a `git pull`): `npm ci`.
    std::thread::sleep(std::time::Duration::from_millis(50));
    let lock = std::fs::read(app.root().join("package-lock.json")).unwrap();
    std::fs::write(app.root().join("package-lock.json"), lock).unwrap();
    let third = app.build();
    assert_eq!(ran(&third).len(), 1, "{:?}", third.report.warnings);
    assert!(
        ran(&third)[0].contains("npm ci --ignore-scripts"),
        "{:?}",
        ran(&third)
    );

    // Turned off: nothing runs.
    std::fs::remove_dir_all(app.root().join("node_modules")).unwrap();
    app.bundle.npm_install = false;
    let _ = app.try_build();
    assert!(!app.root().join("node_modules").exists());
}

#[test]
fn npm_code_is_listed_by_a_path_independent_of_the_checkout_even_from_a_linked_package() {
    let mut app = App::new(&[
        (
            "package.json",
            "{\"name\":\"app\",\"private\":true,\"dependencies\":{\"local-lib\":\"file:./local-lib\"}}\n",
        ),
        (
            "local-lib/package.json",
            r#"{"name":"local-lib","version":"1.0.0","type":"module","exports":"./index.js"}"#,
        ),
        (
            "local-lib/index.js",
            "export function greeting(who) { return 'hi ' + who; }\n",
        ),
        (
            "static/js/page.js",
            "import { greeting } from 'local-lib';\nconsole.log(greeting('there'));\n",
        ),
    ]);
    app.bundle.npm_install = true;
    let b = app.build();
    assert_eq!(b.run("js/page.js"), "hi there\n");
    // manifest.json must not depend on where the package was checked out: a linked
    // package's file is named where it lives, relative to the static dir.
    let modules = b.asset("js/page.js").chunk.clone().unwrap().modules;
    assert_eq!(modules, ["../local-lib/index.js", "js/page.js"]);
    let manifest = std::fs::read_to_string(b.dist.path().join("manifest.json")).unwrap();
    let root = app.root().display().to_string();
    assert!(!manifest.contains(&root), "{manifest}");
}

// ---------------------------------------------------------------------------------------
// CSS.

#[test]
fn css_imports_are_inlined_in_place_with_conditions_and_rebased_urls() {
    let app = App::new(&[
        (
            "static/css/app.css",
            "@import url('https://cdn.example.invalid/font.css');\n\
             @import 'parts/print.css' print;\n\
             @import 'parts/base.css';\n\
             .app { color: red; }\n",
        ),
        (
            "static/css/parts/print.css",
            ".p { background: url(../../img/logo.svg); }\n",
        ),
        ("static/css/parts/base.css", "body { margin: 0; }\n"),
        (
            "static/img/logo.svg",
            "<svg xmlns='http://www.w3.org/2000/svg'/>",
        ),
    ]);
    let b = app.build();
    let logo = b
        .asset("img/logo.svg")
        .file
        .rsplit('/')
        .next()
        .unwrap()
        .to_string();
    let css = b.text("css/app.css");
    // Written relative to css/parts/, the url() now is relative to css/; the external
    // import is kept first, the local ones are inlined where they were.
    assert_eq!(
        css,
        format!(
            "@import \"https://cdn.example.invalid/font.css\";\
             @media print{{.p{{background:url(\"../img/{logo}\")}}}}\
             body{{margin:0}}.app{{color:red}}"
        )
    );

    // An imported file changes, the importer does not, the cache is warm: the importer's
    // output follows.
    app.write("static/css/parts/base.css", "body { margin: 2px; }\n");
    let again = app.build();
    assert!(again.report.cache_hits > 0);
    let css = again.text("css/app.css");
    assert!(css.contains("body{margin:2px}"), "{css}");
    assert_ne!(again.asset("css/app.css").url, b.asset("css/app.css").url);
}

// ---------------------------------------------------------------------------------------
// Bundling off.

#[test]
fn bundling_disabled_ships_one_file_per_module() {
    let mut app = App::new(&[
        (
            "static/js/one.js",
            "import { greet } from './lib/greet.js';\nconst { later } = await import('./later.js');\n\
             console.log(greet('one'), later());\n",
        ),
        (
            "static/js/two.js",
            "import { greet } from './lib/greet.js';\nconsole.log(greet('two'));\n",
        ),
        (
            "static/js/lib/greet.js",
            "export function greet(who) { return 'greet-body ' + who; }\n",
        ),
        (
            "static/js/later.js",
            "export function later() { return 'later'; }\n",
        ),
        (
            "static/features/chat.js",
            "export function open() { return 'chat'; }\n",
        ),
    ]);
    app.bundle.enabled = false;
    let b = app.build();
    assert_eq!(
        b.scripts(),
        [
            "features/chat.js",
            "js/later.js",
            "js/lib/greet.js",
            "js/one.js",
            "js/two.js"
        ]
    );
    for s in b.scripts() {
        assert!(b.asset(s).chunk.is_none(), "{s}");
    }
    assert_eq!(b.imports("js/one.js"), set(&["js/lib/greet.js"]));
    assert_eq!(b.scripts_containing("greet-body"), ["js/lib/greet.js"]);
    assert_eq!(b.run("js/one.js"), "greet-body one later\n");
    assert_eq!(b.run("js/two.js"), app.run_sources("js/two.js"));
}
