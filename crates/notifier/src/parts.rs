//! What one notifier process runs the webhooks with, and the dispatcher and senders made of it
//! (`serve`, `stayledger notifier`, each notifier shard).

use std::sync::Arc;

use keys::KeyStore;
use readmodel::inbox::InboxStore;
use readmodel::ViewStore;

use crate::dispatch::Dispatcher;
use crate::policy::RetryPolicy;
use crate::sender::Senders;
use crate::store::WebhookStore;
use crate::wakeups::Wakeups;

/// The stores and settings of the webhooks in one process.
#[derive(Clone)]
pub struct WebhookParts {
    pub inbox: Arc<dyn InboxStore>,
    pub views: Arc<dyn ViewStore>,
    pub store: Arc<dyn WebhookStore>,
    pub keys: Arc<dyn KeyStore>,
    pub policy: RetryPolicy,
    pub allow_private: bool,
    /// Wakes a subscription's sender when this process queues deliveries for it, and the senders'
    /// supervisor when it changes subscriptions.
    pub wakeups: Arc<Wakeups>,
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
            wakeups: Arc::clone(&self.wakeups),
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
            wakeups: Arc::clone(&self.wakeups),
            allow_private: self.allow_private,
            shard,
        })
    }
}
