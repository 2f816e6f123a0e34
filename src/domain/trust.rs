//! CI identities and project tokens: which level a verified GitLab job, an OIDC ID token or a
//! deploy token has in a project (its trust settings decide), the trusted publishers (OIDC
//! trust rules), deploy tokens, and project access tokens (bot members).

use std::collections::BTreeMap;

use chrono::NaiveDate;

use super::access::{
    ci_level, decide_member_change, Action, Caller, Identity, Machine, MemberChange,
};
use super::accounts::{hash_secret, new_secret};
use super::error::{Error, Result};
use super::projects::ProjectAccess;
use super::records::{
    now, AccessLevel, CiToken, DeployScope, DeployToken, Member, PersonalAccessToken, Project,
    Scope, TrustedPublisher, User,
};
use super::schema::{
    self, ci_tokens::CiTokens, deploy_tokens::DeployTokens, members::Members, tokens::Tokens,
    trusted_publishers::TrustedPublishers, users::Users,
};
use super::Registry;
use crate::store::meta::abort;

/// A new trust rule.
#[derive(Debug, Clone)]
pub struct NewTrustedPublisher {
    pub issuer: String,
    pub claims: BTreeMap<String, String>,
    pub access_level: Option<AccessLevel>,
    pub description: Option<String>,
}

/// A new deploy token.
#[derive(Debug, Clone)]
pub struct NewDeployToken {
    pub name: String,
    pub username: Option<String>,
    pub scopes: Vec<DeployScope>,
    pub package_names: Vec<String>,
    pub expires_at: Option<NaiveDate>,
}

/// A deploy token's secret is shown once, at creation.
#[derive(Debug, Clone)]
pub struct IssuedDeployToken {
    pub token: DeployToken,
    pub secret: String,
}

/// A project access token with its bot user and the bot's level.
#[derive(Debug, Clone)]
pub struct ProjectToken {
    pub token: PersonalAccessToken,
    pub bot: User,
    pub access_level: AccessLevel,
}

/// Issuer URLs compare without a trailing slash.
pub fn same_issuer(a: &str, b: &str) -> bool {
    a.trim_end_matches('/') == b.trim_end_matches('/')
}

/// Whether a claim value satisfies a rule's value: equal, or a prefix ending in `*`.
fn claim_matches(wanted: &str, got: &str) -> bool {
    match wanted.strip_suffix('*') {
        Some(prefix) => got.starts_with(prefix),
        None => wanted == got,
    }
}

/// Why a rule does not match these claims (`None`: it matches).
fn rule_mismatch(
    rule: &TrustedPublisher,
    issuer: &str,
    claims: &BTreeMap<String, String>,
) -> Option<String> {
    if !same_issuer(&rule.issuer, issuer) {
        return Some(format!("the rule trusts {}", rule.issuer));
    }
    for (key, wanted) in &rule.claims {
        match claims.get(key) {
            None => {
                return Some(format!(
                    "the token has no claim {key} (the rule wants '{wanted}')"
                ))
            }
            Some(got) if !claim_matches(wanted, got) => {
                return Some(format!("claim {key} is '{got}', the rule wants '{wanted}'"))
            }
            Some(_) => {}
        }
    }
    None
}

/// Whether a trusted entry of `ci_job_token_gitlab_projects` names the job's project.
fn trusts_job(entry: &str, gitlab_url: &str, project_id: u64, project_path: &str) -> bool {
    let entry = entry.trim().trim_end_matches('/');
    entry == project_id.to_string()
        || entry.eq_ignore_ascii_case(project_path)
        || entry.eq_ignore_ascii_case(&format!(
            "{}/{project_path}",
            gitlab_url.trim_end_matches('/')
        ))
}

/// The refusal of a package a name-limited deploy token does not cover (`Ok` otherwise).
pub fn check_package_name(caller: &Caller, name: &str) -> Result<()> {
    if let Some(Machine {
        identity:
            Identity::DeployToken {
                package_names,
                username,
                ..
            },
        ..
    }) = caller.machine()
    {
        if !package_names.is_empty() && !package_names.iter().any(|n| n == name) {
            return Err(Error::denied(format!(
                "the deploy token {username} is limited to the packages {}",
                package_names.join(", ")
            )));
        }
    }
    Ok(())
}

