//! Users, passwords and personal access tokens.

use argon2::password_hash::{PasswordHash, PasswordHasher, SaltString};
use argon2::Argon2;
use chrono::NaiveDate;
use rand::distributions::Alphanumeric;
use rand::Rng;
use sha2::{Digest, Sha256};

use super::access::Caller;
use super::error::{Error, Result};
use super::names;
use super::paging::{Page, PageRequest};
use super::records::{now, PersonalAccessToken, Scope, User};
use super::schema::{self, tokens::Tokens, users::Users};
use super::Registry;
use crate::store::meta::abort;

/// A token's secret is shown once, at creation; this pairs it with the stored record.
#[derive(Debug, Clone)]
pub struct IssuedToken {
    pub token: PersonalAccessToken,
    pub secret: String,
}

/// An admin's changes to a user (`PUT /users/:id`).
#[derive(Debug, Clone, Default)]
pub struct UserChanges {
    pub name: Option<String>,
    pub email: Option<String>,
    pub admin: Option<bool>,
    pub password: Option<String>,
}

pub struct NewUser<'a> {
    pub username: &'a str,
    pub name: &'a str,
    pub email: Option<&'a str>,
    pub password: Option<&'a str>,
    pub admin: bool,
}

pub fn hash_secret(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

pub(crate) fn new_secret() -> String {
    let body: String = rand::thread_rng()
        .sample_iter(&Alphanumeric)
        .take(32)
        .map(char::from)
        .collect();
    format!("glpat-{body}")
}

pub fn hash_password(password: &str) -> Result<String> {
    let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|e| Error::bad(format!("password could not be hashed: {e}")))
}

/// Whether `password` matches `hash` (argon2, PHC string). The algorithm's memory (19 MiB with
/// the default parameters) is kept by the calling thread and reused by its next check, rather
/// than allocated and freed each time: freed blocks that large stay in the allocator's
/// per-thread arenas, so checks spread over many threads would grow the process for good.
fn verify_password(password: &[u8], hash: &PasswordHash<'_>) -> bool {
    thread_local! {
        static MEMORY: std::cell::RefCell<Vec<argon2::Block>> =
            const { std::cell::RefCell::new(Vec::new()) };
    }
    let (Some(salt), Some(expected)) = (&hash.salt, &hash.hash) else {
        return false;
    };
    let Ok(params) = argon2::Params::try_from(hash) else {
        return false;
    };
    let Ok(algorithm) = argon2::Algorithm::try_from(hash.algorithm) else {
        return false;
    };
    let version = match hash.version {
        Some(v) => match argon2::Version::try_from(v) {
            Ok(version) => version,
            Err(_) => return false,
        },
        None => argon2::Version::default(),
    };
    let mut salt_buffer = [0u8; 64];
    let Ok(salt) = salt.decode_b64(&mut salt_buffer) else {
        return false;
    };
    let blocks = params.block_count();
    let argon = Argon2::new(algorithm, version, params);
    let mut computed = vec![0u8; expected.len()];
    let hashed = MEMORY.with(|memory| {
        let mut memory = memory.borrow_mut();
        if memory.len() < blocks {
            memory.resize(blocks, argon2::Block::default());
        }
        argon.hash_password_into_with_memory(password, salt, &mut computed, &mut memory[..blocks])
    });
    // `Output` compares in constant time.
    hashed.is_ok()
        && argon2::password_hash::Output::new(&computed).is_ok_and(|output| output == *expected)
}

/// A hash no password matches in practice, made with the same parameters as real ones.
fn dummy_hash() -> &'static str {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY.get_or_init(|| hash_password(&new_secret()).unwrap_or_default())
}

fn check_password_length(password: &str) -> Result<()> {
    if password.chars().count() < 8 {
        return Err(Error::bad(
            "password is too short (minimum is 8 characters)",
        ));
    }
    Ok(())
}

fn today() -> NaiveDate {
    now().date_naive()
}

