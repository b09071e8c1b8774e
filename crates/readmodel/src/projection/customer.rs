//! How customer events change the customers view: a recorded profile replaces the sealed name and
//! phone (the email is no admin's business), `CustomerErased` scrubs them for good. The fields stay
//! sealed as the log has them; only the query side opens them, with the customer's key.

use domain::customer::CustomerEvent;

use super::{Projection, ViewSource};
use crate::{CustomerView, ViewError, ViewEvent};

impl<S: ViewSource> Projection<'_, S> {
    pub(super) fn on_customer(
        &mut self,
        event: &ViewEvent,
        customer_id: &str,
        inner: &CustomerEvent,
    ) -> Result<(), ViewError> {
        let (name, phone, erased) = match inner {
            CustomerEvent::CustomerProfileRecorded { profile } => (
                Some(profile.name.clone()),
                Some(profile.phone.clone()),
                false,
            ),
            CustomerEvent::CustomerErased { .. } => (None, None, true),
        };
        let fresh = CustomerView {
            customer_id: customer_id.to_string(),
            name: name.clone(),
            phone: phone.clone(),
            erased,
            position: event.position,
        };
        if !self.create_customer(fresh)? {
            self.update_customer(event, customer_id, |view| {
                // Once erased, always erased (the domain records no profile after it anyway).
                if !view.erased {
                    view.name = name;
                    view.phone = phone;
                    view.erased = erased;
                }
            })?;
        }
        Ok(())
    }
}