/// A deploy token limited to some packages does not list the project's others.
pub fn may_list_packages(caller: &Caller) -> Result<()> {
    match caller.machine().map(|m| &m.identity) {
        Some(Identity::DeployToken {
            package_names,
            username,
            ..
        }) if !package_names.is_empty() => Err(Error::denied(format!(
            "the deploy token {username} is limited to the packages {} and lists none",
            package_names.join(", ")
        ))),
        _ => Ok(()),
    }
}

/// Claims that say whose pipeline a token comes from. A rule must require one of them, or any
/// project of the issuer could publish.
const IDENTITY_CLAIMS: [&str; 8] = [
    "project_path",
    "project_id",
    "namespace_path",
    "namespace_id",
    "repository",
    "repository_id",
    "repository_owner",
    "sub",
];

fn validate_claims(claims: &BTreeMap<String, String>) -> Result<()> {
    let identifies = claims
        .iter()
        .any(|(k, v)| IDENTITY_CLAIMS.contains(&k.as_str()) && !v.trim_end_matches('*').is_empty());
    if !identifies {
        return Err(Error::InvalidParam {
            param: "claims".into(),
            problem: format!(
                "must require one of {} (a value other than *), or any pipeline of the issuer could publish",
                IDENTITY_CLAIMS.join(", ")
            ),
        });
    }
    if claims.len() > 20
        || claims
            .iter()
            .any(|(k, v)| k.is_empty() || k.len() > 100 || v.is_empty() || v.len() > 500)
    {
        return Err(Error::invalid("claims"));
    }
    Ok(())
}

/// How long a token exchanged for an ID token lasts.
pub const CI_TOKEN_MINUTES: i64 = 15;

impl Registry {
    /// Exchanges a verified ID token for a short-lived token of one project it may publish to.
    pub async fn exchange_id_token(
        &self,
        caller: &Caller,
        access: &ProjectAccess,
    ) -> Result<(CiToken, String)> {
        let Some(Machine {
            identity:
                Identity::Oidc {
                    issuer,
                    claims,
                    project_id: None,
                },
            ci,
            ..
        }) = caller.machine()
        else {
            return Err(Error::denied(
                "only an OIDC ID token (Authorization: Bearer <JWT>) can be exchanged",
            ));
        };
        if access.level.is_none() {
            return Err(Error::denied(access.refusal.clone().unwrap_or_else(|| {
                "no trusted publisher of this project matches the ID token".into()
            })));
        }
        let secret = format!("glcit-{}", &new_secret()["glpat-".len()..]);
        let at = now();
        let token = CiToken {
            id: self.new_id()?,
            project_id: access.project.id,
            secret_sha256: hash_secret(&secret),
            issuer: issuer.clone(),
            claims: claims.clone(),
            ci: ci.clone(),
            expires_at: at + chrono::Duration::minutes(CI_TOKEN_MINUTES),
            created_at: at,
        };
        let expired = schema::ci_tokens::expired(self.meta.as_ref(), at.timestamp_millis(), 16)?;
        self.write(|tx| {
            for id in &expired {
                schema::remove::<CiTokens>(tx, &schema::id_key(*id))?;
            }
            schema::put::<CiTokens>(tx, &token)?;
            Ok(())
        })
        .await?;
        Ok((token, secret))
    }

    /// The caller an exchanged token's secret makes, if it is one (`Unauthorized` once expired).
    pub fn ci_token_caller(&self, secret: &str) -> Result<Option<Caller>> {
        let Some(token) = schema::ci_tokens::by_hash_of(self.meta.as_ref(), &hash_secret(secret))?
        else {
            return Ok(None);
        };
        if token.expires_at <= now() {
            return Err(Error::UnauthorizedBecause(
                "the exchanged CI token has expired; exchange a fresh ID token".into(),
            ));
        }
        Ok(Some(Caller::Machine(Box::new(Machine {
            identity: Identity::Oidc {
                issuer: token.issuer,
                claims: token.claims,
                project_id: Some(token.project_id),
            },
            can_write: true,
            ci: token.ci,
        }))))
    }