impl Registry {
    pub async fn create_user(&self, new: NewUser<'_>) -> Result<User> {
        names::username(new.username)?;
        if let Some(password) = new.password {
            check_password_length(password)?;
        }
        let password_hash = new.password.map(hash_password).transpose()?;
        let user = User {
            id: self.new_id()?,
            username: new.username.to_string(),
            name: if new.name.is_empty() {
                new.username.to_string()
            } else {
                new.name.to_string()
            },
            email: new.email.map(str::to_string),
            password_hash,
            admin: new.admin,
            created_at: now(),
            bot: false,
        };
        self.write(|tx| {
            if schema::users::name_taken(tx, &user.username)?
                || schema::groups::path_taken(tx, &user.username)?
            {
                return abort(Error::Conflict("Username has already been taken".into()));
            }
            schema::put::<Users>(tx, &user)?;
            Ok(())
        })
        .await?;
        Ok(user)
    }

    pub fn user(&self, id: u64) -> Result<User> {
        schema::users::get(self.meta.as_ref(), id)?.ok_or(Error::NotFound("User"))
    }

    pub fn user_by_name(&self, username: &str) -> Result<User> {
        schema::users::by_name(self.meta.as_ref(), username)?.ok_or(Error::NotFound("User"))
    }

    /// One page of users by id, read from the users table with its kept count; with a
    /// username, that user alone (found by the names index). A search by substring reads the
    /// users in id order until the page is full and one more match says whether there are
    /// more, so its cost is that of the users it passes, and its total counts no further.
    pub fn users_page(
        &self,
        username: Option<&str>,
        search: Option<&str>,
        page: PageRequest,
    ) -> Result<Page<User>> {
        if let Some(username) = username {
            let found: Vec<User> = schema::users::by_name(self.meta.as_ref(), username)?
                .into_iter()
                .filter(|u| search.is_none_or(|s| matches_search(u, s)))
                .collect();
            return Ok(Page::of(found, page));
        }
        let Some(search) = search else {
            let items = schema::users::page(self.meta.as_ref(), &page.seek(), page.per_page)?;
            let total = schema::users::total(self.meta.as_ref())?;
            return Ok(Page::keyed(items, total, page, None));
        };
        let wanted = page.offset() + page.per_page + 1;
        let mut found = Vec::new();
        let mut after = schema::Seek::Offset(0);
        while found.len() < wanted {
            let batch = schema::users::page(self.meta.as_ref(), &after, 500)?;
            let Some(last) = batch.last() else { break };
            after = schema::Seek::After(schema::id_key(last.id));
            let full = batch.len() < 500;
            found.extend(batch.into_iter().filter(|u| matches_search(u, search)));
            if full {
                break;
            }
        }
        found.truncate(wanted);
        Ok(Page::of(found, page))
    }

    pub fn users(&self) -> Result<Vec<User>> {
        Ok(schema::users::page(
            self.meta.as_ref(),
            &schema::Seek::Offset(0),
            usize::MAX,
        )?)
    }

    pub async fn set_password(&self, user_id: u64, password: &str) -> Result<()> {
        check_password_length(password)?;
        let hash = hash_password(password)?;
        self.update_record::<Users>(user_id, "User", |user: &mut User| {
            user.password_hash = Some(hash.clone());
        })
        .await?;
        Ok(())
    }

    /// The user whose password this is, or `Unauthorized`. An unknown username, or a user
    /// without a password, costs the same argon2 verification as a wrong password (against a
    /// dummy hash), so that the time taken does not tell which usernames exist.
    pub fn check_password(&self, username: &str, password: &str) -> Result<User> {
        let user = match self.user_by_name(username) {
            Ok(user) => Some(user),
            Err(Error::NotFound(_)) => None,
            Err(other) => return Err(other),
        };
        let stored = user
            .as_ref()
            .and_then(|u| u.password_hash.as_deref())
            .and_then(|hash| PasswordHash::new(hash).ok());
        let verified = match &stored {
            Some(hash) => verify_password(password.as_bytes(), hash),
            None => {
                if let Ok(hash) = PasswordHash::new(dummy_hash()) {
                    verify_password(password.as_bytes(), &hash);
                }
                false
            }
        };
        match user {
            Some(user) if verified => Ok(user),
            _ => Err(Error::Unauthorized),
        }
    }

