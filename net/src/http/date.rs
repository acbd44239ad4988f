//! The `Date` header (RFC 9110 §6.6.1: an origin server with a clock must
//! send it), formatted at most once a second per shard.

use std::cell::RefCell;
use std::time::{SystemTime, UNIX_EPOCH};

thread_local! {
    /// (second it was formatted for, the header line).
    static CACHED: RefCell<(u64, String)> = const { RefCell::new((0, String::new())) };
}

/// Appends `Date: <IMF-fixdate>\r\n` for the current second.
pub(crate) fn append_header(out: &mut Vec<u8>) {
    let now = SystemTime::now();
    let second = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    CACHED.with_borrow_mut(|(cached_second, line)| {
        if *cached_second != second || line.is_empty() {
            *cached_second = second;
            *line = format!("Date: {}\r\n", httpdate::fmt_http_date(now));
        }
        out.extend_from_slice(line.as_bytes());
    });
}

#[cfg(test)]
mod tests {
    #[test]
    fn date_header_is_an_imf_fixdate() {
        let mut out = Vec::new();
        super::append_header(&mut out);
        let line = String::from_utf8(out).unwrap();
        let value = line.strip_prefix("Date: ").unwrap().strip_suffix("\r\n").unwrap();
        assert!(httpdate::parse_http_date(value).is_ok(), "{value}");
        assert!(value.ends_with(" GMT"));
    }
}