    /// A machine's level in a project, or why it has none.
    pub(crate) fn machine_level(
        &self,
        machine: &Machine,
        project: &Project,
    ) -> Result<Result<AccessLevel, String>> {
        Ok(match &machine.identity {
            Identity::GitlabJob {
                gitlab_url,
                project_id,
                project_path,
            } => {
                let trusted = project
                    .ci_job_token_gitlab_projects
                    .iter()
                    .any(|entry| trusts_job(entry, gitlab_url, *project_id, project_path));
                if trusted {
                    Ok(ci_level(project.ci_job_token_access_level))
                } else {
                    Err(format!(
                        "{} is not trusted by project {}: add {project_path} to its ci_job_token_gitlab_projects",
                        machine.describe(),
                        project.path_with_namespace()
                    ))
                }
            }
            Identity::Oidc {
                project_id: Some(bound),
                ..
            } if *bound != project.id => Err(format!(
                "{} was exchanged for another project",
                machine.describe()
            )),
            Identity::Oidc { issuer, claims, .. } => {
                let rules = schema::trusted_publishers::of_project(self.meta.as_ref(), project.id)?;
                let mut best: Option<AccessLevel> = None;
                let mut why = Vec::new();
                for rule in &rules {
                    match rule_mismatch(rule, issuer, claims) {
                        None => best = best.max(Some(ci_level(rule.access_level))),
                        Some(reason) => why.push(reason),
                    }
                }
                match best {
                    Some(level) => Ok(level),
                    None if rules.is_empty() => Err(format!(
                        "project {} has no trusted publishers for {}",
                        project.path_with_namespace(),
                        machine.describe()
                    )),
                    None => Err(format!(
                        "no trusted publisher of project {} matches {}: {}",
                        project.path_with_namespace(),
                        machine.describe(),
                        why.join("; ")
                    )),
                }
            }
            Identity::DeployToken { project_id, .. } => {
                if *project_id == project.id {
                    Ok(if machine.can_write {
                        AccessLevel::Developer
                    } else {
                        AccessLevel::Reporter
                    })
                } else {
                    Err(format!("{} belongs to another project", machine.describe()))
                }
            }
        })
    }

    pub fn trusted_publishers(
        &self,
        caller: &Caller,
        access: &ProjectAccess,
    ) -> Result<Vec<TrustedPublisher>> {
        access.check(caller, Action::AdminProject)?;
        Ok(schema::trusted_publishers::of_project(
            self.meta.as_ref(),
            access.project.id,
        )?)
    }

    pub async fn add_trusted_publisher(
        &self,
        caller: &Caller,
        access: &ProjectAccess,
        new: NewTrustedPublisher,
    ) -> Result<TrustedPublisher> {
        access.check(caller, Action::AdminProject)?;
        let issuer = new.issuer.trim().trim_end_matches('/').to_string();
        if url::Url::parse(&issuer).is_err() {
            return Err(Error::invalid("issuer"));
        }
        validate_claims(&new.claims)?;
        let level = new.access_level.unwrap_or(AccessLevel::Developer);
        if level > super::access::CI_LEVEL_CEILING {
            return Err(Error::InvalidParam {
                param: "access_level".into(),
                problem: "must be at most 40 (Maintainer)".into(),
            });
        }
        let rule = TrustedPublisher {
            id: self.new_id()?,
            project_id: access.project.id,
            issuer,
            claims: new.claims,
            access_level: level,
            description: new.description.unwrap_or_default(),
            created_at: now(),
        };
        self.write(|tx| {
            schema::put::<TrustedPublishers>(tx, &rule)?;
            Ok(())
        })
        .await?;
        Ok(rule)
    }

    pub async fn remove_trusted_publisher(
        &self,
        caller: &Caller,
        access: &ProjectAccess,
        id: u64,
    ) -> Result<()> {
        access.check(caller, Action::AdminProject)?;
        let project_id = access.project.id;
        self.write(|tx| {
            match schema::load::<TrustedPublishers>(tx, &schema::id_key(id))? {
                Some(rule) if rule.project_id == project_id => {}
                _ => return abort(Error::NotFound("Trusted publisher")),
            }
            schema::remove::<TrustedPublishers>(tx, &schema::id_key(id))?;
            Ok(())
        })
        .await
    }

