//! Bearer-token authentication: JWTs signed HS256 with a configured secret (RS256 with a public key
//! optionally), claims `sub`, `role`, `lodgings` and `exp`, and the [`Principal`] extractor both APIs use.
//!
//! A request without a valid, unexpired token is answered 401 problem+json before any handler runs.

use std::fmt;
use std::sync::Arc;

use axum::extract::{FromRef, FromRequestParts};
use axum::http::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use jsonwebtoken::{
    decode, decode_header, encode, Algorithm, DecodingKey, EncodingKey, Header, Validation,
};
use serde::{Deserialize, Serialize};

use crate::problem::Problem;

/// The lodging entry of a platform admin: manages every lodging and may register new ones.
pub const ALL_LODGINGS: &str = "*";

/// Seconds of clock skew tolerated when checking `exp`.
const LEEWAY_SECS: u64 = 5;

/// Who a token speaks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Customer,
    Admin,
    Auditor,
}

impl Role {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Customer => "customer",
            Self::Admin => "admin",
            Self::Auditor => "auditor",
        }
    }
}

/// The claims of a stayledger token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub role: Role,
    /// The lodgings an admin manages; `*` = platform admin.
    #[serde(default)]
    pub lodgings: Vec<String>,
    /// Expiry, seconds since the Unix epoch.
    pub exp: u64,
}

impl Claims {
    /// Claims expiring `ttl` from now.
    #[must_use]
    pub fn new(
        sub: impl Into<String>,
        role: Role,
        lodgings: Vec<String>,
        ttl: std::time::Duration,
    ) -> Self {
        let now = u64::try_from(chrono::Utc::now().timestamp()).unwrap_or(0);
        Self {
            sub: sub.into(),
            role,
            lodgings,
            exp: now.saturating_add(ttl.as_secs()),
        }
    }
}

/// The authenticated caller of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub sub: String,
    pub role: Role,
    pub lodgings: Vec<String>,
}

impl Principal {
    /// How events name this caller: `role:sub`, e.g. `customer:c-1`.
    #[must_use]
    pub fn actor(&self) -> String {
        format!("{}:{}", self.role.as_str(), self.sub)
    }

    /// An admin of every lodging (`lodgings` holds `*`): may register lodgings.
    #[must_use]
    pub fn is_platform_admin(&self) -> bool {
        self.role == Role::Admin && self.lodgings.iter().any(|l| l == ALL_LODGINGS)
    }

    /// An admin who manages `lodging_id` (directly or as platform admin).
    #[must_use]
    pub fn manages(&self, lodging_id: &str) -> bool {
        self.role == Role::Admin
            && self
                .lodgings
                .iter()
                .any(|l| l == lodging_id || l == ALL_LODGINGS)
    }
}

impl From<Claims> for Principal {
    fn from(claims: Claims) -> Self {
        Self {
            sub: claims.sub,
            role: claims.role,
            lodgings: claims.lodgings,
        }
    }
}

/// Why a token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("missing bearer token: send `Authorization: Bearer <jwt>`")]
    Missing,
    #[error("the token has expired")]
    Expired,
    #[error("invalid token: {0}")]
    Invalid(String),
}

impl IntoResponse for AuthError {
    fn into_response(self) -> Response {
        let mut response = Problem::new(StatusCode::UNAUTHORIZED, "unauthorized", self.to_string())
            .into_response();
        response
            .headers_mut()
            .insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        response
    }
}

/// Signs and checks tokens. The keys never print.
#[derive(Clone)]
pub struct Auth {
    encoding: EncodingKey,
    decoding: DecodingKey,
    rs256: Option<DecodingKey>,
}

impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Auth")
            .field("hs256_secret", &"<redacted>")
            .field("rs256", &self.rs256.is_some())
            .finish()
    }
}

impl Auth {
    /// Tokens signed HS256 with `secret` (at least 32 random bytes in production).
    #[must_use]
    pub fn new(secret: impl AsRef<[u8]>) -> Self {
        Self {
            encoding: EncodingKey::from_secret(secret.as_ref()),
            decoding: DecodingKey::from_secret(secret.as_ref()),
            rs256: None,
        }
    }

    /// Also accept RS256 tokens verified with this PEM public key (minting stays HS256).
    pub fn with_rs256_public_key(mut self, pem: &[u8]) -> Result<Self, AuthError> {
        let key = DecodingKey::from_rsa_pem(pem)
            .map_err(|e| AuthError::Invalid(format!("RS256 public key: {e}")))?;
        self.rs256 = Some(key);
        Ok(self)
    }

    /// A signed HS256 token carrying `claims`.
    pub fn mint(&self, claims: &Claims) -> Result<String, AuthError> {
        encode(&Header::new(Algorithm::HS256), claims, &self.encoding)
            .map_err(|e| AuthError::Invalid(e.to_string()))
    }

