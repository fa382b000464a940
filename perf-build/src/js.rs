//! JavaScript: swc parses, minifies with compress and mangle, and prints. ES modules
//! (detected from `import`/`export`, or a `.mjs` name) also mangle top-level names;
//! classic scripts keep them, since they are globals other scripts may read.
//!
//! Import specifiers are kept as written and recorded: modules resolve each other
//! through the import map (see `perf_rt::assets::Assets::import_map`), so a module's
//! bytes never depend on another module's hash.

use std::path::Path;

use swc_core::common::comments::{Comments, SingleThreadedComments};
use swc_core::common::errors::{HANDLER, Handler};
use swc_core::common::source_map::SourceMapGenConfig;
use swc_core::common::sync::Lrc;
use swc_core::common::{
    BytePos, FileName, GLOBALS, Globals, LineCol, Mark, SourceMap, Span, Spanned,
};
use swc_core::ecma::ast::{
    CallExpr, Callee, EsVersion, ExportAll, ImportDecl, Lit, Module, ModuleItem, NamedExport,
    Program,
};
use swc_core::ecma::codegen::text_writer::{JsWriter, omit_trailing_semi};
use swc_core::ecma::codegen::{Config as CodegenConfig, Emitter};
use swc_core::ecma::minifier::option::terser::TerserCompressorOptions;
use swc_core::ecma::minifier::option::{ExtraOptions, MangleOptions, MinifyOptions};
use swc_core::ecma::parser::{EsSyntax, Syntax, parse_file_as_program};
use swc_core::ecma::transforms::base::{fixer::fixer, resolver};
use swc_core::ecma::visit::{Visit, VisitWith};

use crate::Error;
use crate::config::Config;
use crate::discover::Input;
use crate::transform::{AssetKind, Embed, MapComment, Reference, Transformed, text};

/// Scripts and modules: `.js`, `.mjs`.
pub struct Js {
    minify: bool,
    source_maps: bool,
}

impl Js {
    /// The JavaScript kind for `config`.
    pub fn new(config: &Config) -> Self {
        Js {
            minify: config.minify,
            source_maps: config.source_maps,
        }
    }
}

impl AssetKind for Js {
    fn name(&self) -> &'static str {
        "js"
    }

    fn accepts(&self, logical: &str) -> bool {
        is_script(logical)
    }

    fn options(&self) -> Result<Option<String>, Error> {
        Ok(Some(format!(
            "minify={} maps={}",
            self.minify, self.source_maps
        )))
    }

    fn transform(&self, input: &Input, raw: &[u8]) -> Result<Transformed, Error> {
        let source = text(raw, |line, column, message| Error::Js {
            path: input.file.clone(),
            line,
            column,
            message,
        })?;
        let options = Options {
            minify: self.minify,
            source_map: self.source_maps,
            input_map: input.map.as_deref(),
            chunk: input.made.is_some(),
        };
        let (code, refs, map) = transform(&input.file, &input.logical, source, options)?;
        Ok(Transformed::code(
            &input.logical,
            code,
            refs,
            map,
            MapComment::Js,
            true,
        ))
    }
}

/// Whether a logical name is a script or module: `.js`, `.mjs`.
pub fn is_script(logical: &str) -> bool {
    let ext = crate::mime::extension(logical);
    ext.eq_ignore_ascii_case("js") || ext.eq_ignore_ascii_case("mjs")
}

type Output = (String, Vec<Reference>, Option<String>);

/// How one script is transformed.
#[derive(Debug, Clone, Copy)]
struct Options<'a> {
    minify: bool,
    source_map: bool,
    /// The bundler's source map of a chunk, to compose with.
    input_map: Option<&'a str>,
    /// A chunk the bundler wrote: a module even with no `import`/`export` left.
    chunk: bool,
}

/// Minifies (or, with `minify` off, only checks) one script or module.
fn transform(file: &Path, logical: &str, source: &str, options: Options) -> Result<Output, Error> {
    GLOBALS.set(&Globals::new(), || {
        let cm: Lrc<SourceMap> = Default::default();
        // swc's passes report through a scoped handler and panic without one. Ours goes
        // nowhere: parse errors come back as values, reported with file:line:column.
        let handler = Handler::with_emitter_writer(Box::new(std::io::sink()), Some(cm.clone()));
        HANDLER.set(&handler, || {
            transform_in(&cm, file, logical, source, options)
        })
    })
}

