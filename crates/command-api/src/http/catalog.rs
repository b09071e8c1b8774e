//! The catalog's command routes: `POST /listings`, `POST /listings/{id}/approve|reject`,
//! `PATCH /lodgings/{id}`, `POST /lodgings/{id}/close` (`POST /lodgings` is beside the others).

use axum::extract::Path;
use http_edge::Problem;
use serde_json::{Map, Value};

use super::Route;
use crate::error::CommandError;
use crate::input::{ApproveListing, CloseLodging, RejectListing, SubmitListing, UpdateLodging};
use crate::services::{Accepted, CommandServices, Permitted};

/// A lodging id from the path; what cannot be an id names no lodging (404).
fn lodging_id(Path(raw): Path<String>) -> Result<String, CommandError> {
    if http_edge::body::is_identifier(&raw) {
        Ok(raw)
    } else {
        Err(CommandError::NotFound(format!("no lodging {raw}")))
    }
}

no_path_route!(
    SubmitListing,
    |services, caller, input| services.submit_listing(caller, input),
    location: "/lodgings"
);

/// The routes on an existing lodging: its id from the path, one service call.
macro_rules! lodging_route {
    ($input:ty, $service:ident) => {
        impl Route for $input {
            type Path = Path<String>;
            type Target = String;

            fn read(body: &Map<String, Value>) -> Result<Self, Problem> {
                Self::parse(body)
            }

            fn target(path: Path<String>) -> Result<String, CommandError> {
                lodging_id(path)
            }

            async fn call(
                services: &CommandServices,
                caller: &Permitted<Self>,
                id: String,
                input: Self,
            ) -> Result<Accepted, CommandError> {
                services.$service(caller, &id, input).await
            }
        }
    };
}

lodging_route!(ApproveListing, approve_listing);
lodging_route!(RejectListing, reject_listing);
lodging_route!(UpdateLodging, update_lodging);
lodging_route!(CloseLodging, close_lodging);
