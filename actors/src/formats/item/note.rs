//! The note field set (placeholder until the mapping lands).

use super::{FieldSet, PatchError};

pub fn read(_body: &str) -> Result<FieldSet, String> {
    Err("the note field set is not built yet".into())
}

pub fn patch(_body: &str, _changes: &FieldSet) -> Result<String, PatchError> {
    Err(PatchError::Unfaithful("the note field set is not built yet".into()))
}

pub fn create(_uid: &str, _fields: &FieldSet) -> Result<String, PatchError> {
    Err(PatchError::Unfaithful("the note field set is not built yet".into()))
}
