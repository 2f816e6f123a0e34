//! Who may do what. [`decide`] is the only place that compares access levels.

use super::error::Error;
use super::ml_records::CiJob;
use super::records::{AccessLevel, FeatureAccess, PackageType, Project, Scope, User, Visibility};

/// The authenticated party behind a request.
#[derive(Debug, Clone)]
pub enum Caller {
    Anonymous,
    User(Principal),
    /// A CI identity or a deploy token: no user of ours, verified by the server (a GitLab's
    /// `/api/v4/job`, an OIDC issuer's signature) or by a project's own token.
    Machine(Box<Machine>),
}

#[derive(Debug, Clone)]
pub struct Principal {
    pub user: User,
    /// `false` for `read_api` tokens: reads only.
    pub can_write: bool,
    /// `false` for tokens without `api` or `read_api` (`read_user`, `read_registry`, ...): they
    /// read the user's own account and nothing of projects.
    pub can_read: bool,
}

/// A caller that is not one of our users.
#[derive(Debug, Clone)]
pub struct Machine {
    pub identity: Identity,
    /// `false` for read-only deploy tokens.
    pub can_write: bool,
    /// The CI job behind the identity, verified: what it creates records this link.
    pub ci: Option<CiJob>,
}

/// Who a [`Machine`] is.
#[derive(Debug, Clone, PartialEq)]
pub enum Identity {
    /// A GitLab CI job, verified by calling its GitLab's `GET /api/v4/job` with its token.
    GitlabJob {
        /// The GitLab that verified the job (`https://gitlab.example.com`).
        gitlab_url: String,
        /// The GitLab project the job runs in: its id and `namespace/path`.
        project_id: u64,
        project_path: String,
    },
    /// An OIDC ID token of a trusted issuer (GitLab CI `id_tokens:`, GitHub Actions).
    Oidc {
        issuer: String,
        /// The token's claims with string, number or boolean values, as text.
        claims: std::collections::BTreeMap<String, String>,
        /// The one project a token exchanged for the ID token acts in; `None` for the ID token
        /// itself.
        project_id: Option<u64>,
    },
    /// A deploy token of one project, optionally limited to some package (model) names.
    DeployToken {
        token_id: u64,
        project_id: u64,
        username: String,
        /// Empty: every package of the project.
        package_names: Vec<String>,
    },
}

impl Machine {
    /// How the identity is named in messages.
    pub fn describe(&self) -> String {
        match &self.identity {
            Identity::GitlabJob {
                gitlab_url,
                project_path,
                ..
            } => format!("the CI job token of GitLab project {project_path} ({gitlab_url})"),
            Identity::Oidc { issuer, .. } => format!("the OIDC ID token of {issuer}"),
            Identity::DeployToken { username, .. } => format!("the deploy token {username}"),
        }
    }
}

impl Caller {
    pub fn user(&self) -> Option<&User> {
        match self {
            Caller::Anonymous | Caller::Machine(_) => None,
            Caller::User(p) => Some(&p.user),
        }
    }

    pub fn machine(&self) -> Option<&Machine> {
        match self {
            Caller::Machine(m) => Some(m.as_ref()),
            _ => None,
        }
    }

    /// The verified CI link of a CI identity: what the things it creates record.
    pub fn ci(&self) -> Option<&CiJob> {
        self.machine().and_then(|m| m.ci.as_ref())
    }

    /// Whether the caller's credentials allow writes at all (`api` scope, write deploy token).
    pub fn can_write(&self) -> bool {
        match self {
            Caller::Anonymous => false,
            Caller::User(p) => p.can_write,
            Caller::Machine(m) => m.can_write,
        }
    }

    /// Whether the caller's credentials allow reading projects (anonymous callers read what is
    /// public).
    pub fn can_read(&self) -> bool {
        match self {
            Caller::Anonymous | Caller::Machine(_) => true,
            Caller::User(p) => p.can_read,
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
            can_read: scopes.contains(&Scope::Api) || scopes.contains(&Scope::ReadApi),
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
    /// Create, change, delete and test the project's webhooks and read their delivery logs.
    ManageHooks,
    /// Move or delete a model's protected alias (`production`, say); set which aliases are
    /// protected and the model's promotion rules.
    MoveProtectedAlias,
    /// Read the project's audit log (a Maintainer's; a read, so `read_api` tokens may).
    ReadAuditLog,
    /// Seal a version (freeze its files) and set a model's automatic sealing.
    SealVersion,
    /// Set a model's retention rules and run them (dry or real): a Maintainer's.
    ManageRetention,
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
            | Action::AdminProject
            | Action::ManageHooks
            | Action::MoveProtectedAlias
            | Action::ReadAuditLog
            | Action::SealVersion
            | Action::ManageRetention => Some(AccessLevel::Maintainer),
            Action::DeleteProject => Some(AccessLevel::Owner),
        }
    }

    pub fn is_write(self) -> bool {
        self.required_level().is_some() && self != Action::ReadAuditLog
    }

