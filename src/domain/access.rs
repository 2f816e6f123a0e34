//! Who may do what. [`decide`] is the only place that compares access levels.

use super::error::Error;
use super::records::{AccessLevel, FeatureAccess, PackageType, Project, Scope, User, Visibility};

/// The authenticated party behind a request.
#[derive(Debug, Clone)]
pub enum Caller {
    Anonymous,
    User(Principal),
}

#[derive(Debug, Clone)]
pub struct Principal {
    pub user: User,
    /// `false` for `read_api` tokens: reads only.
    pub can_write: bool,
}

impl Caller {
    pub fn user(&self) -> Option<&User> {
        match self {
            Caller::Anonymous => None,
            Caller::User(p) => Some(&p.user),
        }
    }

    pub fn user_id(&self) -> Option<u64> {
        self.user().map(|u| u.id)
    }

    pub fn is_admin(&self) -> bool {
        self.user().is_some_and(|u| u.admin)
    }

    pub fn from_user(user: User, scopes: &[Scope]) -> Caller {
        Caller::User(Principal {
            user,
            can_write: scopes.contains(&Scope::Api),
        })
    }
}

/// What a request wants to do to a project.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Know that the project exists and read its settings.
    ReadProject,
    /// Download generic packages, list packages.
    ReadPackages,
    /// Upload generic packages that are not model versions.
    WritePackages,
    /// Delete packages and package files through the packages API.
    DeletePackages,
    /// Delete `ml_model` packages (a model's versions, candidates' artifacts) and their files
    /// through the packages API: a Maintainer's, where the registry is visible to them.
    DeleteModelPackages,
    /// Read models, versions, experiments, candidates and their files.
    ReadRegistry,
    /// Create, change and delete models, versions, experiments, candidates and their files.
    WriteRegistry,
    /// Turn the generic packages of a name into versions of a new model of that name.
    AdoptPackages,
    /// Change settings and members.
    AdminProject,
    /// Delete the project.
    DeleteProject,
}

impl Action {
    /// The least access level a member needs; `None` for reads.
    fn required_level(self) -> Option<AccessLevel> {
        match self {
            Action::ReadProject | Action::ReadPackages | Action::ReadRegistry => None,
            Action::WriteRegistry => Some(AccessLevel::Reporter),
            Action::WritePackages => Some(AccessLevel::Developer),
            Action::DeletePackages
            | Action::DeleteModelPackages
            | Action::AdoptPackages
            | Action::AdminProject => Some(AccessLevel::Maintainer),
            Action::DeleteProject => Some(AccessLevel::Owner),
        }
    }

    pub fn is_write(self) -> bool {
        self.required_level().is_some()
    }

    fn touches_registry(self) -> bool {
        matches!(
            self,
            Action::ReadRegistry
                | Action::WriteRegistry
                | Action::AdoptPackages
                | Action::DeleteModelPackages
        )
    }

    /// Reading packages of a type: `ml_model` packages belong to the model registry, so the
    /// registry's access level governs them wherever they show (packages API, downloads).
    pub fn read_packages_of(package_type: PackageType) -> Action {
        match package_type {
            PackageType::Generic => Action::ReadPackages,
            PackageType::MlModel => Action::ReadRegistry,
        }
    }

    /// Deleting packages of a type through the packages API.
    pub fn delete_packages_of(package_type: PackageType) -> Action {
        match package_type {
            PackageType::Generic => Action::DeletePackages,
            PackageType::MlModel => Action::DeleteModelPackages,
        }
    }
}

/// The check that needs no project: an anonymous caller never writes (401), whether or not the
/// project exists, so that the answer reveals nothing.
pub fn precheck(caller: &Caller, action: Action) -> Result<(), Error> {
    if action.is_write() && matches!(caller, Caller::Anonymous) {
        return Err(Error::Unauthorized);
    }
    Ok(())
}

