//! Conversions between [`Value`] and `serde_json::Value`.

use super::value::{Object, Value, MAX_SAFE_INTEGER};

/// Why a `serde_json::Value` has no canonical JSON form.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConvertError {
    /// Spec: "Float values are not permitted by this encoding."
    #[error("number {0} is not an integer")]
    NotAnInteger(String),
    /// Spec: integers must be within `[-(2**53)+1, (2**53)-1]`.
    #[error("integer {0} is outside ±(2^53-1)")]
    IntegerOutOfRange(String),
    /// An [`Object`] was asked for, but the value is not a JSON object.
    #[error("value is not a JSON object")]
    NotAnObject,
}

impl TryFrom<serde_json::Value> for Value {
    type Error = ConvertError;

    fn try_from(value: serde_json::Value) -> Result<Self, Self::Error> {
        Ok(match value {
            serde_json::Value::Null => Value::Null,
            serde_json::Value::Bool(b) => Value::Bool(b),
            serde_json::Value::Number(n) => Value::Integer(integer(&n)?),
            serde_json::Value::String(s) => Value::String(s),
            serde_json::Value::Array(items) => {
                Value::Array(items.into_iter().map(Value::try_from).collect::<Result<_, _>>()?)
            }
            serde_json::Value::Object(map) => {
                let members = map
                    .into_iter()
                    .map(|(k, v)| Ok((k, Value::try_from(v)?)))
                    .collect::<Result<Vec<_>, ConvertError>>()?;
                Value::Object(Object::from_unsorted(members).expect("a serde_json map has unique keys"))
            }
        })
    }
}

impl TryFrom<serde_json::Value> for Object {
    type Error = ConvertError;

    fn try_from(value: serde_json::Value) -> Result<Self, Self::Error> {
        match Value::try_from(value)? {
            Value::Object(object) => Ok(object),
            _ => Err(ConvertError::NotAnObject),
        }
    }
}

fn integer(n: &serde_json::Number) -> Result<i64, ConvertError> {
    let in_range = |i: i64| (-MAX_SAFE_INTEGER..=MAX_SAFE_INTEGER).contains(&i);
    match (n.as_i64(), n.as_u64()) {
        (Some(i), _) if in_range(i) => Ok(i),
        (Some(_), _) | (None, Some(_)) => Err(ConvertError::IntegerOutOfRange(n.to_string())),
        (None, None) => Err(ConvertError::NotAnInteger(n.to_string())),
    }
}

impl From<Value> for serde_json::Value {
    fn from(value: Value) -> Self {
        match value {
            Value::Null => serde_json::Value::Null,
            Value::Bool(b) => serde_json::Value::Bool(b),
            Value::Integer(i) => serde_json::Value::Number(i.into()),
            // Large integers beyond u64/i64 become the nearest float.
            Value::RawNumber(n) => serde_json::from_str(n.as_str()).unwrap_or(serde_json::Value::Null),
            Value::String(s) => serde_json::Value::String(s),
            Value::Array(items) => serde_json::Value::Array(items.into_iter().map(Into::into).collect()),
            Value::Object(object) => {
                serde_json::Value::Object(object.into_members().map(|(k, v)| (k, v.into())).collect())
            }
        }
    }
}
