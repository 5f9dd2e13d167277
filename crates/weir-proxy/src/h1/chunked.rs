//! The chunked transfer coding (RFC 9112 §7.1): an incremental decoder that takes
//! bytes as they arrive and gives chunk data without copying it (slices of the
//! received buffer), then the trailers; and the framing bytes an encoder writes around
//! each chunk. Everything a peer controls is bounded: the size line (digits and
//! extensions), the size itself (no overflow), the trailer block.

use bytes::{Bytes, BytesMut};
use http::HeaderMap;

use super::head::{HeadError, MAX_HEAD, MAX_HEADERS};

/// Longest chunk-size line, extensions included (hyper allows 16 KiB of extensions per
/// body; one line of 4 KiB is plenty for any real peer).
const MAX_SIZE_LINE: usize = 4096;

/// Why a chunked body was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ChunkError {
    /// A size that is not hexadecimal, overflows, or a line too long.
    Size,
    /// Chunk data not followed by CRLF.
    Delimiter,
    /// Malformed or oversized trailers.
    Trailers,
}

impl std::fmt::Display for ChunkError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ChunkError::Size => "invalid chunk size",
            ChunkError::Delimiter => "invalid chunk delimiter",
            ChunkError::Trailers => "invalid trailers",
        })
    }
}

impl std::error::Error for ChunkError {}

/// What the decoder found.
#[derive(Debug, PartialEq)]
pub(crate) enum Decoded {
    /// Chunk data.
    Data(Bytes),
    /// The trailers after the last chunk; the body has ended.
    Trailers(HeaderMap),
    /// The last chunk and the end of the (empty) trailers.
    End,
    /// More bytes are needed.
    More,
}

/// Where the size line is after its digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum After {
    /// Still in the digits.
    Digits,
    /// Whitespace after the digits: only `;` may follow.
    Space,
    /// In the extensions (skipped).
    Ext,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Reading the size line; `line` bytes of it seen so far.
    Size {
        size: u64,
        digits: usize,
        line: usize,
        after: After,
        cr: bool,
    },
    /// `left` bytes of chunk data to go.
    Data {
        left: u64,
    },
    /// The CRLF after chunk data.
    DataEnd,
    /// After the last chunk: trailer lines up to an empty line.
    Trailers,
    Done,
}

/// An incremental chunked-body decoder.
#[derive(Debug, Clone)]
pub(crate) struct Decoder {
    state: State,
}

impl Default for Decoder {
    fn default() -> Self {
        Decoder::new()
    }
}

const SIZE_START: State = State::Size { size: 0, digits: 0, line: 0, after: After::Digits, cr: false };

impl Decoder {
    pub(crate) fn new() -> Self {
        Decoder { state: SIZE_START }
    }