    pub async fn create_deploy_token(
        &self,
        caller: &Caller,
        access: &ProjectAccess,
        new: NewDeployToken,
    ) -> Result<IssuedDeployToken> {
        access.check(caller, Action::AdminProject)?;
        if new.name.trim().is_empty() {
            return Err(Error::missing("name"));
        }
        if new.scopes.is_empty() {
            return Err(Error::missing("scopes"));
        }
        if new.expires_at.is_some_and(|d| d <= now().date_naive()) {
            return Err(Error::bad("expires_at must be in the future"));
        }
        for name in &new.package_names {
            super::names::package_name(name).map_err(|_| Error::invalid("package_names"))?;
        }
        let id = self.new_id()?;
        let username = match new.username.filter(|u| !u.trim().is_empty()) {
            Some(username) => {
                super::names::username(&username).map_err(|_| Error::invalid("username"))?;
                username
            }
            None => format!("gitlab+deploy-token-{id}"),
        };
        let secret = format!("gldt-{}", &new_secret()["glpat-".len()..]);
        let mut scopes = new.scopes.clone();
        scopes.dedup();
        let token = DeployToken {
            id,
            project_id: access.project.id,
            name: new.name,
            username,
            secret_sha256: hash_secret(&secret),
            scopes,
            package_names: new.package_names,
            expires_at: new.expires_at,
            revoked: false,
            created_at: now(),
        };
        self.write(|tx| {
            if schema::deploy_tokens::hash_taken(tx, &token.secret_sha256)? {
                return abort(Error::AlreadyExists("token already exists".into()));
            }
            schema::put::<DeployTokens>(tx, &token)?;
            Ok(())
        })
        .await?;
        Ok(IssuedDeployToken { token, secret })
    }

    pub fn deploy_tokens(
        &self,
        caller: &Caller,
        access: &ProjectAccess,
    ) -> Result<Vec<DeployToken>> {
        access.check(caller, Action::AdminProject)?;
        let mut out = Vec::new();
        for id in schema::deploy_tokens::ids_of(self.meta.as_ref(), access.project.id)? {
            if let Some(token) = schema::deploy_tokens::get(self.meta.as_ref(), id)? {
                out.push(token);
            }
        }
        Ok(out)
    }

    /// Revokes a deploy token (GitLab's `DELETE`: it stops working at once).
    pub async fn revoke_deploy_token(
        &self,
        caller: &Caller,
        access: &ProjectAccess,
        id: u64,
    ) -> Result<()> {
        access.check(caller, Action::AdminProject)?;
        let project_id = access.project.id;
        self.write(|tx| {
            let token = match schema::load::<DeployTokens>(tx, &schema::id_key(id))? {
                Some(token) if token.project_id == project_id => token,
                _ => return abort(Error::NotFound("Deploy token")),
            };
            schema::put::<DeployTokens>(
                tx,
                &DeployToken {
                    revoked: true,
                    ..token
                },
            )?;
            Ok(())
        })
        .await
    }

    /// The caller a deploy token's secret makes, if it is one (`Unauthorized` when revoked or
    /// expired).
    pub fn deploy_token_caller(&self, secret: &str) -> Result<Option<Caller>> {
        let Some(token) =
            schema::deploy_tokens::by_hash_of(self.meta.as_ref(), &hash_secret(secret))?
        else {
            return Ok(None);
        };
        if !token.is_active(now().date_naive()) {
            return Err(Error::Unauthorized);
        }
        Ok(Some(Caller::Machine(Box::new(Machine {
            can_write: token.scopes.contains(&DeployScope::WritePackageRegistry),
            identity: Identity::DeployToken {
                token_id: token.id,
                project_id: token.project_id,
                username: token.username.clone(),
                package_names: token.package_names.clone(),
            },
            ci: None,
        }))))
    }

