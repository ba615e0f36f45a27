//! TTLV, KMIP's binary encoding (KMIP 1.4 §9.1): every item is a 3-byte
//! tag, a 1-byte type, a 4-byte big-endian length and the value, padded
//! with zeros to a multiple of 8 bytes. Structures nest items.
//!
//! Pure functions over byte slices: no I/O. The decoder is strict about
//! lengths (fixed-size types must have their size, structures must be
//! filled exactly by their children) and bounded in depth, so hostile input
//! yields an error, never a panic or an unbounded allocation.

use std::fmt;
use zeroize::Zeroizing;

/// A KMIP tag (`0x42xxxx` for the standard ones).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Tag(pub u32);

/// The item types of §9.1.1.3.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum ItemType {
    Structure = 0x01,
    Integer = 0x02,
    LongInteger = 0x03,
    BigInteger = 0x04,
    Enumeration = 0x05,
    Boolean = 0x06,
    TextString = 0x07,
    ByteString = 0x08,
    DateTime = 0x09,
    Interval = 0x0A,
    /// KMIP 2.0; decoded for robustness.
    DateTimeExtended = 0x0B,
}

impl ItemType {
    fn from_byte(b: u8) -> Option<ItemType> {
        Some(match b {
            0x01 => ItemType::Structure,
            0x02 => ItemType::Integer,
            0x03 => ItemType::LongInteger,
            0x04 => ItemType::BigInteger,
            0x05 => ItemType::Enumeration,
            0x06 => ItemType::Boolean,
            0x07 => ItemType::TextString,
            0x08 => ItemType::ByteString,
            0x09 => ItemType::DateTime,
            0x0A => ItemType::Interval,
            0x0B => ItemType::DateTimeExtended,
            _ => return None,
        })
    }
}

/// A value. Byte strings are zeroized on drop: they carry plaintext and
/// ciphertext in Encrypt/Decrypt.
#[derive(Clone, PartialEq, Eq)]
pub enum Value {
    Structure(Vec<Item>),
    Integer(i32),
    LongInteger(i64),
    /// Two's complement, big-endian, a multiple of 8 bytes.
    BigInteger(Vec<u8>),
    Enumeration(u32),
    Boolean(bool),
    TextString(String),
    ByteString(Zeroizing<Vec<u8>>),
    /// Seconds since the Unix epoch.
    DateTime(i64),
    /// Seconds.
    Interval(u32),
    /// Microseconds since the Unix epoch.
    DateTimeExtended(i64),
}

impl fmt::Debug for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Structure(items) => f.debug_list().entries(items).finish(),
            Value::Integer(v) => write!(f, "Integer({v})"),
            Value::LongInteger(v) => write!(f, "LongInteger({v})"),
            Value::BigInteger(v) => write!(f, "BigInteger({} bytes)", v.len()),
            Value::Enumeration(v) => write!(f, "Enumeration({v:#x})"),
            Value::Boolean(v) => write!(f, "Boolean({v})"),
            Value::TextString(v) => write!(f, "TextString({v:?})"),
            // Never print byte strings: they may be plaintext or keys.
            Value::ByteString(v) => write!(f, "ByteString({} bytes)", v.len()),
            Value::DateTime(v) => write!(f, "DateTime({v})"),
            Value::Interval(v) => write!(f, "Interval({v})"),
            Value::DateTimeExtended(v) => write!(f, "DateTimeExtended({v})"),
        }
    }
}

impl Value {
    pub fn item_type(&self) -> ItemType {
        match self {
            Value::Structure(_) => ItemType::Structure,
            Value::Integer(_) => ItemType::Integer,
            Value::LongInteger(_) => ItemType::LongInteger,
            Value::BigInteger(_) => ItemType::BigInteger,
            Value::Enumeration(_) => ItemType::Enumeration,
            Value::Boolean(_) => ItemType::Boolean,
            Value::TextString(_) => ItemType::TextString,
            Value::ByteString(_) => ItemType::ByteString,
            Value::DateTime(_) => ItemType::DateTime,
            Value::Interval(_) => ItemType::Interval,
            Value::DateTimeExtended(_) => ItemType::DateTimeExtended,
        }
    }

    pub fn bytes(b: &[u8]) -> Value {
        Value::ByteString(Zeroizing::new(b.to_vec()))
    }
}

