//! Finding the bytes of a string that JSON cannot carry as they are.
//!
//! The parser and the encoder both spend most of their time walking string
//! contents looking for `"`, `\` or an ASCII control character, the only
//! bytes that need escaping. This checks eight bytes at a time.

const LOW_BITS: u64 = 0x0101_0101_0101_0101;
const HIGH_BITS: u64 = 0x8080_8080_8080_8080;

/// Whether any byte of `word` is zero.
fn has_zero_byte(word: u64) -> bool {
    word.wrapping_sub(LOW_BITS) & !word & HIGH_BITS != 0
}

/// Whether any byte of `word` is `"`, `\` or below 0x20.
fn has_special_byte(word: u64) -> bool {
    let below_space = word.wrapping_sub(LOW_BITS * 0x20) & !word & HIGH_BITS != 0;
    below_space
        || has_zero_byte(word ^ (LOW_BITS * u64::from(b'"')))
        || has_zero_byte(word ^ (LOW_BITS * u64::from(b'\\')))
}

/// Whether `byte` must be escaped inside a JSON string.
pub(super) fn is_special(byte: u8) -> bool {
    byte < 0x20 || byte == b'"' || byte == b'\\'
}

/// The index of the first byte at or after `from` that is `"`, `\` or an
/// ASCII control character, or `bytes.len()` if there is none.
pub(super) fn next_special(bytes: &[u8], mut from: usize) -> usize {
    while let Some(chunk) = bytes.get(from..from + 8) {
        let word = u64::from_le_bytes(chunk.try_into().expect("8-byte chunk"));
        if has_special_byte(word) {
            break;
        }
        from += 8;
    }
    bytes[from..].iter().position(|&b| is_special(b)).map_or(bytes.len(), |i| from + i)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_every_special_byte_at_every_offset() {
        for special in (0u8..0x20).chain([b'"', b'\\']) {
            for at in 0..20 {
                let mut bytes = vec![b'a'; 20];
                bytes[at] = special;
                assert_eq!(next_special(&bytes, 0), at, "byte {special:#x} at {at}");
            }
        }
    }

    #[test]
    fn skips_non_ascii_and_high_bytes() {
        let text = "日本語 ünïcödé 🎉 \u{7f} plain ascii text".as_bytes();
        assert_eq!(next_special(text, 0), text.len());
        assert_eq!(next_special(b"abc", 3), 3);
    }
}