    pub async fn create_token(
        &self,
        user_id: u64,
        name: &str,
        scopes: &[Scope],
        expires_at: Option<NaiveDate>,
    ) -> Result<IssuedToken> {
        self.issue_token(user_id, name, scopes, expires_at, new_secret())
            .await
    }

    /// Records a token whose secret the caller chose (the root bootstrap token).
    pub async fn issue_token(
        &self,
        user_id: u64,
        name: &str,
        scopes: &[Scope],
        expires_at: Option<NaiveDate>,
        secret: String,
    ) -> Result<IssuedToken> {
        if name.trim().is_empty() {
            return Err(Error::missing("name"));
        }
        if scopes.is_empty() {
            return Err(Error::missing("scopes"));
        }
        if expires_at.is_some_and(|d| d <= today()) {
            return Err(Error::bad("expires_at must be in the future"));
        }
        let token = PersonalAccessToken {
            id: self.new_id()?,
            user_id,
            name: name.to_string(),
            secret_sha256: hash_secret(&secret),
            scopes: scopes.to_vec(),
            expires_at,
            revoked: false,
            created_at: now(),
        };
        self.write(|tx| {
            if schema::users::load(tx, user_id)?.is_none() {
                return abort(Error::NotFound("User"));
            }
            if schema::tokens::hash_taken(tx, &token.secret_sha256)? {
                return abort(Error::AlreadyExists("token already exists".into()));
            }
            schema::put::<Tokens>(tx, &token)?;
            Ok(())
        })
        .await?;
        Ok(IssuedToken { token, secret })
    }

    pub fn token(&self, id: u64) -> Result<PersonalAccessToken> {
        schema::tokens::get(self.meta.as_ref(), id)?.ok_or(Error::NotFound("Token"))
    }

    pub fn token_by_secret(&self, secret: &str) -> Result<Option<PersonalAccessToken>> {
        Ok(schema::tokens::by_hash_of(
            self.meta.as_ref(),
            &hash_secret(secret),
        )?)
    }

    pub fn tokens_of(&self, user_id: u64) -> Result<Vec<PersonalAccessToken>> {
        schema::tokens::ids_of(self.meta.as_ref(), user_id)?
            .into_iter()
            .map(|id| self.token(id))
            .collect()
    }

    pub async fn revoke_token(&self, id: u64) -> Result<PersonalAccessToken> {
        self.update_record::<Tokens>(id, "Token", |token: &mut PersonalAccessToken| {
            token.revoked = true;
        })
        .await
    }

    /// Who a presented secret belongs to: a personal or project access token's user, a deploy
    /// token, or a token exchanged for an ID token. Unknown, revoked and expired tokens are `Unauthorized`.
    pub fn authenticate(&self, secret: &str) -> Result<Caller> {
        let Some(token) = self.token_by_secret(secret)? else {
            if let Some(deploy) = self.deploy_token_caller(secret)? {
                return Ok(deploy);
            }
            return self.ci_token_caller(secret)?.ok_or(Error::Unauthorized);
        };
        if !token.is_active(today()) {
            return Err(Error::Unauthorized);
        }
        let user = self.user(token.user_id).map_err(|_| Error::Unauthorized)?;
        super::audit::note_token(token.id);
        Ok(Caller::from_user(user, &token.scopes))
    }

    /// The scopes of the personal access token behind a secret (none for other secrets).
    pub fn scopes_of(&self, secret: &str) -> Result<Vec<Scope>> {
        Ok(self
            .token_by_secret(secret)?
            .filter(|t| t.is_active(today()))
            .map(|t| t.scopes)
            .unwrap_or_default())
    }

