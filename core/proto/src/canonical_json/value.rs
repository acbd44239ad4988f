//! The in-memory form of a canonical JSON document.

/// The largest magnitude an integer may have in canonical JSON.
///
/// Spec, appendices § Canonical JSON: "Numbers in the JSON must be integers in
/// the range `[-(2**53)+1, (2**53)-1]`".
pub const MAX_SAFE_INTEGER: i64 = (1 << 53) - 1;

/// A JSON value that can be encoded as canonical JSON.
///
/// [`Value::Integer`] is only ever built from values within
/// ±[`MAX_SAFE_INTEGER`] by this crate's parser and conversions. Floats and
/// other integers (spec: "Float values are not permitted by this encoding")
/// exist only as [`Value::RawNumber`], from the lax parser used for room
/// versions 1–5.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Null,
    Bool(bool),
    Integer(i64),
    /// A number canonical JSON cannot hold, kept from a room version 1–5
    /// event (see [`RawNumber`]).
    RawNumber(RawNumber),
    String(String),
    Array(Vec<Value>),
    Object(Object),
}

/// A number outside what canonical JSON allows, as found in events of room
/// versions 1–5, whose rules say servers "MUST NOT strictly enforce" the
/// canonical JSON number rules (rooms/fragments/v1-canonical-json.md).
///
/// Those events are hashed and signed as Synapse encodes them, with Python's
/// `canonicaljson` (stdlib `json`): an integer keeps all its digits, and any
/// number written with a fraction or exponent is a float, written as
/// Python's `repr` writes it (`50.57`, `1.0`, `10000000000.0`, `1e+16`,
/// `1e-05`). This holds that encoding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawNumber(pub(crate) String);

impl RawNumber {
    /// The number as it is encoded in canonical JSON.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The number's value as a float (rounded, for large integers), as
    /// Python would compare it.
    pub fn as_f64(&self) -> f64 {
        self.0.parse().expect("a raw number is valid float syntax")
    }
}

impl Value {
    /// The string inside a [`Value::String`].
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// The object inside a [`Value::Object`].
    pub fn as_object(&self) -> Option<&Object> {
        match self {
            Value::Object(o) => Some(o),
            _ => None,
        }
    }

    /// The object inside a [`Value::Object`], mutably.
    pub fn as_object_mut(&mut self) -> Option<&mut Object> {
        match self {
            Value::Object(o) => Some(o),
            _ => None,
        }
    }

    /// The integer inside a [`Value::Integer`].
    pub fn as_integer(&self) -> Option<i64> {
        match self {
            Value::Integer(i) => Some(*i),
            _ => None,
        }
    }

    /// The array inside a [`Value::Array`].
    pub fn as_array(&self) -> Option<&[Value]> {
        match self {
            Value::Array(a) => Some(a),
            _ => None,
        }
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::String(s.to_owned())
    }
}

impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::String(s)
    }
}

impl From<Object> for Value {
    fn from(o: Object) -> Self {
        Value::Object(o)
    }
}

/// A JSON object whose members are always sorted by key, in the order
/// canonical JSON writes them, with no key twice.
///
/// Spec: "dictionary keys lexicographically sorted by Unicode codepoint".
/// Comparing UTF-8 bytes gives exactly code point order, so the members are
/// kept in a vector sorted by `str` order and found by binary search: cheaper
/// to build from parsed input than a tree, and already in output order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Object {
    members: Vec<(String, Value)>,
}

impl Object {
    /// An empty object.
    pub fn new() -> Self {
        Self::default()
    }

    /// Builds an object from members in any order; fails with the first
    /// repeated key, since canonical JSON cannot say which value wins.
    pub(crate) fn from_unsorted(mut members: Vec<(String, Value)>) -> Result<Self, String> {
        if !members.is_sorted_by(|a, b| a.0 < b.0) {
            members.sort_by(|a, b| a.0.cmp(&b.0));
            if let Some(pair) = members.windows(2).find(|w| w[0].0 == w[1].0) {
                return Err(pair[0].0.clone());
            }
        }
        Ok(Self { members })
    }

    fn position(&self, key: &str) -> Result<usize, usize> {
        self.members.binary_search_by(|(k, _)| k.as_str().cmp(key))
    }

    /// The value stored under `key`.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.position(key).ok().map(|i| &self.members[i].1)
    }

    /// The value stored under `key`, mutably.
    pub fn get_mut(&mut self, key: &str) -> Option<&mut Value> {
        self.position(key).ok().map(|i| &mut self.members[i].1)
    }

    /// Stores `value` under `key`, returning the value it replaces.
    pub fn insert(&mut self, key: impl Into<String>, value: impl Into<Value>) -> Option<Value> {
        let key = key.into();
        let value = value.into();
        match self.position(&key) {
            Ok(i) => Some(std::mem::replace(&mut self.members[i].1, value)),
            Err(i) => {
                self.members.insert(i, (key, value));
                None
            }
        }
    }

    /// Removes and returns the value stored under `key`.
    pub fn remove(&mut self, key: &str) -> Option<Value> {
        self.position(key).ok().map(|i| self.members.remove(i).1)
    }

    /// Keeps only the members for which `keep` returns true.
    pub fn retain(&mut self, mut keep: impl FnMut(&str, &mut Value) -> bool) {
        self.members.retain_mut(|(k, v)| keep(k, v));
    }

    /// The members in canonical (code point) order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&str, &Value)> {
        self.members.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// Consumes the object, yielding its members in canonical order.
    pub fn into_members(self) -> impl Iterator<Item = (String, Value)> {
        self.members.into_iter()
    }

    /// How many members the object has.
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// Whether the object has no members.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }
}
