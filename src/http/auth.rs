//! Who is calling: HTTP Basic (user name and token) or a bearer token
//! (`Authorization: Bearer <token>`, or `Token <token>` as taxii2-client
//! sends it), checked against the SHA-256 of each user's token.
//!
//! Tokens are 32 random bytes made by `cirfed node http-user`, so one
//! SHA-256 is enough to store them safely: there is no dictionary to try.
//! Users never choose them, which is also why Basic takes the token as its
//! password rather than a password of its own.

use super::error::HttpError;
use super::HttpState;
use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use rand::RngCore;
use sha2::{Digest, Sha256};
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

/// What a right applies to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Scope {
    /// Every scope.
    All,
    /// A TAXII collection, by alias.
    Collection(String),
    /// `/misp-feed/`.
    MispFeed,
    /// `/blocklist/`.
    Blocklist,
}

impl FromStr for Scope {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        use crate::interop::taxii::Collection;
        match s.trim() {
            "*" => Ok(Scope::All),
            "misp-feed" => Ok(Scope::MispFeed),
            "blocklist" => Ok(Scope::Blocklist),
            name => match Collection::find(name) {
                Some(collection) => Ok(Scope::Collection(collection.alias.to_string())),
                None => Err(format!(
                    "unknown scope {name:?}: expected a collection ({}), misp-feed, blocklist or *",
                    crate::interop::taxii::COLLECTIONS.map(|c| c.alias).join(", ")
                )),
            },
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scope::All => f.write_str("*"),
            Scope::Collection(alias) => f.write_str(alias),
            Scope::MispFeed => f.write_str("misp-feed"),
            Scope::Blocklist => f.write_str("blocklist"),
        }
    }
}

/// One user, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// Name (the Basic user name).
    pub name: String,
    token_sha256: [u8; 32],
    read: Vec<Scope>,
    write: Vec<Scope>,
}

impl User {
    /// Whether this user may read `scope`.
    pub fn may_read(&self, scope: &Scope) -> bool {
        covers(&self.read, scope) || covers(&self.write, scope)
    }

    /// Whether this user may write to `scope`.
    pub fn may_write(&self, scope: &Scope) -> bool {
        covers(&self.write, scope)
    }
}

fn covers(scopes: &[Scope], scope: &Scope) -> bool {
    scopes.iter().any(|s| s == scope || *s == Scope::All)
}

/// Every user of the listener.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Users(Vec<User>);

impl Users {
    /// Checks the `[[taxii.users]]` entries.
    pub fn from_sections(sections: &[super::config::UserSection]) -> Result<Users, String> {
        let mut users = Vec::with_capacity(sections.len());
        for section in sections {
            let name = section.name.trim();
            if name.is_empty() || name.contains(':') {
                return Err(format!("user name {:?} must be non-empty and hold no ':'", section.name));
            }
            if users.iter().any(|u: &User| u.name == name) {
                return Err(format!("user {name:?} is listed twice"));
            }
            let token_sha256 = hex::decode(section.token_sha256.trim())
                .ok()
                .and_then(|bytes| <[u8; 32]>::try_from(bytes).ok())
                .ok_or_else(|| format!("user {name:?}: token_sha256 must be 64 hex digits"))?;
            let scopes = |names: &[String]| names.iter().map(|n| n.parse()).collect::<Result<Vec<Scope>, String>>();
            let read = scopes(&section.read).map_err(|e| format!("user {name:?}: read: {e}"))?;
            let write = scopes(&section.write).map_err(|e| format!("user {name:?}: write: {e}"))?;
            if write.iter().any(|s| matches!(s, Scope::MispFeed | Scope::Blocklist)) {
                return Err(format!("user {name:?}: write: only collections can be written"));
            }
            users.push(User { name: name.to_string(), token_sha256, read, write });
        }
        Ok(Users(users))
    }

    /// The user an `Authorization` header value names, if any.
    pub fn authenticate(&self, authorization: &str) -> Option<&User> {
        let (scheme, credentials) = authorization.trim().split_once(' ')?;
        let credentials = credentials.trim();
        match scheme.to_ascii_lowercase().as_str() {
            "bearer" | "token" => {
                let hash = token_hash(credentials);
                self.0.iter().find(|u| u.token_sha256 == hash)
            }
            "basic" => {
                let decoded = STANDARD.decode(credentials).ok()?;
                let (name, token) = std::str::from_utf8(&decoded).ok()?.split_once(':')?;
                let hash = token_hash(token);
                self.0.iter().find(|u| u.name == name && u.token_sha256 == hash)
            }
            _ => None,
        }
    }
}

