//! A strict JSON parser producing [`Value`]s that are valid canonical JSON.
//!
//! It accepts any RFC 8259 JSON text (whitespace, any escape spelling) and
//! refuses what the spec's canonical JSON forbids instead of silently
//! changing it: duplicate keys, numbers that are not integers within
//! ±(2^53−1) or that are written with a fraction or exponent (even `1.0`),
//! lone UTF-16 surrogates, invalid UTF-8, and nesting deeper than
//! [`MAX_DEPTH`].
//!
//! For room versions 1–5, whose rules say servers "MUST NOT strictly
//! enforce" canonical JSON, [`Numbers::Lax`] takes any finite number instead,
//! keeping those canonical JSON cannot hold as [`RawNumber`]s.

use super::scan::next_special;
use super::value::{Object, RawNumber, Value, MAX_SAFE_INTEGER};
use crate::room_version::RoomVersionRules;

/// How deeply arrays and objects may nest (the top-level value is depth 1).
///
/// The spec sets no limit. We cap it because the parser recurses once per
/// level, and input from other servers must not be able to exhaust the
/// stack. The value is our choice, not anyone's default: `serde_json` (which
/// ruma-based servers parse with) stops at 127 levels, one fewer, while
/// Synapse's Python parser goes on to Python's recursion limit (about 1000),
/// so an event nested more than 128 deep that Synapse accepts is refused
/// here.
pub const MAX_DEPTH: usize = 128;

/// Why some bytes are not acceptable canonical JSON input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid canonical JSON at byte {offset}: {reason}")]
pub struct ParseError {
    /// Byte offset into the input where the problem was found.
    pub offset: usize,
    /// What is wrong there.
    pub reason: ParseErrorReason,
}

/// The specific rule a [`ParseError`] is about.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseErrorReason {
    #[error("input is not valid UTF-8")]
    InvalidUtf8,
    #[error("unexpected end of input")]
    UnexpectedEnd,
    #[error("unexpected character {0:?}")]
    UnexpectedChar(char),
    #[error("trailing characters after the JSON value")]
    TrailingCharacters,
    #[error("duplicate key {0:?} in object")]
    DuplicateKey(String),
    #[error("nesting deeper than {MAX_DEPTH} levels")]
    TooDeep,
    #[error("number is not an integer")]
    NotAnInteger,
    #[error("integer outside ±(2^53-1)")]
    IntegerOutOfRange,
    #[error("number is too large for a float")]
    NotFinite,
    #[error("number has a leading zero")]
    LeadingZero,
    #[error("invalid number syntax")]
    InvalidNumber,
    #[error("unescaped control character in string")]
    ControlCharacter,
    #[error("invalid escape sequence")]
    InvalidEscape,
    #[error("unpaired UTF-16 surrogate in \\u escape")]
    LoneSurrogate,
    #[error("top-level value is not an object")]
    NotAnObject,
}

/// Which numbers the parser takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Numbers {
    /// Only integers within ±(2^53−1), written without fraction or
    /// exponent: canonical JSON as room versions 6 and later enforce it.
    Strict,
    /// Any finite JSON number, for room versions 1–5, where servers "MUST
    /// NOT strictly enforce" the number rules: what canonical JSON cannot
    /// hold is kept as a [`RawNumber`], encoded as Synapse encodes it.
    Lax,
}

impl Numbers {
    /// The numbers `rules`' room version allows (its `strict_canonical_json`).
    pub fn for_room_version(rules: &RoomVersionRules) -> Self {
        if rules.strict_canonical_json {
            Numbers::Strict
        } else {
            Numbers::Lax
        }
    }
}

/// Parses one JSON value, refusing anything canonical JSON cannot hold.
pub fn parse(input: &[u8]) -> Result<Value, ParseError> {
    parse_with(input, Numbers::Strict)
}

/// Parses a JSON object, such as an event or a signed request body.
pub fn parse_object(input: &[u8]) -> Result<Object, ParseError> {
    parse_object_with(input, Numbers::Strict)
}

/// Parses one JSON value, taking the numbers `numbers` allows.
pub fn parse_with(input: &[u8], numbers: Numbers) -> Result<Value, ParseError> {
    let text = std::str::from_utf8(input)
        .map_err(|e| ParseError { offset: e.valid_up_to(), reason: ParseErrorReason::InvalidUtf8 })?;
    let mut parser = Parser { text, bytes: input, pos: 0, numbers };
    parser.skip_whitespace();
    let value = parser.value(1)?;
    parser.skip_whitespace();
    if parser.pos != input.len() {
        return Err(parser.error(ParseErrorReason::TrailingCharacters));
    }
    Ok(value)
}

