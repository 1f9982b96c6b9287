//! Typed reading of JSON values: `T` from a [`serde_json::Value`] already
//! parsed, the way every operation takes its input.
//!
//! `serde_json` can do this itself (`T::deserialize(&value)`); this reader
//! exists for the npm package's size. `serde_json`'s error formats what it
//! did not expect through serde's `Unexpected`, whose `Display` can print
//! any float with Rust's own float formatting: about 24 KB of wasm (10 KB
//! gzipped) that no input of ours ever reaches, since `serde_json` prints
//! floats itself. This reader's error says the same sentences ("invalid
//! type: integer `7`, expected a string") and prints floats as
//! `serde_json` does. It also reads a struct only from an object (never
//! from an array, which `serde_json` accepts), which spares a second
//! reading path per type.

use std::fmt;

use serde::de::{
    self, DeserializeOwned, DeserializeSeed, Expected, IntoDeserializer, MapAccess, SeqAccess,
    Unexpected, Visitor,
};
use serde::forward_to_deserialize_any;
use serde_json::{Map, Number, Value};

/// Reads `T` from `value`.
pub fn from_value<T: DeserializeOwned>(value: &Value) -> Result<T, Error> {
    T::deserialize(Reader(value))
}

/// Why a value is not of the shape asked for: one sentence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error(String);

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

impl de::Error for Error {
    fn custom<T: fmt::Display>(message: T) -> Self {
        Self(message.to_string())
    }

    fn invalid_type(unexpected: Unexpected<'_>, expected: &dyn Expected) -> Self {
        Self(format!(
            "invalid type: {}, expected {expected}",
            Described(unexpected)
        ))
    }

    fn invalid_value(unexpected: Unexpected<'_>, expected: &dyn Expected) -> Self {
        Self(format!(
            "invalid value: {}, expected {expected}",
            Described(unexpected)
        ))
    }
}

/// What was found, in `serde_json`'s words; floats printed as `serde_json`
/// prints them, never through Rust's float formatting.
struct Described<'a>(Unexpected<'a>);

impl fmt::Display for Described<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Unexpected::Unit => f.write_str("null"),
            Unexpected::Bool(b) => write!(f, "boolean `{b}`"),
            Unexpected::Unsigned(n) => write!(f, "integer `{n}`"),
            Unexpected::Signed(n) => write!(f, "integer `{n}`"),
            Unexpected::Float(x) => write!(
                f,
                "floating point `{}`",
                Number::from_f64(x).map_or_else(|| "NaN".to_owned(), |n| n.to_string())
            ),
            Unexpected::Char(c) => write!(f, "character `{c}`"),
            Unexpected::Str(s) => write!(f, "string {s:?}"),
            Unexpected::Bytes(_) => f.write_str("byte array"),
            Unexpected::Option => f.write_str("Option value"),
            Unexpected::NewtypeStruct => f.write_str("newtype struct"),
            Unexpected::Seq => f.write_str("sequence"),
            Unexpected::Map => f.write_str("map"),
            Unexpected::Enum => f.write_str("enum"),
            Unexpected::UnitVariant => f.write_str("unit variant"),
            Unexpected::NewtypeVariant => f.write_str("newtype variant"),
            Unexpected::TupleVariant => f.write_str("tuple variant"),
            Unexpected::StructVariant => f.write_str("struct variant"),
            Unexpected::Other(other) => f.write_str(other),
        }
    }
}

/// What `value` is, for an error about it.
fn unexpected(value: &Value) -> Unexpected<'_> {
    match value {
        Value::Null => Unexpected::Unit,
        Value::Bool(b) => Unexpected::Bool(*b),
        Value::Number(n) => match (n.as_u64(), n.as_i64(), n.as_f64()) {
            (Some(u), _, _) => Unexpected::Unsigned(u),
            (None, Some(i), _) => Unexpected::Signed(i),
            (None, None, Some(f)) => Unexpected::Float(f),
            (None, None, None) => Unexpected::Other("number"),
        },
        Value::String(s) => Unexpected::Str(s),
        Value::Array(_) => Unexpected::Seq,
        Value::Object(_) => Unexpected::Map,
    }
}

/// A value to read from.
struct Reader<'a>(&'a Value);

impl<'de> de::Deserializer<'de> for Reader<'de> {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.0 {
            Value::Null => visitor.visit_unit(),
            Value::Bool(b) => visitor.visit_bool(*b),
            Value::Number(n) => match (n.as_u64(), n.as_i64(), n.as_f64()) {
                (Some(u), _, _) => visitor.visit_u64(u),
                (None, Some(i), _) => visitor.visit_i64(i),
                (None, None, Some(f)) => visitor.visit_f64(f),
                (None, None, None) => Err(de::Error::custom("a number out of range")),
            },
            Value::String(s) => visitor.visit_borrowed_str(s),
            Value::Array(items) => visitor.visit_seq(Items(items.iter())),
            Value::Object(entries) => visitor.visit_map(Entries::new(entries)),
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.0 {
            Value::Null => visitor.visit_none(),
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        match self.0 {
            Value::Object(entries) => visitor.visit_map(Entries::new(entries)),
            other => Err(de::Error::invalid_type(unexpected(other), &visitor)),
        }
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        match self.0 {
            // Our enums are unit variants named by a string.
            Value::String(s) => visitor.visit_enum(s.as_str().into_deserializer()),
            other => Err(de::Error::invalid_type(unexpected(other), &visitor)),
        }
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_unit()
    }

    forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf unit unit_struct seq tuple tuple_struct map identifier
    }
}