fn transform_in(
    cm: &Lrc<SourceMap>,
    file: &Path,
    logical: &str,
    source: &str,
    options: Options,
) -> Result<Output, Error> {
    let Options {
        minify,
        source_map,
        input_map,
        chunk,
    } = options;
    {
        let fm = cm.new_source_file(
            Lrc::new(FileName::Custom(logical.to_string())),
            source.to_string(),
        );
        let comments = SingleThreadedComments::default();
        let syntax = Syntax::Es(EsSyntax {
            import_attributes: true,
            explicit_resource_management: true,
            ..Default::default()
        });
        let mut recovered = Vec::new();
        let error = |span: Span, message: String| {
            let loc = cm.lookup_char_pos(span.lo);
            Error::Js {
                path: file.to_path_buf(),
                line: loc.line as u32,
                column: loc.col_display as u32 + 1,
                message,
            }
        };
        let mut program = parse_file_as_program(
            &fm,
            syntax,
            EsVersion::latest(),
            Some(&comments),
            &mut recovered,
        )
        .map_err(|e| error(e.span(), e.kind().msg().into_owned()))?;
        if let Some(e) = recovered.into_iter().next() {
            return Err(error(e.span(), e.kind().msg().into_owned()));
        }
        // A `.mjs` file, or a chunk the bundler wrote, is a module even without `import`
        // or `export` left in it.
        if (logical.ends_with(".mjs") || chunk)
            && let Program::Script(script) = program
        {
            program = Program::Module(Module {
                span: script.span,
                body: script.body.into_iter().map(ModuleItem::Stmt).collect(),
                shebang: script.shebang,
            });
        }

        let mut finder = ImportFinder {
            cm,
            refs: Vec::new(),
        };
        program.visit_with(&mut finder);
        let refs = finder.refs;

        if !minify {
            return Ok((source.to_string(), refs, input_map.map(str::to_string)));
        }

        let is_module = program.is_module();
        let unresolved_mark = Mark::new();
        let top_level_mark = Mark::new();
        let program = program.apply(resolver(unresolved_mark, top_level_mark, false));
        let mut compress: TerserCompressorOptions =
            serde_json::from_str("{}").expect("the empty object is a valid compressor config");
        compress.module = is_module;
        let options = MinifyOptions {
            compress: Some(compress.into_config(cm.clone())),
            mangle: Some(MangleOptions {
                top_level: Some(is_module),
                ..Default::default()
            }),
            ..Default::default()
        };
        let extra = ExtraOptions {
            unresolved_mark,
            top_level_mark,
            mangle_name_cache: None,
        };
        let program = swc_core::ecma::minifier::optimize(
            program,
            cm.clone(),
            Some(&comments),
            None,
            &options,
            &extra,
        );
        let program = program.apply(fixer(Some(&comments)));

        // Keep legal comments (`/*! … */`, `@license`, `@preserve`), as other minifiers do.
        let legal = SingleThreadedComments::default();
        let (leading, trailing) = comments.take_all();
        for (pos, list) in leading.borrow_mut().drain() {
            for c in list.into_iter().filter(|c| is_legal(&c.text)) {
                legal.add_leading(pos, c);
            }
        }
        drop(trailing);

        let mut code = Vec::with_capacity(source.len() / 2);
        let mut mappings: Vec<(BytePos, LineCol)> = Vec::new();
        {
            // A `;` before a `}` or at the end is never needed: the writer drops it, as
            // swc's own minifier does.
            let writer = omit_trailing_semi(JsWriter::new(
                cm.clone(),
                "\n",
                &mut code,
                source_map.then_some(&mut mappings),
            ));
            let mut emitter = Emitter {
                cfg: CodegenConfig::default().with_minify(true),
                cm: cm.clone(),
                comments: Some(&legal),
                wr: writer,
            };
            emitter
                .emit_program(&program)
                .map_err(|e| error(Span::default(), format!("printing failed: {e}")))?;
        }
        let map = if source_map {
            // A bundled chunk's map goes back to the original modules: compose with it.
            let orig = input_map
                .map(|m| swc_sourcemap::SourceMap::from_slice(m.as_bytes()))
                .transpose()
                .map_err(|e| error(Span::default(), format!("the bundle's source map: {e}")))?;
            let map = cm.build_source_map(&mappings, orig, MapConfig);
            let mut json = Vec::new();
            map.to_writer(&mut json)
                .map_err(|e| error(Span::default(), format!("source map: {e}")))?;
            Some(String::from_utf8(json).expect("source maps are JSON"))
        } else {
            None
        };
        Ok((String::from_utf8(code).expect("swc emits UTF-8"), refs, map))
    }
}

fn is_legal(text: &str) -> bool {
    text.starts_with('!') || text.contains("@license") || text.contains("@preserve")
}