/// Parses a JSON object, taking the numbers `numbers` allows; for an event,
/// [`Numbers::for_room_version`] of its room.
pub fn parse_object_with(input: &[u8], numbers: Numbers) -> Result<Object, ParseError> {
    match parse_with(input, numbers)? {
        Value::Object(object) => Ok(object),
        _ => Err(ParseError { offset: 0, reason: ParseErrorReason::NotAnObject }),
    }
}

struct Parser<'a> {
    /// The whole input, known to be valid UTF-8.
    text: &'a str,
    bytes: &'a [u8],
    pos: usize,
    numbers: Numbers,
}

impl<'a> Parser<'a> {
    fn error(&self, reason: ParseErrorReason) -> ParseError {
        ParseError { offset: self.pos, reason }
    }

    fn unexpected(&self) -> ParseError {
        match self.text[self.pos..].chars().next() {
            Some(c) => self.error(ParseErrorReason::UnexpectedChar(c)),
            None => self.error(ParseErrorReason::UnexpectedEnd),
        }
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn skip_whitespace(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.pos += 1;
        }
    }

    fn expect(&mut self, byte: u8) -> Result<(), ParseError> {
        if self.peek() == Some(byte) {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.unexpected())
        }
    }

    fn literal(&mut self, word: &str, value: Value) -> Result<Value, ParseError> {
        if self.bytes[self.pos..].starts_with(word.as_bytes()) {
            self.pos += word.len();
            Ok(value)
        } else {
            Err(self.unexpected())
        }
    }

    fn value(&mut self, depth: usize) -> Result<Value, ParseError> {
        match self.peek() {
            Some(b'{') => self.object(depth).map(Value::Object),
            Some(b'[') => self.array(depth).map(Value::Array),
            Some(b'"') => self.string().map(Value::String),
            Some(b'-' | b'0'..=b'9') => self.number(),
            Some(b't') => self.literal("true", Value::Bool(true)),
            Some(b'f') => self.literal("false", Value::Bool(false)),
            Some(b'n') => self.literal("null", Value::Null),
            _ => Err(self.unexpected()),
        }
    }

    fn enter(&self, depth: usize) -> Result<(), ParseError> {
        if depth > MAX_DEPTH {
            Err(self.error(ParseErrorReason::TooDeep))
        } else {
            Ok(())
        }
    }

    fn object(&mut self, depth: usize) -> Result<Object, ParseError> {
        self.enter(depth)?;
        let start = self.pos;
        self.pos += 1;
        let mut members = Vec::with_capacity(8);
        self.skip_whitespace();
        if self.peek() == Some(b'}') {
            self.pos += 1;
            return Ok(Object::new());
        }
        loop {
            self.skip_whitespace();
            if self.peek() != Some(b'"') {
                return Err(self.unexpected());
            }
            let key = self.string()?;
            self.skip_whitespace();
            self.expect(b':')?;
            self.skip_whitespace();
            let value = self.value(depth + 1)?;
            members.push((key, value));
            self.skip_whitespace();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b'}') => {
                    self.pos += 1;
                    break;
                }
                _ => return Err(self.unexpected()),
            }
        }
        Object::from_unsorted(members)
            .map_err(|key| ParseError { offset: start, reason: ParseErrorReason::DuplicateKey(key) })
    }

    fn array(&mut self, depth: usize) -> Result<Vec<Value>, ParseError> {
        self.enter(depth)?;
        self.pos += 1;
        let mut items = Vec::new();
        self.skip_whitespace();
        if self.peek() == Some(b']') {
            self.pos += 1;
            return Ok(items);
        }
        loop {
            self.skip_whitespace();
            items.push(self.value(depth + 1)?);
            self.skip_whitespace();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b']') => {
                    self.pos += 1;
                    return Ok(items);
                }
                _ => return Err(self.unexpected()),
            }
        }
    }

    fn string(&mut self) -> Result<String, ParseError> {
        self.pos += 1; // opening quote
        let mut out = String::new();
        loop {
            let special = next_special(self.bytes, self.pos);
            out.push_str(&self.text[self.pos..special]);
            self.pos = special;
            match self.peek() {
                None => return Err(self.error(ParseErrorReason::UnexpectedEnd)),
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(out);
                }
                Some(b'\\') => {
                    self.pos += 1;
                    out.push(self.escape()?);
                }
                Some(_) => return Err(self.error(ParseErrorReason::ControlCharacter)),
            }
        }
    }

    /// Decodes the escape after a backslash.
    fn escape(&mut self) -> Result<char, ParseError> {
        let Some(byte) = self.peek() else {
            return Err(self.error(ParseErrorReason::UnexpectedEnd));
        };
        self.pos += 1;
        Ok(match byte {
            b'"' => '"',
            b'\\' => '\\',
            b'/' => '/',
            b'b' => '\u{8}',
            b'f' => '\u{c}',
            b'n' => '\n',
            b'r' => '\r',
            b't' => '\t',
            b'u' => {
                let first = self.hex4()?;
                match first {
                    0xD800..=0xDBFF => {
                        if !self.bytes[self.pos..].starts_with(b"\\u") {
                            return Err(self.error(ParseErrorReason::LoneSurrogate));
                        }
                        self.pos += 2;
                        let second = self.hex4()?;
                        if !(0xDC00..=0xDFFF).contains(&second) {
                            return Err(self.error(ParseErrorReason::LoneSurrogate));
                        }
                        let code = 0x10000 + ((first - 0xD800) << 10) + (second - 0xDC00);
                        char::from_u32(code).expect("surrogate pair decodes to a scalar value")
                    }
                    0xDC00..=0xDFFF => return Err(self.error(ParseErrorReason::LoneSurrogate)),
                    _ => char::from_u32(first).expect("non-surrogate BMP code point"),
                }
            }
            _ => {
                self.pos -= 1;
                return Err(self.error(ParseErrorReason::InvalidEscape));
            }
        })
    }

    fn hex4(&mut self) -> Result<u32, ParseError> {
        let digits =
            self.bytes.get(self.pos..self.pos + 4).ok_or_else(|| self.error(ParseErrorReason::UnexpectedEnd))?;
        let mut code = 0;
        for &d in digits {
            let nibble = (d as char).to_digit(16).ok_or_else(|| self.error(ParseErrorReason::InvalidEscape))?;
            code = code * 16 + nibble;
        }
        self.pos += 4;
        Ok(code)
    }

    fn digits(&mut self) -> &'a [u8] {
        let start = self.pos;
        while let Some(b'0'..=b'9') = self.peek() {
            self.pos += 1;
        }
        let bytes = self.bytes;
        &bytes[start..self.pos]
    }

    /// Parses a JSON number. In strict mode it is accepted only if it is
    /// written as an integer (optionally `-`, then digits) within
    /// ±(2^53−1); in lax mode anything else finite becomes a [`RawNumber`].
    ///
    /// Numbers with a fraction or exponent are refused in strict mode even
    /// when their value is integral (`1.0`, `2.50e1`, `1e10`). The
    /// appendix's canonical JSON example turns `1e10` into `10000000000`,
    /// but the servers we federate with refuse such events in room versions
    /// with strict canonical JSON: Synapse and ruma parse them as floats and
    /// reject them. Accepting them would make us take events the rest of
    /// the room drops. `-0` is an integer to all of them and stays accepted,
    /// written as `0`.
    fn number(&mut self) -> Result<Value, ParseError> {
        let start = self.pos;
        let negative = self.peek() == Some(b'-');
        if negative {
            self.pos += 1;
        }
        let int_part = self.digits();
        if int_part.is_empty() {
            return Err(self.error(ParseErrorReason::InvalidNumber));
        }
        if int_part.len() > 1 && int_part[0] == b'0' {
            return Err(ParseError { offset: start, reason: ParseErrorReason::LeadingZero });
        }
        let lax = self.numbers == Numbers::Lax;
        if matches!(self.peek(), Some(b'.' | b'e' | b'E')) {
            // Finish reading the number so malformed syntax is reported as
            // such, then refuse it.
            self.fraction_and_exponent()?;
            if !lax {
                return Err(ParseError { offset: start, reason: ParseErrorReason::NotAnInteger });
            }
            // Python reads this as a float, correctly rounded, as Rust does.
            let float: f64 = self.text[start..self.pos]
                .parse()
                .map_err(|_| ParseError { offset: start, reason: ParseErrorReason::InvalidNumber })?;
            if !float.is_finite() {
                // Python would read infinity, which canonicaljson refuses
                // to encode.
                return Err(ParseError { offset: start, reason: ParseErrorReason::NotFinite });
            }
            return Ok(Value::RawNumber(RawNumber(python_float_repr(float))));
        }
        // Without leading zeros, 17 or more digits are at least 10^16.
        let magnitude = match int_part.len() {
            0..=16 => int_part.iter().fold(0i64, |acc, d| acc * 10 + i64::from(d - b'0')),
            _ => i64::MAX,
        };
        if magnitude > MAX_SAFE_INTEGER {
            if lax {
                // Python keeps every digit of an integer; as written, it
                // is already how Python writes it.
                return Ok(Value::RawNumber(RawNumber(self.text[start..self.pos].to_owned())));
            }
            return Err(ParseError { offset: start, reason: ParseErrorReason::IntegerOutOfRange });
        }
        Ok(Value::Integer(if negative { -magnitude } else { magnitude }))
    }

    /// Skips a number's `.digits` and `e[+-]digits` parts, checking their
    /// syntax.
    fn fraction_and_exponent(&mut self) -> Result<(), ParseError> {
        if self.peek() == Some(b'.') {
            self.pos += 1;
            if self.digits().is_empty() {
                return Err(self.error(ParseErrorReason::InvalidNumber));
            }
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.pos += 1;
            if let Some(b'-' | b'+') = self.peek() {
                self.pos += 1;
            }
            if self.digits().is_empty() {
                return Err(self.error(ParseErrorReason::InvalidNumber));
            }
        }
        Ok(())
    }
}

