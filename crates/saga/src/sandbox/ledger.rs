//! The sandbox's ledger of charges and refunds, its payouts (kept by `payouts`), and its runtime
//! configuration. Plain synchronous logic; `book` keeps it in a file, the routes put HTTP around
//! it.

use std::collections::HashMap;

use http_edge::limits;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::payouts::{Payouts, SandboxPayout};

/// A new charge, refund or payout ref: `prefix`, `_`, a time-ordered (v7) uuid, so the file's index
/// of refs grows at its end instead of taking a random page per entry.
pub(super) fn new_ref(prefix: &str) -> String {
    format!("{prefix}_{}", Uuid::now_v7().simple())
}

/// How the sandbox behaves, settable at runtime with `PUT /config`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SandboxConfig {
    /// Added to every answer.
    pub latency_ms: u64,
    /// Share of new charges declined (0.0 ..= 1.0); payouts are never declined.
    pub decline_rate: f64,
    /// Answer every charge, refund and payout with 503.
    pub overloaded: bool,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        Self {
            latency_ms: 0,
            decline_rate: 0.0,
            overloaded: false,
        }
    }
}

/// A charge as `GET /charges` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SandboxCharge {
    pub charge_ref: String,
    pub idempotency_key: String,
    pub amount: i64,
    pub currency: String,
    pub refunded: bool,
    pub refunded_amount: i64,
    pub refund_ref: Option<String>,
    /// Charge requests seen with this idempotency key (including overloaded and repeated ones).
    pub attempts: u32,
    /// Refund requests seen for this charge.
    pub refund_attempts: u32,
}

/// Why a charge, refund or payout was not made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LedgerRefusal {
    Overloaded,
    Declined(String),
    Invalid(String),
    UnknownCharge(String),
    KeyReused(String),
    /// The change could not be written to the ledger's file (and was undone).
    Unrecorded,
}

/// The charges made so far, in order, with lookups by key and by reference; and the payouts.
#[derive(Debug, Default)]
pub struct Ledger {
    pub(crate) config: SandboxConfig,
    charges: Vec<SandboxCharge>,
    by_key: HashMap<String, usize>,
    by_ref: HashMap<String, usize>,
    attempts: HashMap<String, u32>,
    payouts: Payouts,
}

impl Ledger {
    /// A ledger holding `charges` (oldest first), the attempt counts of every charge key seen, and
    /// `payouts`.
    pub(crate) fn restore(
        charges: Vec<SandboxCharge>,
        attempts: HashMap<String, u32>,
        payouts: Payouts,
    ) -> Self {
        let mut ledger = Self {
            attempts,
            payouts,
            ..Self::default()
        };
        for (index, charge) in charges.into_iter().enumerate() {
            // A charge's row carries its attempts; the attempts table holds keys without a charge
            // (and, in files written before 2026-12-07, every key).
            let counted = ledger
                .attempts
                .entry(charge.idempotency_key.clone())
                .or_insert(0);
            *counted = (*counted).max(charge.attempts);
            ledger.by_key.insert(charge.idempotency_key.clone(), index);
            ledger.by_ref.insert(charge.charge_ref.clone(), index);
            ledger.charges.push(charge);
        }
        ledger
    }

    /// Charge requests seen with `key`.
    pub(crate) fn attempts_of(&self, key: &str) -> u32 {
        self.attempts.get(key).copied().unwrap_or(0)
    }

    pub(crate) fn charge_by_key(&self, key: &str) -> Option<&SandboxCharge> {
        self.by_key.get(key).map(|&index| &self.charges[index])
    }

    pub(crate) fn charge_by_ref(&self, charge_ref: &str) -> Option<&SandboxCharge> {
        self.by_ref
            .get(charge_ref)
            .map(|&index| &self.charges[index])
    }

    /// Charge once per key. `declined` is the sandbox's dice roll for a new charge.
    pub fn charge(
        &mut self,
        key: &str,
        amount: i64,
        currency: &str,
        declined: bool,
    ) -> Result<(SandboxCharge, bool), LedgerRefusal> {
        validate_charge(key, amount, currency)?;
        let attempts = self.attempts.entry(key.to_string()).or_insert(0);
        *attempts += 1;
        let attempts = *attempts;
        let charged = self.by_key.get(key).copied();
        if let Some(index) = charged {
            // Counted on the charge at once, an overloaded repeat included: its row is what the
            // book keeps of its attempts.
            self.charges[index].attempts = attempts;
        }
        if self.config.overloaded {
            return Err(LedgerRefusal::Overloaded);
        }
        if let Some(index) = charged {
            let charge = &self.charges[index];
            if charge.amount != amount || charge.currency != currency {
                return Err(LedgerRefusal::KeyReused(format!(
                    "idempotency key {key} was used for {} {}",
                    charge.amount, charge.currency
                )));
            }
            return Ok((charge.clone(), true));
        }
        if declined {
            return Err(LedgerRefusal::Declined(
                "card declined (sandbox)".to_string(),
            ));
        }
        let charge = SandboxCharge {
            charge_ref: new_ref("ch"),
            idempotency_key: key.to_string(),
            amount,
            currency: currency.to_string(),
            refunded: false,
            refunded_amount: 0,
            refund_ref: None,
            attempts,
            refund_attempts: 0,
        };
        self.by_key.insert(key.to_string(), self.charges.len());
        self.by_ref
            .insert(charge.charge_ref.clone(), self.charges.len());
        self.charges.push(charge.clone());
        Ok((charge, false))
    }

