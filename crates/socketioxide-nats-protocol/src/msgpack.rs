//! The small subset of MessagePack the protocol uses: nil, bool, integers, str, bin
//! and arrays.
//!
//! Hand-written rather than serde-driven for two reasons: binary payloads must be
//! written as `bin` (serde writes `&[u8]` as an array of integers, doubling their
//! size), and decoding must slice the received buffer instead of copying it.
//! Every read is bounds-checked and no length read from the wire is trusted for
//! an allocation.

use bytes::Bytes;

use crate::ProtocolError;

/// How deep [`Reader::skip`] follows nested arrays and maps before giving up.
const MAX_SKIP_DEPTH: u32 = 32;

/// Writes MessagePack values into a growable buffer. Writing cannot fail.
///
/// A `Vec` rather than a `BytesMut`: `BytesMut` writes every marker byte through
/// a generic slice copy, which profiling showed as 37 `memcpy` calls per message.
#[derive(Debug, Default)]
pub(crate) struct Writer {
    buf: Vec<u8>,
}

impl Writer {
    pub(crate) fn with_capacity(cap: usize) -> Self {
        Self {
            buf: Vec::with_capacity(cap),
        }
    }

    pub(crate) fn finish(self) -> Bytes {
        // Takes the vector over: no copy.
        Bytes::from(self.buf)
    }

    pub(crate) fn array(&mut self, len: usize) {
        match len {
            0..=15 => self.buf.push(0x90 | len as u8),
            16..=0xffff => {
                self.buf.push(0xdc);
                self.buf.extend_from_slice(&(len as u16).to_be_bytes());
            }
            _ => {
                self.buf.push(0xdd);
                self.buf.extend_from_slice(&len_u32(len).to_be_bytes());
            }
        }
    }

    pub(crate) fn nil(&mut self) {
        self.buf.push(0xc0);
    }

    pub(crate) fn bool(&mut self, v: bool) {
        self.buf.push(if v { 0xc3 } else { 0xc2 });
    }

    pub(crate) fn uint(&mut self, v: u64) {
        match v {
            0..=0x7f => self.buf.push(v as u8),
            0x80..=0xff => {
                self.buf.push(0xcc);
                self.buf.push(v as u8);
            }
            0x100..=0xffff => {
                self.buf.push(0xcd);
                self.buf.extend_from_slice(&(v as u16).to_be_bytes());
            }
            0x1_0000..=0xffff_ffff => {
                self.buf.push(0xce);
                self.buf.extend_from_slice(&(v as u32).to_be_bytes());
            }
            _ => {
                self.buf.push(0xcf);
                self.buf.extend_from_slice(&v.to_be_bytes());
            }
        }
    }

    pub(crate) fn int(&mut self, v: i64) {
        if let Ok(u) = u64::try_from(v) {
            return self.uint(u);
        }
        match v {
            -32..=-1 => self.buf.push(v as i8 as u8),
            -0x80..=-33 => {
                self.buf.push(0xd0);
                self.buf.push(v as i8 as u8);
            }
            -0x8000..=-0x81 => {
                self.buf.push(0xd1);
                self.buf.extend_from_slice(&(v as i16).to_be_bytes());
            }
            -0x8000_0000..=-0x8001 => {
                self.buf.push(0xd2);
                self.buf.extend_from_slice(&(v as i32).to_be_bytes());
            }
            _ => {
                self.buf.push(0xd3);
                self.buf.extend_from_slice(&v.to_be_bytes());
            }
        }
    }

    pub(crate) fn str(&mut self, s: &str) {
        let len = s.len();
        match len {
            0..=31 => self.buf.push(0xa0 | len as u8),
            32..=0xff => {
                self.buf.push(0xd9);
                self.buf.push(len as u8);
            }
            0x100..=0xffff => {
                self.buf.push(0xda);
                self.buf.extend_from_slice(&(len as u16).to_be_bytes());
            }
            _ => {
                self.buf.push(0xdb);
                self.buf.extend_from_slice(&len_u32(len).to_be_bytes());
            }
        }
        self.buf.extend_from_slice(s.as_bytes());
    }