/// Writes a finite float as Python's `repr` does (and so `json` and
/// `canonicaljson`): the shortest digits that read back as the same float,
/// in positional notation with at least one fractional digit when the
/// decimal exponent is from -4 to 15 (`0.0001`, `50.57`, `1.0`), otherwise
/// as `d[.ddd]e±XX` with at least two exponent digits (`1e-05`, `1e+16`).
pub(crate) fn python_float_repr(float: f64) -> String {
    let sign = if float.is_sign_negative() { "-" } else { "" };
    let (digits, exponent) = shortest_digits(float.abs());
    if (-4..16).contains(&exponent) {
        let point = exponent + 1;
        if point <= 0 {
            format!("{sign}0.{}{digits}", "0".repeat(point.unsigned_abs() as usize))
        } else {
            let point = point as usize;
            if point >= digits.len() {
                format!("{sign}{digits}{}.0", "0".repeat(point - digits.len()))
            } else {
                format!("{sign}{}.{}", &digits[..point], &digits[point..])
            }
        }
    } else {
        let mantissa = match digits.len() {
            1 => digits,
            _ => format!("{}.{}", &digits[..1], &digits[1..]),
        };
        let exponent_sign = if exponent < 0 { '-' } else { '+' };
        format!("{sign}{mantissa}e{exponent_sign}{:02}", exponent.unsigned_abs())
    }
}

