//! The value codec of the store's tables: [`Json<T>`] stores a record `T`
//! as JSON bytes, so that each table's definition names its record type
//! (`TableDefinition<&str, Json<GraphRecord>>`) and a table cannot be read
//! or written as another record by mistake.
//!
//! redb decodes values infallibly, but JSON from disk can be corrupt; the
//! codec therefore hands out the stored bytes as a [`Stored<T>`], decoded
//! on demand into a `Result` that names the table and the key
//! ([`Stored::decode`]), and never panics inside redb.
//!
//! Each record type has a [`Record::TYPE_NAME`], which redb records with
//! the table and checks when the table is opened: it is part of the schema
//! (renaming it needs a migration).

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

use redb::{TypeName, Value};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// A record kept in a table as JSON.
pub trait Record: Serialize + DeserializeOwned {
    /// The value type redb records for the table: stable across releases.
    const TYPE_NAME: &'static str;
}

/// The redb value type of a table of `T` records (never instantiated).
pub struct Json<T>(PhantomData<T>);

impl<T> fmt::Debug for Json<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Json")
    }
}

/// A record's JSON bytes as stored (read) or about to be stored (written).
pub struct Stored<'a, T> {
    bytes: Cow<'a, [u8]>,
    record: PhantomData<fn() -> T>,
}

impl<T> fmt::Debug for Stored<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Stored({} bytes)", self.bytes.len())
    }
}

impl<T: Record> Stored<'static, T> {
    /// The bytes of `record`, ready to insert.
    pub fn encode(record: &T) -> Result<Self, serde_json::Error> {
        serde_json::to_vec(record).map(Stored::raw)
    }

    /// Bytes moved unchanged from another table (a migration re-typing a
    /// table); [`Stored::decode`] checks them when they are read.
    pub fn raw(bytes: Vec<u8>) -> Self {
        Stored {
            bytes: Cow::Owned(bytes),
            record: PhantomData,
        }
    }
}

impl<T: Record> Stored<'_, T> {
    /// The record, or the JSON error of corrupt bytes.
    pub fn decode(&self) -> Result<T, serde_json::Error> {
        serde_json::from_slice(&self.bytes)
    }

    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }
}

impl<T: Record> Value for Json<T> {
    type SelfType<'a>
        = Stored<'a, T>
    where
        Self: 'a;
    type AsBytes<'a>
        = &'a [u8]
    where
        Self: 'a;

    fn fixed_width() -> Option<usize> {
        None
    }

    fn from_bytes<'a>(data: &'a [u8]) -> Stored<'a, T>
    where
        Self: 'a,
    {
        Stored {
            bytes: Cow::Borrowed(data),
            record: PhantomData,
        }
    }

    fn as_bytes<'a, 'b: 'a>(value: &'a Stored<'b, T>) -> &'a [u8]
    where
        Self: 'b,
    {
        &value.bytes
    }

    fn type_name() -> TypeName {
        TypeName::new(T::TYPE_NAME)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Point {
        x: i32,
    }

    impl Record for Point {
        const TYPE_NAME: &'static str = "smo::test::Point";
    }

    #[test]
    fn a_record_round_trips_through_its_bytes() {
        let stored = Stored::encode(&Point { x: 7 }).unwrap();
        let bytes = <Json<Point> as Value>::as_bytes(&stored);
        assert_eq!(bytes, br#"{"x":7}"#);
        let read = <Json<Point> as Value>::from_bytes(bytes);
        assert_eq!(read.decode().unwrap(), Point { x: 7 });
    }

    #[test]
    fn corrupt_bytes_are_an_error_not_a_panic() {
        let read = <Json<Point> as Value>::from_bytes(b"{\"x\":");
        assert!(read.decode().is_err());
    }

    #[test]
    fn the_type_name_is_the_records_own() {
        assert_eq!(
            <Json<Point> as Value>::type_name().name(),
            "smo::test::Point"
        );
    }
}
