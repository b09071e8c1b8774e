//! Writers racing on new customers, through two instances over one backing store.

use std::sync::Arc;

use futures::future::join_all;

use super::{state, FreshKeyStores};
use crate::{DataKey, KeyState, KeyStore, KeyStoreError};

const CUSTOMERS: usize = 16;
const CALLS_PER_INSTANCE: usize = 3;

fn spawn_writing(
    store: &Arc<dyn KeyStore>,
    customer_id: &str,
) -> tokio::task::JoinHandle<Result<DataKey, KeyStoreError>> {
    let (store, id) = (Arc::clone(store), customer_id.to_owned());
    tokio::spawn(async move { store.key_for_writing(&id).await })
}

/// Concurrent first uses of a new customer, from both instances, all get the one stored key.
pub async fn concurrent_first_use_agrees_on_one_key(stores: &dyn FreshKeyStores) {
    let [store, other] = stores.fresh_pair().await;
    let mut calls = Vec::new();
    for n in 0..CUSTOMERS {
        let id = format!("racing-{n}");
        for _ in 0..CALLS_PER_INSTANCE {
            calls.push((id.clone(), spawn_writing(&store, &id)));
            calls.push((id.clone(), spawn_writing(&other, &id)));
        }
    }
    let (ids, handles): (Vec<String>, Vec<_>) = calls.into_iter().unzip();
    let results = join_all(handles).await;
    for (id, result) in ids.iter().zip(results) {
        let key = result
            .expect("writer task")
            .unwrap_or_else(|e| panic!("key for writing {id}: {e}"));
        assert_eq!(
            state(&*store, id).await,
            KeyState::Active(key.clone()),
            "{id}: a racing writer got a key that is not the stored one"
        );
        assert_eq!(state(&*other, id).await, KeyState::Active(key));
    }
}

/// A destroy racing first use of a new customer: the writer gets a key (destroyed right after)
/// or `Erased`, and whichever won, the customer ends erased: no key is made after the destroy.
pub async fn destroy_racing_first_use_ends_erased(stores: &dyn FreshKeyStores) {
    let [store, other] = stores.fresh_pair().await;
    for n in 0..CUSTOMERS {
        let id = format!("erasing-{n}");
        let writer = spawn_writing(if n % 2 == 0 { &store } else { &other }, &id);
        let destroyer = {
            let (on, id) = (
                Arc::clone(if n % 2 == 0 { &other } else { &store }),
                id.clone(),
            );
            tokio::spawn(async move { on.destroy(&id).await })
        };
        let written = writer.await.expect("writer task");
        destroyer
            .await
            .expect("destroyer task")
            .unwrap_or_else(|e| panic!("destroy key of {id}: {e}"));
        assert!(
            matches!(written, Ok(_) | Err(KeyStoreError::Erased)),
            "{id}: {written:?}"
        );
        assert_eq!(state(&*store, &id).await, KeyState::Destroyed, "{id}");
        assert_eq!(
            other.key_for_writing(&id).await,
            Err(KeyStoreError::Erased),
            "{id}"
        );
    }
}
