//! Every other file (fonts, SVG, text, data): served
//! as it is, under its hashed name.

use crate::Error;
use crate::discover::Input;
use crate::transform::{AssetKind, Piece, Transformed};

/// Files no other kind accepts.
pub struct Other;

impl AssetKind for Other {
    fn name(&self) -> &'static str {
        "other"
    }

    fn accepts(&self, _: &str) -> bool {
        true
    }

    fn options(&self) -> Result<Option<String>, Error> {
        Ok(None)
    }

    fn transform(&self, input: &Input, raw: &[u8]) -> Result<Transformed, Error> {
        Ok(Transformed::single(Piece {
            logical: input.logical.clone(),
            bytes: raw.to_vec(),
            refs: Vec::new(),
            map: None,
            module: false,
            image: None,
            critical: None,
        }))
    }
}
