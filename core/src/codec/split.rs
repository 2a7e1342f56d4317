//! A serde serializer that splits an enum value into its variant name and content.

use std::io;

use serde::ser::{self, Impossible, Serialize, SerializeStruct, SerializeTuple};

use super::not_an_enum;

type JsonSer<'a, W> = &'a mut serde_json::Serializer<W>;
type Err = serde_json::Error;

/// Serializes an enum's content into `json` (or nothing, in name-only mode) and returns
/// the variant's name.
pub(super) struct Split<'a, W: io::Write> {
    json: Option<JsonSer<'a, W>>,
}

impl<W: io::Write> Split<'static, W> {
    pub(super) fn name_only() -> Self {
        Split { json: None }
    }
}

impl<'a, W: io::Write> Split<'a, W> {
    pub(super) fn writing(json: JsonSer<'a, W>) -> Self {
        Split { json: Some(json) }
    }
}

/// A tuple or struct variant's content, written by serde_json when writing.
pub(super) struct Compound<'a, W: io::Write> {
    name: &'static str,
    inner: Option<serde_json::ser::Compound<'a, W, serde_json::ser::CompactFormatter>>,
}

macro_rules! reject {
    ($($method:ident($($arg:ty),*);)*) => {
        $(fn $method(self $(, _: $arg)*) -> Result<&'static str, Err> { Err(not_an_enum()) })*
    };
}

impl<'a, W: io::Write> ser::Serializer for Split<'a, W> {
    type Ok = &'static str;
    type Error = Err;
    type SerializeSeq = Impossible<&'static str, Err>;
    type SerializeTuple = Impossible<&'static str, Err>;
    type SerializeTupleStruct = Impossible<&'static str, Err>;
    type SerializeTupleVariant = Compound<'a, W>;
    type SerializeMap = Impossible<&'static str, Err>;
    type SerializeStruct = Impossible<&'static str, Err>;
    type SerializeStructVariant = Compound<'a, W>;

    reject! {
        serialize_bool(bool); serialize_i8(i8); serialize_i16(i16); serialize_i32(i32);
        serialize_i64(i64); serialize_u8(u8); serialize_u16(u16); serialize_u32(u32);
        serialize_u64(u64); serialize_f32(f32); serialize_f64(f64); serialize_char(char);
        serialize_str(&str); serialize_bytes(&[u8]); serialize_none(); serialize_unit();
        serialize_unit_struct(&'static str);
    }

    fn serialize_some<T: Serialize + ?Sized>(self, _: &T) -> Result<Self::Ok, Err> {
        Err(not_an_enum())
    }

    fn serialize_unit_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
    ) -> Result<Self::Ok, Err> {
        if let Some(json) = self.json {
            ().serialize(json)?;
        }
        Ok(variant)
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: &T,
    ) -> Result<Self::Ok, Err> {
        Err(not_an_enum())
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<Self::Ok, Err> {
        if let Some(json) = self.json {
            value.serialize(json)?;
        }
        Ok(variant)
    }

    fn serialize_seq(self, _: Option<usize>) -> Result<Self::SerializeSeq, Err> {
        Err(not_an_enum())
    }

    fn serialize_tuple(self, _: usize) -> Result<Self::SerializeTuple, Err> {
        Err(not_an_enum())
    }

    fn serialize_tuple_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleStruct, Err> {
        Err(not_an_enum())
    }

    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Self::SerializeTupleVariant, Err> {
        let inner = match self.json {
            Some(json) => Some(ser::Serializer::serialize_tuple(json, len)?),
            None => None,
        };
        Ok(Compound {
            name: variant,
            inner,
        })
    }

    fn serialize_map(self, _: Option<usize>) -> Result<Self::SerializeMap, Err> {
        Err(not_an_enum())
    }

    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Self::SerializeStruct, Err> {
        Err(not_an_enum())
    }

    fn serialize_struct_variant(
        self,
        name: &'static str,
        _: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Self::SerializeStructVariant, Err> {
        let inner = match self.json {
            Some(json) => Some(ser::Serializer::serialize_struct(json, name, len)?),
            None => None,
        };
        Ok(Compound {
            name: variant,
            inner,
        })
    }
}

impl<W: io::Write> ser::SerializeTupleVariant for Compound<'_, W> {
    type Ok = &'static str;
    type Error = Err;

    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Err> {
        match self.inner.as_mut() {
            Some(c) => SerializeTuple::serialize_element(c, value),
            None => Ok(()),
        }
    }

    fn end(self) -> Result<Self::Ok, Err> {
        if let Some(c) = self.inner {
            SerializeTuple::end(c)?;
        }
        Ok(self.name)
    }
}

impl<W: io::Write> ser::SerializeStructVariant for Compound<'_, W> {
    type Ok = &'static str;
    type Error = Err;

    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), Err> {
        match self.inner.as_mut() {
            Some(c) => SerializeStruct::serialize_field(c, key, value),
            None => Ok(()),
        }
    }

    fn skip_field(&mut self, key: &'static str) -> Result<(), Err> {
        match self.inner.as_mut() {
            Some(c) => SerializeStruct::skip_field(c, key),
            None => Ok(()),
        }
    }

    fn end(self) -> Result<Self::Ok, Err> {
        if let Some(c) = self.inner {
            SerializeStruct::end(c)?;
        }
        Ok(self.name)
    }
}
