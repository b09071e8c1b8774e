//! `stayledger token`: mint a JWT signed with the data dir's secret.

use http_edge::{Auth, Claims, Role};

use crate::cli::{self, TokenArgs};
use crate::data_dir::secret;

/// Mint the token described by `args`.
pub fn mint(args: &TokenArgs) -> anyhow::Result<String> {
    let role = match args.role {
        cli::Role::Customer => Role::Customer,
        cli::Role::Admin => Role::Admin,
        cli::Role::Auditor => Role::Auditor,
    };
    anyhow::ensure!(!args.sub.trim().is_empty(), "--sub must not be empty");
    anyhow::ensure!(
        role == Role::Admin || args.lodgings.is_empty(),
        "--lodging is only for admins"
    );
    let secret = secret::load_or_create(&args.store.data_dir)?;
    let auth = Auth::new(secret);
    let claims = Claims::new(args.sub.clone(), role, args.lodgings.clone(), args.ttl);
    Ok(auth.mint(&claims)?)
}
