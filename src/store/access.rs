//! Reading the tables: typed records from the [`Json`] tables and JSON
//! values from the untyped meta table, with errors that name the table
//! and the key.

use redb::{ReadTransaction, ReadableTable, TableDefinition, TableHandle};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::codec::{Json, Record, Stored};
use super::records::prefix_end;
use super::tx::{Journal, Table};
use super::{StoreError, tables};

pub(super) fn read_err<E: Into<redb::Error>>(what: &str) -> impl FnOnce(E) -> StoreError + '_ {
    move |source| StoreError::Read {
        what: what.to_owned(),
        source: source.into(),
    }
}

pub(super) fn write_err<E: Into<redb::Error>>(what: &str) -> impl FnOnce(E) -> StoreError + '_ {
    move |source| StoreError::Write {
        what: what.to_owned(),
        source: source.into(),
    }
}

pub(super) fn open_read<K: redb::Key + 'static, V: redb::Value + 'static>(
    txn: &ReadTransaction,
    table: TableDefinition<'static, K, V>,
) -> Result<redb::ReadOnlyTable<K, V>, StoreError> {
    txn.open_table(table).map_err(read_err(table.name()))
}

/// JSON bytes of an untyped table (the meta table, earlier schemas).
pub(super) fn encode<T: Serialize + ?Sized>(
    table: impl TableHandle,
    key: &str,
    value: &T,
) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(value).map_err(|source| StoreError::Encode {
        table: table.name().to_owned(),
        key: key.to_owned(),
        source,
    })
}

/// A value of an untyped table (the meta table, earlier schemas).
pub(super) fn decode<T: DeserializeOwned>(
    table: impl TableHandle,
    key: &str,
    bytes: &[u8],
) -> Result<T, StoreError> {
    serde_json::from_slice(bytes).map_err(|source| StoreError::Corrupt {
        table: table.name().to_owned(),
        key: key.to_owned(),
        source,
    })
}

/// A record read from a typed table, or the table and key of corrupt bytes.
pub(super) fn record<T: Record>(
    table: impl TableHandle,
    key: &str,
    stored: &Stored<'_, T>,
) -> Result<T, StoreError> {
    stored.decode().map_err(|source| StoreError::Corrupt {
        table: table.name().to_owned(),
        key: key.to_owned(),
        source,
    })
}

pub(super) fn meta<T: DeserializeOwned>(
    table: &impl ReadableTable<&'static str, &'static [u8]>,
    key: &str,
) -> Result<Option<T>, StoreError> {
    match table.get(key).map_err(read_err(tables::META.name()))? {
        Some(bytes) => decode(tables::META, key, bytes.value()).map(Some),
        None => Ok(None),
    }
}

pub(super) fn get<T: Record>(
    table: &impl ReadableTable<&'static str, Json<T>>,
    def: Table<T>,
    key: &str,
) -> Result<Option<T>, StoreError> {
    match table.get(key).map_err(read_err(def.name()))? {
        Some(stored) => record(def, key, &stored.value()).map(Some),
        None => Ok(None),
    }
}

pub(super) fn all<T: Record>(
    table: &impl ReadableTable<&'static str, Json<T>>,
    def: Table<T>,
) -> Result<Vec<T>, StoreError> {
    let mut records = Vec::new();
    for entry in table.iter().map_err(read_err(def.name()))? {
        let (key, stored) = entry.map_err(read_err(def.name()))?;
        records.push(record(def, key.value(), &stored.value())?);
    }
    Ok(records)
}

/// The records whose key starts with `prefix` (which ends with `/`).
pub(super) fn under<T: Record>(
    table: &impl ReadableTable<&'static str, Json<T>>,
    def: Table<T>,
    prefix: &str,
) -> Result<Vec<T>, StoreError> {
    let end = prefix_end(prefix);
    let mut records = Vec::new();
    let range = table
        .range::<&str>(prefix..end.as_str())
        .map_err(read_err(def.name()))?;
    for entry in range {
        let (key, stored) = entry.map_err(read_err(def.name()))?;
        records.push(record(def, key.value(), &stored.value())?);
    }
    Ok(records)
}

/// The newest `limit` entries of a journal, newest first.
pub(super) fn newest<T: Record>(
    table: &impl ReadableTable<u64, Json<T>>,
    def: Journal<T>,
    limit: usize,
) -> Result<Vec<T>, StoreError> {
    let mut records = Vec::new();
    for entry in table
        .iter()
        .map_err(read_err(def.name()))?
        .rev()
        .take(limit)
    {
        let (seq, stored) = entry.map_err(read_err(def.name()))?;
        records.push(record(def, &seq.value().to_string(), &stored.value())?);
    }
    Ok(records)
}