    /// Consumes what it can of `buf`.
    pub(crate) fn decode(&mut self, buf: &mut BytesMut) -> Result<Decoded, ChunkError> {
        loop {
            match self.state {
                State::Done => return Ok(Decoded::End),
                State::Size { mut size, mut digits, mut line, mut after, mut cr } => {
                    let mut used = 0;
                    let mut finished = false;
                    for &b in buf.iter() {
                        used += 1;
                        line += 1;
                        if line > MAX_SIZE_LINE {
                            return Err(ChunkError::Size);
                        }
                        if cr {
                            if b != b'\n' {
                                return Err(ChunkError::Size);
                            }
                            finished = true;
                            break;
                        }
                        match (after, b) {
                            (_, b'\r') => cr = true,
                            // A bare LF ends no line (RFC 9112 §2.2 lets a recipient
                            // refuse it; request smuggling relies on such leniency).
                            (_, b'\n') => return Err(ChunkError::Size),
                            // Extensions are skipped, but only printable bytes, tabs
                            // and obs-text may appear in them.
                            (After::Ext, b) if b == b'\t' || (0x20..0x7f).contains(&b) || b >= 0x80 => {}
                            (After::Ext, _) => return Err(ChunkError::Size),
                            (After::Digits | After::Space, b';') if digits > 0 => after = After::Ext,
                            (After::Digits | After::Space, b' ' | b'\t') if digits > 0 => after = After::Space,
                            (After::Digits, b) => {
                                let d = (b as char).to_digit(16).ok_or(ChunkError::Size)?;
                                digits += 1;
                                if digits > 16 {
                                    return Err(ChunkError::Size);
                                }
                                size = (size << 4) | u64::from(d);
                            }
                            (After::Space, _) => return Err(ChunkError::Size),
                        }
                    }
                    let _ = buf.split_to(used);
                    if !finished {
                        self.state = State::Size { size, digits, line, after, cr };
                        return Ok(Decoded::More);
                    }
                    if digits == 0 {
                        return Err(ChunkError::Size);
                    }
                    self.state = if size == 0 { State::Trailers } else { State::Data { left: size } };
                }
                State::Data { left } => {
                    if buf.is_empty() {
                        return Ok(Decoded::More);
                    }
                    let n = (buf.len() as u64).min(left) as usize;
                    let data = buf.split_to(n).freeze();
                    let left = left - n as u64;
                    self.state = if left == 0 { State::DataEnd } else { State::Data { left } };
                    return Ok(Decoded::Data(data));
                }
                State::DataEnd => {
                    if buf.len() < 2 {
                        if buf.first().is_some_and(|&b| b != b'\r') {
                            return Err(ChunkError::Delimiter);
                        }
                        return Ok(Decoded::More);
                    }
                    if &buf[..2] != b"\r\n" {
                        return Err(ChunkError::Delimiter);
                    }
                    let _ = buf.split_to(2);
                    self.state = SIZE_START;
                }
                State::Trailers => {
                    // No trailers: a bare CRLF ends the body.
                    if buf.len() >= 2 && &buf[..2] == b"\r\n" {
                        let _ = buf.split_to(2);
                        self.state = State::Done;
                        return Ok(Decoded::End);
                    }
                    if buf.len() < 2 {
                        return Ok(Decoded::More);
                    }
                    let mut lines = [httparse::EMPTY_HEADER; MAX_HEADERS];
                    match httparse::parse_headers(buf, &mut lines) {
                        Ok(httparse::Status::Complete((n, parsed))) => {
                            let mut map = HeaderMap::with_capacity(parsed.len());
                            for h in parsed {
                                let name = http::HeaderName::from_bytes(h.name.as_bytes())
                                    .map_err(|_| ChunkError::Trailers)?;
                                let value = http::HeaderValue::from_bytes(h.value).map_err(|_| ChunkError::Trailers)?;
                                map.append(name, value);
                            }
                            let _ = buf.split_to(n);
                            self.state = State::Done;
                            return Ok(Decoded::Trailers(map));
                        }
                        Ok(httparse::Status::Partial) if buf.len() > MAX_HEAD => return Err(ChunkError::Trailers),
                        Ok(httparse::Status::Partial) => return Ok(Decoded::More),
                        Err(_) => return Err(ChunkError::Trailers),
                    }
                }
            }
        }
    }
}

impl From<HeadError> for ChunkError {
    fn from(_: HeadError) -> Self {
        ChunkError::Trailers
    }
}

/// The size line before a chunk of `len` bytes.
pub(crate) fn size_line(len: usize, dst: &mut BytesMut) {
    use std::fmt::Write as _;
    let _ = write!(dst, "{len:x}\r\n");
}

/// The end of a chunked body without trailers.
pub(crate) const LAST_CHUNK: &[u8] = b"0\r\n\r\n";

