//! Canonical JSON (spec: appendices § Signing JSON › Canonical JSON).
//!
//! Everything signed or hashed in Matrix is first encoded this way, so one
//! wrong byte here breaks federation. [`parse`] turns bytes into a [`Value`]
//! (refusing what canonical JSON cannot express rather than altering it) and
//! [`to_bytes`] / [`write_value`] encode a value back. [`parse_with`] with
//! [`Numbers::Lax`] reads room version 1–5 events, whose floats and large
//! integers are kept and encoded as Synapse encodes them.

mod convert;
mod parse;
mod scan;
mod value;
mod write;

pub use convert::ConvertError;
pub use parse::{parse, parse_object, parse_object_with, parse_with, Numbers, ParseError, ParseErrorReason, MAX_DEPTH};
pub use value::{Object, RawNumber, Value, MAX_SAFE_INTEGER};
pub(crate) use write::write_members;
pub use write::{to_bytes, write_object_except, write_value};

#[cfg(test)]
mod tests;
