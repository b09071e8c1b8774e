//! The sandbox's register of payouts to hosts: one payout per idempotency key (its own namespace,
//! apart from the charges' keys), every request counted. Plain synchronous logic like `ledger`;
//! payouts are never declined (the sandbox's `decline_rate` is for charges).

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::ledger::{new_ref, validate_charge, LedgerRefusal};

/// Longest payee the sandbox takes, in characters.
const MAX_PAYEE_CHARS: usize = 255;

/// A payout as `GET /payouts` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SandboxPayout {
    pub payout_ref: String,
    pub idempotency_key: String,
    pub payee: String,
    pub amount: i64,
    pub currency: String,
    /// Payout requests seen with this idempotency key (including overloaded and repeated ones).
    pub attempts: u32,
}

/// The payouts made so far, in order, with a lookup by key.
#[derive(Debug, Default)]
pub struct Payouts {
    payouts: Vec<SandboxPayout>,
    by_key: HashMap<String, usize>,
    attempts: HashMap<String, u32>,
}

impl Payouts {
    /// A register holding `payouts` (oldest first) and the attempt counts of every key seen.
    pub(crate) fn restore(payouts: Vec<SandboxPayout>, attempts: HashMap<String, u32>) -> Self {
        let mut register = Self {
            attempts,
            ..Self::default()
        };
        for (index, payout) in payouts.into_iter().enumerate() {
            // A payout's row carries its attempts (see `Ledger::restore`).
            let counted = register
                .attempts
                .entry(payout.idempotency_key.clone())
                .or_insert(0);
            *counted = (*counted).max(payout.attempts);
            register
                .by_key
                .insert(payout.idempotency_key.clone(), index);
            register.payouts.push(payout);
        }
        register
    }

    /// Payout requests seen with `key`.
    pub(crate) fn attempts_of(&self, key: &str) -> u32 {
        self.attempts.get(key).copied().unwrap_or(0)
    }

    pub(crate) fn by_key(&self, key: &str) -> Option<&SandboxPayout> {
        self.by_key.get(key).map(|&index| &self.payouts[index])
    }

    /// Pay once per key; a repeated key returns the first payout (`true`: a replay). `overloaded`
    /// refuses the request after counting it.
    pub fn pay(
        &mut self,
        key: &str,
        payee: &str,
        amount: i64,
        currency: &str,
        overloaded: bool,
    ) -> Result<(SandboxPayout, bool), LedgerRefusal> {
        validate_payout(key, payee, amount, currency)?;
        let attempts = self.attempts.entry(key.to_string()).or_insert(0);
        *attempts += 1;
        let attempts = *attempts;
        let paid = self.by_key.get(key).copied();
        if let Some(index) = paid {
            // Counted on the payout at once, an overloaded repeat included, so the list is current.
            self.payouts[index].attempts = attempts;
        }
        if overloaded {
            return Err(LedgerRefusal::Overloaded);
        }
        if let Some(index) = paid {
            let payout = &self.payouts[index];
            if payout.payee != payee || payout.amount != amount || payout.currency != currency {
                return Err(LedgerRefusal::KeyReused(format!(
                    "idempotency key {key} was used for a payout of {} {} to {}",
                    payout.amount, payout.currency, payout.payee
                )));
            }
            return Ok((payout.clone(), true));
        }
        let payout = SandboxPayout {
            payout_ref: new_ref("po"),
            idempotency_key: key.to_string(),
            payee: payee.to_string(),
            amount,
            currency: currency.to_string(),
            attempts,
        };
        self.by_key.insert(key.to_string(), self.payouts.len());
        self.payouts.push(payout.clone());
        Ok((payout, false))
    }

    /// Every payout, oldest first.
    #[must_use]
    pub fn all(&self) -> &[SandboxPayout] {
        &self.payouts
    }
}

/// A charge's rules for the key and currency, and a payout moves at least one minor unit to a
/// named payee.
fn validate_payout(
    key: &str,
    payee: &str,
    amount: i64,
    currency: &str,
) -> Result<(), LedgerRefusal> {
    validate_charge(key, amount, currency)?;
    if amount < 1 {
        return Err(LedgerRefusal::Invalid(
            "a payout's amount must be at least 1".to_string(),
        ));
    }
    let named = !payee.trim().is_empty()
        && payee.chars().count() <= MAX_PAYEE_CHARS
        && !payee.chars().any(char::is_control);
    if !named {
        return Err(LedgerRefusal::Invalid(format!(
            "payee must be 1 to {MAX_PAYEE_CHARS} characters, not blank, without control characters"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_repeated_key_returns_the_first_payout_and_counts_attempts() {
        let mut payouts = Payouts::default();
        let (first, replayed) = payouts
            .pay("po-1", "host-1", 9_000, "KRW", false)
            .expect("paid");
        assert!(!replayed);
        let (again, replayed) = payouts
            .pay("po-1", "host-1", 9_000, "KRW", false)
            .expect("replayed");
        assert!(replayed);
        assert_eq!(again.payout_ref, first.payout_ref);
        assert_eq!(payouts.all().len(), 1);
        assert_eq!(payouts.all()[0].attempts, 2);
    }

    #[test]
    fn a_key_reused_for_another_payout_is_refused() {
        let mut payouts = Payouts::default();
        payouts
            .pay("po-1", "host-1", 9_000, "KRW", false)
            .expect("paid");
        for (payee, amount, currency) in [
            ("host-1", 9_001, "KRW"),
            ("host-2", 9_000, "KRW"),
            ("host-1", 9_000, "USD"),
        ] {
            let refusal = payouts
                .pay("po-1", payee, amount, currency, false)
                .unwrap_err();
            assert!(
                matches!(refusal, LedgerRefusal::KeyReused(_)),
                "{refusal:?}"
            );
        }
        assert_eq!(payouts.all().len(), 1);
        assert_eq!(payouts.all()[0].amount, 9_000);
        assert_eq!(payouts.all()[0].attempts, 4);
    }

    #[test]
    fn overloaded_attempts_are_counted_on_the_later_payout() {
        let mut payouts = Payouts::default();
        let refused = payouts.pay("po", "host", 1, "KRW", true).unwrap_err();
        assert_eq!(refused, LedgerRefusal::Overloaded);
        assert!(payouts.all().is_empty());
        let (payout, _) = payouts.pay("po", "host", 1, "KRW", false).expect("paid");
        assert_eq!(payout.attempts, 2);
        payouts.pay("po", "host", 1, "KRW", true).unwrap_err();
        assert_eq!(payouts.all()[0].attempts, 3, "listed at once");
    }

    #[test]
    fn bad_payouts_are_refused_uncounted() {
        let mut payouts = Payouts::default();
        let long = "h".repeat(MAX_PAYEE_CHARS + 1);
        for (key, payee, amount, currency) in [
            ("", "host", 1, "KRW"),
            ("po", "host", 0, "KRW"),
            ("po", "host", -1, "KRW"),
            ("po", "host", 1, "krw"),
            ("po", "host", 1, "XTS"),
            ("po", "  ", 1, "KRW"),
            ("po", "ho\nst", 1, "KRW"),
            ("po", long.as_str(), 1, "KRW"),
        ] {
            let refusal = payouts
                .pay(key, payee, amount, currency, false)
                .unwrap_err();
            assert!(matches!(refusal, LedgerRefusal::Invalid(_)), "{refusal:?}");
        }
        assert!(payouts.all().is_empty());
        assert_eq!(payouts.attempts_of("po"), 0);
    }
}
