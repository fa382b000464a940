//! What the CSS and JS stages hand to the rest of the pipeline.

use serde::{Deserialize, Serialize};

/// A reference from one asset to another, as written in the source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reference {
    /// The string standing in the output for the resolved URL; empty when the output
    /// keeps the specifier as written (JS modules, resolved through the import map).
    pub placeholder: String,
    /// The URL or module specifier as written.
    pub specifier: String,
    /// Line, from 1.
    pub line: u32,
    /// Column, from 1.
    pub column: u32,
    /// A dynamic `import()`, loaded on demand rather than with its importer.
    #[serde(default)]
    pub dynamic: bool,
}

/// The output of a transform stage: the code, its references and an optional source
/// map (JSON). A pure function of the input bytes and options, so it is cached.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transformed {
    /// The minified code.
    pub code: String,
    /// References to other files, in source order.
    pub refs: Vec<Reference>,
    /// Source map JSON.
    pub map: Option<String>,
}