    /// Check a token's signature and expiry, and return who it speaks for.
    pub fn verify(&self, token: &str) -> Result<Principal, AuthError> {
        let header = decode_header(token).map_err(|_| malformed())?;
        let key = match header.alg {
            Algorithm::HS256 => &self.decoding,
            Algorithm::RS256 => self.rs256.as_ref().ok_or_else(|| {
                AuthError::Invalid("RS256 tokens are not accepted here".to_string())
            })?,
            other => {
                return Err(AuthError::Invalid(format!(
                    "algorithm {other:?} is not accepted"
                )))
            }
        };
        let mut validation = Validation::new(header.alg);
        validation.leeway = LEEWAY_SECS;
        // A token may say when it starts to count (`nbf`); one that does is refused before then.
        validation.validate_nbf = true;
        let data = decode::<Claims>(token, key, &validation).map_err(|e| refusal(e.kind()))?;
        if data.claims.sub.trim().is_empty() {
            return Err(AuthError::Invalid("the `sub` claim is empty".to_string()));
        }
        Ok(data.claims.into())
    }

    /// The principal of a request from its `Authorization` header.
    pub fn authenticate(&self, parts: &Parts) -> Result<Principal, AuthError> {
        self.authenticate_headers(&parts.headers)
    }

    /// The principal of the `Authorization: Bearer` header among `headers`.
    pub fn authenticate_headers(
        &self,
        headers: &axum::http::HeaderMap,
    ) -> Result<Principal, AuthError> {
        let header = headers.get(AUTHORIZATION).ok_or(AuthError::Missing)?;
        let text = header
            .to_str()
            .map_err(|_| AuthError::Invalid("the Authorization header is not ASCII".to_string()))?;
        self.verify(bearer_token(text).ok_or(AuthError::Missing)?)
    }
}

