//! Projects, their settings and their members.

use super::access::{
    decide, decide_member_change, may_create_in_namespace, Action, Caller, GroupNamespace,
    MemberChange,
};
use super::error::{Error, Result};
use super::names;
use super::records::{now, AccessLevel, FeatureAccess, Member, Project, Visibility};
use super::schema::revisions::Parent;
use super::schema::{self, members::Members, projects::Projects};
use super::Registry;
use crate::store::meta::abort;

#[derive(Debug, Clone, Default)]
pub struct NewProject {
    pub name: Option<String>,
    pub path: Option<String>,
    /// Defaults to the creator's username.
    pub namespace: Option<String>,
    pub description: Option<String>,
    pub visibility: Option<Visibility>,
    pub model_registry_access_level: Option<FeatureAccess>,
    pub generic_duplicates_allowed: Option<bool>,
}

#[derive(Debug, Clone, Default)]
pub struct ProjectChanges {
    pub name: Option<String>,
    pub description: Option<String>,
    pub visibility: Option<Visibility>,
    pub model_registry_access_level: Option<FeatureAccess>,
    pub generic_duplicates_allowed: Option<bool>,
    pub ci_job_token_gitlab_projects: Option<Vec<String>>,
    pub ci_job_token_access_level: Option<AccessLevel>,
}

/// A project together with what the caller is allowed to know about its membership.
#[derive(Debug, Clone)]
pub struct ProjectAccess {
    pub project: Project,
    /// The caller's level: a user's as a member of the project or of its groups (the
    /// highest), a CI identity's from the project's trust settings.
    pub level: Option<AccessLevel>,
    /// Why a CI identity or deploy token has no level here, to say so in a refusal.
    pub refusal: Option<String>,
}

impl ProjectAccess {
    pub fn check(&self, caller: &Caller, action: Action) -> Result<()> {
        match (
            decide(caller, &self.project, self.level, action),
            &self.refusal,
        ) {
            (Err(Error::Forbidden | Error::NotFound(_)), Some(reason)) => {
                Err(Error::denied(reason.clone()))
            }
            (decision, _) => {
                if decision.is_ok() {
                    super::events::note_actor(caller);
                }
                decision
            }
        }
    }
}

impl Registry {
    /// Creates a project owned by its creator, in a namespace [`may_create_in_namespace`] allows.
    pub async fn create_project(&self, caller: &Caller, new: NewProject) -> Result<Project> {
        let creator = caller.user().ok_or(Error::Unauthorized)?.clone();
        let name = new
            .name
            .clone()
            .or_else(|| new.path.clone())
            .filter(|n| !n.trim().is_empty())
            .ok_or_else(|| Error::missing("name"))?;
        if name.len() > 255 {
            return Err(Error::invalid("name"));
        }
        let path = new
            .path
            .clone()
            .unwrap_or_else(|| names::path_from_name(&name));
        names::project_path(&path)?;
        let mut namespace = new
            .namespace
            .clone()
            .unwrap_or_else(|| creator.username.clone());
        for segment in namespace.split('/') {
            names::project_path(segment).map_err(|_| Error::invalid("namespace"))?;
        }
        let group = self.group_by_path(&namespace)?;
        let group_namespace = match &group {
            Some(group) => Some(GroupNamespace {
                visibility: group.visibility,
                level: self.group_level(creator.id, group)?,
            }),
            None => None,
        };
        may_create_in_namespace(caller, &namespace, group_namespace)?;
        if let Some(group) = &group {
            namespace = group.full_path.clone();
        } else if namespace.eq_ignore_ascii_case(&creator.username) {
            // Paths are unique regardless of case; show the user's namespace as they spell it.
            namespace = creator.username.clone();
        }
        let project = Project {
            id: self.new_id()?,
            name,
            path,
            namespace,
            description: new.description.unwrap_or_default(),
            visibility: new.visibility.unwrap_or(Visibility::Private),
            model_registry_access_level: new
                .model_registry_access_level
                .unwrap_or(FeatureAccess::Enabled),
            generic_duplicates_allowed: new.generic_duplicates_allowed.unwrap_or(true),
            creator_id: creator.id,
            created_at: now(),
            ci_job_token_gitlab_projects: Vec::new(),
            ci_job_token_access_level: AccessLevel::Developer,
        };
        let owner = Member {
            project_id: project.id,
            user_id: creator.id,
            access_level: AccessLevel::Owner,
            created_at: now(),
            expires_at: None,
        };
        let default_experiment = super::experiments::default_experiment_record(
            self.new_id()?,
            project.id,
            Some(creator.id),
        );
        self.write(|tx| {
            if schema::projects::path_taken(tx, &project.path_with_namespace())? {
                return abort(Error::AlreadyExists(
                    "Project path has already been taken".into(),
                ));
            }
            schema::put::<Projects>(tx, &project)?;
            schema::put::<Members>(tx, &owner)?;
            // MLflow's experiment `0` exists from the start.
            schema::put::<schema::experiments::Experiments>(tx, &default_experiment)?;
            Ok(())
        })
        .await?;
        Ok(project)
    }

