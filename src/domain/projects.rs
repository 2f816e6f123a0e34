//! Projects, their settings and their members.

use super::access::{
    decide, decide_member_change, may_create_in_namespace, Action, Caller, MemberChange,
};
use super::error::{Error, Result};
use super::names;
use super::records::{now, AccessLevel, FeatureAccess, Member, Project, Visibility};
use super::Registry;
use crate::store::keys::{self, Key};
use crate::store::meta::{abort, Table, TxnExt};

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
}

/// A project together with what the caller is allowed to know about its membership.
#[derive(Debug, Clone)]
pub struct ProjectAccess {
    pub project: Project,
    pub level: Option<AccessLevel>,
}

impl ProjectAccess {
    pub fn check(&self, caller: &Caller, action: Action) -> Result<()> {
        decide(caller, &self.project, self.level, action)
    }
}

fn path_key(path_with_namespace: &str) -> Vec<u8> {
    Key::new().str(&path_with_namespace.to_lowercase()).build()
}

impl Registry {
    /// Creates a project owned by its creator, in a namespace [`may_create_in_namespace`] allows.
    pub fn create_project(&self, caller: &Caller, new: NewProject) -> Result<Project> {
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
        may_create_in_namespace(caller, &namespace)?;
        if namespace.eq_ignore_ascii_case(&creator.username) {
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
        };
        let owner = Member {
            project_id: project.id,
            user_id: creator.id,
            access_level: AccessLevel::Owner,
            created_at: now(),
            expires_at: None,
        };
        let by_path = path_key(&project.path_with_namespace());
        self.meta.transaction(|tx| {
            if tx.exists(Table::ProjectsByPath, &by_path)? {
                return abort(Error::AlreadyExists(
                    "Project path has already been taken".into(),
                ));
            }
            tx.put_json(Table::Projects, &keys::id(project.id), &project)?;
            tx.put(Table::ProjectsByPath, &by_path, &keys::id(project.id))?;
            put_member(tx, &owner)?;
            Ok(())
        })?;
        Ok(project)
    }

    /// Finds a project by numeric id or by `namespace/path`, without any access check.
    pub fn find_project(&self, reference: &str) -> Result<Project> {
        let id = match reference.parse::<u64>() {
            Ok(id) => id,
            Err(_) => {
                let id = self
                    .meta
                    .get(Table::ProjectsByPath, &path_key(reference))?
                    .ok_or(Error::NotFound("Project"))?;
                keys::last_id(&id).ok_or(Error::NotFound("Project"))?
            }
        };
        self.meta
            .get_json(Table::Projects, &keys::id(id))?
            .ok_or(Error::NotFound("Project"))
    }

    pub fn member(&self, project_id: u64, user_id: u64) -> Result<Option<Member>> {
        let member: Option<Member> = self.meta.get_json(
            Table::Members,
            &Key::new().id(project_id).id(user_id).build(),
        )?;
        let today = now().date_naive();
        Ok(member.filter(|m| m.expires_at.is_none_or(|d| today < d)))
    }

    /// The project and the caller's level in it, if the caller may at least see it.
    pub fn project_for(&self, caller: &Caller, reference: &str) -> Result<ProjectAccess> {
        let project = self.find_project(reference)?;
        let level = match caller.user_id() {
            Some(user_id) => self.member(project.id, user_id)?.map(|m| m.access_level),
            None => None,
        };
        let access = ProjectAccess { project, level };
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
        for project in self.meta.scan_json::<Project>(Table::Projects, &[]) {
            let project = project?;
            let level = match caller.user_id() {
                Some(user_id) => self.member(project.id, user_id)?.map(|m| m.access_level),
                None => None,
            };
            let access = ProjectAccess { project, level };
            if access.check(caller, Action::ReadProject).is_ok() {
                out.push(access);
            }
        }
        Ok(out)
    }

    pub fn all_projects(&self) -> Result<Vec<Project>> {
        Ok(self
            .meta
            .scan_json(Table::Projects, &[])
            .collect::<Result<_, _>>()?)
    }

    pub fn update_project(
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
        let id = access.project.id;
        self.update_record(Table::Projects, id, "Project", |project: &mut Project| {
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
        })
    }

