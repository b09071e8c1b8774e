use std::path::Path;

use super::*;

/// Bytes of a key in a row that count as a trace of it: a partly overwritten key still shows,
/// and a chance match of 8 random bytes in these few pages is below 2^-40.
const TRACE: usize = 8;

/// The names of the files in `dir` whose raw bytes hold any 8 consecutive bytes of `key`
/// (database, WAL, journal, shared memory).
fn files_holding(dir: &Path, key: &DataKey) -> Vec<String> {
    let traces: Vec<&[u8]> = key.as_bytes().windows(TRACE).collect();
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("list the store's directory")
        .map(|entry| entry.expect("directory entry").path())
        .filter(|path| {
            let bytes = std::fs::read(path).expect("read a store file");
            bytes.windows(TRACE).any(|window| traces.contains(&window))
        })
        .map(|path| path.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

async fn keys_for(store: &SqliteKeyStore, range: std::ops::Range<usize>) -> Vec<(String, DataKey)> {
    let mut keys = Vec::new();
    for n in range {
        let id = format!("customer-{n}");
        let key = store.key_for_writing(&id).await.expect("key for writing");
        keys.push((id, key));
    }
    keys
}

#[tokio::test]
async fn a_destroyed_key_is_in_no_file_on_disk() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("keys.db");
    // Keys checkpointed into the database file (opening again checkpoints) ...
    let mut keys = keys_for(&SqliteKeyStore::open(&path).unwrap(), 0..20).await;
    let store = SqliteKeyStore::open(&path).expect("open key store");
    let reader = SqliteKeyStore::open(&path).expect("open a second instance");
    // ... and keys still only in the write-ahead log.
    keys.extend(keys_for(&store, 20..40).await);
    let (in_file, in_log) = (keys[7].clone(), keys[27].clone());
    // Before: one key in the database file (and in the log, whose page images hold its
    // neighbours too), the other in the log only. So the checks below can fail.
    assert!(files_holding(dir.path(), &in_file.1).contains(&"keys.db".to_string()));
    assert_eq!(files_holding(dir.path(), &in_log.1), ["keys.db-wal"]);

    for (id, _) in [&in_file, &in_log] {
        assert!(matches!(reader.key(id).await, Ok(KeyState::Active(_))));
        store.destroy(id).await.expect("destroy");
        assert_eq!(reader.key(id).await, Ok(KeyState::Destroyed));
    }

    assert_eq!(files_holding(dir.path(), &in_file.1), Vec::<String>::new());
    assert_eq!(files_holding(dir.path(), &in_log.1), Vec::<String>::new());
    for (id, key) in keys
        .iter()
        .filter(|(id, _)| *id != in_file.0 && *id != in_log.0)
    {
        assert_eq!(reader.key(id).await, Ok(KeyState::Active(key.clone())));
        assert_eq!(files_holding(dir.path(), key), ["keys.db"], "{id}");
    }
}

#[tokio::test]
async fn a_row_that_breaks_the_record_shape_is_corrupt() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let store = SqliteKeyStore::open(dir.path().join("keys.db")).expect("open key store");
    store
        .with_conn(|conn| {
            conn.execute_batch(
                "INSERT INTO keys (customer_id, key, created_at) VALUES ('text', '0123456789abcdef0123456789abcdef', 'now')",
            )
            .map_err(store_error)
        })
        .await
        .expect("insert a malformed row");
    assert!(matches!(
        store.key("text").await,
        Err(KeyStoreError::Corrupt(_))
    ));
    assert!(matches!(
        store.key_for_writing("text").await,
        Err(KeyStoreError::Corrupt(_))
    ));
}
