//! Incremental decoder for `Transfer-Encoding: chunked` request bodies
//! (RFC 9112 §7.1). It is fed whatever bytes have arrived and never needs
//! the whole body at once; the size limit is enforced as data is decoded,
//! so a client cannot make us buffer more than the route allows.

/// Longest chunk-size line (size, extensions, CRLF) we accept.
const MAX_SIZE_LINE: usize = 1024;
/// Most trailer bytes we accept (and discard).
const MAX_TRAILERS: usize = 8192;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Reading the chunk-size line; `seen` bytes of it so far.
    Size { seen: usize },
    /// Inside chunk data, `left` bytes to go.
    Data { left: u64 },
    /// The CRLF after chunk data; `seen` of its 2 bytes.
    DataEnd { seen: u8 },
    /// Trailer section; `line` bytes of the current line, `total` overall.
    Trailers { line: usize, total: usize },
    /// The terminating empty line was read.
    Done,
}

/// Why a chunked body was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ChunkedError {
    /// The decoded body would exceed the limit (413).
    TooLarge,
    /// Not valid chunked syntax (400).
    Malformed,
}

/// The decoder's state between calls.
#[derive(Debug)]
pub(crate) struct ChunkedDecoder {
    state: State,
    size: u64,
    /// Whether the current size line has had a hex digit yet.
    has_digits: bool,
    in_extension: bool,
    limit: usize,
}

impl ChunkedDecoder {
    pub(crate) fn new(limit: usize) -> Self {
        Self { state: State::Size { seen: 0 }, size: 0, has_digits: false, in_extension: false, limit }
    }

    /// Whether the final chunk and trailers have been read.
    pub(crate) fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Decodes from `input` into `out`, returning how many input bytes were
    /// used. Stops at the end of the body; the rest belongs to the next
    /// pipelined request.
    pub(crate) fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<usize, ChunkedError> {
        let mut i = 0;
        while i < input.len() {
            match self.state {
                State::Size { seen } => {
                    let b = input[i];
                    i += 1;
                    if seen + 1 > MAX_SIZE_LINE {
                        return Err(ChunkedError::Malformed);
                    }
                    self.state = State::Size { seen: seen + 1 };
                    match b {
                        b'\n' => {
                            if !self.has_digits {
                                return Err(ChunkedError::Malformed);
                            }
                            self.has_digits = false;
                            self.in_extension = false;
                            self.state = if self.size == 0 {
                                State::Trailers { line: 0, total: 0 }
                            } else {
                                State::Data { left: self.size }
                            };
                            self.size = 0;
                        }
                        b'\r' => {}
                        _ if self.in_extension => {}
                        b';' | b' ' | b'\t' if self.has_digits => self.in_extension = true,
                        _ => {
                            let digit = (b as char).to_digit(16).ok_or(ChunkedError::Malformed)?;
                            self.has_digits = true;
                            self.size = self
                                .size
                                .checked_mul(16)
                                .and_then(|s| s.checked_add(u64::from(digit)))
                                .ok_or(ChunkedError::TooLarge)?;
                            if out.len() as u64 + self.size > self.limit as u64 {
                                return Err(ChunkedError::TooLarge);
                            }
                        }
                    }
                }
                State::Data { left } => {
                    let take = (input.len() - i).min(usize::try_from(left).unwrap_or(usize::MAX));
                    out.extend_from_slice(&input[i..i + take]);
                    i += take;
                    let left = left - take as u64;
                    self.state = if left == 0 { State::DataEnd { seen: 0 } } else { State::Data { left } };
                }
                State::DataEnd { seen } => {
                    let expected = if seen == 0 { b'\r' } else { b'\n' };
                    if input[i] != expected {
                        return Err(ChunkedError::Malformed);
                    }
                    i += 1;
                    self.state = if seen == 0 { State::DataEnd { seen: 1 } } else { State::Size { seen: 0 } };
                }
                State::Trailers { line, total } => {
                    let b = input[i];
                    i += 1;
                    if total + 1 > MAX_TRAILERS {
                        return Err(ChunkedError::Malformed);
                    }
                    self.state = match b {
                        b'\n' if line == 0 => State::Done,
                        b'\n' => State::Trailers { line: 0, total: total + 1 },
                        b'\r' => State::Trailers { line, total: total + 1 },
                        _ => State::Trailers { line: line + 1, total: total + 1 },
                    };
                    if self.state == State::Done {
                        return Ok(i);
                    }
                }
                State::Done => return Ok(i),
            }
        }
        Ok(i)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_in_pieces(raw: &[u8], piece: usize, limit: usize) -> Result<(Vec<u8>, usize), ChunkedError> {
        let mut d = ChunkedDecoder::new(limit);
        let mut out = Vec::new();
        let mut used = 0;
        for part in raw.chunks(piece) {
            used += d.feed(part, &mut out)?;
            if d.is_done() {
                return Ok((out, used));
            }
        }
        Err(ChunkedError::Malformed)
    }

    #[test]
    fn decodes_body_split_at_every_byte() {
        let raw = b"4\r\nWiki\r\n5;ext=1\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\nX-Trailer: y\r\n\r\nNEXT";
        for piece in 1..raw.len() {
            let (body, used) = decode_in_pieces(raw, piece, 1024).unwrap();
            assert_eq!(body, b"Wikipedia in\r\n\r\nchunks.");
            assert_eq!(&raw[used..], b"NEXT");
        }
    }

    #[test]
    fn body_over_limit_is_too_large_before_data_arrives() {
        let mut d = ChunkedDecoder::new(10);
        assert_eq!(d.feed(b"B\r\n", &mut Vec::new()), Err(ChunkedError::TooLarge));
    }

    #[test]
    fn huge_chunk_size_does_not_overflow() {
        let mut d = ChunkedDecoder::new(usize::MAX);
        assert_eq!(d.feed(b"FFFFFFFFFFFFFFFFFFFF\r\n", &mut Vec::new()), Err(ChunkedError::TooLarge));
    }

    #[test]
    fn missing_crlf_after_data_is_malformed() {
        let mut d = ChunkedDecoder::new(100);
        assert_eq!(d.feed(b"2\r\nabXY", &mut Vec::new()), Err(ChunkedError::Malformed));
    }

    #[test]
    fn empty_size_line_is_malformed() {
        let mut d = ChunkedDecoder::new(100);
        assert_eq!(d.feed(b"\r\n", &mut Vec::new()), Err(ChunkedError::Malformed));
    }

    #[test]
    fn non_hex_size_is_malformed() {
        let mut d = ChunkedDecoder::new(100);
        assert_eq!(d.feed(b"zz\r\n", &mut Vec::new()), Err(ChunkedError::Malformed));
    }

    #[test]
    fn endless_size_line_is_malformed() {
        let mut d = ChunkedDecoder::new(100);
        let line = vec![b'0'; MAX_SIZE_LINE + 1];
        assert_eq!(d.feed(&line, &mut Vec::new()), Err(ChunkedError::Malformed));
    }
}
