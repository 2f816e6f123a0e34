//! SemVer checked against a model's signature: the `signature:` of a version's `MLmodel` file
//! (MLflow's inputs and outputs) compared with the one of the release it follows. A removed
//! input or output, a changed type, a new required input (or an optional one made required)
//! needs a major bump; a new optional input or a new output needs at least a minor bump. A
//! `0.y.z` version counts a minor bump as major (nothing is stable before 1.0.0, as Cargo reads
//! SemVer).

use semver::Version;
use serde::{Deserialize, Serialize};

/// How a model treats a version whose SemVer bump is smaller than its signature change needs.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum SignaturePolicy {
    #[default]
    Off,
    /// The finding is recorded on the version (API and UI); the upload is accepted.
    Warn,
    /// The `MLmodel` upload is refused with 400 naming the fields and the bump they need.
    Enforce,
}

impl SignaturePolicy {
    pub fn parse(s: &str) -> Option<SignaturePolicy> {
        match s {
            "off" => Some(SignaturePolicy::Off),
            "warn" => Some(SignaturePolicy::Warn),
            "enforce" => Some(SignaturePolicy::Enforce),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            SignaturePolicy::Off => "off",
            SignaturePolicy::Warn => "warn",
            SignaturePolicy::Enforce => "enforce",
        }
    }
}

/// A SemVer bump, smallest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Bump {
    Patch,
    Minor,
    Major,
}

impl Bump {
    pub fn as_str(self) -> &'static str {
        match self {
            Bump::Patch => "patch",
            Bump::Minor => "minor",
            Bump::Major => "major",
        }
    }

    /// The bump from `previous` to `next` (`0.y.z`: a minor bump counts as major).
    pub fn between(previous: &Version, next: &Version) -> Bump {
        if next.major > previous.major {
            Bump::Major
        } else if next.minor > previous.minor {
            if next.major == 0 {
                Bump::Major
            } else {
                Bump::Minor
            }
        } else {
            Bump::Patch
        }
    }
}

/// One column (input or output) of a signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    /// The column's name, or `#<position>` for unnamed tensors.
    pub name: String,
    /// Its type: `double`, `string`, `tensor float32 [-1, 4]`…
    pub kind: String,
    pub required: bool,
}

/// A model's signature: inputs and outputs.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Signature {
    pub inputs: Vec<Column>,
    pub outputs: Vec<Column>,
}

/// One difference between two signatures and the bump it needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    /// `inputs.<name>` or `outputs.<name>`.
    pub field: String,
    /// What changed, in words.
    pub change: String,
    pub needs: Bump,
}

/// The outcome of a version's check against the release it follows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignatureCheck {
    /// The release compared with.
    pub previous: String,
    /// The bump the changes need, and the one the version makes.
    pub required: Bump,
    pub actual: Bump,
    pub changes: Vec<Change>,
}

impl SignatureCheck {
    /// Whether the version's bump is too small for its changes.
    pub fn violated(&self) -> bool {
        self.actual < self.required
    }

    /// The explanation a refusal or a warning gives.
    pub fn message(&self, version: &str) -> String {
        let fields: Vec<String> = self
            .changes
            .iter()
            .filter(|c| c.needs > self.actual)
            .map(|c| {
                format!(
                    "{} {} (needs a {} bump)",
                    c.field,
                    c.change,
                    c.needs.as_str()
                )
            })
            .collect();
        format!(
            "version {version} is a {} bump from {}, but its MLmodel signature needs a {} bump: {}",
            self.actual.as_str(),
            self.previous,
            self.required.as_str(),
            fields.join("; ")
        )
    }
}

/// The `signature:` of an `MLmodel` file (YAML whose `inputs`/`outputs` are JSON lists in
/// possibly folded single-quoted scalars); `None` when there is none.
pub fn parse_mlmodel(text: &str) -> Option<Signature> {
    let mut lines = text.lines().peekable();
    let mut found = false;
    let mut signature = Signature::default();
    while let Some(line) = lines.next() {
        if line.trim_end() != "signature:" {
            continue;
        }
        found = true;
        while let Some(line) = lines.peek() {
            if !line.starts_with(' ') {
                break;
            }
            let line = lines.next().unwrap_or_default();
            let Some((part, value)) = line.trim().split_once(':') else {
                continue;
            };
            let mut value = value.trim().to_string();
            if value.starts_with('\'') {
                while !closes_single_quote(&value) {
                    match lines.peek() {
                        Some(next) if next.starts_with(' ') => {
                            value.push(' ');
                            value.push_str(lines.next().unwrap_or_default().trim());
                        }
                        _ => break,
                    }
                }
                value = value
                    .trim_start_matches('\'')
                    .trim_end_matches('\'')
                    .replace("''", "'");
            }
            let Ok(serde_json::Value::Array(columns)) = serde_json::from_str(&value) else {
                continue;
            };
            let columns: Vec<Column> = columns
                .iter()
                .enumerate()
                .map(|(i, c)| column(i, c))
                .collect();
            match part.trim() {
                "inputs" => signature.inputs = columns,
                "outputs" => signature.outputs = columns,
                _ => {}
            }
        }
    }
    found.then_some(signature)
}

