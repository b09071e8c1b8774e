//! My Page's commands: a customer records their profile (each field sealed with AES-GCM under
//! their own data key before it reaches the log), and erasure, by the customer or the platform
//! admin: the key is destroyed first (from then on nothing sealed under it can be read, whatever
//! follows), then `CustomerErased` is recorded, which tells the views to scrub what they hold.
//! Retrying an erasure that crashed between the two steps completes it.

use std::sync::Arc;

use domain::customer::{CustomerCommand, CustomerError, SealedProfile};
use eventlog::LogError;
use keys::{KeyStore, KeyStoreError};
use uuid::Uuid;

use super::{Accepted, CommandServices, Invocation, Permitted};
use crate::error::CommandError;
use crate::input::{EraseCustomer, EraseMe, RecordProfile};
use crate::store::execute;

impl From<CustomerError> for CommandError {
    fn from(error: CustomerError) -> Self {
        let detail = error.to_string();
        match error {
            CustomerError::Erased => Self::wrong_state("customer-erased", detail),
            CustomerError::NotSealed(_) => Self::Internal(detail),
        }
    }
}

impl From<KeyStoreError> for CommandError {
    fn from(error: KeyStoreError) -> Self {
        match error {
            KeyStoreError::Erased => Self::from(CustomerError::Erased),
            KeyStoreError::Unavailable(cause) => {
                Self::Store(LogError::Unavailable(format!("key store: {cause}")))
            }
            KeyStoreError::Corrupt(cause) => Self::Internal(format!("key store: {cause}")),
        }
    }
}

/// The correlation id of a customer's commands: one per customer, stable.
fn correlation(customer_id: &str) -> Uuid {
    Uuid::new_v5(
        &Uuid::NAMESPACE_OID,
        format!("customer-{customer_id}").as_bytes(),
    )
}

impl CommandServices {
    fn keys(&self) -> Result<&Arc<dyn KeyStore>, CommandError> {
        self.keys.as_ref().ok_or_else(|| {
            CommandError::Internal("no key store configured: profiles are not taken".to_string())
        })
    }

    /// `PUT /me/profile`: seal and record the caller's profile; 409 `customer-erased` after erasure.
    pub async fn record_profile(
        &self,
        caller: &Permitted<RecordProfile>,
        input: RecordProfile,
    ) -> Result<Accepted, CommandError> {
        let invocation = caller.invocation();
        let customer_id = invocation.principal.sub.clone();
        let operation = format!("profile:{customer_id}");
        let fields = input.clone();
        self.idempotent(invocation, &operation, &input, |cause| async move {
            let key = self.keys()?.key_for_writing(&customer_id).await?;
            let seal = |field: &str, text: &str| keys::seal(&key, &customer_id, field, text);
            let profile = SealedProfile {
                name: seal("name", &fields.name),
                email: seal("email", &fields.email),
                phone: seal("phone", &fields.phone),
            };
            let ctx = self.context(invocation, correlation(&customer_id), cause);
            let customers = &self.store.customers;
            let command = CustomerCommand::RecordProfile(profile);
            let executed = execute(customers, &customer_id, &command, &ctx).await?;
            let position = executed.outcome.map_or(0, |o| o.position);
            Ok(Accepted::new(customer_id.clone(), "recorded", position))
        })
        .await
    }

    /// `POST /me/erase`: the caller erases their own personal data.
    pub async fn erase_me(&self, caller: &Permitted<EraseMe>) -> Result<Accepted, CommandError> {
        let invocation = caller.invocation();
        let customer_id = invocation.principal.sub.clone();
        self.erase(invocation, &customer_id, "asked by the customer")
            .await
    }

    /// `POST /customers/{id}/erase`: the platform admin erases a customer's personal data.
    pub async fn erase_customer(
        &self,
        caller: &Permitted<EraseCustomer>,
        customer_id: &str,
        input: EraseCustomer,
    ) -> Result<Accepted, CommandError> {
        self.erase(caller.invocation(), customer_id, &input.reason)
            .await
    }

    /// Destroy the key, then record the erasure (a no-op when recorded already). Idempotent.
    async fn erase(
        &self,
        invocation: &Invocation,
        customer_id: &str,
        reason: &str,
    ) -> Result<Accepted, CommandError> {
        self.keys()?.destroy(customer_id).await?;
        let cause = super::Cause {
            id: invocation.request_id,
            keyed: false,
        };
        let ctx = self.context(invocation, correlation(customer_id), cause);
        let command = CustomerCommand::Erase {
            erased_by: invocation.principal.actor(),
            reason: reason.to_string(),
        };
        let executed = execute(&self.store.customers, customer_id, &command, &ctx).await?;
        let position = executed.outcome.map_or(0, |o| o.position);
        Ok(Accepted::new(customer_id.to_string(), "erased", position))
    }
}
