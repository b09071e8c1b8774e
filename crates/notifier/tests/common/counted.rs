//! A real webhook store, wrapped only to count two kinds of look: listings of the subscriptions
//! (the dispatcher's and the senders' supervisor's) and each sender's reads of its open deliveries.
#![allow(dead_code)] // each test crate uses its own part

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use notifier::model::Redrive;
use notifier::{Delivery, SqliteWebhooks, Subscription, WebhookStore};
use readmodel::{Page, PageRequest, ViewError};
use uuid::Uuid;

pub struct Counted {
    store: SqliteWebhooks,
    listed: AtomicUsize,
    looks: Mutex<HashMap<Uuid, usize>>,
}

impl Counted {
    pub fn new(store: SqliteWebhooks) -> Self {
        Self {
            store,
            listed: AtomicUsize::new(0),
            looks: Mutex::default(),
        }
    }

    /// How often the subscriptions were listed.
    pub fn listed(&self) -> usize {
        self.listed.load(Ordering::SeqCst)
    }

    /// How often each subscription's open deliveries were read.
    pub fn looks(&self) -> HashMap<Uuid, usize> {
        self.looks.lock().expect("counts").clone()
    }
}

#[async_trait]
impl WebhookStore for Counted {
    async fn add_subscription(&self, subscription: &Subscription) -> Result<(), ViewError> {
        self.store.add_subscription(subscription).await
    }
    async fn subscriptions(&self) -> Result<Vec<Subscription>, ViewError> {
        self.listed.fetch_add(1, Ordering::SeqCst);
        self.store.subscriptions().await
    }
    async fn subscription(&self, id: Uuid) -> Result<Option<Subscription>, ViewError> {
        self.store.subscription(id).await
    }
    async fn remove_subscription(&self, id: Uuid) -> Result<bool, ViewError> {
        self.store.remove_subscription(id).await
    }
    async fn cursor(&self) -> Result<u64, ViewError> {
        self.store.cursor().await
    }
    async fn enqueue(&self, deliveries: &[Delivery], cursor: u64) -> Result<(), ViewError> {
        self.store.enqueue(deliveries, cursor).await
    }
    async fn open_deliveries(&self, id: Uuid, limit: usize) -> Result<Vec<Delivery>, ViewError> {
        *self.looks.lock().expect("counts").entry(id).or_default() += 1;
        self.store.open_deliveries(id, limit).await
    }
    async fn record_attempt(&self, delivery: &Delivery) -> Result<bool, ViewError> {
        self.store.record_attempt(delivery).await
    }
    async fn record_attempts(&self, deliveries: &[Delivery]) -> Result<usize, ViewError> {
        self.store.record_attempts(deliveries).await
    }
    async fn deliveries(&self, id: Uuid, page: &PageRequest) -> Result<Page<Delivery>, ViewError> {
        self.store.deliveries(id, page).await
    }
    async fn redrive(
        &self,
        id: Uuid,
        delivery: Uuid,
        now: DateTime<Utc>,
    ) -> Result<Redrive, ViewError> {
        self.store.redrive(id, delivery, now).await
    }
}
