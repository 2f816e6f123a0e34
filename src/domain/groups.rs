//! Groups: namespaces with members. A project in a group inherits the members of the group and
//! of its parents (the highest role wins); only a group's Maintainers and Owners create
//! projects and subgroups in it.

use super::access::{decide_group, decide_group_member_change, Caller, GroupAction, MemberChange};
use super::error::{Error, Result};
use super::names;
use super::records::{now, AccessLevel, Group, GroupMember, Project, Visibility};
use super::schema::{self, groups::GroupMembers, groups::Groups};
use super::Registry;
use crate::store::meta::abort;

#[derive(Debug, Clone, Default)]
pub struct NewGroup {
    pub name: Option<String>,
    pub path: Option<String>,
    pub parent_id: Option<u64>,
    pub description: Option<String>,
    pub visibility: Option<Visibility>,
}

/// A group and the caller's level in it (the highest of the group's and its parents').
#[derive(Debug, Clone)]
pub struct GroupAccess {
    pub group: Group,
    pub level: Option<AccessLevel>,
}

impl GroupAccess {
    pub fn check(&self, caller: &Caller, action: GroupAction) -> Result<()> {
        decide_group(caller, self.group.visibility, self.level, action)
    }
}

/// `a/b/c` → `a`, `a/b`, `a/b/c`: the group paths a namespace lies in.
fn enclosing_paths(namespace: &str) -> impl Iterator<Item = &str> {
    namespace
        .match_indices('/')
        .map(|(i, _)| &namespace[..i])
        .chain(std::iter::once(namespace))
}

fn active(member: Option<GroupMember>) -> Option<AccessLevel> {
    let today = now().date_naive();
    member
        .filter(|m| m.expires_at.is_none_or(|d| today < d))
        .map(|m| m.access_level)
}

impl Registry {
    pub fn group_by_path(&self, full_path: &str) -> Result<Option<Group>> {
        Ok(schema::groups::by_path(self.meta.as_ref(), full_path)?)
    }

    pub fn group(&self, id: u64) -> Result<Group> {
        schema::groups::get(self.meta.as_ref(), id)?.ok_or(Error::NotFound("Group"))
    }

    /// A group by numeric id or full path, without any access check.
    pub fn find_group(&self, reference: &str) -> Result<Group> {
        let found = match reference.parse::<u64>() {
            Ok(id) => schema::groups::get(self.meta.as_ref(), id)?,
            Err(_) => schema::groups::by_path(self.meta.as_ref(), reference)?,
        };
        found.ok_or(Error::NotFound("Group"))
    }

    /// A user's level in a namespace: the highest of their active memberships of the groups
    /// the namespace lies in (none for a user namespace).
    pub fn namespace_level(&self, user_id: u64, namespace: &str) -> Result<Option<AccessLevel>> {
        let mut best = None;
        for path in enclosing_paths(namespace) {
            if let Some(group) = schema::groups::by_path(self.meta.as_ref(), path)? {
                let level = active(schema::groups::member(
                    self.meta.as_ref(),
                    group.id,
                    user_id,
                )?);
                best = best.max(level);
            }
        }
        Ok(best)
    }

    /// A user's level in a group, inherited from its parents too.
    pub fn group_level(&self, user_id: u64, group: &Group) -> Result<Option<AccessLevel>> {
        self.namespace_level(user_id, &group.full_path)
    }

    pub fn group_access(&self, caller: &Caller, group: Group) -> Result<GroupAccess> {
        let level = match caller.user_id() {
            Some(user_id) => self.group_level(user_id, &group)?,
            None => None,
        };
        Ok(GroupAccess { group, level })
    }

    /// The group, if the caller may at least see it.
    pub fn group_for(&self, caller: &Caller, reference: &str) -> Result<GroupAccess> {
        let access = self.group_access(caller, self.find_group(reference)?)?;
        access.check(caller, GroupAction::Read)?;
        Ok(access)
    }

    /// Every group the caller can see, by id.
    pub fn visible_groups(&self, caller: &Caller) -> Result<Vec<GroupAccess>> {
        let mut out = Vec::new();
        for group in schema::groups::all(self.meta.as_ref()) {
            let access = self.group_access(caller, group?)?;
            if access.check(caller, GroupAction::Read).is_ok() {
                out.push(access);
            }
        }
        Ok(out)
    }

