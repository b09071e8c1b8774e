//! The inputs of My Page: a customer's profile (`PUT /me/profile`) and erasure (`POST /me/erase`,
//! `POST /customers/{id}/erase`). A profile is personal data: its `Debug` shows no field, and an
//! invalid field is named without its value.

use std::fmt;

use serde::Serialize;
use serde_json::{Map, Value};

use http_edge::body::Fields;
use http_edge::Problem;

use super::RejectRequest;

/// The longest name, e-mail address and phone number taken.
const MAX_NAME_CHARS: usize = 100;
const MAX_EMAIL_CHARS: usize = 254;
const MAX_PHONE_CHARS: usize = 32;

/// `PUT /me/profile`: the customer's name, e-mail and phone, in plaintext until sealed.
#[derive(Clone, PartialEq, Eq, Serialize)]
pub struct RecordProfile {
    pub name: String,
    pub email: String,
    pub phone: String,
}

impl fmt::Debug for RecordProfile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RecordProfile { <personal data> }")
    }
}

fn is_email(text: &str) -> bool {
    let Some((local, domain)) = text.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains('@')
        && !text.chars().any(|c| c.is_whitespace() || c.is_control())
}

fn is_phone(text: &str) -> bool {
    let digits = text.chars().filter(char::is_ascii_digit).count();
    digits >= 4
        && text
            .chars()
            .all(|c| c.is_ascii_digit() || " +-()".contains(c))
}

impl RecordProfile {
    pub fn parse(body: &Map<String, Value>) -> Result<Self, Problem> {
        let mut f = Fields::new(body);
        let name = f.text("name", MAX_NAME_CHARS);
        let email = f.text("email", MAX_EMAIL_CHARS);
        let phone = f.text("phone", MAX_PHONE_CHARS);
        if name
            .as_deref()
            .is_some_and(|n| n.chars().any(char::is_control))
        {
            f.reject("name", "must not hold control characters");
        }
        if email.as_deref().is_some_and(|e| !is_email(e)) {
            f.reject("email", "must be an e-mail address (local@domain.tld)");
        }
        if phone.as_deref().is_some_and(|p| !is_phone(p)) {
            f.reject(
                "phone",
                "must be digits (at least 4), spaces and + - ( ) only",
            );
        }
        f.finish()?;
        match (name, email, phone) {
            (Some(name), Some(email), Some(phone)) => Ok(Self { name, email, phone }),
            _ => Err(Problem::bad_request("invalid request fields")),
        }
    }
}

/// `POST /me/erase` (the body, if any, carries nothing).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct EraseMe;

impl EraseMe {
    pub fn parse(body: &Map<String, Value>) -> Result<Self, Problem> {
        Fields::new(body).finish().map(|()| Self)
    }
}

/// `POST /customers/{id}/erase`: the platform admin erases a customer, saying why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EraseCustomer {
    pub reason: String,
}

impl EraseCustomer {
    pub fn parse(body: &Map<String, Value>) -> Result<Self, Problem> {
        RejectRequest::parse(body).map(|r| Self { reason: r.reason })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn parse(body: Value) -> Result<RecordProfile, Problem> {
        RecordProfile::parse(body.as_object().expect("object"))
    }

    #[test]
    fn a_profile_takes_a_name_an_email_and_a_phone() {
        let profile = parse(
            json!({"name": "김민지", "email": "minji@example.kr", "phone": "+82 10-1234-5678"}),
        )
        .expect("valid");
        assert_eq!(profile.name, "김민지");
        assert_eq!(format!("{profile:?}"), "RecordProfile { <personal data> }");
    }

    #[test]
    fn invalid_fields_are_named_without_their_values() {
        let problem =
            parse(json!({"name": " ", "email": "minji-at-example", "phone": "call me", "age": 3}))
                .expect_err("invalid");
        let text = serde_json::to_string(&problem).expect("json");
        for field in ["name", "email", "phone", "age"] {
            assert!(text.contains(&format!("\"{field}\"")), "{field}: {text}");
        }
        assert!(
            !text.contains("minji-at-example") && !text.contains("call me"),
            "{text}"
        );
        assert!(
            parse(json!({"name": "a", "email": "a@b.c"})).is_err(),
            "phone is required"
        );
    }
}