/// One TTLV item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    pub tag: Tag,
    pub value: Value,
}

/// Decoding failures.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("truncated TTLV: need {need} bytes at offset {at}, have {have}")]
    Truncated { at: usize, need: usize, have: usize },
    #[error("unknown item type {ty:#04x} at offset {at}")]
    UnknownType { at: usize, ty: u8 },
    #[error("item type {ty:?} at offset {at} has invalid length {len}")]
    BadLength { at: usize, ty: ItemType, len: u32 },
    #[error("invalid boolean value {0}")]
    BadBoolean(u64),
    #[error("text string is not UTF-8")]
    BadUtf8,
    #[error("structures nested deeper than {MAX_DEPTH}")]
    TooDeep,
    #[error("{0} trailing bytes after the item")]
    Trailing(usize),
}

/// Deepest nesting accepted (KMIP messages use well under 10).
pub const MAX_DEPTH: usize = 32;

/// Length of the tag/type/length header.
pub const HEADER_LEN: usize = 8;

fn padded(len: usize) -> usize {
    len.div_ceil(8) * 8
}

impl Item {
    pub fn new(tag: Tag, value: Value) -> Item {
        Item { tag, value }
    }

    pub fn structure(tag: Tag, items: Vec<Item>) -> Item {
        Item::new(tag, Value::Structure(items))
    }

    /// Encoded size including header and padding.
    pub fn encoded_len(&self) -> usize {
        HEADER_LEN + padded(self.value_len())
    }

    fn value_len(&self) -> usize {
        match &self.value {
            Value::Structure(items) => items.iter().map(Item::encoded_len).sum(),
            Value::Integer(_) | Value::Enumeration(_) | Value::Interval(_) => 4,
            Value::LongInteger(_)
            | Value::Boolean(_)
            | Value::DateTime(_)
            | Value::DateTimeExtended(_) => 8,
            Value::BigInteger(b) => b.len(),
            Value::TextString(s) => s.len(),
            Value::ByteString(b) => b.len(),
        }
    }

