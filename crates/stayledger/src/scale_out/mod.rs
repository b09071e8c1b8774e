//! Scale-out of the consumers: `stayledger projector|saga|notifier --shards N --instance K` runs the shards
//! this instance holds a lease on, and takes over the shards of an instance that died once their
//! leases expire (see `group`). Projector shards split the views by lodging
//! ([`projector::ProjectorShard`]); saga shards split the reservations ([`saga::Shard`]), each
//! with its own timer file. Where the leases live (`crate::lease`): in `leases.db` in the data dir,
//! so the instances of a consumer share one host (or one volume on one host), except a projector
//! whose views are in MongoDB (`--mongodb-url`), whose leases are in MongoDB too, so its instances
//! may run on several hosts. See docs/decisions/0006-scale-out-by-shards-and-leases.md, and for the
//! saga across hosts on EventStoreDB, its consumer group (0010).
//!
//! Owns: which shards a process runs, fencing, the merged views checkpoint.
//! Must not: decide what a shard owns (the projector and saga crates do), hold business rules, or
//! know how a lease store keeps its leases.

mod group;
mod notifier;
mod work;

use std::time::Duration;

use crate::cli::ScaleOutArgs;

pub(crate) use notifier::notifier;
pub use work::{projector, saga};

/// A validated scale-out configuration of one consumer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Plan {
    /// `projector` or `saga`: the prefix of its lease names.
    pub kind: &'static str,
    pub shards: u32,
    pub instance: u32,
    pub instances: u32,
    pub ttl: Duration,
    pub renew: Duration,
}

impl ScaleOutArgs {
    /// The plan of `kind`, or `None` without `--shards`.
    pub fn plan(&self, kind: &'static str) -> anyhow::Result<Option<Plan>> {
        let Some(shards) = self.shards else {
            return Ok(None);
        };
        let instances = self.instances.unwrap_or(shards);
        anyhow::ensure!(shards > 0, "--shards must be at least 1");
        anyhow::ensure!(instances > 0, "--instances must be at least 1");
        anyhow::ensure!(
            self.instance < instances,
            "--instance {} must be below --instances {instances}",
            self.instance
        );
        anyhow::ensure!(
            !self.lease_renew.is_zero() && self.lease_renew.saturating_mul(2) <= self.lease_ttl,
            "--lease-renew ({:?}) must be above zero and at most half of --lease-ttl ({:?})",
            self.lease_renew,
            self.lease_ttl
        );
        Ok(Some(Plan {
            kind,
            shards,
            instance: self.instance,
            instances,
            ttl: self.lease_ttl,
            renew: self.lease_renew,
        }))
    }
}

impl Plan {
    /// The instance that runs `shard` while it is up.
    #[must_use]
    pub fn preferred_instance(&self, shard: u32) -> u32 {
        shard % self.instances
    }

    #[must_use]
    pub fn shard_lease(&self, shard: u32) -> String {
        format!("{}/shard-{shard}-of-{}", self.kind, self.shards)
    }

    #[must_use]
    pub fn member_lease(&self, instance: u32) -> String {
        format!("{}/instance-{instance}-of-{}", self.kind, self.instances)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(shards: Option<u32>, instance: u32) -> ScaleOutArgs {
        ScaleOutArgs {
            shards,
            instance,
            instances: None,
            lease_ttl: Duration::from_secs(3),
            lease_renew: Duration::from_secs(1),
        }
    }

    #[test]
    fn plans_are_checked() {
        assert_eq!(args(None, 0).plan("saga").ok(), Some(None));
        let plan = args(Some(4), 1).plan("saga").expect("valid").expect("some");
        assert_eq!((plan.instances, plan.preferred_instance(3)), (4, 3));
        assert_eq!(plan.shard_lease(2), "saga/shard-2-of-4");
        assert_eq!(plan.member_lease(1), "saga/instance-1-of-4");
        assert!(
            args(Some(2), 2).plan("saga").is_err(),
            "instance out of range"
        );
        assert!(args(Some(0), 0).plan("saga").is_err());
        let mut slow = args(Some(2), 0);
        slow.lease_renew = Duration::from_secs(2);
        assert!(slow.plan("projector").is_err(), "renew above half the TTL");
        let mut fewer = args(Some(4), 1);
        fewer.instances = Some(2);
        let plan = fewer.plan("projector").expect("valid").expect("some");
        let mine: Vec<u32> = (0..4)
            .filter(|s| plan.preferred_instance(*s) == 1)
            .collect();
        assert_eq!(mine, [1, 3]);
    }
}