    /// `POST /projects/:id/access_tokens`: a bot user, member of the project at `level`, with
    /// a token of `scopes`. Nobody grants a level above their own, as for members.
    pub async fn create_project_token(
        &self,
        caller: &Caller,
        access: &ProjectAccess,
        name: &str,
        scopes: &[Scope],
        level: AccessLevel,
        expires_at: Option<NaiveDate>,
    ) -> Result<(ProjectToken, String)> {
        access.check(caller, Action::AdminProject)?;
        if name.trim().is_empty() {
            return Err(Error::missing("name"));
        }
        if scopes.is_empty() {
            return Err(Error::missing("scopes"));
        }
        let expires_at = match expires_at {
            Some(d) if d <= now().date_naive() => {
                return Err(Error::bad("expires_at must be in the future"))
            }
            Some(d) => Some(d),
            None => Some(now().date_naive() + chrono::Days::new(365)),
        };
        let project = &access.project;
        let suffix = &new_secret()["glpat-".len().."glpat-".len() + 8];
        let bot = User {
            id: self.new_id()?,
            username: format!("project_{}_bot_{}", project.id, suffix.to_lowercase()),
            name: name.to_string(),
            email: None,
            password_hash: None,
            admin: false,
            created_at: now(),
            bot: true,
        };
        let secret = new_secret();
        let token = PersonalAccessToken {
            id: self.new_id()?,
            user_id: bot.id,
            name: name.to_string(),
            secret_sha256: hash_secret(&secret),
            scopes: scopes.to_vec(),
            expires_at,
            revoked: false,
            created_at: now(),
        };
        let member = Member {
            project_id: project.id,
            user_id: bot.id,
            access_level: level,
            created_at: now(),
            expires_at,
        };
        self.write(|tx| {
            let change = MemberChange {
                current: None,
                wanted: Some(level),
                owners: schema::members::owners_in(tx, project.id)?,
            };
            if let Err(refused) = decide_member_change(caller, project, access.level, change) {
                return abort(refused);
            }
            if schema::users::name_taken(tx, &bot.username)? {
                return abort(Error::Conflict("try again".into()));
            }
            schema::put::<Users>(tx, &bot)?;
            schema::put::<Tokens>(tx, &token)?;
            schema::put::<Members>(tx, &member)?;
            Ok(())
        })
        .await?;
        Ok((
            ProjectToken {
                token,
                bot,
                access_level: level,
            },
            secret,
        ))
    }

    /// A project's access tokens: the tokens of its bot members.
    pub fn project_tokens(
        &self,
        caller: &Caller,
        access: &ProjectAccess,
    ) -> Result<Vec<ProjectToken>> {
        access.check(caller, Action::AdminProject)?;
        let mut out = Vec::new();
        for member in self.members(access.project.id)? {
            let bot = self.user(member.user_id)?;
            if !bot.bot {
                continue;
            }
            for token in self.tokens_of(bot.id)? {
                out.push(ProjectToken {
                    token,
                    bot: bot.clone(),
                    access_level: member.access_level,
                });
            }
        }
        Ok(out)
    }

    /// Revokes a project access token and removes its bot from the project.
    pub async fn revoke_project_token(
        &self,
        caller: &Caller,
        access: &ProjectAccess,
        token_id: u64,
    ) -> Result<()> {
        let found = self
            .project_tokens(caller, access)?
            .into_iter()
            .find(|t| t.token.id == token_id)
            .ok_or(Error::NotFound("Project access token"))?;
        let project_id = access.project.id;
        self.write(|tx| {
            schema::put::<Tokens>(
                tx,
                &PersonalAccessToken {
                    revoked: true,
                    ..found.token.clone()
                },
            )?;
            schema::remove::<Members>(tx, &schema::members::key_of(project_id, found.bot.id))?;
            Ok(())
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn rules_match_every_claim_they_name() {
        let rule = TrustedPublisher {
            id: 1,
            project_id: 1,
            issuer: "https://gitlab.example.com".into(),
            claims: claims(&[("project_path", "team/p"), ("ref", "refs/tags/v*")]),
            access_level: AccessLevel::Developer,
            description: String::new(),
            created_at: now(),
        };
        let issuer = "https://gitlab.example.com/";
        let good = claims(&[("project_path", "team/p"), ("ref", "refs/tags/v1.2")]);
        assert_eq!(rule_mismatch(&rule, issuer, &good), None);
        let branch = claims(&[("project_path", "team/p"), ("ref", "main")]);
        assert!(rule_mismatch(&rule, issuer, &branch)
            .unwrap()
            .contains("claim ref is 'main'"));
        let missing = claims(&[("project_path", "team/p")]);
        assert!(rule_mismatch(&rule, issuer, &missing)
            .unwrap()
            .contains("no claim ref"));
        assert!(rule_mismatch(&rule, "https://other", &good).is_some());
    }

    #[test]
    fn job_projects_are_trusted_by_path_id_or_url() {
        let gl = "https://gitlab.example.com";
        assert!(trusts_job("team/p", gl, 5, "team/p"));
        assert!(trusts_job("Team/P", gl, 5, "team/p"));
        assert!(trusts_job("5", gl, 5, "team/p"));
        assert!(trusts_job(
            "https://gitlab.example.com/team/p/",
            gl,
            5,
            "team/p"
        ));
        assert!(!trusts_job(
            "https://other.example.com/team/p",
            gl,
            5,
            "team/p"
        ));
        assert!(!trusts_job("team/other", gl, 5, "team/p"));
        assert!(!trusts_job("6", gl, 5, "team/p"));
    }
}