/// The shortest significant digits that read back as `float` (finite, not
/// negative), and the decimal exponent of the first, choosing as Python
/// (David Gay's `dtoa`) does: the candidate closest to the exact value, and
/// on an exact tie the one with an even last digit.
fn shortest_digits(float: f64) -> (String, i32) {
    // `{:e}` gives shortest round-trip digits closest to the value, but
    // breaks an exact tie upwards (…734.25 → …734.3, Python: …734.2).
    let scientific = format!("{float:e}");
    let (mantissa, exponent) = scientific.split_once('e').expect("`{:e}` has an exponent");
    let exponent: i32 = exponent.parse().expect("`{:e}` exponent is an integer");
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    if digits.ends_with(['0', '2', '4', '6', '8']) {
        return (digits, exponent);
    }
    // A tie needs the exact value to have one more significant digit, a 5.
    // 800 digits after the point is exact for any f64 (at most 767).
    let exact = format!("{float:.800e}");
    let (exact_mantissa, exact_exponent) = exact.split_once('e').expect("`{:e}` has an exponent");
    let exact_exponent: i32 = exact_exponent.parse().expect("`{:e}` exponent is an integer");
    let exact_digits: String = exact_mantissa.chars().filter(char::is_ascii_digit).collect();
    let exact_digits = exact_digits.trim_end_matches('0');
    if exact_digits.len() != digits.len() + 1 || !exact_digits.ends_with('5') {
        return (digits, exponent);
    }
    // The candidates are the exact digits truncated, or that plus one in the
    // last place; Rust took the odd one, so take the other if it reads back.
    let lower = &exact_digits[..digits.len()];
    let (other, other_exponent) =
        if lower == digits { increment(lower, exact_exponent) } else { (lower.to_owned(), exact_exponent) };
    let reads_back = format!("{}.{}e{other_exponent}", &other[..1], &other[1..]).parse::<f64>() == Ok(float);
    if reads_back {
        let trimmed = other.trim_end_matches('0');
        let trimmed = if trimmed.is_empty() { "0" } else { trimmed };
        (trimmed.to_owned(), other_exponent)
    } else {
        (digits, exponent)
    }
}

/// `digits` (× 10^`exponent` for the first) plus one in the last place.
fn increment(digits: &str, exponent: i32) -> (String, i32) {
    let mut bytes = digits.as_bytes().to_vec();
    for byte in bytes.iter_mut().rev() {
        if *byte == b'9' {
            *byte = b'0';
        } else {
            *byte += 1;
            return (String::from_utf8(bytes).expect("ASCII digits"), exponent);
        }
    }
    bytes.insert(0, b'1');
    bytes.pop();
    (String::from_utf8(bytes).expect("ASCII digits"), exponent + 1)
}