/// Decides whether `caller`, a member at `level` (if any), may do `action` to `project`.
/// The refusal says how to answer: 401 when an anonymous caller wants to change something, 404
/// when the caller may not see the thing at all, 403 when it may see but not act.
pub fn decide(
    caller: &Caller,
    project: &Project,
    level: Option<AccessLevel>,
    action: Action,
) -> Result<(), Error> {
    precheck(caller, action)?;
    let admin = caller.is_admin();
    let member = level.is_some();
    let sees_project = admin
        || member
        || match project.visibility {
            Visibility::Public => true,
            Visibility::Internal => caller.user().is_some(),
            Visibility::Private => false,
        };
    if !sees_project {
        return Err(Error::NotFound("Project"));
    }
    if action.touches_registry() {
        let registry_visible = match project.model_registry_access_level {
            FeatureAccess::Disabled => false,
            FeatureAccess::Private => admin || member,
            FeatureAccess::Enabled => true,
        };
        if !registry_visible {
            return Err(Error::NotFound("Project"));
        }
    }
    let Some(required) = action.required_level() else {
        return Ok(());
    };
    let Caller::User(principal) = caller else {
        return Err(Error::Unauthorized);
    };
    if !principal.can_write {
        return Err(Error::Forbidden);
    }
    if admin || level.is_some_and(|l| l >= required) {
        Ok(())
    } else {
        Err(Error::Forbidden)
    }
}

/// A change to one membership of a project, as [`decide_member_change`] judges it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemberChange {
    /// The target's level now; `None` when not (or no longer) a member.
    pub current: Option<AccessLevel>,
    /// The level asked for; `None` to remove the member.
    pub wanted: Option<AccessLevel>,
    /// How many Owners the project has now, the target included.
    pub owners: usize,
}

/// Whether `caller`, a member at `level` (if any), may make `change` to a membership of `project`.
/// On top of [`Action::AdminProject`], GitLab's rules: nobody grants a level above their own; only
/// Owners (and admins) add, change or remove Owners; and the last Owner can be neither removed nor
/// demoted, not even by an admin, so that a project always has someone who may delete it.
pub fn decide_member_change(
    caller: &Caller,
    project: &Project,
    level: Option<AccessLevel>,
    change: MemberChange,
) -> Result<(), Error> {
    decide(caller, project, level, Action::AdminProject)?;
    if !caller.is_admin() {
        if change.wanted.is_some_and(|wanted| Some(wanted) > level) {
            return Err(Error::denied(
                "You cannot grant an access level above your own",
            ));
        }
        let touches_owner =
            change.current == Some(AccessLevel::Owner) || change.wanted == Some(AccessLevel::Owner);
        if touches_owner && level < Some(AccessLevel::Owner) {
            return Err(Error::denied(
                "Only Owners can add, change or remove an Owner",
            ));
        }
    }
    let demotes_owner =
        change.current == Some(AccessLevel::Owner) && change.wanted != Some(AccessLevel::Owner);
    if demotes_owner && change.owners <= 1 {
        return Err(Error::denied(
            "The last Owner of a project cannot be removed or demoted; make another member Owner first",
        ));
    }
    Ok(())
}

/// Whether `caller` may create a project in `namespace` (a path such as `alice` or `ml-team`).
/// A user creates projects only in their own namespace, which is their username; admins
/// anywhere. Groups are where this grows: once a namespace can be a group, its Maintainers and
/// Owners may create projects in it too (the caller's level in the group goes through [`decide`]).
pub fn may_create_in_namespace(caller: &Caller, namespace: &str) -> Result<(), Error> {
    let Caller::User(principal) = caller else {
        return Err(Error::Unauthorized);
    };
    if !principal.can_write {
        return Err(Error::Forbidden);
    }
    let user = &principal.user;
    if user.admin || namespace.eq_ignore_ascii_case(&user.username) {
        return Ok(());
    }
    Err(Error::denied(format!(
        "You may create projects only in your own namespace ({}), not in {namespace}",
        user.username
    )))
}

