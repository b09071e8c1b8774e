//! What one notifier process runs the webhooks with, and the dispatcher and senders made of it
//! (`serve`, `stayledger notifier`, each notifier shard).

use std::sync::Arc;

use keys::KeyStore;
use readmodel::inbox::InboxStore;
use readmodel::ViewStore;
use tokio::sync::Notify;

use crate::dispatch::Dispatcher;
use crate::policy::RetryPolicy;
use crate::sender::Senders;
use crate::store::WebhookStore;

/// The stores and settings of the webhooks in one process.
#[derive(Clone)]
pub struct WebhookParts {
    pub inbox: Arc<dyn InboxStore>,
    pub views: Arc<dyn ViewStore>,
    pub store: Arc<dyn WebhookStore>,
    pub keys: Arc<dyn KeyStore>,
    pub policy: RetryPolicy,
    pub allow_private: bool,
    /// Wakes the senders when this process queues deliveries or changes subscriptions.
    pub queued: Arc<Notify>,
}

impl WebhookParts {
    /// The dispatcher, taking inbox entries the views (`views_checkpoint`) and the inbox
    /// (`inbox_checkpoint`) have both passed.
    #[must_use]
    pub fn dispatcher(&self, views_checkpoint: &str, inbox_checkpoint: &str) -> Dispatcher {
        Dispatcher {
            inbox: Arc::clone(&self.inbox),
            views: Arc::clone(&self.views),
            views_checkpoint: views_checkpoint.to_string(),
            inbox_checkpoint: inbox_checkpoint.to_string(),
            store: Arc::clone(&self.store),
            queued: Arc::clone(&self.queued),
            hosts: crate::dispatch::Hosts::default(),
            inbox_moved: None,
        }
    }

    /// The senders of the subscriptions of `shard`, on their own HTTP client.
    pub fn senders(&self, shard: eventlog::Partition) -> reqwest::Result<Senders> {
        Ok(Senders {
            store: Arc::clone(&self.store),
            keys: Arc::clone(&self.keys),
            policy: self.policy,
            client: crate::guard::client(self.allow_private, self.policy.timeout)?,
            queued: Arc::clone(&self.queued),
            allow_private: self.allow_private,
            shard,
        })
    }
}