    /// Refund a charge once; a repeated refund returns the first refund's reference.
    pub fn refund(&mut self, charge_ref: &str, amount: i64) -> Result<String, LedgerRefusal> {
        if self.config.overloaded {
            return Err(LedgerRefusal::Overloaded);
        }
        let Some(&index) = self.by_ref.get(charge_ref) else {
            return Err(LedgerRefusal::UnknownCharge(charge_ref.to_string()));
        };
        let charge = &mut self.charges[index];
        charge.refund_attempts += 1;
        if let Some(refund_ref) = &charge.refund_ref {
            return Ok(refund_ref.clone());
        }
        if amount <= 0 || amount > charge.amount {
            return Err(LedgerRefusal::Invalid(format!(
                "refund amount {amount} must be between 1 and the charged {}",
                charge.amount
            )));
        }
        let refund_ref = new_ref("re");
        charge.refunded = true;
        charge.refunded_amount = amount;
        charge.refund_ref = Some(refund_ref.clone());
        Ok(refund_ref)
    }

    /// Pay `payee` once per key (never declined; refused while overloaded, like a charge).
    pub fn payout(
        &mut self,
        key: &str,
        payee: &str,
        amount: i64,
        currency: &str,
    ) -> Result<(SandboxPayout, bool), LedgerRefusal> {
        let overloaded = self.config.overloaded;
        self.payouts.pay(key, payee, amount, currency, overloaded)
    }

    /// Every charge, oldest first.
    #[must_use]
    pub fn charges(&self) -> &[SandboxCharge] {
        &self.charges
    }

    /// The payouts, with their lookups.
    #[must_use]
    pub fn payouts(&self) -> &Payouts {
        &self.payouts
    }
}

/// The idempotency key, amount and currency of a charge (payouts check theirs with it too).
pub(super) fn validate_charge(key: &str, amount: i64, currency: &str) -> Result<(), LedgerRefusal> {
    let invalid = |m: &str| Err(LedgerRefusal::Invalid(m.to_string()));
    if !limits::is_idempotency_key(key) {
        return invalid("idempotency_key must be 1 to 255 visible ASCII characters");
    }
    if amount < 0 {
        return invalid("amount must not be negative");
    }
    if !limits::is_currency(currency) {
        return invalid("currency must be an active ISO 4217 code, e.g. KRW");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_repeated_key_returns_the_first_charge_and_counts_attempts() {
        let mut ledger = Ledger::default();
        let (first, replayed) = ledger.charge("k1", 500, "KRW", false).expect("charged");
        assert!(!replayed);
        let (again, replayed) = ledger.charge("k1", 500, "KRW", true).expect("replayed");
        assert!(replayed, "a replay is not declined by a later dice roll");
        assert_eq!(again.charge_ref, first.charge_ref);
        assert_eq!(ledger.charges().len(), 1);
        assert_eq!(ledger.charges()[0].attempts, 2);
        let reused = ledger.charge("k1", 900, "KRW", false).unwrap_err();
        assert!(matches!(reused, LedgerRefusal::KeyReused(_)), "{reused:?}");
    }

    #[test]
    fn overloaded_attempts_are_counted_on_the_later_charge() {
        let mut ledger = Ledger::default();
        ledger.config.overloaded = true;
        assert_eq!(
            ledger.charge("k", 1, "KRW", false).unwrap_err(),
            LedgerRefusal::Overloaded
        );
        ledger.config.overloaded = false;
        let (charge, _) = ledger.charge("k", 1, "KRW", false).expect("charged");
        assert_eq!(charge.attempts, 2);
    }

    #[test]
    fn a_charge_is_refunded_at_most_once() {
        let mut ledger = Ledger::default();
        let (charge, _) = ledger.charge("k", 300, "KRW", false).expect("charged");
        let over = ledger.refund(&charge.charge_ref, 301).unwrap_err();
        assert!(matches!(over, LedgerRefusal::Invalid(_)), "{over:?}");
        let first = ledger.refund(&charge.charge_ref, 300).expect("refunded");
        let second = ledger.refund(&charge.charge_ref, 300).expect("same refund");
        assert_eq!(first, second);
        assert_eq!(ledger.charges()[0].refunded_amount, 300);
        assert_eq!(ledger.charges()[0].refund_attempts, 3);
        assert!(matches!(
            ledger.refund("ch_nope", 1),
            Err(LedgerRefusal::UnknownCharge(_))
        ));
    }

    #[test]
    fn bad_charges_are_refused() {
        let mut ledger = Ledger::default();
        for (key, amount, currency) in [("", 1, "KRW"), ("k", -1, "KRW"), ("k", 1, "krw")] {
            let refusal = ledger.charge(key, amount, currency, false).unwrap_err();
            assert!(matches!(refusal, LedgerRefusal::Invalid(_)), "{refusal:?}");
        }
        assert!(ledger.charges().is_empty());
    }
}