fn closes_single_quote(value: &str) -> bool {
    let body = value.get(1..).unwrap_or_default();
    body.replace("''", "").ends_with('\'')
}

fn column(position: usize, c: &serde_json::Value) -> Column {
    let text = |key: &str| c.get(key).and_then(|v| v.as_str()).unwrap_or("");
    let name = match text("name") {
        "" => format!("#{position}"),
        name => name.to_string(),
    };
    let mut kind = text("type").to_string();
    if let Some(spec) = c.get("tensor-spec") {
        let dtype = spec.get("dtype").and_then(|v| v.as_str()).unwrap_or("");
        let shape = spec.get("shape").map(|s| s.to_string()).unwrap_or_default();
        kind = format!("{kind} {dtype} {shape}").trim().to_string();
    }
    Column {
        name,
        kind,
        required: c.get("required") != Some(&serde_json::Value::Bool(false)),
    }
}

/// What changed from `old` to `new`, each change with the bump it needs.
pub fn compare(old: &Signature, new: &Signature) -> Vec<Change> {
    let mut changes = Vec::new();
    for (part, before, after) in [
        ("inputs", &old.inputs, &new.inputs),
        ("outputs", &old.outputs, &new.outputs),
    ] {
        for column in before {
            let field = format!("{part}.{}", column.name);
            match after.iter().find(|c| c.name == column.name) {
                None => changes.push(Change {
                    field,
                    change: "was removed".into(),
                    needs: Bump::Major,
                }),
                Some(now) if now.kind != column.kind => changes.push(Change {
                    field,
                    change: format!("changed type from {} to {}", column.kind, now.kind),
                    needs: Bump::Major,
                }),
                Some(now) if part == "inputs" && now.required && !column.required => {
                    changes.push(Change {
                        field,
                        change: "became required".into(),
                        needs: Bump::Major,
                    })
                }
                Some(_) => {}
            }
        }
        for column in after {
            if before.iter().any(|c| c.name == column.name) {
                continue;
            }
            let field = format!("{part}.{}", column.name);
            let (change, needs) = match (part, column.required) {
                ("inputs", true) => ("is a new required input", Bump::Major),
                ("inputs", false) => ("is a new optional input", Bump::Minor),
                _ => ("is a new output", Bump::Minor),
            };
            changes.push(Change {
                field,
                change: change.into(),
                needs,
            });
        }
    }
    changes
}

/// The check of `version` (with signature `new`) against the release `previous` (signature
/// `old`); `None` when nothing changed.
pub fn check(
    previous: &Version,
    old: &Signature,
    version: &Version,
    new: &Signature,
) -> Option<SignatureCheck> {
    let changes = compare(old, new);
    let required = changes.iter().map(|c| c.needs).max()?;
    Some(SignatureCheck {
        previous: previous.to_string(),
        required,
        actual: Bump::between(previous, version),
        changes,
    })
}

/// How much of an `MLmodel` file is read.
const MLMODEL_MAX: usize = 1024 * 1024;

/// Whether a file of a version's package is its `MLmodel`.
pub fn is_mlmodel(file_name: &str) -> bool {
    file_name.rsplit('/').next() == Some("MLmodel")
}

impl super::Registry {
    /// The text of a stored blob's first [`MLMODEL_MAX`] bytes.
    async fn blob_text(&self, sha256: &str) -> Option<String> {
        let text = self.blob_head(sha256, MLMODEL_MAX).await.ok()?;
        Some(String::from_utf8_lossy(&text).into_owned())
    }

    /// The signature check of an `MLmodel` (content `sha256`, at `file_name`) becoming part of
    /// `version` of the model named `model_name`, under the model's policy: `Err` when the
    /// policy enforces and the bump is too small, `Ok(Some)` when it warns, `Ok(None)` when
    /// the check is off, passes, or has nothing to compare with.
    pub(crate) async fn signature_verdict(
        &self,
        project_id: u64,
        model_name: &str,
        version: &str,
        file_name: &str,
        sha256: &str,
    ) -> super::Result<Option<SignatureCheck>> {
        let Some(model) =
            super::schema::models::by_name_in(self.meta.as_ref(), project_id, model_name)?
        else {
            return Ok(None);
        };
        if model.signature_policy == SignaturePolicy::Off {
            return Ok(None);
        }
        let Ok(next) = Version::parse(version) else {
            return Ok(None);
        };
        // The release it follows: the highest release below its major.minor.patch.
        let below = format!("<{}.{}.{}", next.major, next.minor, next.patch);
        let requirement = super::semver_rules::parse_requirement(&below)?;
        let Some(previous) =
            super::schema::versions::resolve(self.meta.as_ref(), model.id, &requirement)?
        else {
            return Ok(None);
        };
        let old_file = match self.newest_file(previous.package_id, file_name) {
            Ok(file) => Some(file),
            Err(super::Error::NotFound(_)) => self.newest_file(previous.package_id, "MLmodel").ok(),
            Err(other) => return Err(other),
        };
        let Some(old_file) = old_file else {
            return Ok(None);
        };
        let (Some(old_text), Some(new_text)) = (
            self.blob_text(&old_file.sha256).await,
            self.blob_text(sha256).await,
        ) else {
            return Ok(None);
        };
        let (Some(old), Some(new)) = (parse_mlmodel(&old_text), parse_mlmodel(&new_text)) else {
            return Ok(None);
        };
        let Ok(previous_version) = Version::parse(&previous.version) else {
            return Ok(None);
        };
        let Some(found) = check(&previous_version, &old, &next, &new) else {
            return Ok(None);
        };
        if !found.violated() {
            return Ok(None);
        }
        match model.signature_policy {
            SignaturePolicy::Enforce => Err(super::Error::BadRequest(format!(
                "{}: nothing was recorded (the model's signature_policy is enforce)",
                found.message(version)
            ))),
            _ => Ok(Some(found)),
        }
    }