    /// Finds a project by numeric id or by `namespace/path`, without any access check.
    pub fn find_project(&self, reference: &str) -> Result<Project> {
        let found = match reference.parse::<u64>() {
            Ok(id) => schema::projects::get(self.meta.as_ref(), id)?,
            Err(_) => schema::projects::by_path(self.meta.as_ref(), reference)?,
        };
        found.ok_or(Error::NotFound("Project"))
    }

    pub fn member(&self, project_id: u64, user_id: u64) -> Result<Option<Member>> {
        let member = schema::members::get(self.meta.as_ref(), project_id, user_id)?;
        let today = now().date_naive();
        Ok(member.filter(|m| m.expires_at.is_none_or(|d| today < d)))
    }

    /// The caller's level in a project (see [`ProjectAccess::level`]) and, for a CI identity
    /// without one, why.
    pub fn access_to(&self, caller: &Caller, project: Project) -> Result<ProjectAccess> {
        let (level, refusal) = match caller {
            Caller::Anonymous => (None, None),
            Caller::User(principal) => (self.user_level(principal.user.id, &project)?, None),
            Caller::Machine(machine) => match self.machine_level(machine, &project)? {
                Ok(level) => (Some(level), None),
                Err(reason) => (None, Some(reason)),
            },
        };
        Ok(ProjectAccess {
            project,
            level,
            refusal,
        })
    }

    /// A user's level in a project: the highest of their membership of it and of the groups
    /// it is in.
    pub fn user_level(&self, user_id: u64, project: &Project) -> Result<Option<AccessLevel>> {
        let direct = self.member(project.id, user_id)?.map(|m| m.access_level);
        let inherited = self.namespace_level(user_id, &project.namespace)?;
        Ok(direct.max(inherited))
    }

    /// The project and the caller's level in it, if the caller may at least see it.
    pub fn project_for(&self, caller: &Caller, reference: &str) -> Result<ProjectAccess> {
        let project = self.find_project(reference)?;
        let access = self.access_to(caller, project)?;
        access.check(caller, Action::ReadProject)?;
        Ok(access)
    }

    /// The project, if the caller may do `action` to it: the precheck first, so that an anonymous
    /// write is 401 whether or not the project exists.
    pub fn project_for_action(
        &self,
        caller: &Caller,
        reference: &str,
        action: Action,
    ) -> Result<ProjectAccess> {
        super::access::precheck(caller, action)?;
        let access = self.project_for(caller, reference)?;
        access.check(caller, action)?;
        Ok(access)
    }

    /// Every project the caller can see, oldest first.
    pub fn visible_projects(&self, caller: &Caller) -> Result<Vec<ProjectAccess>> {
        let mut out = Vec::new();
        for project in schema::projects::all(self.meta.as_ref()) {
            let access = self.access_to(caller, project?)?;
            if access.check(caller, Action::ReadProject).is_ok() {
                out.push(access);
            }
        }
        Ok(out)
    }