/// SHA-256 of a token.
pub fn token_hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// A new random token (URL-safe base64 of 32 bytes) and its hash as hex.
pub fn new_token() -> (String, String) {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    let hash = hex::encode(token_hash(&token));
    (token, hash)
}

/// The authenticated caller of a request.
#[derive(Debug, Clone)]
pub struct Caller(pub User);

impl Caller {
    /// Refuses unless the caller may read `scope`.
    pub fn require_read(&self, scope: &Scope) -> Result<(), HttpError> {
        match self.0.may_read(scope) {
            true => Ok(()),
            false => Err(HttpError::Forbidden(format!("user {:?} may not read {scope}", self.0.name))),
        }
    }

    /// Refuses unless the caller may write to `scope`.
    pub fn require_write(&self, scope: &Scope) -> Result<(), HttpError> {
        match self.0.may_write(scope) {
            true => Ok(()),
            false => Err(HttpError::Forbidden(format!("user {:?} may not write to {scope}", self.0.name))),
        }
    }
}

impl FromRequestParts<Arc<HttpState>> for Caller {
    type Rejection = HttpError;

    async fn from_request_parts(parts: &mut Parts, state: &Arc<HttpState>) -> Result<Self, Self::Rejection> {
        let header = parts.headers.get(AUTHORIZATION).ok_or(HttpError::Unauthorized)?;
        let value = header.to_str().map_err(|_| HttpError::Unauthorized)?;
        state.users.authenticate(value).cloned().map(Caller).ok_or(HttpError::Unauthorized)
    }
}

#[cfg(test)]
mod tests {
    use super::super::config::UserSection;
    use super::*;

    fn users() -> (Users, String) {
        let (token, hash) = new_token();
        let section = UserSection {
            name: "sentinel".into(),
            token_sha256: hash,
            read: vec!["community".into(), "blocklist".into()],
            write: vec![],
        };
        (Users::from_sections(&[section]).unwrap(), token)
    }

    #[test]
    fn bearer_token_and_basic_authenticate_the_same_user() {
        let (users, token) = users();
        assert_eq!(users.authenticate(&format!("Bearer {token}")).unwrap().name, "sentinel");
        assert_eq!(users.authenticate(&format!("Token {token}")).unwrap().name, "sentinel");
        let basic = STANDARD.encode(format!("sentinel:{token}"));
        assert_eq!(users.authenticate(&format!("Basic {basic}")).unwrap().name, "sentinel");
        assert!(users.authenticate(&format!("Basic {}", STANDARD.encode(format!("other:{token}")))).is_none());
        assert!(users.authenticate("Bearer not-the-token").is_none());
    }

    #[test]
    fn rights_are_per_scope() {
        let (users, token) = users();
        let user = users.authenticate(&format!("Bearer {token}")).unwrap();
        assert!(user.may_read(&Scope::Collection("community".into())));
        assert!(!user.may_read(&Scope::Collection("analysts".into())));
        assert!(!user.may_write(&Scope::Collection("community".into())));
        assert!(user.may_read(&Scope::Blocklist) && !user.may_read(&Scope::MispFeed));
    }

    #[test]
    fn bad_user_entries_are_refused_with_the_reason() {
        let section = |name: &str, hash: &str, read: &str| UserSection {
            name: name.into(),
            token_sha256: hash.into(),
            read: vec![read.into()],
            write: vec![],
        };
        let good = "ab".repeat(32);
        assert!(Users::from_sections(&[section("a", "abc", "community")]).unwrap_err().contains("64 hex"));
        assert!(Users::from_sections(&[section("a", &good, "secrets")]).unwrap_err().contains("unknown scope"));
        assert!(Users::from_sections(&[section("a:b", &good, "*")]).is_err());
        let twice = [section("a", &good, "*"), section("a", &good, "*")];
        assert!(Users::from_sections(&twice).unwrap_err().contains("twice"));
    }
}