struct MapConfig;

impl SourceMapGenConfig for MapConfig {
    fn file_name_to_source(&self, f: &FileName) -> String {
        let name = f.to_string();
        name.rsplit('/').next().unwrap_or(&name).to_string()
    }

    fn inline_sources_content(&self, _: &FileName) -> bool {
        true
    }
}

/// Collects static imports, re-exports and `import("literal")`.
struct ImportFinder<'a> {
    cm: &'a SourceMap,
    refs: Vec<Reference>,
}

impl ImportFinder<'_> {
    fn push(&mut self, specifier: String, span: Span, dynamic: bool) {
        let loc = self.cm.lookup_char_pos(span.lo);
        self.refs.push(Reference {
            specifier,
            line: loc.line as u32,
            column: loc.col_display as u32 + 1,
            embed: if dynamic {
                Embed::DynamicImport
            } else {
                Embed::Import
            },
        });
    }
}

impl Visit for ImportFinder<'_> {
    fn visit_import_decl(&mut self, n: &ImportDecl) {
        self.push(n.src.value.to_atom_lossy().to_string(), n.src.span, false);
    }

    fn visit_export_all(&mut self, n: &ExportAll) {
        self.push(n.src.value.to_atom_lossy().to_string(), n.src.span, false);
    }

    fn visit_named_export(&mut self, n: &NamedExport) {
        if let Some(src) = &n.src {
            self.push(src.value.to_atom_lossy().to_string(), src.span, false);
        }
    }

    fn visit_call_expr(&mut self, n: &CallExpr) {
        if let Callee::Import(_) = n.callee
            && let Some(arg) = n.args.first()
            && let Some(Lit::Str(s)) = arg.expr.as_lit()
        {
            self.push(s.value.to_atom_lossy().to_string(), s.span, true);
        }
        n.visit_children_with(self);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Out {
        code: String,
        refs: Vec<Reference>,
        map: Option<String>,
    }

    fn run(name: &str, src: &str, maps: bool) -> Result<Out, Error> {
        let (code, refs, map) = transform(
            Path::new(name),
            name,
            src,
            Options {
                minify: true,
                source_map: maps,
                input_map: None,
                chunk: false,
            },
        )?;
        Ok(Out { code, refs, map })
    }

    fn t(name: &str, src: &str) -> Result<Out, Error> {
        run(name, src, false)
    }

    #[test]
    fn modules_mangle_top_level_and_keep_specifiers() {
        let src = "/*! keep me */\nimport { helper } from './util.js';\nexport * from \"./all.js\";\nconst longVariableName = helper(1 + 2);\nexport function run() { return import('./lazy.js').then(m => m.go(longVariableName)); }\n";
        let out = t("js/app.js", src).unwrap();
        assert!(!out.code.contains("longVariableName"), "{}", out.code);
        assert!(out.code.contains("keep me"), "{}", out.code);
        assert!(out.code.contains("./util.js") && out.code.contains("./lazy.js"));
        let specs: Vec<_> = out
            .refs
            .iter()
            .map(|r| (r.specifier.as_str(), r.line))
            .collect();
        assert_eq!(specs, [("./util.js", 2), ("./all.js", 3), ("./lazy.js", 5)]);
        assert_eq!(out.refs[0].column, 24);
    }

    #[test]
    fn no_semicolon_before_a_closing_brace() {
        let out = t(
            "js/a.js",
            "export function f(a) { if (a) { console.log(a); } return a + 1; }\n",
        )
        .unwrap();
        assert!(!out.code.contains(";}"), "{}", out.code);
    }

    #[test]
    fn scripts_keep_globals() {
        let out = t(
            "js/legacy.js",
            "var globalCounter = 0;\nfunction bump() { globalCounter += 1; }\n",
        )
        .unwrap();
        assert!(
            out.code.contains("globalCounter") && out.code.contains("bump"),
            "{}",
            out.code
        );
    }

    #[test]
    fn syntax_errors_have_a_location() {
        let e = t("js/bad.js", "const a = 1;\nfunction f( {\n").unwrap_err();
        let Error::Js {
            line,
            column,
            ref message,
            ..
        } = e
        else {
            panic!("{e}")
        };
        assert_eq!(line, 2, "{e}");
        assert!(column > 1 && !message.is_empty(), "{e}");
    }

    #[test]
    fn source_maps_point_back() {
        let out = run("js/a.js", "export const x = 1;\n", true).unwrap();
        let map = out.map.unwrap();
        assert!(
            map.contains("\"sources\":[\"a.js\"]") && map.contains("sourcesContent"),
            "{map}"
        );
    }
}