    /// An admin's changes to a user.
    pub async fn update_user(&self, user_id: u64, changes: UserChanges) -> Result<User> {
        if let Some(password) = &changes.password {
            check_password_length(password)?;
        }
        let hash = changes.password.as_deref().map(hash_password).transpose()?;
        self.update_record::<Users>(user_id, "User", |user: &mut User| {
            if let Some(name) = &changes.name {
                user.name = name.clone();
            }
            if let Some(email) = &changes.email {
                user.email = Some(email.clone());
            }
            if let Some(admin) = changes.admin {
                user.admin = admin;
            }
            if let Some(hash) = &hash {
                user.password_hash = Some(hash.clone());
            }
        })
        .await
    }

    /// Deletes a user with their tokens and memberships, in one transaction; refused while
    /// they are the last Owner of a project or group.
    pub async fn delete_user(&self, user_id: u64) -> Result<()> {
        let user = self.user(user_id)?;
        if user.username == "root" {
            return Err(Error::denied("root cannot be deleted"));
        }
        let tokens = schema::tokens::ids_of(self.meta.as_ref(), user_id)?;
        let projects = schema::members::project_ids_of_user(self.meta.as_ref(), user_id)?;
        let groups = schema::groups::group_ids_of_user(self.meta.as_ref(), user_id)?;
        self.write(|tx| {
            for &project_id in &projects {
                if let Some(m) = schema::members::load(tx, project_id, user_id)? {
                    if m.access_level == super::records::AccessLevel::Owner
                        && schema::members::owners_in(tx, project_id)? <= 1
                    {
                        return abort(Error::denied(format!(
                            "{} is the last Owner of project {project_id}; make another member Owner first",
                            user.username
                        )));
                    }
                    schema::remove::<super::schema::members::Members>(
                        tx,
                        &schema::members::key_of(project_id, user_id),
                    )?;
                }
            }
            for &group_id in &groups {
                if let Some(m) = schema::groups::load_member(tx, group_id, user_id)? {
                    if m.access_level == super::records::AccessLevel::Owner
                        && schema::groups::owners_in(tx, group_id)? <= 1
                    {
                        return abort(Error::denied(format!(
                            "{} is the last Owner of group {group_id}; make another member Owner first",
                            user.username
                        )));
                    }
                    schema::remove::<super::schema::groups::GroupMembers>(
                        tx,
                        &schema::groups::member_key_of(group_id, user_id),
                    )?;
                }
            }
            for &token in &tokens {
                schema::remove::<Tokens>(tx, &schema::id_key(token))?;
            }
            schema::remove::<Users>(tx, &schema::id_key(user_id))?;
            Ok(())
        })
        .await
    }

    /// Creates the `root` admin on first start and makes sure it has a usable token: the given
    /// one, or a generated one that is returned so that it can be shown once.
    pub async fn bootstrap_root(&self, root_token: Option<&str>) -> Result<Option<String>> {
        let root = match self.user_by_name("root") {
            Ok(user) => Some(user),
            Err(Error::NotFound(_)) => None,
            Err(other) => return Err(other),
        };
        let fresh = root.is_none();
        let root = match root {
            Some(user) => user,
            None => {
                self.create_user(NewUser {
                    username: "root",
                    name: "Administrator",
                    email: None,
                    password: None,
                    admin: true,
                })
                .await?
            }
        };
        match root_token {
            Some(secret) => {
                if self.token_by_secret(secret)?.is_none() {
                    self.issue_token(
                        root.id,
                        "bootstrap",
                        &[Scope::Api],
                        None,
                        secret.to_string(),
                    )
                    .await?;
                }
                Ok(None)
            }
            None if fresh => {
                let issued = self
                    .create_token(root.id, "initial root token", &[Scope::Api], None)
                    .await?;
                Ok(Some(issued.secret))
            }
            None => Ok(None),
        }
    }
}

/// GitLab's user search: the username or the name contains the text, ignoring case (`search`
/// is given in lower case).
fn matches_search(user: &User, search: &str) -> bool {
    user.username.to_lowercase().contains(search) || user.name.to_lowercase().contains(search)
}