/// Writes the last chunk and `trailers`.
pub(crate) fn last_chunk_with(trailers: &HeaderMap, dst: &mut BytesMut) {
    dst.extend_from_slice(b"0\r\n");
    for (name, value) in trailers {
        dst.extend_from_slice(name.as_str().as_bytes());
        dst.extend_from_slice(b": ");
        dst.extend_from_slice(value.as_bytes());
        dst.extend_from_slice(b"\r\n");
    }
    dst.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Decodes `input` fed `step` bytes at a time: the data, and the trailers.
    fn decode_in_steps(input: &[u8], step: usize) -> Result<(Vec<u8>, Option<HeaderMap>), ChunkError> {
        let mut d = Decoder::new();
        let mut buf = BytesMut::new();
        let mut data = Vec::new();
        let mut fed = 0;
        loop {
            match d.decode(&mut buf)? {
                Decoded::Data(b) => data.extend_from_slice(&b),
                Decoded::Trailers(t) => return Ok((data, Some(t))),
                Decoded::End => return Ok((data, None)),
                Decoded::More => {
                    if fed == input.len() {
                        return Err(ChunkError::Delimiter);
                    }
                    let n = step.min(input.len() - fed);
                    buf.extend_from_slice(&input[fed..fed + n]);
                    fed += n;
                }
            }
        }
    }

    #[test]
    fn chunks_decode_however_the_bytes_arrive() {
        let body = b"5\r\nhello\r\n6;ext=1\r\n world\r\nA \t; e\r\n0123456789\r\n0\r\n\r\n";
        for step in [1, 2, 3, 7, 100] {
            let (data, trailers) = decode_in_steps(body, step).unwrap();
            assert_eq!(data, b"hello world0123456789", "step {step}");
            assert!(trailers.is_none());
        }
    }

    #[test]
    fn trailers_end_the_body() {
        let body = b"3\r\nabc\r\n0\r\ngrpc-status: 0\r\ngrpc-message: ok\r\n\r\n";
        for step in [1, 5, 100] {
            let (data, trailers) = decode_in_steps(body, step).unwrap();
            let t = trailers.unwrap();
            assert_eq!((data.as_slice(), t["grpc-status"].as_bytes()), (&b"abc"[..], &b"0"[..]));
        }
    }

    #[test]
    fn malformed_chunks_are_refused() {
        for (body, want) in [
            (&b"g\r\n"[..], ChunkError::Size),
            (b"\r\n", ChunkError::Size),
            (b"5\nhello\r\n0\r\n\r\n", ChunkError::Size),
            (b"5\r\nhelloX\r\n", ChunkError::Delimiter),
            (b"5\r\nhello\rX", ChunkError::Delimiter),
            (b"11111111111111111\r\n", ChunkError::Size),
            (b"-1\r\n", ChunkError::Size),
            (b"5;a\x01\r\nhello\r\n", ChunkError::Size),
            (b"5 x\r\nhello\r\n", ChunkError::Size),
            (b"0\r\nbad trailer\r\n\r\n", ChunkError::Trailers),
        ] {
            assert_eq!(decode_in_steps(body, 100).unwrap_err(), want, "{:?}", String::from_utf8_lossy(body));
        }
        let long = format!("1;{}\r\n", "e".repeat(MAX_SIZE_LINE));
        assert_eq!(decode_in_steps(long.as_bytes(), 100).unwrap_err(), ChunkError::Size);
    }

    #[test]
    fn the_largest_size_does_not_overflow() {
        let mut d = Decoder::new();
        let mut buf = BytesMut::from(&b"ffffffffffffffff\r\nab"[..]);
        assert_eq!(d.decode(&mut buf).unwrap(), Decoded::Data(Bytes::from_static(b"ab")));
    }

    #[test]
    fn encoding_round_trips() {
        let mut out = BytesMut::new();
        for chunk in [&b"hello"[..], &[b'x'; 300]] {
            size_line(chunk.len(), &mut out);
            out.extend_from_slice(chunk);
            out.extend_from_slice(b"\r\n");
        }
        let mut t = HeaderMap::new();
        t.insert("grpc-status", http::HeaderValue::from_static("0"));
        last_chunk_with(&t, &mut out);
        let (data, trailers) = decode_in_steps(&out, 9).unwrap();
        assert_eq!(data.len(), 305);
        assert_eq!(trailers.unwrap()["grpc-status"], "0");
    }
}