/// The items of an array.
struct Items<'a>(std::slice::Iter<'a, Value>);

impl<'de> SeqAccess<'de> for Items<'de> {
    type Error = Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, Error> {
        self.0
            .next()
            .map(|item| seed.deserialize(Reader(item)))
            .transpose()
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.0.len())
    }
}

/// The entries of an object, in order.
struct Entries<'a> {
    entries: serde_json::map::Iter<'a>,
    value: Option<&'a Value>,
}

impl<'a> Entries<'a> {
    fn new(map: &'a Map<String, Value>) -> Self {
        Self {
            entries: map.iter(),
            value: None,
        }
    }
}

impl<'de> MapAccess<'de> for Entries<'de> {
    type Error = Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Error> {
        let Some((key, value)) = self.entries.next() else {
            return Ok(None);
        };
        self.value = Some(value);
        seed.deserialize(Key(key)).map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Error> {
        match self.value.take() {
            Some(value) => seed.deserialize(Reader(value)),
            None => Err(de::Error::custom("a value was asked for before its key")),
        }
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.entries.len())
    }
}

/// An object's key: a string, or a number written as one (`{"1": true}`
/// for a map keyed by condition id).
struct Key<'a>(&'a str);

impl Key<'_> {
    fn number<T: std::str::FromStr>(&self) -> Result<T, Error> {
        self.0
            .parse()
            .map_err(|_| Error("invalid value: expected key to be a number in quotes".to_owned()))
    }
}

impl<'de> de::Deserializer<'de> for Key<'de> {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_borrowed_str(self.0)
    }

    fn deserialize_u32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        let n = self.number()?;
        visitor.visit_u32(n)
    }

    fn deserialize_u64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        let n = self.number()?;
        visitor.visit_u64(n)
    }

    fn deserialize_i64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        let n = self.number()?;
        visitor.visit_i64(n)
    }

    forward_to_deserialize_any! {
        bool i8 i16 i32 i128 u8 u16 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map struct
        enum identifier ignored_any
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde_json::json;

    use super::*;

    /// Reads `value` both ways: this reader and `serde_json`'s.
    fn both<T: DeserializeOwned + fmt::Debug + PartialEq>(
        value: &Value,
    ) -> (Result<T, String>, Result<T, String>) {
        (
            from_value::<T>(value).map_err(|e| e.to_string()),
            T::deserialize(value).map_err(|e| e.to_string()),
        )
    }

    #[test]
    fn answers_and_messages_are_serde_jsons() {
        let values = [
            json!("text"),
            json!(7),
            json!(-7),
            json!(1.5),
            json!(1e300),
            json!(true),
            json!(null),
            json!([1, 2]),
            json!({"a": 1}),
            json!(4_294_967_296_u64),
        ];
        for value in &values {
            let (ours, theirs) = both::<String>(value);
            assert_eq!(ours, theirs, "String from {value}");
            let (ours, theirs) = both::<u32>(value);
            assert_eq!(ours, theirs, "u32 from {value}");
            let (ours, theirs) = both::<i64>(value);
            assert_eq!(ours, theirs, "i64 from {value}");
            let (ours, theirs) = both::<bool>(value);
            assert_eq!(ours, theirs, "bool from {value}");
            let (ours, theirs) = both::<Option<Vec<u32>>>(value);
            assert_eq!(ours, theirs, "Option<Vec<u32>> from {value}");
            let (ours, theirs) = both::<Value>(value);
            assert_eq!(ours, theirs, "Value from {value}");
        }
    }

    #[test]
    fn maps_keyed_by_numbers_read_their_keys() {
        let truth = json!({"1": true, "20": false});
        let (ours, theirs) = both::<BTreeMap<u32, bool>>(&truth);
        assert_eq!(ours, theirs);
        assert_eq!(ours, Ok(BTreeMap::from([(1, true), (20, false)])));
        let (ours, theirs) = both::<BTreeMap<u32, bool>>(&json!({"x": true}));
        assert_eq!(ours, theirs);
        assert!(ours.is_err());
    }

    #[test]
    fn webhooks_read_as_with_serde_json() {
        let webhook = json!({
            "id": "wh_1", "name": "n", "url": "https://a.example/h", "events": ["TicketCreated"],
            "conditions": [{"id": 1, "field": "subject", "operator": "contains", "value": "x"}],
            "match": "all",
        });
        let (ours, theirs) = both::<crate::Webhook>(&webhook);
        assert_eq!(ours, theirs);
        assert!(ours.is_ok());
        for broken in [
            json!({"events": "TicketCreated"}),
            json!({"match": "most"}),
            json!({"conditions": [{"id": "one"}]}),
            json!({"enabled": 1}),
        ] {
            let (ours, theirs) = both::<crate::Webhook>(&broken);
            assert_eq!(ours, theirs, "{broken}");
        }
    }
}