    /// Deletes a project with its members and packages. Blobs stay until `gc`.
    pub fn delete_project(&self, caller: &Caller, access: &ProjectAccess) -> Result<()> {
        access.check(caller, Action::DeleteProject)?;
        let project = &access.project;
        for package in self.packages_of(project.id)? {
            self.remove_package(&package)?;
        }
        let members = self.members(project.id)?;
        self.meta.transaction(|tx| {
            for member in &members {
                tx.delete(
                    Table::Members,
                    &Key::new().id(project.id).id(member.user_id).build(),
                )?;
                tx.delete(
                    Table::MembersByUser,
                    &Key::new().id(member.user_id).id(project.id).build(),
                )?;
            }
            tx.delete(
                Table::ProjectsByPath,
                &path_key(&project.path_with_namespace()),
            )?;
            tx.delete(Table::Projects, &keys::id(project.id))?;
            Ok(())
        })
    }

    pub fn members(&self, project_id: u64) -> Result<Vec<Member>> {
        Ok(self
            .meta
            .scan_json(Table::Members, &keys::id(project_id))
            .collect::<Result<_, _>>()?)
    }

    /// Adds a member or changes an existing member's level, if [`decide_member_change`] allows it.
    pub fn set_member(
        &self,
        caller: &Caller,
        access: &ProjectAccess,
        user_id: u64,
        level: AccessLevel,
        must_be_new: Option<bool>,
    ) -> Result<Member> {
        access.check(caller, Action::AdminProject)?;
        self.user(user_id)?;
        let project_id = access.project.id;
        let member = Member {
            project_id,
            user_id,
            access_level: level,
            created_at: now(),
            expires_at: None,
        };
        let member_ids = self.member_ids(project_id)?;
        self.meta.transaction(|tx| {
            let key = Key::new().id(project_id).id(user_id).build();
            let existing = tx.get_json::<Member>(Table::Members, &key)?;
            match (must_be_new, &existing) {
                (Some(true), Some(_)) => {
                    return abort(Error::AlreadyExists("Member already exists".into()))
                }
                (Some(false), None) => return abort(Error::NotFound("Member")),
                _ => {}
            }
            let change = MemberChange {
                current: active_level(existing.as_ref()),
                wanted: Some(level),
                owners: owner_count(tx, project_id, &member_ids)?,
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
            put_member(tx, &member)?;
            Ok(member)
        })
    }

    /// Removes a member, if [`decide_member_change`] allows it.
    pub fn remove_member(
        &self,
        caller: &Caller,
        access: &ProjectAccess,
        user_id: u64,
    ) -> Result<()> {
        access.check(caller, Action::AdminProject)?;
        let project_id = access.project.id;
        let member_ids = self.member_ids(project_id)?;
        self.meta.transaction(|tx| {
            let key = Key::new().id(project_id).id(user_id).build();
            let Some(existing) = tx.get_json::<Member>(Table::Members, &key)? else {
                return abort(Error::NotFound("Member"));
            };
            let change = MemberChange {
                current: active_level(Some(&existing)),
                wanted: None,
                owners: owner_count(tx, project_id, &member_ids)?,
            };
            if let Err(refused) =
                decide_member_change(caller, &access.project, access.level, change)
            {
                return abort(refused);
            }
            tx.delete(Table::Members, &key)?;
            tx.delete(
                Table::MembersByUser,
                &Key::new().id(user_id).id(project_id).build(),
            )?;
            Ok(())
        })
    }

    fn member_ids(&self, project_id: u64) -> Result<Vec<u64>> {
        Ok(self
            .members(project_id)?
            .into_iter()
            .map(|m| m.user_id)
            .collect())
    }
}

/// A membership's level while it lasts.
fn active_level(member: Option<&Member>) -> Option<AccessLevel> {
    let today = now().date_naive();
    member
        .filter(|m| m.expires_at.is_none_or(|d| today < d))
        .map(|m| m.access_level)
}

/// The project's active Owners among `member_ids`, read inside the transaction so that two
/// Owners demoting each other at once cannot both succeed.
fn owner_count(
    tx: &dyn crate::store::meta::Txn,
    project_id: u64,
    member_ids: &[u64],
) -> Result<usize, crate::store::meta::TxFail> {
    let mut owners = 0;
    for user_id in member_ids {
        let key = Key::new().id(project_id).id(*user_id).build();
        let member = tx.get_json::<Member>(Table::Members, &key)?;
        if active_level(member.as_ref()) == Some(AccessLevel::Owner) {
            owners += 1;
        }
    }
    Ok(owners)
}

fn put_member(
    tx: &dyn crate::store::meta::Txn,
    member: &Member,
) -> Result<(), crate::store::meta::TxFail> {
    tx.put_json(
        Table::Members,
        &Key::new().id(member.project_id).id(member.user_id).build(),
        member,
    )?;
    tx.put(
        Table::MembersByUser,
        &Key::new().id(member.user_id).id(member.project_id).build(),
        &[],
    )
}