/// The token of an `Authorization: Bearer <token>` value; the scheme is case-insensitive (RFC 9110
/// section 11.1), the spaces around the token are not part of it.
fn bearer_token(header: &str) -> Option<&str> {
    let (scheme, token) = header.trim_start().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// A token that does not parse as a JWT; the library's parse error stays out of the answer.
fn malformed() -> AuthError {
    AuthError::Invalid("malformed token".to_string())
}

/// What a caller is told about a token that decodes but is refused: a short reason in our words,
/// never the library's message.
fn refusal(kind: &jsonwebtoken::errors::ErrorKind) -> AuthError {
    use jsonwebtoken::errors::ErrorKind;
    match kind {
        ErrorKind::ExpiredSignature => AuthError::Expired,
        ErrorKind::InvalidSignature => AuthError::Invalid(
            "invalid signature: the token may have been minted for another data dir (another \
             secret) than this server's"
                .to_string(),
        ),
        ErrorKind::InvalidAlgorithm => {
            AuthError::Invalid("the token's algorithm is not accepted".to_string())
        }
        ErrorKind::ImmatureSignature => {
            AuthError::Invalid("the token is not valid yet".to_string())
        }
        ErrorKind::MissingRequiredClaim(claim) => {
            AuthError::Invalid(format!("the token has no `{claim}` claim"))
        }
        _ => malformed(),
    }
}

impl<S> FromRequestParts<S> for Principal
where
    Arc<Auth>: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = AuthError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        if let Some(principal) = parts.extensions.get::<Principal>() {
            return Ok(principal.clone());
        }
        let auth = Arc::<Auth>::from_ref(state);
        let principal = auth.authenticate(parts)?;
        parts.extensions.insert(principal.clone());
        Ok(principal)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn auth() -> Auth {
        Auth::new(b"0123456789abcdef0123456789abcdef")
    }

    #[test]
    fn minted_tokens_verify_to_their_claims() {
        let claims = Claims::new(
            "a-1",
            Role::Admin,
            vec!["l-1".into()],
            Duration::from_secs(60),
        );
        let token = auth().mint(&claims).expect("mint");
        let principal = auth().verify(&token).expect("verify");
        assert_eq!(principal.sub, "a-1");
        assert!(principal.manages("l-1"));
        assert!(!principal.manages("l-2"));
        assert!(!principal.is_platform_admin());
        assert_eq!(principal.actor(), "admin:a-1");
    }

    #[test]
    fn expired_and_foreign_tokens_are_refused() {
        let mut claims = Claims::new("c-1", Role::Customer, vec![], Duration::ZERO);
        claims.exp -= 120;
        let expired = auth().mint(&claims).expect("mint");
        assert_eq!(auth().verify(&expired), Err(AuthError::Expired));
        let other = Auth::new(b"another secret of thirty-two bytes!").mint(&Claims::new(
            "c-1",
            Role::Customer,
            vec![],
            Duration::from_secs(60),
        ));
        assert!(matches!(
            auth().verify(&other.expect("mint")),
            Err(AuthError::Invalid(_))
        ));
        assert!(matches!(
            auth().verify("not.a.jwt"),
            Err(AuthError::Invalid(_))
        ));
    }

    #[test]
    fn refusals_say_why_in_our_words_not_the_librarys() {
        let claims = Claims::new("c-1", Role::Customer, vec![], Duration::from_secs(60));
        let foreign = Auth::new(b"another secret of thirty-two bytes!")
            .mint(&claims)
            .expect("mint");
        let Err(AuthError::Invalid(detail)) = auth().verify(&foreign) else {
            panic!("a foreign token is refused");
        };
        assert!(detail.starts_with("invalid signature"), "{detail}");
        assert!(detail.contains("another data dir"), "{detail}");
        // Garbage, a header that is not JSON, and claims that are not ours.
        let not_json = format!("{}.e30.sig", "bm90IGpzb24");
        let odd_claims = auth().mint(&claims).expect("mint");
        let payload = odd_claims.split('.').nth(1).expect("payload");
        let wrong_claims = odd_claims.replace(payload, "eyJmb28iOjF9");
        for token in [
            "garbage",
            "not.a.jwt",
            not_json.as_str(),
            wrong_claims.as_str(),
        ] {
            let refused = auth().verify(token).expect_err(token);
            let AuthError::Invalid(detail) = &refused else {
                panic!("{token}: {refused:?}");
            };
            assert!(
                !detail.contains("JSON") && !detail.contains("line") && !detail.contains("Base64"),
                "{token}: {detail}"
            );
        }
        assert_eq!(
            auth().verify("garbage"),
            Err(AuthError::Invalid("malformed token".to_string()))
        );
    }

    #[test]
    fn platform_admin_manages_every_lodging_but_customers_none() {
        let admin = Principal::from(Claims::new(
            "root",
            Role::Admin,
            vec!["*".into()],
            Duration::ZERO,
        ));
        assert!(admin.is_platform_admin() && admin.manages("anything"));
        let customer = Principal::from(Claims::new(
            "c",
            Role::Customer,
            vec!["*".into()],
            Duration::ZERO,
        ));
        assert!(!customer.is_platform_admin() && !customer.manages("anything"));
    }

    /// A token signed with `auth()`'s secret carrying `claims` as they are.
    fn raw_token(claims: &serde_json::Value) -> String {
        encode(
            &Header::new(Algorithm::HS256),
            claims,
            &EncodingKey::from_secret(b"0123456789abcdef0123456789abcdef"),
        )
        .expect("encode")
    }

    #[test]
    fn a_token_is_refused_before_its_not_before_time() {
        let now = jsonwebtoken::get_current_timestamp();
        let claims = |nbf: u64| serde_json::json!({"sub": "c-1", "role": "customer", "exp": now + 600, "nbf": nbf});
        assert_eq!(
            auth().verify(&raw_token(&claims(now + 300))),
            Err(AuthError::Invalid("the token is not valid yet".to_string()))
        );
        let started = auth()
            .verify(&raw_token(&claims(now - 10)))
            .expect("started");
        assert_eq!(started.sub, "c-1");
        // Within the clock-skew leeway it counts already.
        assert!(auth().verify(&raw_token(&claims(now + 5))).is_ok());
    }

    #[test]
    fn the_bearer_scheme_is_case_insensitive() {
        assert_eq!(bearer_token("Bearer abc"), Some("abc"));
        assert_eq!(bearer_token("BEARER abc"), Some("abc"));
        assert_eq!(bearer_token("bEaReR   abc  "), Some("abc"));
        assert_eq!(bearer_token("Bearer "), None);
        assert_eq!(bearer_token("Bearer"), None);
        assert_eq!(bearer_token("Basic abc"), None);
        assert_eq!(bearer_token("Bearerabc"), None);
        let token = auth()
            .mint(&Claims::new(
                "c-1",
                Role::Customer,
                vec![],
                Duration::from_secs(60),
            ))
            .expect("mint");
        let request = axum::http::Request::builder()
            .header(AUTHORIZATION, format!("BEARER {token}"))
            .body(())
            .expect("request");
        let (parts, ()) = request.into_parts();
        assert_eq!(auth().authenticate(&parts).expect("accepted").sub, "c-1");
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let text = format!("{:?}", Auth::new(b"super-secret-value-0123456789abcd"));
        assert!(!text.contains("super-secret"), "{text}");
        assert!(text.contains("redacted"));
    }
}