    pub fn all_projects(&self) -> Result<Vec<Project>> {
        Ok(schema::projects::all(self.meta.as_ref()).collect::<Result<_, _>>()?)
    }

    pub async fn update_project(
        &self,
        caller: &Caller,
        access: &ProjectAccess,
        changes: ProjectChanges,
    ) -> Result<Project> {
        access.check(caller, Action::AdminProject)?;
        if changes
            .name
            .as_ref()
            .is_some_and(|n| n.trim().is_empty() || n.len() > 255)
        {
            return Err(Error::invalid("name"));
        }
        if let Some(level) = changes.ci_job_token_access_level {
            if level > super::access::CI_LEVEL_CEILING {
                return Err(Error::InvalidParam {
                    param: "ci_job_token_access_level".into(),
                    problem: "must be at most 40 (Maintainer)".into(),
                });
            }
        }
        if let Some(trusted) = &changes.ci_job_token_gitlab_projects {
            if trusted.len() > 100 || trusted.iter().any(|t| t.trim().is_empty() || t.len() > 512) {
                return Err(Error::invalid("ci_job_token_gitlab_projects"));
            }
        }
        let id = access.project.id;
        self.update_record::<Projects>(id, "Project", |project: &mut Project| {
            if let Some(name) = &changes.name {
                project.name = name.clone();
            }
            if let Some(description) = &changes.description {
                project.description = description.clone();
            }
            if let Some(visibility) = changes.visibility {
                project.visibility = visibility;
            }
            if let Some(level) = changes.model_registry_access_level {
                project.model_registry_access_level = level;
            }
            if let Some(allowed) = changes.generic_duplicates_allowed {
                project.generic_duplicates_allowed = allowed;
            }
            if let Some(trusted) = &changes.ci_job_token_gitlab_projects {
                project.ci_job_token_gitlab_projects = trusted.clone();
            }
            if let Some(level) = changes.ci_job_token_access_level {
                project.ci_job_token_access_level = level;
            }
        })
        .await
    }

    /// Deletes a project with its members and packages, in one transaction. Blobs stay until
    /// `gc`.
    pub async fn delete_project(&self, caller: &Caller, access: &ProjectAccess) -> Result<()> {
        access.check(caller, Action::DeleteProject)?;
        let project = &access.project;
        self.delete_listed(
            |seen| {
                seen.note(self.meta.as_ref(), Parent::Project(project.id))?;
                let mut packages = Vec::new();
                for id in schema::packages::ids_of(self.meta.as_ref(), project.id)? {
                    if let Some(package) = schema::packages::get(self.meta.as_ref(), id)? {
                        packages.push(self.package_contents(seen, package)?);
                    }
                }
                let deploy_tokens = schema::deploy_tokens::ids_of(self.meta.as_ref(), project.id)?;
                let rules: Vec<u64> =
                    schema::trusted_publishers::of_project(self.meta.as_ref(), project.id)?
                        .iter()
                        .map(|r| r.id)
                        .collect();
                let mut hooks = Vec::new();
                for id in schema::hooks::ids_of(self.meta.as_ref(), project.id)? {
                    hooks.push((id, schema::outbox::keys_of(self.meta.as_ref(), id)?));
                }
                Ok((
                    packages,
                    self.members(project.id)?,
                    deploy_tokens,
                    rules,
                    hooks,
                ))
            },
            |tx, (packages, members, deploy_tokens, rules, hooks)| {
                // Hooks go first: the deletions below announce nothing to a deleted project.
                for (id, deliveries) in hooks {
                    for key in deliveries {
                        schema::remove::<schema::outbox::Deliveries>(tx, key)?;
                    }
                    schema::remove::<schema::hooks::Hooks>(tx, &schema::id_key(*id))?;
                }
                for id in deploy_tokens {
                    schema::remove::<schema::deploy_tokens::DeployTokens>(
                        tx,
                        &schema::id_key(*id),
                    )?;
                }
                for id in rules {
                    schema::remove::<schema::trusted_publishers::TrustedPublishers>(
                        tx,
                        &schema::id_key(*id),
                    )?;
                }
                for package in packages {
                    super::packages::remove_package_in(tx, package)?;
                }
                for member in members {
                    schema::remove::<Members>(
                        tx,
                        &schema::members::key_of(project.id, member.user_id),
                    )?;
                }
                schema::remove::<Projects>(tx, &schema::id_key(project.id))?;
                schema::revisions::forget(tx, Parent::Project(project.id))?;
                Ok(())
            },
        )
        .await
    }