    /// Appends the encoding to `out`.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        let tag = self.tag.0.to_be_bytes();
        out.extend_from_slice(&tag[1..4]);
        out.push(self.value.item_type() as u8);
        let len = self.value_len();
        // Lengths above u32::MAX cannot be built from a message this crate
        // sends (the transport limits messages far below that).
        out.extend_from_slice(&(len as u32).to_be_bytes());
        let start = out.len();
        match &self.value {
            Value::Structure(items) => {
                for i in items {
                    i.encode_into(out);
                }
            }
            Value::Integer(v) => out.extend_from_slice(&v.to_be_bytes()),
            Value::Enumeration(v) | Value::Interval(v) => out.extend_from_slice(&v.to_be_bytes()),
            Value::LongInteger(v) | Value::DateTime(v) | Value::DateTimeExtended(v) => {
                out.extend_from_slice(&v.to_be_bytes())
            }
            Value::Boolean(v) => out.extend_from_slice(&u64::from(*v).to_be_bytes()),
            Value::BigInteger(b) => out.extend_from_slice(b),
            Value::TextString(s) => out.extend_from_slice(s.as_bytes()),
            Value::ByteString(b) => out.extend_from_slice(b),
        }
        let written = out.len() - start;
        out.resize(start + padded(written), 0);
    }

    /// The encoding as a new buffer (zeroized on drop: it may carry
    /// plaintext).
    pub fn encode(&self) -> Zeroizing<Vec<u8>> {
        let mut out = Zeroizing::new(Vec::with_capacity(self.encoded_len()));
        self.encode_into(&mut out);
        out
    }

    /// Decodes exactly one item filling all of `input`.
    pub fn decode(input: &[u8]) -> Result<Item, DecodeError> {
        let (item, used) = decode_at(input, 0, 0)?;
        if used != input.len() {
            return Err(DecodeError::Trailing(input.len() - used));
        }
        Ok(item)
    }

    /// The children of a structure (empty for other types).
    pub fn children(&self) -> &[Item] {
        match &self.value {
            Value::Structure(items) => items,
            _ => &[],
        }
    }

    /// The first child with `tag`.
    pub fn child(&self, tag: Tag) -> Option<&Item> {
        self.children().iter().find(|i| i.tag == tag)
    }

    /// All children with `tag`, in order.
    pub fn children_with(&self, tag: Tag) -> impl Iterator<Item = &Item> {
        self.children().iter().filter(move |i| i.tag == tag)
    }

    pub fn as_i32(&self) -> Option<i32> {
        match self.value {
            Value::Integer(v) => Some(v),
            _ => None,
        }
    }

    pub fn as_enum(&self) -> Option<u32> {
        match self.value {
            Value::Enumeration(v) => Some(v),
            _ => None,
        }
    }

    pub fn as_text(&self) -> Option<&str> {
        match &self.value {
            Value::TextString(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_bytes(&self) -> Option<&[u8]> {
        match &self.value {
            Value::ByteString(b) => Some(b),
            _ => None,
        }
    }

    pub fn as_datetime(&self) -> Option<i64> {
        match self.value {
            Value::DateTime(v) => Some(v),
            _ => None,
        }
    }
}

/// Reads the length of the item starting at `header` (which must hold at
/// least [`HEADER_LEN`] bytes): the total bytes of the item, padding included.
/// The transport uses it to frame messages.
pub fn framed_len(header: &[u8; HEADER_LEN]) -> Result<usize, DecodeError> {
    let ty = ItemType::from_byte(header[3]).ok_or(DecodeError::UnknownType {
        at: 3,
        ty: header[3],
    })?;
    let len = u32::from_be_bytes([header[4], header[5], header[6], header[7]]);
    let body = if ty == ItemType::Structure {
        len as usize
    } else {
        padded(len as usize)
    };
    Ok(HEADER_LEN + body)
}

fn need(input: &[u8], at: usize, n: usize) -> Result<&[u8], DecodeError> {
    input
        .get(at..at.saturating_add(n))
        .ok_or(DecodeError::Truncated {
            at,
            need: n,
            have: input.len().saturating_sub(at),
        })
}

fn decode_at(input: &[u8], at: usize, depth: usize) -> Result<(Item, usize), DecodeError> {
    if depth > MAX_DEPTH {
        return Err(DecodeError::TooDeep);
    }
    let h = need(input, at, HEADER_LEN)?;
    let tag = Tag(u32::from_be_bytes([0, h[0], h[1], h[2]]));
    let ty = ItemType::from_byte(h[3]).ok_or(DecodeError::UnknownType {
        at: at + 3,
        ty: h[3],
    })?;
    let len = u32::from_be_bytes([h[4], h[5], h[6], h[7]]);
    let body_at = at + HEADER_LEN;
    let bad = || DecodeError::BadLength { at, ty, len };
    let fixed = |n: u32| if len == n { Ok(()) } else { Err(bad()) };
    let value = match ty {
        ItemType::Structure => {
            let body = need(input, body_at, len as usize)?;
            let mut items = Vec::new();
            let mut pos = 0;
            while pos < body.len() {
                let (item, used) = decode_at(body, pos, depth + 1)?;
                items.push(item);
                pos += used;
            }
            return Ok((Item::structure(tag, items), HEADER_LEN + len as usize));
        }
        ItemType::Integer => {
            fixed(4)?;
            let b = need(input, body_at, 8)?;
            Value::Integer(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
        }
        ItemType::Enumeration => {
            fixed(4)?;
            let b = need(input, body_at, 8)?;
            Value::Enumeration(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
        }
        ItemType::Interval => {
            fixed(4)?;
            let b = need(input, body_at, 8)?;
            Value::Interval(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
        }
        ItemType::LongInteger | ItemType::DateTime | ItemType::DateTimeExtended => {
            fixed(8)?;
            let b = need(input, body_at, 8)?;
            let v = i64::from_be_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]);
            match ty {
                ItemType::LongInteger => Value::LongInteger(v),
                ItemType::DateTime => Value::DateTime(v),
                _ => Value::DateTimeExtended(v),
            }
        }
        ItemType::Boolean => {
            fixed(8)?;
            let b = need(input, body_at, 8)?;
            let v = u64::from_be_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]);
            match v {
                0 => Value::Boolean(false),
                1 => Value::Boolean(true),
                other => return Err(DecodeError::BadBoolean(other)),
            }
        }
        ItemType::BigInteger => {
            if len == 0 || len % 8 != 0 {
                return Err(bad());
            }
            Value::BigInteger(need(input, body_at, len as usize)?.to_vec())
        }
        ItemType::TextString => {
            need(input, body_at, padded(len as usize))?;
            let b = need(input, body_at, len as usize)?;
            Value::TextString(
                std::str::from_utf8(b)
                    .map_err(|_| DecodeError::BadUtf8)?
                    .to_owned(),
            )
        }
        ItemType::ByteString => {
            need(input, body_at, padded(len as usize))?;
            Value::bytes(need(input, body_at, len as usize)?)
        }
    };
    Ok((Item::new(tag, value), HEADER_LEN + padded(len as usize)))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Parses the spec's "42 00 20 | 02 | ..." notation.
    pub(crate) fn hex(s: &str) -> Vec<u8> {
        let digits: String = s.chars().filter(|c| c.is_ascii_hexdigit()).collect();
        hex::decode(digits).unwrap()
    }

    const T: Tag = Tag(0x420020); // Compromise Date, the tag the examples use

    fn round_trip(item: Item, spec: &str) {
        let want = hex(spec);
        assert_eq!(item.encode().as_slice(), want.as_slice(), "{item:?}");
        assert_eq!(Item::decode(&want).unwrap(), item);
    }

    // KMIP Specification v1.4, §9.1.2 "Examples" (identical in v1.0–v1.4):
    // each item below is the spec's example, bytes as printed there.

    #[test]
    fn spec_9_1_2_integer() {
        // "An Integer containing the decimal value 8"
        round_trip(
            Item::new(T, Value::Integer(8)),
            "42 00 20 | 02 | 00 00 00 04 | 00 00 00 08 00 00 00 00",
        );
    }

    #[test]
    fn spec_9_1_2_long_integer() {
        // "A Long Integer containing the decimal value 123456789000000000"
        round_trip(
            Item::new(T, Value::LongInteger(123_456_789_000_000_000)),
            "42 00 20 | 03 | 00 00 00 08 | 01 B6 9B 4B A5 74 92 00",
        );
    }

    #[test]
    fn spec_9_1_2_big_integer() {
        // "A Big Integer containing the decimal value 1234567890000000000000000000"
        round_trip(
            Item::new(
                T,
                Value::BigInteger(hex("00 00 00 00 03 FD 35 EB 6B C2 DF 46 18 08 00 00")),
            ),
            "42 00 20 | 04 | 00 00 00 10 | 00 00 00 00 03 FD 35 EB 6B C2 DF 46 18 08 00 00",
        );
        // The value really is that number.
        let b = hex("03 FD 35 EB 6B C2 DF 46 18 08 00 00");
        let n = b.iter().fold(0u128, |acc, x| acc * 256 + u128::from(*x));
        assert_eq!(n, 1_234_567_890_000_000_000_000_000_000);
    }

    #[test]
    fn spec_9_1_2_enumeration() {
        // "An Enumeration with value 255"
        round_trip(
            Item::new(T, Value::Enumeration(255)),
            "42 00 20 | 05 | 00 00 00 04 | 00 00 00 FF 00 00 00 00",
        );
    }

    #[test]
    fn spec_9_1_2_boolean() {
        // "A Boolean with the value True"
        round_trip(
            Item::new(T, Value::Boolean(true)),
            "42 00 20 | 06 | 00 00 00 08 | 00 00 00 00 00 00 00 01",
        );
    }

    #[test]
    fn spec_9_1_2_text_string() {
        // "A Text String with the value 'Hello World'"
        round_trip(
            Item::new(T, Value::TextString("Hello World".into())),
            "42 00 20 | 07 | 00 00 00 0B | 48 65 6C 6C 6F 20 57 6F 72 6C 64 00 00 00 00 00",
        );
    }

    #[test]
    fn spec_9_1_2_byte_string() {
        // "A Byte String with the value { 0x01, 0x02, 0x03 }"
        round_trip(
            Item::new(T, Value::bytes(&[1, 2, 3])),
            "42 00 20 | 08 | 00 00 00 03 | 01 02 03 00 00 00 00 00",
        );
    }

    #[test]
    fn spec_9_1_2_date_time() {
        // "A Date-Time, containing the value for Friday, March 14, 2008, 11:56:40 GMT"
        round_trip(
            Item::new(T, Value::DateTime(1_205_495_800)),
            "42 00 20 | 09 | 00 00 00 08 | 00 00 00 00 47 DA 67 F8",
        );
    }

    #[test]
    fn spec_9_1_2_interval() {
        // "An Interval, containing the value for 10 days"
        round_trip(
            Item::new(T, Value::Interval(10 * 24 * 3600)),
            "42 00 20 | 0A | 00 00 00 04 | 00 0D 2F 00 00 00 00 00",
        );
    }

    #[test]
    fn spec_9_1_2_structure() {
        // "A Structure containing an Enumeration, value 254, followed by an
        // Integer, value 255, having tags 420004 and 420005 respectively"
        round_trip(
            Item::structure(
                T,
                vec![
                    Item::new(Tag(0x420004), Value::Enumeration(254)),
                    Item::new(Tag(0x420005), Value::Integer(255)),
                ],
            ),
            "42 00 20 | 01 | 00 00 00 20 | 42 00 04 | 05 | 00 00 00 04 | 00 00 00 FE 00 00 00 00 | 42 00 05 | 02 | 00 00 00 04 | 00 00 00 FF 00 00 00 00",
        );
    }

    #[test]
    fn text_without_padding_and_empty_values() {
        round_trip(
            Item::new(T, Value::TextString("0123456789ABCDEF".into())),
            "42 00 20 | 07 | 00 00 00 10 | 30 31 32 33 34 35 36 37 38 39 41 42 43 44 45 46",
        );
        round_trip(
            Item::new(T, Value::bytes(&[])),
            "42 00 20 | 08 | 00 00 00 00",
        );
        round_trip(Item::structure(T, vec![]), "42 00 20 | 01 | 00 00 00 00");
        round_trip(
            Item::new(T, Value::Integer(-1)),
            "42 00 20 | 02 | 00 00 00 04 | FF FF FF FF 00 00 00 00",
        );
    }

    #[test]
    fn hostile_input_is_rejected_not_panicked_on() {
        let cases: &[(&str, &str)] = &[
            ("42 00 20 02 00 00 00 04 00 00", "truncated"),
            (
                "42 00 20 02 00 00 00 08 00 00 00 08 00 00 00 00",
                "bad length",
            ),
            (
                "42 00 20 0C 00 00 00 04 00 00 00 08 00 00 00 00",
                "unknown type",
            ),
            (
                "42 00 20 06 00 00 00 08 00 00 00 00 00 00 00 02",
                "bad boolean",
            ),
            (
                "42 00 20 07 00 00 00 02 FF FE 00 00 00 00 00 00",
                "bad utf8",
            ),
            ("42 00 20 01 FF FF FF F0", "structure longer than input"),
            (
                "42 00 20 01 00 00 00 04 42 00 20 02",
                "structure cut inside child",
            ),
            (
                "42 00 20 04 00 00 00 03 01 02 03 00 00 00 00 00",
                "big integer not 8k",
            ),
            ("42 00 20 08 00 00 00 03 01 02 03", "missing padding"),
        ];
        for (input, why) in cases {
            assert!(Item::decode(&hex(input)).is_err(), "{why}");
        }
        // Trailing garbage after one item.
        let mut b = hex("42 00 20 | 02 | 00 00 00 04 | 00 00 00 08 00 00 00 00");
        b.push(0);
        assert_eq!(Item::decode(&b), Err(DecodeError::Trailing(1)));
        // Deep nesting.
        let mut item = Item::new(T, Value::Integer(1));
        for _ in 0..=MAX_DEPTH + 1 {
            item = Item::structure(T, vec![item]);
        }
        assert_eq!(Item::decode(&item.encode()), Err(DecodeError::TooDeep));
    }

    #[test]
    fn framing_length_from_header() {
        let b = hex("42 00 20 | 01 | 00 00 00 20");
        assert_eq!(framed_len(&b.try_into().unwrap()).unwrap(), 40);
        let b = hex("42 00 20 | 08 | 00 00 00 03");
        assert_eq!(framed_len(&b.try_into().unwrap()).unwrap(), 16);
    }

    #[test]
    fn debug_never_shows_byte_strings() {
        let s = format!("{:?}", Item::new(T, Value::bytes(b"secret plaintext")));
        assert!(!s.contains("secret"), "{s}");
    }
}
