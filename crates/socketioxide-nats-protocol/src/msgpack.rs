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
///
/// Every position and length computation is checked: lengths come from the wire
/// (up to `u32::MAX`), and on a 32-bit target `usize` is no wider than that, so an
/// unchecked `len + 1` or `2 * len` could wrap and make a forged length look small.
#[derive(Debug)]
pub(crate) struct Reader {
    data: Bytes,
    /// Invariant: `pos <= data.len()`.
    pos: usize,
}

impl Reader {
    pub(crate) fn new(data: Bytes) -> Self {
        Self { data, pos: 0 }
    }

    pub(crate) fn remaining(&self) -> usize {
        self.data.len().saturating_sub(self.pos)
    }

    fn eof(what: &'static str) -> ProtocolError {
        ProtocolError::Truncated { what }
    }

    /// Where the next `n` bytes end, if the input holds them.
    fn end_of(&self, n: usize, what: &'static str) -> Result<usize, ProtocolError> {
        self.pos
            .checked_add(n)
            .filter(|&end| end <= self.data.len())
            .ok_or(Self::eof(what))
    }

    fn u8(&mut self, what: &'static str) -> Result<u8, ProtocolError> {
        let [b] = self.fixed::<1>(what)?;
        Ok(b)
    }

    /// The next `N` bytes, for big-endian numbers.
    fn fixed<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], ProtocolError> {
        let end = self.end_of(N, what)?;
        let mut out = [0u8; N];
        out.copy_from_slice(&self.data[self.pos..end]);
        self.pos = end;
        Ok(out)
    }

    fn take(&mut self, n: usize, what: &'static str) -> Result<Bytes, ProtocolError> {
        let end = self.end_of(n, what)?;
        let out = self.data.slice(self.pos..end);
        self.pos = end;
        Ok(out)
    }

    /// A big-endian length prefix of 1, 2 or 4 bytes (`N`), as a `usize`.
    fn len<const N: usize>(&mut self, what: &'static str) -> Result<usize, ProtocolError> {
        let b = self.fixed::<N>(what)?;
        let v = b.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b));
        // Only fails where usize is narrower than the prefix (a 16-bit target); the
        // input could not hold that many bytes anyway.
        usize::try_from(v).map_err(|_| too_large(what, usize::MAX))
    }

    fn peek(&self) -> Option<u8> {
        self.data.get(self.pos).copied()
    }

    /// Consume a nil if it is next; tell whether it was.
    pub(crate) fn nil(&mut self) -> bool {
        if self.peek() == Some(0xc0) {
            self.pos += 1; // peek saw a byte there, so pos < data.len()
            true
        } else {
            false
        }
    }

    fn unexpected(what: &'static str, marker: u8) -> ProtocolError {
        ProtocolError::Unexpected { what, marker }
    }

    /// Read an array header. The length is checked against the bytes left (every
    /// element takes at least one byte). Callers that reserve room for the elements
    /// must still divide the bytes left by their elements' smallest encoding: one
    /// slot per input byte is far more memory than the input for most elements.
    pub(crate) fn array(&mut self, what: &'static str) -> Result<usize, ProtocolError> {
        let m = self.u8(what)?;
        let len = match m {
            0x90..=0x9f => usize::from(m & 0x0f),
            0xdc => self.len::<2>(what)?,
            0xdd => self.len::<4>(what)?,
            _ => return Err(Self::unexpected(what, m)),
        };
        if len > self.remaining() {
            return Err(too_large(what, len));
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

    /// Any integer encoding, signed or not, at any width. `i128` holds both the
    /// whole `u64` range (0xcf) and the whole `i64` range (0xd3), so [`Self::int`]
    /// and [`Self::uint`] each accept every value of their type whatever width and
    /// signedness the writer picked.
    fn integer(&mut self, what: &'static str) -> Result<i128, ProtocolError> {
        let m = self.u8(what)?;
        Ok(match m {
            0x00..=0x7f => i128::from(m),
            0xe0..=0xff => i128::from(i8::from_be_bytes([m])),
            0xcc => i128::from(self.u8(what)?),
            0xcd => i128::from(u16::from_be_bytes(self.fixed(what)?)),
            0xce => i128::from(u32::from_be_bytes(self.fixed(what)?)),
            0xcf => i128::from(u64::from_be_bytes(self.fixed(what)?)),
            0xd0 => i128::from(i8::from_be_bytes(self.fixed(what)?)),
            0xd1 => i128::from(i16::from_be_bytes(self.fixed(what)?)),
            0xd2 => i128::from(i32::from_be_bytes(self.fixed(what)?)),
            0xd3 => i128::from(i64::from_be_bytes(self.fixed(what)?)),
            _ => return Err(Self::unexpected(what, m)),
        })
    }

    pub(crate) fn int(&mut self, what: &'static str) -> Result<i64, ProtocolError> {
        i64::try_from(self.integer(what)?).map_err(|_| ProtocolError::OutOfRange { what })
    }

    pub(crate) fn uint(&mut self, what: &'static str) -> Result<u64, ProtocolError> {
        u64::try_from(self.integer(what)?).map_err(|_| ProtocolError::OutOfRange { what })
    }

    fn str_len(&mut self, what: &'static str) -> Result<usize, ProtocolError> {
        let m = self.u8(what)?;
        Ok(match m {
            0xa0..=0xbf => usize::from(m & 0x1f),
            0xd9 => self.len::<1>(what)?,
            0xda => self.len::<2>(what)?,
            0xdb => self.len::<4>(what)?,
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
        let start = self.pos;
        self.pos = self.end_of(len, what)?;
        std::str::from_utf8(&self.data[start..self.pos])
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
            0xc4 => self.len::<1>(what)?,
            0xc5 => self.len::<2>(what)?,
            0xc6 => self.len::<4>(what)?,
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
            0xc4 | 0xd9 => (self.len::<1>(WHAT)?, 0),
            0xc5 | 0xda => (self.len::<2>(WHAT)?, 0),
            0xc6 | 0xdb => (self.len::<4>(WHAT)?, 0),
            // ext: the length does not count the type byte
            0xc7 => (ext_body(self.len::<1>(WHAT)?)?, 0),
            0xc8 => (ext_body(self.len::<2>(WHAT)?)?, 0),
            0xc9 => (ext_body(self.len::<4>(WHAT)?)?, 0),
            0xdc => (0, self.len::<2>(WHAT)?),
            0xdd => (0, self.len::<4>(WHAT)?),
            0xde => (0, map_items(self.len::<2>(WHAT)?)?),
            0xdf => (0, map_items(self.len::<4>(WHAT)?)?),
            0xc1 => return Err(Self::unexpected(WHAT, m)),
        };
        // Every item takes at least one byte: a count over the bytes left is a lie,
        // refused before looping over it.
        if items > self.remaining() {
            return Err(Self::eof(WHAT));
        }
        self.pos = self.end_of(body, WHAT)?;
        for _ in 0..items {
            self.skip_depth(depth + 1)?;
        }
        Ok(())
    }
}

fn too_large(what: &'static str, len: usize) -> ProtocolError {
    ProtocolError::LengthTooLarge { what, len }
}

/// The bytes after an ext header: the data and its type byte. Checked: with a
/// 32-bit `usize`, an ext32 length of `u32::MAX` would wrap to 0.
fn ext_body(len: usize) -> Result<usize, ProtocolError> {
    len.checked_add(1)
        .ok_or(too_large("skipped field", usize::MAX))
}

/// The values in a map of `pairs` entries. Checked: with a 32-bit `usize`, a map32
/// of 2^31 pairs would wrap to 0 values.
fn map_items(pairs: usize) -> Result<usize, ProtocolError> {
    pairs
        .checked_mul(2)
        .ok_or(too_large("skipped field", usize::MAX))
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

    fn reader(bytes: &'static [u8]) -> Reader {
        Reader::new(Bytes::from_static(bytes))
    }

    #[test]
    fn uint_accepts_the_whole_u64_range() {
        for v in [
            0,
            1,
            0x7f,
            0x80,
            0xff,
            0x100,
            0xffff,
            0x1_0000,
            u64::from(u32::MAX),
            u64::from(u32::MAX) + 1,
            i64::MAX as u64,
            i64::MAX as u64 + 1,
            u64::MAX - 1,
            u64::MAX,
        ] {
            let mut w = Writer::default();
            w.uint(v);
            let mut r = Reader::new(w.finish());
            assert_eq!(r.uint("x"), Ok(v), "{v}");
            assert_eq!(r.remaining(), 0);
        }
        // Other writers may pick any width or a signed marker for a positive value.
        assert_eq!(reader(&[0xd0, 0x05]).uint("x"), Ok(5));
        assert_eq!(
            reader(&[0xd3, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]).uint("x"),
            Ok(i64::MAX as u64)
        );
        assert_eq!(reader(&[0xcf, 0, 0, 0, 0, 0, 0, 0, 7]).uint("x"), Ok(7));
        // Negative values are not unsigned, at every width.
        for neg in [
            &[0xff][..],
            &[0xe0],
            &[0xd0, 0xff],
            &[0xd1, 0x80, 0x00],
            &[0xd2, 0xff, 0xff, 0xff, 0xff],
            &[0xd3, 0x80, 0, 0, 0, 0, 0, 0, 0],
        ] {
            let mut r = Reader::new(Bytes::copy_from_slice(neg));
            assert_eq!(
                r.uint("x"),
                Err(ProtocolError::OutOfRange { what: "x" }),
                "{neg:02x?}"
            );
        }
    }

    #[test]
    fn int_refuses_unsigned_values_over_i64_max() {
        assert_eq!(
            reader(&[0xcf, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]).int("x"),
            Ok(i64::MAX)
        );
        assert_eq!(
            reader(&[0xcf, 0x80, 0, 0, 0, 0, 0, 0, 0]).int("x"),
            Err(ProtocolError::OutOfRange { what: "x" })
        );
        assert_eq!(
            reader(&[0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]).int("x"),
            Err(ProtocolError::OutOfRange { what: "x" })
        );
    }

    #[test]
    fn truncated_numbers_are_errors() {
        for bytes in [
            &[0xcc][..],
            &[0xcd, 0],
            &[0xce, 0, 0, 0],
            &[0xcf, 0, 0, 0, 0, 0, 0, 0],
            &[0xd3],
            &[],
        ] {
            let mut r = Reader::new(Bytes::copy_from_slice(bytes));
            assert_eq!(r.uint("n"), Err(ProtocolError::Truncated { what: "n" }));
        }
    }

    /// The sums and products that would wrap with a 32-bit `usize` (where
    /// `usize::MAX == u32::MAX`, the largest length on the wire) are checked.
    #[test]
    fn length_arithmetic_is_checked_at_usize_max() {
        assert!(ext_body(usize::MAX).is_err());
        assert_eq!(ext_body(usize::MAX - 1), Ok(usize::MAX));
        assert!(map_items(usize::MAX / 2 + 1).is_err());
        assert_eq!(map_items(usize::MAX / 2), Ok(usize::MAX - 1));
        // pos + n past usize::MAX is a truncation, not an overflow.
        let mut r = reader(&[0xa1, b'a', 0xc4]);
        assert_eq!(r.u8("x"), Ok(0xa1));
        assert!(matches!(
            r.take(usize::MAX, "t"),
            Err(ProtocolError::Truncated { .. })
        ));
        assert!(matches!(
            r.end_of(usize::MAX - 1, "t"),
            Err(ProtocolError::Truncated { .. })
        ));
    }

    #[test]
    fn edge_lengths_are_errors_not_panics() {
        let cases: [&[u8]; 10] = [
            &[0xc9, 0xff, 0xff, 0xff, 0xff, 0x01, 0x00], // ext32 of u32::MAX bytes
            &[0xc8, 0xff, 0xff, 0x01],                   // ext16 of 65535 bytes
            &[0xc7, 0xff, 0x01],                         // ext8 of 255 bytes
            &[0xdf, 0xff, 0xff, 0xff, 0xff, 0x01],       // map32 of u32::MAX pairs
            &[0xdf, 0x80, 0x00, 0x00, 0x00, 0x01],       // 2^31 pairs: 2^32 values
            &[0xde, 0xff, 0xff, 0x01, 0x01],             // map16 of 65535 pairs
            &[0xdd, 0xff, 0xff, 0xff, 0xff, 0x01],       // array32 of u32::MAX
            &[0xdb, 0xff, 0xff, 0xff, 0xff, b'a'],       // str32 of u32::MAX bytes
            &[0xc6, 0xff, 0xff, 0xff, 0xff, 0x00],       // bin32 of u32::MAX bytes
            &[0xc6, 0xff, 0xff, 0xff],                   // cut in its length
        ];
        for bytes in cases {
            let mut r = Reader::new(Bytes::copy_from_slice(bytes));
            assert!(r.skip().is_err(), "{bytes:02x?}");
        }
        // The exact fits are accepted.
        let mut r = reader(&[0xc7, 0x01, 0x05, 0xaa, 0x07]);
        r.skip().unwrap();
        assert_eq!(r.uint("after"), Ok(7));
        let mut r = reader(&[0xdd, 0x00, 0x00, 0x00, 0x02, 0x01, 0x02]);
        assert_eq!(r.array("a"), Ok(2));
        let mut r = reader(&[0xdd, 0x00, 0x00, 0x00, 0x03, 0x01, 0x02]);
        assert_eq!(
            r.array("a"),
            Err(ProtocolError::LengthTooLarge { what: "a", len: 3 })
        );
        let mut r = reader(&[0xdb, 0x00, 0x00, 0x00, 0x01, b'a']);
        assert_eq!(r.str("s"), Ok("a"));
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