    fn touches_registry(self) -> bool {
        matches!(
            self,
            Action::ReadRegistry
                | Action::WriteRegistry
                | Action::AdoptPackages
                | Action::DeleteModelPackages
                | Action::MoveProtectedAlias
                | Action::SealVersion
                | Action::ManageRetention
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
    if !caller.can_read() {
        return Err(Error::denied(
            "the token's scopes do not include api or read_api",
        ));
    }
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
    match caller {
        Caller::Anonymous => return Err(Error::Unauthorized),
        Caller::Machine(machine) => {
            if matches!(
                action,
                Action::AdminProject
                    | Action::DeleteProject
                    | Action::ManageHooks
                    | Action::ReadAuditLog
            ) {
                return Err(Error::denied(format!(
                    "{} cannot change a project's settings or members",
                    machine.describe()
                )));
            }
            if !machine.can_write {
                return Err(Error::denied(format!(
                    "{} is read-only",
                    machine.describe()
                )));
            }
        }
        Caller::User(principal) if !principal.can_write && action.is_write() => {
            return Err(Error::Forbidden)
        }
        Caller::User(_) => {}
    }
    if meets(admin, level, required) {
        Ok(())
    } else {
        Err(Error::Forbidden)
    }
}

/// The one comparison of access levels: an admin, or a member at `required` or above.
fn meets(admin: bool, level: Option<AccessLevel>, required: AccessLevel) -> bool {
    admin || level.is_some_and(|l| l >= required)
}

/// The highest level a CI identity acts with, whatever a project or rule configures.
pub const CI_LEVEL_CEILING: AccessLevel = AccessLevel::Maintainer;

/// A configured CI level, kept at or below [`CI_LEVEL_CEILING`].
pub fn ci_level(configured: AccessLevel) -> AccessLevel {
    configured.min(CI_LEVEL_CEILING)
}

/// What a request wants to do to a group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupAction {
    /// See the group and its members.
    Read,
    /// Create projects and subgroups in it.
    CreateIn,
    /// Change its settings and members.
    Admin,
    /// Delete it.
    Delete,
}

/// Whether `caller`, a member of `group` at `level` (the highest of the group's and its
/// parents'), may do `action` to it; the refusals as in [`decide`].
pub fn decide_group(
    caller: &Caller,
    visibility: Visibility,
    level: Option<AccessLevel>,
    action: GroupAction,
) -> Result<(), Error> {
    let required = match action {
        GroupAction::Read => None,
        GroupAction::CreateIn | GroupAction::Admin => Some(AccessLevel::Maintainer),
        GroupAction::Delete => Some(AccessLevel::Owner),
    };
    if required.is_some() && matches!(caller, Caller::Anonymous) {
        return Err(Error::Unauthorized);
    }
    let admin = caller.is_admin();
    let sees = admin
        || level.is_some()
        || match visibility {
            Visibility::Public => true,
            Visibility::Internal => caller.user().is_some(),
            Visibility::Private => false,
        };
    if !sees {
        return Err(Error::NotFound("Group"));
    }
    let Some(required) = required else {
        return Ok(());
    };
    match caller {
        Caller::User(p) if p.can_write => {}
        Caller::Machine(m) => {
            return Err(Error::denied(format!(
                "{} cannot change groups",
                m.describe()
            )))
        }
        _ => return Err(Error::Forbidden),
    }
    if meets(admin, level, required) {
        Ok(())
    } else if action == GroupAction::CreateIn {
        Err(Error::denied(
            "Only the group's Maintainers and Owners create projects and subgroups in it",
        ))
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
    member_rules(caller, level, change, "project")
}

/// The same rules for a group's members, on top of [`GroupAction::Admin`].
pub fn decide_group_member_change(
    caller: &Caller,
    visibility: Visibility,
    level: Option<AccessLevel>,
    change: MemberChange,
) -> Result<(), Error> {
    decide_group(caller, visibility, level, GroupAction::Admin)?;
    member_rules(caller, level, change, "group")
}

fn member_rules(
    caller: &Caller,
    level: Option<AccessLevel>,
    change: MemberChange,
    what: &str,
) -> Result<(), Error> {
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
        return Err(Error::denied(format!(
            "The last Owner of a {what} cannot be removed or demoted; make another member Owner first"
        )));
    }
    Ok(())
}

/// A group namespace as [`may_create_in_namespace`] judges it: its visibility and the caller's
/// level in it (the highest of the group's and its parents').
#[derive(Debug, Clone, Copy)]
pub struct GroupNamespace {
    pub visibility: Visibility,
    pub level: Option<AccessLevel>,
}

/// Whether `caller` may create a project in `namespace` (a path such as `alice` or `ml-team`),
/// `group` when the namespace is a group. A user creates projects in their own namespace, which
/// is their username, and in groups where they are Maintainer or Owner ([`decide_group`]);
/// admins anywhere.
pub fn may_create_in_namespace(
    caller: &Caller,
    namespace: &str,
    group: Option<GroupNamespace>,
) -> Result<(), Error> {
    let principal = match caller {
        Caller::Anonymous => return Err(Error::Unauthorized),
        Caller::Machine(m) => {
            return Err(Error::denied(format!(
                "{} cannot create projects",
                m.describe()
            )))
        }
        Caller::User(principal) => principal,
    };
    if !principal.can_write {
        return Err(Error::Forbidden);
    }
    let user = &principal.user;
    if user.admin {
        return Ok(());
    }
    if let Some(group) = group {
        return decide_group(caller, group.visibility, group.level, GroupAction::CreateIn);
    }
    if namespace.eq_ignore_ascii_case(&user.username) {
        return Ok(());
    }
    Err(Error::denied(format!(
        "You may create projects only in your own namespace ({}) or in groups you maintain, not in {namespace}",
        user.username
    )))
}

/// Instance-wide operations data (`/metrics`) is for administrators: 401 when anonymous, 403
/// for other users. A `read_api` token of an admin is enough.
pub fn may_read_instance_metrics(caller: &Caller) -> Result<(), Error> {
    match caller {
        Caller::Anonymous => Err(Error::Unauthorized),
        Caller::User(p) if p.user.admin => Ok(()),
        Caller::User(_) | Caller::Machine(_) => Err(Error::Forbidden),
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
            ci_job_token_gitlab_projects: Vec::new(),
            ci_job_token_access_level: AccessLevel::Developer,
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
                bot: false,
            },
            scopes,
        )
    }

    fn machine(can_write: bool) -> Caller {
        Caller::Machine(Box::new(Machine {
            identity: Identity::GitlabJob {
                gitlab_url: "https://gl".into(),
                project_id: 1,
                project_path: "t/p".into(),
            },
            can_write,
            ci: None,
        }))
    }

    #[test]
    fn ci_identities_act_at_their_level_but_never_administer() {
        use AccessLevel::*;
        use Action::*;
        let private = project(Visibility::Private, FeatureAccess::Enabled);
        let job = machine(true);
        let reader = machine(false);
        let reporter_scope = user(false, &[Scope::ReadUser]);
        let rows: Vec<(&Caller, Option<AccessLevel>, Action, u16)> = vec![
            (&job, None, ReadPackages, 404),
            (&job, Some(Developer), WritePackages, 200),
            (&job, Some(Developer), DeletePackages, 403),
            (&job, Some(Maintainer), DeletePackages, 200),
            (&job, Some(Maintainer), AdminProject, 403),
            (&reader, Some(Developer), ReadPackages, 200),
            (&reader, Some(Developer), WritePackages, 403),
            (&reporter_scope, Some(Owner), ReadPackages, 403),
        ];
        for (caller, level, action, expected) in rows {
            let got = match decide(caller, &private, level, action) {
                Ok(()) => 200,
                Err(Error::NotFound(_)) => 404,
                Err(Error::Denied(_)) | Err(Error::Forbidden) => 403,
                Err(other) => panic!("unexpected {other:?}"),
            };
            assert_eq!(got, expected, "{caller:?} {level:?} {action:?}");
        }
        assert_eq!(ci_level(Owner), Maintainer);
        assert_eq!(ci_level(Reporter), Reporter);
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
        assert!(may_create_in_namespace(&api, "u", None).is_ok());
        assert!(may_create_in_namespace(&api, "U", None).is_ok());
        assert!(matches!(
            may_create_in_namespace(&api, "alice", None),
            Err(Error::Denied(_))
        ));
        assert!(matches!(
            may_create_in_namespace(&api, "u/sub", None),
            Err(Error::Denied(_))
        ));
        assert!(matches!(
            may_create_in_namespace(&reader, "u", None),
            Err(Error::Forbidden)
        ));
        assert!(matches!(
            may_create_in_namespace(&Caller::Anonymous, "u", None),
            Err(Error::Unauthorized)
        ));
        assert!(may_create_in_namespace(&admin, "anything/at-all", None).is_ok());
        // Groups: Maintainers and Owners create projects in them; others may not.
        let group = |visibility, level| GroupNamespace { visibility, level };
        let private = Visibility::Private;
        for (level, ok) in [
            (None, false),
            (Some(AccessLevel::Developer), false),
            (Some(AccessLevel::Maintainer), true),
            (Some(AccessLevel::Owner), true),
        ] {
            assert_eq!(
                may_create_in_namespace(&api, "team", Some(group(private, level))).is_ok(),
                ok,
                "{level:?}"
            );
        }
        assert!(matches!(
            may_create_in_namespace(&api, "team", Some(group(private, None))),
            Err(Error::NotFound(_))
        ));
        assert!(matches!(
            may_create_in_namespace(
                &api,
                "team",
                Some(group(Visibility::Public, Some(AccessLevel::Developer)))
            ),
            Err(Error::Denied(_))
        ));
        assert!(may_create_in_namespace(&admin, "team", Some(group(private, None))).is_ok());
    }
}