    /// Creates a group owned by its creator: a top-level one by any user, a subgroup by the
    /// parent's Maintainers and Owners.
    pub async fn create_group(&self, caller: &Caller, new: NewGroup) -> Result<Group> {
        let creator = match caller {
            Caller::User(p) if p.can_write => p.user.clone(),
            Caller::User(_) => return Err(Error::Forbidden),
            Caller::Anonymous => return Err(Error::Unauthorized),
            Caller::Machine(m) => {
                return Err(Error::denied(format!(
                    "{} cannot create groups",
                    m.describe()
                )))
            }
        };
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
        names::project_path(&path).map_err(|_| Error::invalid("path"))?;
        let parent = match new.parent_id {
            Some(id) => {
                let access = self.group_for(caller, &id.to_string())?;
                access.check(caller, GroupAction::CreateIn)?;
                Some(access.group)
            }
            None => None,
        };
        let full_path = match &parent {
            Some(parent) => format!("{}/{path}", parent.full_path),
            None => path.clone(),
        };
        let group = Group {
            id: self.new_id()?,
            name,
            path,
            full_path,
            parent_id: parent.as_ref().map(|p| p.id),
            description: new.description.unwrap_or_default(),
            visibility: new.visibility.unwrap_or(Visibility::Private),
            created_at: now(),
        };
        let owner = GroupMember {
            group_id: group.id,
            user_id: creator.id,
            access_level: AccessLevel::Owner,
            created_at: now(),
            expires_at: None,
        };
        self.write(|tx| {
            let top_level_taken_by_user =
                parent.is_none() && schema::users::name_taken(tx, &group.path)?;
            if top_level_taken_by_user || schema::groups::path_taken(tx, &group.full_path)? {
                return abort(Error::AlreadyExists(
                    "Failed to save group {:path=>[\"has already been taken\"]}".into(),
                ));
            }
            if schema::projects::path_taken(tx, &group.full_path)? {
                return abort(Error::AlreadyExists(
                    "Failed to save group {:path=>[\"has already been taken by a project\"]}"
                        .into(),
                ));
            }
            schema::put::<Groups>(tx, &group)?;
            schema::put::<GroupMembers>(tx, &owner)?;
            Ok(())
        })
        .await?;
        Ok(group)
    }

    pub fn group_members(&self, group_id: u64) -> Result<Vec<GroupMember>> {
        Ok(schema::groups::members_of(self.meta.as_ref(), group_id)?)
    }

    /// A group's active direct member.
    pub fn group_member(&self, group_id: u64, user_id: u64) -> Result<Option<GroupMember>> {
        let member = schema::groups::member(self.meta.as_ref(), group_id, user_id)?;
        let today = now().date_naive();
        Ok(member.filter(|m| m.expires_at.is_none_or(|d| today < d)))
    }

    /// Adds or changes a group member under the same rules as a project's.
    pub async fn set_group_member(
        &self,
        caller: &Caller,
        access: &GroupAccess,
        user_id: u64,
        level: AccessLevel,
        expires_at: Option<chrono::NaiveDate>,
        must_be_new: Option<bool>,
    ) -> Result<GroupMember> {
        access.check(caller, GroupAction::Admin)?;
        self.user(user_id)?;
        if expires_at.is_some_and(|d| d <= now().date_naive()) {
            return Err(Error::InvalidParam {
                param: "expires_at".into(),
                problem: "must be in the future".into(),
            });
        }
        let group_id = access.group.id;
        self.write(|tx| {
            let existing = schema::groups::load_member(tx, group_id, user_id)?;
            match (must_be_new, &existing) {
                (Some(true), Some(_)) => {
                    return abort(Error::Conflict("Member already exists".into()))
                }
                (Some(false), None) => return abort(Error::NotFound("Member")),
                _ => {}
            }
            let change = MemberChange {
                current: active(existing.clone()),
                wanted: Some(level),
                owners: schema::groups::owners_in(tx, group_id)?,
            };
            if let Err(refused) =
                decide_group_member_change(caller, access.group.visibility, access.level, change)
            {
                return abort(refused);
            }
            let member = GroupMember {
                group_id,
                user_id,
                access_level: level,
                created_at: existing.map(|m| m.created_at).unwrap_or_else(now),
                expires_at,
            };
            schema::put::<GroupMembers>(tx, &member)?;
            Ok(member)
        })
        .await
    }