/// Instance-wide operations data (`/metrics`) is for administrators: 401 when anonymous, 403
/// for other users. A `read_api` token of an admin is enough.
pub fn may_read_instance_metrics(caller: &Caller) -> Result<(), Error> {
    match caller {
        Caller::Anonymous => Err(Error::Unauthorized),
        Caller::User(p) if p.user.admin => Ok(()),
        Caller::User(_) => Err(Error::Forbidden),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::records::now;

    fn project(visibility: Visibility, registry: FeatureAccess) -> Project {
        Project {
            id: 1,
            name: "p".into(),
            path: "p".into(),
            namespace: "ns".into(),
            description: String::new(),
            visibility,
            model_registry_access_level: registry,
            generic_duplicates_allowed: true,
            creator_id: 1,
            created_at: now(),
        }
    }

    fn user(admin: bool, scopes: &[Scope]) -> Caller {
        Caller::from_user(
            User {
                id: 7,
                username: "u".into(),
                name: "u".into(),
                email: None,
                password_hash: None,
                admin,
                created_at: now(),
            },
            scopes,
        )
    }

    fn code(result: Result<(), Error>) -> u16 {
        match result {
            Ok(()) => 200,
            Err(Error::NotFound(_)) => 404,
            Err(Error::Unauthorized) => 401,
            Err(Error::Forbidden) => 403,
            Err(other) => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn the_access_table_of_the_design() {
        use AccessLevel::*;
        use Action::*;
        let public = project(Visibility::Public, FeatureAccess::Enabled);
        let private = project(Visibility::Private, FeatureAccess::Enabled);
        let api = user(false, &[Scope::Api]);
        // (caller, level, project, action, expected)
        let rows: Vec<(&Caller, Option<AccessLevel>, &Project, Action, u16)> = vec![
            (&Caller::Anonymous, None, &public, ReadRegistry, 200),
            (&Caller::Anonymous, None, &public, WriteRegistry, 401),
            (&Caller::Anonymous, None, &private, ReadPackages, 404),
            (&Caller::Anonymous, None, &private, WritePackages, 401),
            (&api, None, &public, WritePackages, 403),
            (&api, None, &private, ReadPackages, 404),
            (&api, Some(Guest), &private, ReadRegistry, 200),
            (&api, Some(Guest), &private, WriteRegistry, 403),
            (&api, Some(Reporter), &private, WriteRegistry, 200),
            (&api, Some(Reporter), &private, WritePackages, 403),
            (&api, Some(Developer), &private, WritePackages, 200),
            (&api, Some(Developer), &private, DeletePackages, 403),
            (&api, Some(Maintainer), &private, DeletePackages, 200),
            (&api, Some(Maintainer), &private, DeleteProject, 403),
            (&api, Some(Owner), &private, DeleteProject, 200),
        ];
        for (caller, level, project, action, expected) in rows {
            assert_eq!(
                code(decide(caller, project, level, action)),
                expected,
                "{caller:?} {level:?} {:?} {action:?}",
                project.visibility
            );
        }
    }

    #[test]
    fn registry_settings_hide_models() {
        let api = user(false, &[Scope::Api]);
        let disabled = project(Visibility::Public, FeatureAccess::Disabled);
        let members_only = project(Visibility::Public, FeatureAccess::Private);
        let owner = Some(AccessLevel::Owner);
        assert_eq!(
            code(decide(&api, &disabled, owner, Action::ReadRegistry)),
            404
        );
        assert_eq!(
            code(decide(&api, &disabled, owner, Action::ReadPackages)),
            200
        );
        assert_eq!(
            code(decide(
                &Caller::Anonymous,
                &members_only,
                None,
                Action::ReadRegistry
            )),
            404
        );
        assert_eq!(
            code(decide(
                &api,
                &members_only,
                Some(AccessLevel::Guest),
                Action::ReadRegistry
            )),
            200
        );
    }

    #[test]
    fn model_packages_follow_the_registry_access_level() {
        use FeatureAccess::{Disabled, Enabled, Private};
        use PackageType::*;
        let api = user(false, &[Scope::Api]);
        let admin = user(true, &[Scope::Api]);
        let anonymous = Caller::Anonymous;
        let (guest, maintainer, owner) = (
            Some(AccessLevel::Guest),
            Some(AccessLevel::Maintainer),
            Some(AccessLevel::Owner),
        );
        // (registry, caller, level, (read generic, read ml_model, delete ml_model))
        type Row<'a> = (FeatureAccess, &'a Caller, Option<AccessLevel>, [u16; 3]);
        let rows: Vec<Row> = vec![
            (Enabled, &anonymous, None, [200, 200, 401]),
            (Private, &anonymous, None, [200, 404, 401]),
            (Private, &api, None, [200, 404, 404]),
            (Private, &api, guest, [200, 200, 403]),
            (Private, &api, maintainer, [200, 200, 200]),
            (Disabled, &api, owner, [200, 404, 404]),
            (Disabled, &admin, None, [200, 404, 404]),
        ];
        for (registry, caller, level, expected) in rows {
            let public = project(Visibility::Public, registry);
            let got = [
                Action::read_packages_of(Generic),
                Action::read_packages_of(MlModel),
                Action::delete_packages_of(MlModel),
            ]
            .map(|action| code(decide(caller, &public, level, action)));
            assert_eq!(got, expected, "{registry:?} {caller:?} {level:?}");
        }
    }

    #[test]
    fn read_only_tokens_and_admins() {
        let reader = user(false, &[Scope::ReadApi]);
        let admin = user(true, &[Scope::Api]);
        let private = project(Visibility::Private, FeatureAccess::Enabled);
        let owner = Some(AccessLevel::Owner);
        assert_eq!(
            code(decide(&reader, &private, owner, Action::ReadPackages)),
            200
        );
        assert_eq!(
            code(decide(&reader, &private, owner, Action::WritePackages)),
            403
        );
        assert_eq!(
            code(decide(&admin, &private, None, Action::DeleteProject)),
            200
        );
    }

    #[test]
    fn member_changes_follow_the_owner_rules() {
        use AccessLevel::*;
        let private = project(Visibility::Private, FeatureAccess::Enabled);
        let api = user(false, &[Scope::Api]);
        let admin = user(true, &[Scope::Api]);
        let change = |current, wanted, owners| MemberChange {
            current,
            wanted,
            owners,
        };
        // (caller, caller's level, change, expected)
        let rows: Vec<(&Caller, Option<AccessLevel>, MemberChange, u16)> = vec![
            (
                &api,
                Some(Maintainer),
                change(Some(Guest), Some(Maintainer), 1),
                200,
            ),
            (
                &api,
                Some(Maintainer),
                change(Some(Maintainer), Some(Owner), 1),
                403,
            ),
            (&api, Some(Maintainer), change(None, Some(Owner), 1), 403),
            (
                &api,
                Some(Maintainer),
                change(Some(Owner), Some(Guest), 2),
                403,
            ),
            (&api, Some(Maintainer), change(Some(Owner), None, 2), 403),
            (
                &api,
                Some(Maintainer),
                change(Some(Developer), None, 1),
                200,
            ),
            (&api, Some(Developer), change(None, Some(Guest), 1), 403),
            (
                &api,
                Some(Owner),
                change(Some(Maintainer), Some(Owner), 1),
                200,
            ),
            (
                &api,
                Some(Owner),
                change(Some(Owner), Some(Maintainer), 2),
                200,
            ),
            (
                &api,
                Some(Owner),
                change(Some(Owner), Some(Maintainer), 1),
                403,
            ),
            (&api, Some(Owner), change(Some(Owner), None, 1), 403),
            (&api, Some(Owner), change(Some(Owner), Some(Owner), 1), 200),
            (&admin, None, change(None, Some(Owner), 1), 200),
            (&admin, None, change(Some(Owner), None, 2), 200),
            (&admin, None, change(Some(Owner), None, 1), 403),
            (&admin, None, change(Some(Owner), Some(Guest), 1), 403),
        ];
        for (caller, level, change, expected) in rows {
            let got = match decide_member_change(caller, &private, level, change) {
                Ok(()) => 200,
                Err(Error::Denied(_)) | Err(Error::Forbidden) => 403,
                Err(other) => panic!("unexpected {other:?}"),
            };
            assert_eq!(
                got,
                expected,
                "{level:?} {change:?} admin={}",
                caller.is_admin()
            );
        }
    }

    #[test]
    fn projects_go_in_ones_own_namespace() {
        let api = user(false, &[Scope::Api]);
        let reader = user(false, &[Scope::ReadApi]);
        let admin = user(true, &[Scope::Api]);
        assert!(may_create_in_namespace(&api, "u").is_ok());
        assert!(may_create_in_namespace(&api, "U").is_ok());
        assert!(matches!(
            may_create_in_namespace(&api, "alice"),
            Err(Error::Denied(_))
        ));
        assert!(matches!(
            may_create_in_namespace(&api, "u/sub"),
            Err(Error::Denied(_))
        ));
        assert!(matches!(
            may_create_in_namespace(&reader, "u"),
            Err(Error::Forbidden)
        ));
        assert!(matches!(
            may_create_in_namespace(&Caller::Anonymous, "u"),
            Err(Error::Unauthorized)
        ));
        assert!(may_create_in_namespace(&admin, "anything/at-all").is_ok());
    }
}
