//! Web UI sign-in sessions: created by a password check, stored only as a hash of their secret,
//! each with its own CSRF token, ended by signing out or by expiry.

use chrono::Duration;
use rand::distributions::Alphanumeric;
use rand::Rng;
use serde::{Deserialize, Serialize};

use super::access::Caller;
use super::accounts::hash_secret;
use super::error::{Error, Result};
use super::records::{now, Scope, Timestamp, User};
use super::schema;
use super::Registry;

/// How long a session lasts after sign-in.
pub const SESSION_LIFETIME_DAYS: i64 = 14;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Session {
    pub user_id: u64,
    /// Must accompany every form this session posts.
    pub csrf_token: String,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
}

/// A new session and the secret its cookie carries (shown to the browser only).
pub struct OpenedSession {
    pub session: Session,
    pub secret: String,
    /// Who signed in: `(id, username)`.
    pub user: (u64, String),
}

/// A random string for session secrets and CSRF tokens.
pub fn random_token() -> String {
    rand::thread_rng()
        .sample_iter(&Alphanumeric)
        .take(43)
        .map(char::from)
        .collect()
}

/// Compares two secrets in time independent of where they differ.
pub fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

fn session_key(secret: &str) -> String {
    hash_secret(secret)
}

impl Registry {
    /// Checks the password and opens a session; `Unauthorized` for any wrong pair.
    pub fn sign_in(&self, username: &str, password: &str) -> Result<OpenedSession> {
        let user = self.check_password(username, password)?;
        let created_at = now();
        let session = Session {
            user_id: user.id,
            csrf_token: random_token(),
            created_at,
            expires_at: created_at + Duration::days(SESSION_LIFETIME_DAYS),
        };
        let secret = random_token();
        let key = session_key(&secret);
        self.meta.transaction(|tx| {
            schema::sessions::put(tx, &key, &session)?;
            Ok::<_, crate::store::meta::TxError<Error>>(())
        })?;
        Ok(OpenedSession {
            session,
            secret,
            user: (user.id, user.username.clone()),
        })
    }

    /// The live session a cookie secret names, with its user; `None` when unknown or expired.
    pub fn session(&self, secret: &str) -> Result<Option<(Session, User)>> {
        let Some(session) = schema::sessions::get(self.meta.as_ref(), &session_key(secret))? else {
            return Ok(None);
        };
        if session.expires_at <= now() {
            // Expired sessions go when they are next presented.
            self.sign_out(secret)?;
            return Ok(None);
        }
        match self.user(session.user_id) {
            Ok(user) => Ok(Some((session, user))),
            Err(Error::NotFound(_)) => Ok(None),
            Err(other) => Err(other),
        }
    }

    /// Ends a session (signing out); unknown secrets are ignored.
    pub fn sign_out(&self, secret: &str) -> Result<()> {
        let key = session_key(secret);
        self.meta.transaction(|tx| {
            schema::sessions::delete(tx, &key)?;
            Ok::<_, crate::store::meta::TxError<Error>>(())
        })?;
        Ok(())
    }
}

/// The caller a signed-in browser acts as: the user with full (`api`) rights.
pub fn session_caller(user: User) -> Caller {
    Caller::from_user(user, &[Scope::Api])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::accounts::NewUser;
    use crate::domain::Limits;

    fn registry() -> (tempfile::TempDir, Registry) {
        let dir = tempfile::tempdir().unwrap();
        let registry = crate::server::open_registry(dir.path(), Limits::default(), 8).unwrap();
        (dir, registry)
    }

    #[tokio::test]
    async fn sign_in_session_and_sign_out() {
        let (_dir, registry) = registry();
        registry
            .create_user(NewUser {
                username: "alice",
                name: "Alice",
                email: None,
                password: Some("correct horse"),
                admin: false,
            })
            .await
            .unwrap();
        assert!(matches!(
            registry.sign_in("alice", "wrong password"),
            Err(Error::Unauthorized)
        ));
        assert!(matches!(
            registry.sign_in("nobody", "correct horse"),
            Err(Error::Unauthorized)
        ));
        let opened = registry.sign_in("alice", "correct horse").unwrap();
        let (session, user) = registry.session(&opened.secret).unwrap().unwrap();
        assert_eq!(user.username, "alice");
        assert_eq!(session.csrf_token, opened.session.csrf_token);
        assert!(registry.session("not-a-session").unwrap().is_none());
        registry.sign_out(&opened.secret).unwrap();
        assert!(registry.session(&opened.secret).unwrap().is_none());
    }

    #[tokio::test]
    async fn expired_sessions_are_refused_and_removed() {
        let (_dir, registry) = registry();
        registry
            .create_user(NewUser {
                username: "bob",
                name: "Bob",
                email: None,
                password: Some("long enough"),
                admin: false,
            })
            .await
            .unwrap();
        let opened = registry.sign_in("bob", "long enough").unwrap();
        let key = session_key(&opened.secret);
        let expired = Session {
            expires_at: now() - Duration::seconds(1),
            ..opened.session
        };
        registry
            .meta
            .transaction(|tx| {
                schema::sessions::put(tx, &key, &expired)?;
                Ok::<_, crate::store::meta::TxError<Error>>(())
            })
            .unwrap();
        assert!(registry.session(&opened.secret).unwrap().is_none());
        assert!(schema::sessions::get(registry.meta.as_ref(), &key)
            .unwrap()
            .is_none());
    }

    #[test]
    fn secrets_compare_whole() {
        assert!(same_secret("abc", "abc"));
        assert!(!same_secret("abc", "abd"));
        assert!(!same_secret("abc", "abcd"));
        assert!(!same_secret("", "a"));
    }
}