    pub fn members(&self, project_id: u64) -> Result<Vec<Member>> {
        Ok(schema::members::of_project(self.meta.as_ref(), project_id)?)
    }

    /// Adds a member or changes an existing member's level, if [`decide_member_change`] allows it.
    pub async fn set_member(
        &self,
        caller: &Caller,
        access: &ProjectAccess,
        user_id: u64,
        level: AccessLevel,
        expires_at: Option<chrono::NaiveDate>,
        must_be_new: Option<bool>,
    ) -> Result<Member> {
        access.check(caller, Action::AdminProject)?;
        self.user(user_id)?;
        if expires_at.is_some_and(|d| d <= now().date_naive()) {
            return Err(Error::InvalidParam {
                param: "expires_at".into(),
                problem: "must be in the future".into(),
            });
        }
        let project_id = access.project.id;
        let member = Member {
            project_id,
            user_id,
            access_level: level,
            created_at: now(),
            expires_at,
        };
        self.write(|tx| {
            let existing = schema::members::load(tx, project_id, user_id)?;
            match (must_be_new, &existing) {
                (Some(true), Some(_)) => {
                    return abort(Error::Conflict("Member already exists".into()))
                }
                (Some(false), None) => return abort(Error::NotFound("Member")),
                _ => {}
            }
            let change = MemberChange {
                current: active_level(existing.as_ref()),
                wanted: Some(level),
                owners: schema::members::owners_in(tx, project_id)?,
            };
            if let Err(refused) =
                decide_member_change(caller, &access.project, access.level, change)
            {
                return abort(refused);
            }
            let member = Member {
                created_at: existing.map(|m| m.created_at).unwrap_or(member.created_at),
                ..member.clone()
            };
            schema::put::<Members>(tx, &member)?;
            Ok(member)
        })
        .await
    }

    /// Removes a member, if [`decide_member_change`] allows it.
    pub async fn remove_member(
        &self,
        caller: &Caller,
        access: &ProjectAccess,
        user_id: u64,
    ) -> Result<()> {
        access.check(caller, Action::AdminProject)?;
        let project_id = access.project.id;
        self.write(|tx| {
            let Some(existing) = schema::members::load(tx, project_id, user_id)? else {
                return abort(Error::NotFound("Member"));
            };
            let change = MemberChange {
                current: active_level(Some(&existing)),
                wanted: None,
                owners: schema::members::owners_in(tx, project_id)?,
            };
            if let Err(refused) =
                decide_member_change(caller, &access.project, access.level, change)
            {
                return abort(refused);
            }
            schema::remove::<Members>(tx, &schema::members::key_of(project_id, user_id))?;
            Ok(())
        })
        .await
    }
}

/// A membership's level while it lasts.
fn active_level(member: Option<&Member>) -> Option<AccessLevel> {
    let today = now().date_naive();
    member
        .filter(|m| m.expires_at.is_none_or(|d| today < d))
        .map(|m| m.access_level)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_membership_ends_on_its_expiry_date() {
        let member = |expires_at| Member {
            project_id: 1,
            user_id: 2,
            access_level: AccessLevel::Developer,
            created_at: now(),
            expires_at,
        };
        let today = now().date_naive();
        assert_eq!(
            active_level(Some(&member(None))),
            Some(AccessLevel::Developer)
        );
        assert_eq!(
            active_level(Some(&member(today.succ_opt()))),
            Some(AccessLevel::Developer)
        );
        assert_eq!(active_level(Some(&member(Some(today)))), None);
        assert_eq!(active_level(Some(&member(today.pred_opt()))), None);
    }
}
