//! Customer (stream `customer-{customer_id}`): a customer's profile for "My Page" and the admin's
//! view of a guest, and its erasure. Personal fields reach this aggregate only sealed (AES-GCM
//! under the customer's own data key, kept outside the log: the `keys` crate); the domain never
//! sees plaintext. Erasure (`CustomerErased`) is final: the key is destroyed, so every sealed field
//! in the log reads as erased from then on, and no profile is recorded again.

use serde::{Deserialize, Serialize};

use crate::{impl_domain_event, Aggregate, Timestamp};

/// The personal fields, each sealed text (`v1:...`) under the customer's data key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SealedProfile {
    pub name: String,
    pub email: String,
    pub phone: String,
}

impl SealedProfile {
    /// The fields by name, in a fixed order (the name is the field's AAD when sealed).
    #[must_use]
    pub fn fields(&self) -> [(&'static str, &str); 3] {
        [
            ("name", &self.name),
            ("email", &self.email),
            ("phone", &self.phone),
        ]
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
pub enum CustomerEvent {
    CustomerProfileRecorded {
        profile: SealedProfile,
    },
    /// The customer's key was destroyed: by the customer (`erased_by` their id) or the platform.
    CustomerErased {
        erased_by: String,
        reason: String,
    },
}

impl_domain_event!(CustomerEvent {
    CustomerProfileRecorded,
    CustomerErased,
});

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum CustomerCommand {
    RecordProfile(SealedProfile),
    Erase { erased_by: String, reason: String },
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Customer {
    pub profile: Option<SealedProfile>,
    pub erased: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CustomerError {
    #[error("this customer's personal data was erased: no profile is recorded again")]
    Erased,
    #[error("field {0} is not sealed (personal data is stored only encrypted)")]
    NotSealed(&'static str),
}

/// The prefix every sealed field carries (the `keys` crate's format version).
pub const SEALED_PREFIX: &str = "v1:";

/// The Customer aggregate.
pub struct CustomerAggregate;

impl Aggregate for CustomerAggregate {
    const STREAM_PREFIX: &'static str = crate::StreamKind::Customer.prefix();
    type State = Customer;
    type Command = CustomerCommand;
    type Event = CustomerEvent;
    type Error = CustomerError;

    fn decide(
        state: &Customer,
        command: &CustomerCommand,
        _now: Timestamp,
    ) -> Result<Vec<CustomerEvent>, CustomerError> {
        match command {
            CustomerCommand::RecordProfile(_) if state.erased => Err(CustomerError::Erased),
            CustomerCommand::RecordProfile(profile) => {
                if let Some((field, _)) = profile
                    .fields()
                    .into_iter()
                    .find(|(_, value)| !value.starts_with(SEALED_PREFIX))
                {
                    return Err(CustomerError::NotSealed(field));
                }
                Ok(vec![CustomerEvent::CustomerProfileRecorded {
                    profile: profile.clone(),
                }])
            }
            // Erased already: nothing more to destroy.
            CustomerCommand::Erase { .. } if state.erased => Ok(vec![]),
            CustomerCommand::Erase { erased_by, reason } => {
                Ok(vec![CustomerEvent::CustomerErased {
                    erased_by: erased_by.clone(),
                    reason: reason.clone(),
                }])
            }
        }
    }

    fn evolve(mut state: Customer, event: &CustomerEvent) -> Customer {
        match event {
            CustomerEvent::CustomerProfileRecorded { profile } => {
                state.profile = Some(profile.clone());
            }
            CustomerEvent::CustomerErased { .. } => {
                state.erased = true;
                state.profile = None;
            }
        }
        state
    }
}

#[cfg(test)]
mod tests;