    /// Sets how a model checks SemVer against its signature (Maintainers).
    pub async fn set_signature_policy(
        &self,
        caller: &super::access::Caller,
        access: &super::projects::ProjectAccess,
        model_id: u64,
        policy: SignaturePolicy,
    ) -> super::Result<super::ml_records::Model> {
        access.check(caller, super::access::Action::SealVersion)?;
        self.project_model(access, model_id)?;
        self.update_record::<super::schema::models::Models>(model_id, "Model", |model| {
            model.signature_policy = policy;
            model.updated_at = super::records::now();
        })
        .await
    }
}

/// Records a warning's finding (or that there is none) on the version whose package this is,
/// in the upload's transaction.
pub(crate) fn record_finding(
    tx: &dyn crate::store::meta::Txn,
    package: &super::records::Package,
    found: Option<&SignatureCheck>,
) -> Result<(), crate::store::meta::TxFail> {
    use super::schema;
    let Some(model) = schema::models::load_by_name(tx, package.project_id, &package.name)? else {
        return Ok(());
    };
    let Some(version) = schema::versions::load_by_string(tx, model.id, &package.version)? else {
        return Ok(());
    };
    if version.package_id != package.id || version.signature_check.as_ref() == found {
        return Ok(());
    }
    let updated = super::ml_records::ModelVersion {
        signature_check: found.cloned(),
        ..version
    };
    schema::put::<schema::versions::Versions>(tx, &updated)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mlmodel(inputs: &str, outputs: &str) -> String {
        format!(
            "artifact_path: model\nflavors:\n  python_function: {{}}\nsignature:\n  inputs: '{inputs}'\n  outputs: '{outputs}'\n  params: null\n"
        )
    }

    fn v(s: &str) -> Version {
        Version::parse(s).unwrap()
    }

    #[test]
    fn changes_need_the_bumps_of_the_rules() {
        let old = parse_mlmodel(&mlmodel(
            r#"[{"type": "double", "name": "amount", "required": true}, {"type": "string", "name": "country", "required": false}]"#,
            r#"[{"type": "double", "name": "score"}]"#,
        ))
        .unwrap();
        assert_eq!(old.inputs.len(), 2);
        assert!(!old.inputs[1].required);
        let optional = parse_mlmodel(&mlmodel(
            r#"[{"type": "double", "name": "amount", "required": true}, {"type": "string", "name": "country", "required": false}, {"type": "long", "name": "age", "required": false}]"#,
            r#"[{"type": "double", "name": "score"}, {"type": "string", "name": "label"}]"#,
        ))
        .unwrap();
        let found = check(&v("1.2.0"), &old, &v("1.2.1"), &optional).unwrap();
        assert_eq!(found.required, Bump::Minor);
        assert_eq!(found.actual, Bump::Patch);
        assert!(found.violated());
        assert!(found
            .message("1.2.1")
            .contains("inputs.age is a new optional input (needs a minor bump)"));
        assert!(!check(&v("1.2.0"), &old, &v("1.3.0"), &optional)
            .unwrap()
            .violated());
        let breaking = parse_mlmodel(&mlmodel(
            r#"[{"type": "float", "name": "amount", "required": true}, {"type": "string", "name": "country", "required": true}, {"type": "long", "name": "age"}]"#,
            r#"[]"#,
        ))
        .unwrap();
        let found = check(&v("1.2.0"), &old, &v("1.3.0"), &breaking).unwrap();
        assert_eq!(found.required, Bump::Major);
        let fields: Vec<&str> = found.changes.iter().map(|c| c.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "inputs.amount",
                "inputs.country",
                "inputs.age",
                "outputs.score"
            ]
        );
        assert!(!check(&v("1.2.0"), &old, &v("2.0.0"), &breaking)
            .unwrap()
            .violated());
        // Before 1.0.0 a minor bump is a major one.
        assert!(!check(&v("0.2.0"), &old, &v("0.3.0"), &breaking)
            .unwrap()
            .violated());
        assert_eq!(check(&v("1.0.0"), &old, &v("1.0.1"), &old), None);
        assert_eq!(parse_mlmodel("flavors: {}\n"), None);
    }
}