    pub(crate) fn opt_str(&mut self, s: Option<&str>) {
        match s {
            Some(s) => self.str(s),
            None => self.nil(),
        }
    }

    pub(crate) fn bin(&mut self, b: &[u8]) {
        let len = b.len();
        match len {
            0..=0xff => {
                self.buf.push(0xc4);
                self.buf.push(len as u8);
            }
            0x100..=0xffff => {
                self.buf.push(0xc5);
                self.buf.extend_from_slice(&(len as u16).to_be_bytes());
            }
            _ => {
                self.buf.push(0xc6);
                self.buf.extend_from_slice(&len_u32(len).to_be_bytes());
            }
        }
        self.buf.extend_from_slice(b);
    }
}

/// MessagePack cannot express lengths over `u32::MAX`; NATS payloads are far
/// smaller (the server caps them at 64 MiB), so saturating only affects values
/// that could never be published anyway, and the decoder then rejects them.
fn len_u32(len: usize) -> u32 {
    u32::try_from(len).unwrap_or(u32::MAX)
}

/// Reads MessagePack values from a received buffer, slicing it for `str` and `bin`.
#[derive(Debug)]
pub(crate) struct Reader {
    data: Bytes,
    pos: usize,
}

impl Reader {
    pub(crate) fn new(data: Bytes) -> Self {
        Self { data, pos: 0 }
    }

    pub(crate) fn remaining(&self) -> usize {
        self.data.len() - self.pos
    }

    fn eof(what: &'static str) -> ProtocolError {
        ProtocolError::Truncated { what }
    }

    fn u8(&mut self, what: &'static str) -> Result<u8, ProtocolError> {
        let b = *self.data.get(self.pos).ok_or(Self::eof(what))?;
        self.pos += 1;
        Ok(b)
    }

    fn take(&mut self, n: usize, what: &'static str) -> Result<Bytes, ProtocolError> {
        if self.remaining() < n {
            return Err(Self::eof(what));
        }
        let out = self.data.slice(self.pos..self.pos + n);
        self.pos += n;
        Ok(out)
    }

    fn be(&mut self, n: usize, what: &'static str) -> Result<u64, ProtocolError> {
        if self.remaining() < n {
            return Err(Self::eof(what));
        }
        let v = self.data[self.pos..self.pos + n]
            .iter()
            .fold(0u64, |acc, &b| (acc << 8) | u64::from(b));
        self.pos += n;
        Ok(v)
    }

    fn peek(&self) -> Option<u8> {
        self.data.get(self.pos).copied()
    }

