//! `stayledger token`: mint a JWT signed with the data dir's secret. The secret must be there
//! already (a running deployment's), unless `--create-secret` asks for a new one.

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
    let data_dir = &args.store.data_dir;
    let secret = if args.create_secret {
        secret::load_or_create(data_dir)?
    } else {
        secret::load_existing(data_dir)?
    };
    let auth = Auth::new(secret);
    let claims = Claims::new(args.sub.clone(), role, args.lodgings.clone(), args.ttl);
    Ok(auth.mint(&claims)?)
}
