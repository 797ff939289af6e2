//! The ClickHouse RowBinary encoding, for the types our tables use.
//!
//! Writers encode rows where the request is handled (in parallel across HTTP
//! workers) and the single writer task per table only concatenates the bytes into
//! one `INSERT ... FORMAT RowBinary`. The `clickhouse` crate's own serializer is
//! private and works on owned rows, which would cost an allocation per string.
//!
//! Layout (ClickHouse docs, "RowBinary"): integers and floats little-endian;
//! String as a LEB128 length then bytes; Array as a LEB128 count then elements;
//! Nullable as a 0/1 null flag then the value; DateTime as UInt32 seconds;
//! UUID as its high then its low 64-bit half, each little-endian; Enum8 as Int8.

use bytes::{BufMut, BytesMut};
use uuid::Uuid;

/// RowBinary writes onto a byte buffer.
pub trait RowBinaryExt {
    fn put_rb_uvarint(&mut self, value: u64);
    fn put_rb_str(&mut self, value: &str);
    fn put_rb_uuid(&mut self, value: &Uuid);
    fn put_rb_datetime(&mut self, unix_seconds: u32);
    fn put_rb_nullable_f64(&mut self, value: Option<f64>);
    fn put_rb_str_array<'a>(&mut self, values: impl ExactSizeIterator<Item = &'a str>);
    fn put_rb_f64_array(&mut self, values: impl ExactSizeIterator<Item = f64>);
    fn put_rb_u64_array(&mut self, values: impl ExactSizeIterator<Item = u64>);
    fn put_rb_u8_array(&mut self, values: impl ExactSizeIterator<Item = u8>);
}

impl RowBinaryExt for BytesMut {
    fn put_rb_uvarint(&mut self, mut value: u64) {
        while value >= 0x80 {
            self.put_u8((value as u8) | 0x80);
            value >>= 7;
        }
        self.put_u8(value as u8);
    }

    fn put_rb_str(&mut self, value: &str) {
        self.put_rb_uvarint(value.len() as u64);
        self.put_slice(value.as_bytes());
    }

    fn put_rb_uuid(&mut self, value: &Uuid) {
        let (high, low) = value.as_u64_pair();
        self.put_u64_le(high);
        self.put_u64_le(low);
    }

    fn put_rb_datetime(&mut self, unix_seconds: u32) {
        self.put_u32_le(unix_seconds);
    }

    fn put_rb_nullable_f64(&mut self, value: Option<f64>) {
        match value {
            Some(v) => {
                self.put_u8(0);
                self.put_f64_le(v);
            }
            None => self.put_u8(1),
        }
    }

    fn put_rb_str_array<'a>(&mut self, values: impl ExactSizeIterator<Item = &'a str>) {
        self.put_rb_uvarint(values.len() as u64);
        for v in values {
            self.put_rb_str(v);
        }
    }

    fn put_rb_f64_array(&mut self, values: impl ExactSizeIterator<Item = f64>) {
        self.put_rb_uvarint(values.len() as u64);
        for v in values {
            self.put_f64_le(v);
        }
    }

    fn put_rb_u64_array(&mut self, values: impl ExactSizeIterator<Item = u64>) {
        self.put_rb_uvarint(values.len() as u64);
        for v in values {
            self.put_u64_le(v);
        }
    }

    fn put_rb_u8_array(&mut self, values: impl ExactSizeIterator<Item = u8>) {
        self.put_rb_uvarint(values.len() as u64);
        for v in values {
            self.put_u8(v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_are_leb128() {
        let mut buf = BytesMut::new();
        buf.put_rb_uvarint(0);
        buf.put_rb_uvarint(127);
        buf.put_rb_uvarint(128);
        buf.put_rb_uvarint(300);
        assert_eq!(&buf[..], &[0x00, 0x7f, 0x80, 0x01, 0xac, 0x02]);
    }

    #[test]
    fn uuid_is_high_half_then_low_half_little_endian() {
        let id = Uuid::parse_str("01020304-0506-0708-090a-0b0c0d0e0f10").unwrap();
        let mut buf = BytesMut::new();
        buf.put_rb_uuid(&id);
        assert_eq!(
            &buf[..],
            &[
                8, 7, 6, 5, 4, 3, 2, 1, 0x10, 0x0f, 0x0e, 0x0d, 0x0c, 0x0b, 0x0a, 9
            ]
        );
    }

    #[test]
    fn nullable_writes_a_null_flag_first() {
        let mut buf = BytesMut::new();
        buf.put_rb_nullable_f64(None);
        buf.put_rb_nullable_f64(Some(1.0));
        assert_eq!(buf[0], 1);
        assert_eq!(buf[1], 0);
        assert_eq!(&buf[2..], &1.0f64.to_le_bytes());
    }
}