    /// Consume a nil if it is next; tell whether it was.
    pub(crate) fn nil(&mut self) -> bool {
        if self.peek() == Some(0xc0) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn unexpected(what: &'static str, marker: u8) -> ProtocolError {
        ProtocolError::Unexpected { what, marker }
    }

    /// Read an array header. The length is checked against the bytes left (every
    /// element takes at least one byte), so a forged length cannot cause a large
    /// allocation in callers that reserve `len` slots.
    pub(crate) fn array(&mut self, what: &'static str) -> Result<usize, ProtocolError> {
        let m = self.u8(what)?;
        let len = match m {
            0x90..=0x9f => usize::from(m & 0x0f),
            0xdc => self.be(2, what)? as usize,
            0xdd => self.be(4, what)? as usize,
            _ => return Err(Self::unexpected(what, m)),
        };
        if len > self.remaining() {
            return Err(ProtocolError::LengthTooLarge { what, len });
        }
        Ok(len)
    }

    pub(crate) fn bool(&mut self, what: &'static str) -> Result<bool, ProtocolError> {
        match self.u8(what)? {
            0xc2 => Ok(false),
            0xc3 => Ok(true),
            m => Err(Self::unexpected(what, m)),
        }
    }

    pub(crate) fn int(&mut self, what: &'static str) -> Result<i64, ProtocolError> {
        let m = self.u8(what)?;
        let v = match m {
            0x00..=0x7f => i64::from(m),
            0xe0..=0xff => i64::from(m as i8),
            0xcc => self.be(1, what)? as i64,
            0xcd => self.be(2, what)? as i64,
            0xce => self.be(4, what)? as i64,
            0xcf => {
                i64::try_from(self.be(8, what)?).map_err(|_| ProtocolError::OutOfRange { what })?
            }
            0xd0 => i64::from(self.be(1, what)? as u8 as i8),
            0xd1 => i64::from(self.be(2, what)? as u16 as i16),
            0xd2 => i64::from(self.be(4, what)? as u32 as i32),
            0xd3 => self.be(8, what)? as i64,
            _ => return Err(Self::unexpected(what, m)),
        };
        Ok(v)
    }

    pub(crate) fn uint(&mut self, what: &'static str) -> Result<u64, ProtocolError> {
        let v = self.int(what)?;
        u64::try_from(v).map_err(|_| ProtocolError::OutOfRange { what })
    }

    fn str_len(&mut self, what: &'static str) -> Result<usize, ProtocolError> {
        let m = self.u8(what)?;
        Ok(match m {
            0xa0..=0xbf => usize::from(m & 0x1f),
            0xd9 => self.be(1, what)? as usize,
            0xda => self.be(2, what)? as usize,
            0xdb => self.be(4, what)? as usize,
            _ => return Err(Self::unexpected(what, m)),
        })
    }

    /// Read a `str` as a slice of the input, after checking it is UTF-8.
    pub(crate) fn str_bytes(&mut self, what: &'static str) -> Result<Bytes, ProtocolError> {
        let len = self.str_len(what)?;
        let bytes = self.take(len, what)?;
        std::str::from_utf8(&bytes).map_err(|_| ProtocolError::InvalidUtf8 { what })?;
        Ok(bytes)
    }

    /// Read a `str` borrowed from the input.
    pub(crate) fn str(&mut self, what: &'static str) -> Result<&str, ProtocolError> {
        let len = self.str_len(what)?;
        if self.remaining() < len {
            return Err(Self::eof(what));
        }
        let start = self.pos;
        self.pos += len;
        std::str::from_utf8(&self.data[start..start + len])
            .map_err(|_| ProtocolError::InvalidUtf8 { what })
    }

    pub(crate) fn opt_str(&mut self, what: &'static str) -> Result<Option<&str>, ProtocolError> {
        if self.nil() {
            Ok(None)
        } else {
            self.str(what).map(Some)
        }
    }

    /// Read a `bin` as a slice of the input (no copy).
    pub(crate) fn bin(&mut self, what: &'static str) -> Result<Bytes, ProtocolError> {
        let m = self.u8(what)?;
        let len = match m {
            0xc4 => self.be(1, what)? as usize,
            0xc5 => self.be(2, what)? as usize,
            0xc6 => self.be(4, what)? as usize,
            _ => return Err(Self::unexpected(what, m)),
        };
        self.take(len, what)
    }

    /// Skip one value of any type. Used to ignore fields a newer minor revision of
    /// the protocol appends to a message.
    pub(crate) fn skip(&mut self) -> Result<(), ProtocolError> {
        self.skip_depth(0)
    }

    fn skip_depth(&mut self, depth: u32) -> Result<(), ProtocolError> {
        const WHAT: &str = "skipped field";
        if depth > MAX_SKIP_DEPTH {
            return Err(ProtocolError::TooDeep);
        }
        let m = self.u8(WHAT)?;
        let (body, items): (usize, usize) = match m {
            0x00..=0x7f | 0xe0..=0xff | 0xc0 | 0xc2 | 0xc3 => (0, 0),
            0x80..=0x8f => (0, 2 * usize::from(m & 0x0f)),
            0x90..=0x9f => (0, usize::from(m & 0x0f)),
            0xa0..=0xbf => (usize::from(m & 0x1f), 0),
            0xcc | 0xd0 => (1, 0),
            0xcd | 0xd1 => (2, 0),
            0xce | 0xd2 | 0xca => (4, 0),
            0xcf | 0xd3 | 0xcb => (8, 0),
            0xd4 => (2, 0),
            0xd5 => (3, 0),
            0xd6 => (5, 0),
            0xd7 => (9, 0),
            0xd8 => (17, 0),
            0xc4 | 0xd9 => (self.be(1, WHAT)? as usize, 0),
            0xc5 | 0xda => (self.be(2, WHAT)? as usize, 0),
            0xc6 | 0xdb => (self.be(4, WHAT)? as usize, 0),
            0xc7 => (self.be(1, WHAT)? as usize + 1, 0),
            0xc8 => (self.be(2, WHAT)? as usize + 1, 0),
            0xc9 => (self.be(4, WHAT)? as usize + 1, 0),
            0xdc => (0, self.be(2, WHAT)? as usize),
            0xdd => (0, self.be(4, WHAT)? as usize),
            0xde => (0, 2 * self.be(2, WHAT)? as usize),
            0xdf => (0, 2 * self.be(4, WHAT)? as usize),
            0xc1 => return Err(Self::unexpected(WHAT, m)),
        };
        if body > self.remaining() || items > self.remaining() {
            return Err(Self::eof(WHAT));
        }
        self.pos += body;
        for _ in 0..items {
            self.skip_depth(depth + 1)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip_int(v: i64) {
        let mut w = Writer::default();
        w.int(v);
        let mut r = Reader::new(w.finish());
        assert_eq!(r.int("x").unwrap(), v);
        assert_eq!(r.remaining(), 0);
    }

    #[test]
    fn ints_roundtrip_at_every_width() {
        for v in [
            0,
            1,
            127,
            128,
            255,
            256,
            65535,
            65536,
            u32::MAX as i64,
            u32::MAX as i64 + 1,
            i64::MAX,
            -1,
            -32,
            -33,
            -128,
            -129,
            -32768,
            -32769,
            i32::MIN as i64,
            i32::MIN as i64 - 1,
            i64::MIN,
        ] {
            roundtrip_int(v);
        }
    }

    #[test]
    fn str_and_bin_roundtrip_at_every_width() {
        for len in [0, 31, 32, 255, 256, 65535, 65536] {
            let s = "x".repeat(len);
            let mut w = Writer::default();
            w.str(&s);
            w.bin(s.as_bytes());
            let mut r = Reader::new(w.finish());
            assert_eq!(r.str("s").unwrap(), s);
            assert_eq!(&r.bin("b").unwrap()[..], s.as_bytes());
        }
    }

    #[test]
    fn array_lengths_are_checked_against_the_input() {
        // 0xdd = array32 claiming 4 billion elements in a 5-byte message
        let mut r = Reader::new(Bytes::from_static(&[0xdd, 0xff, 0xff, 0xff, 0xff]));
        assert!(matches!(
            r.array("a"),
            Err(ProtocolError::LengthTooLarge { .. })
        ));
    }

    #[test]
    fn claimed_lengths_past_the_end_are_truncation_errors() {
        let mut r = Reader::new(Bytes::from_static(&[0xc6, 0x7f, 0xff, 0xff, 0xff, 1, 2]));
        assert!(matches!(r.bin("b"), Err(ProtocolError::Truncated { .. })));
        let mut r = Reader::new(Bytes::from_static(&[0xdb, 0x7f, 0xff, 0xff, 0xff]));
        assert!(matches!(r.str("s"), Err(ProtocolError::Truncated { .. })));
    }

    #[test]
    fn skip_refuses_deep_nesting() {
        let deep = vec![0x91u8; 100];
        let mut r = Reader::new(Bytes::from(deep));
        assert!(r.skip().is_err());
    }

    #[test]
    fn bin_is_not_copied() {
        let mut w = Writer::default();
        w.bin(&[7u8; 1000]);
        let buf = w.finish();
        let mut r = Reader::new(buf.clone());
        let b = r.bin("b").unwrap();
        assert_eq!(b.as_ptr(), buf[3..].as_ptr());
    }
}