    pub async fn remove_group_member(
        &self,
        caller: &Caller,
        access: &GroupAccess,
        user_id: u64,
    ) -> Result<()> {
        access.check(caller, GroupAction::Admin)?;
        let group_id = access.group.id;
        self.write(|tx| {
            let Some(existing) = schema::groups::load_member(tx, group_id, user_id)? else {
                return abort(Error::NotFound("Member"));
            };
            let change = MemberChange {
                current: active(Some(existing)),
                wanted: None,
                owners: schema::groups::owners_in(tx, group_id)?,
            };
            if let Err(refused) =
                decide_group_member_change(caller, access.group.visibility, access.level, change)
            {
                return abort(refused);
            }
            schema::remove::<GroupMembers>(tx, &schema::groups::member_key_of(group_id, user_id))?;
            Ok(())
        })
        .await
    }

    /// The projects of a group (and of its subgroups when `subgroups`) that the caller sees.
    pub fn group_projects(
        &self,
        caller: &Caller,
        group: &Group,
        subgroups: bool,
    ) -> Result<Vec<Project>> {
        let inner = format!("{}/", group.full_path.to_lowercase());
        Ok(self
            .visible_projects(caller)?
            .into_iter()
            .map(|a| a.project)
            .filter(|p| {
                let ns = p.namespace.to_lowercase();
                ns == group.full_path.to_lowercase() || (subgroups && ns.starts_with(&inner))
            })
            .collect())
    }

    /// A group's Owners and Maintainers change its name, description and visibility.
    pub async fn update_group(
        &self,
        caller: &Caller,
        access: &GroupAccess,
        name: Option<String>,
        description: Option<String>,
        visibility: Option<Visibility>,
    ) -> Result<Group> {
        access.check(caller, GroupAction::Admin)?;
        if name
            .as_ref()
            .is_some_and(|n| n.trim().is_empty() || n.len() > 255)
        {
            return Err(Error::invalid("name"));
        }
        self.update_record::<Groups>(access.group.id, "Group", |group: &mut Group| {
            if let Some(name) = &name {
                group.name = name.clone();
            }
            if let Some(description) = &description {
                group.description = description.clone();
            }
            if let Some(visibility) = visibility {
                group.visibility = visibility;
            }
        })
        .await
    }

    /// An Owner deletes an empty group (no projects, no subgroups) with its memberships.
    pub async fn delete_group(&self, caller: &Caller, access: &GroupAccess) -> Result<()> {
        access.check(caller, GroupAction::Delete)?;
        let group = &access.group;
        let has_projects = self
            .all_projects()?
            .iter()
            .any(|p| p.namespace.eq_ignore_ascii_case(&group.full_path));
        let has_subgroups = schema::groups::all(self.meta.as_ref())
            .any(|g| g.is_ok_and(|g| g.parent_id == Some(group.id)));
        if has_projects || has_subgroups {
            return Err(Error::bad(format!(
                "the group {} still has projects or subgroups; delete or move them first",
                group.full_path
            )));
        }
        self.delete_listed(
            |seen| {
                seen.note(
                    self.meta.as_ref(),
                    super::schema::revisions::Parent::Group(group.id),
                )?;
                self.group_members(group.id)
            },
            |tx, members| {
                for m in members {
                    schema::remove::<GroupMembers>(
                        tx,
                        &schema::groups::member_key_of(group.id, m.user_id),
                    )?;
                }
                schema::remove::<Groups>(tx, &schema::id_key(group.id))?;
                schema::revisions::forget(tx, super::schema::revisions::Parent::Group(group.id))?;
                Ok(())
            },
        )
        .await
    }

    /// The ids of the groups a user is a direct member of.
    pub fn groups_of_user(&self, user_id: u64) -> Result<Vec<Group>> {
        schema::groups::group_ids_of_user(self.meta.as_ref(), user_id)?
            .into_iter()
            .map(|id| self.group(id))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::enclosing_paths;

    #[test]
    fn a_namespace_lies_in_each_of_its_prefixes() {
        let paths: Vec<&str> = enclosing_paths("a/b/c").collect();
        assert_eq!(paths, ["a", "a/b", "a/b/c"]);
        assert_eq!(enclosing_paths("solo").collect::<Vec<_>>(), ["solo"]);
    }
}
