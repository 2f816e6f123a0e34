//! Promotion policies: a model's rules that a version must pass before a protected alias moves
//! to it or before it is sealed (explicitly or automatically).
//!
//! A rule is one line of text, kept on the model as its canonical spelling:
//! - `metrics.<key> <op> <number>` with `<op>` one of `>=`, `>`, `<=`, `<`, `==`, `!=`: the
//!   metric's latest value (highest step, then latest timestamp) on the version's run; a
//!   missing (or NaN) metric fails the rule;
//! - `ci_link`: the version's run (or its package) has a CI job link;
//! - `no_prerelease`: the version is a release (no `-rc.1`-like prerelease part).
//!
//! [`parse_rules`] checks a model's rules as they are set; [`check`] is a plain function of the
//! rules and a version's [`Facts`], so the policy is tested without a store. The registry
//! gathers the facts and refuses with [`Error::PolicyRefused`], naming every failed rule.

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;

use super::access::Caller;
use super::error::{Error, Result};
use super::ml_records::{CiJob, Model, ModelVersion};
use super::Registry;

/// At most this many rules per model.
pub const MAX_RULES: usize = 50;
/// At most this many characters per rule.
const MAX_RULE_LEN: usize = 300;
/// The longest metric key MLflow accepts.
const MAX_METRIC_KEY_LEN: usize = 250;
const METRIC_PREFIX: &str = "metrics.";

/// A comparison of a metric rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Ge,
    Gt,
    Le,
    Lt,
    Eq,
    Ne,
}

impl Op {
    /// Longest spellings first, so `>=` is not read as `>`.
    const ALL: [(Op, &'static str); 6] = [
        (Op::Ge, ">="),
        (Op::Le, "<="),
        (Op::Eq, "=="),
        (Op::Ne, "!="),
        (Op::Gt, ">"),
        (Op::Lt, "<"),
    ];

    pub fn as_str(self) -> &'static str {
        Op::ALL
            .iter()
            .find(|(op, _)| *op == self)
            .map(|(_, s)| *s)
            .unwrap_or("?")
    }

    fn holds(self, value: f64, threshold: f64) -> bool {
        match self {
            Op::Ge => value >= threshold,
            Op::Gt => value > threshold,
            Op::Le => value <= threshold,
            Op::Lt => value < threshold,
            Op::Eq => value == threshold,
            Op::Ne => value != threshold,
        }
    }
}

/// One rule of a promotion policy.
#[derive(Debug, Clone, PartialEq)]
pub enum Rule {
    /// `metrics.<key> <op> <threshold>`.
    Metric { key: String, op: Op, threshold: f64 },
    /// `ci_link`.
    CiLink,
    /// `no_prerelease`.
    NoPrerelease,
}

impl fmt::Display for Rule {
    /// The canonical spelling, as the model keeps it and refusals name it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rule::Metric { key, op, threshold } => {
                write!(f, "{METRIC_PREFIX}{key} {} {threshold}", op.as_str())
            }
            Rule::CiLink => f.write_str("ci_link"),
            Rule::NoPrerelease => f.write_str("no_prerelease"),
        }
    }
}

const RULE_FORMS: &str =
    "use 'metrics.<key> <op> <number>' (op one of >=, >, <=, <, ==, !=), 'ci_link' or 'no_prerelease'";

impl Rule {
    /// Reads one rule; the error says what is wrong with it (the caller names the rule).
    pub fn parse(text: &str) -> std::result::Result<Rule, String> {
        let text = text.trim();
        if text.chars().count() > MAX_RULE_LEN {
            return Err(format!("is longer than {MAX_RULE_LEN} characters"));
        }
        match text {
            "ci_link" => return Ok(Rule::CiLink),
            "no_prerelease" => return Ok(Rule::NoPrerelease),
            _ => {}
        }
        let Some(rest) = text.strip_prefix(METRIC_PREFIX) else {
            return Err(format!("is not a rule: {RULE_FORMS}"));
        };
        let Some(at) = rest.find(['<', '>', '=', '!']) else {
            return Err(format!("has no comparison: {RULE_FORMS}"));
        };
        let key = rest[..at].trim();
        let after = &rest[at..];
        let Some((op, spelled)) = Op::ALL.iter().find(|(_, s)| after.starts_with(s)) else {
            return Err(format!("has an unknown comparison: {RULE_FORMS}"));
        };
        let number = after[spelled.len()..].trim();
        if key.is_empty() {
            return Err("names no metric: write metrics.<key>, e.g. metrics.auc".into());
        }
        if key.chars().count() > MAX_METRIC_KEY_LEN
            || !key
                .chars()
                .all(|c| c.is_alphanumeric() || "_-./ ".contains(c))
        {
            return Err(format!(
                "names an invalid metric key '{key}': MLflow keys are letters, digits, '_', '-', '.', ' ' and '/', at most {MAX_METRIC_KEY_LEN} characters"
            ));
        }
        let threshold: f64 = number
            .parse()
            .ok()
            .filter(|n: &f64| n.is_finite())
            .ok_or_else(|| format!("compares with '{number}', which is not a finite number"))?;
        Ok(Rule::Metric {
            key: key.to_string(),
            op: *op,
            threshold,
        })
    }

    fn check(&self, facts: &Facts) -> Option<String> {
        match self {
            Rule::Metric { key, op, threshold } => match facts.metrics.get(key) {
                None | Some(None) => Some(format!(
                    "the version's run has no metric '{key}'"
                )),
                Some(Some(value)) if value.is_nan() => {
                    Some(format!("metric '{key}' is NaN"))
                }
                Some(Some(value)) if op.holds(*value, *threshold) => None,
                Some(Some(value)) => Some(format!(
                    "metric '{key}' is {value}, not {} {threshold}",
                    op.as_str()
                )),
            },
            Rule::CiLink => match facts.ci {
                Some(ci) if !ci.is_empty() => None,
                _ => Some("the version has no CI job link (a CI job made it, or its run carries gitlab.CI_JOB_ID tags)".into()),
            },
            Rule::NoPrerelease => match semver::Version::parse(facts.version) {
                Ok(v) if v.pre.is_empty() => None,
                Ok(v) => Some(format!(
                    "{} is a prerelease ({})",
                    facts.version, v.pre
                )),
                Err(_) => Some(format!("{} is not a SemVer version", facts.version)),
            },
        }
    }
}

/// Checks a model's rules as they are set: each is read and kept in its canonical spelling,
/// duplicates once, in the order given. The first unreadable rule is refused by name.
pub fn parse_rules(rules: &[String]) -> Result<Vec<String>> {
    if rules.len() > MAX_RULES {
        return Err(Error::InvalidParam {
            param: "promotion_rules".into(),
            problem: format!("has more than {MAX_RULES} rules"),
        });
    }
    let mut canonical: Vec<String> = Vec::with_capacity(rules.len());
    for text in rules {
        let rule = Rule::parse(text).map_err(|problem| Error::InvalidParam {
            param: "promotion_rules".into(),
            problem: format!("rule '{text}' {problem}"),
        })?;
        let spelled = rule.to_string();
        if !canonical.contains(&spelled) {
            canonical.push(spelled);
        }
    }
    Ok(canonical)
}

/// Reads rules kept on a model (they were checked when set; one that no longer reads fails).
pub fn kept_rules(rules: &[String]) -> Vec<(String, std::result::Result<Rule, String>)> {
    rules
        .iter()
        .map(|text| (text.clone(), Rule::parse(text)))
        .collect()
}

/// What a version's rules are checked against.
#[derive(Debug, Clone, Default)]
pub struct Facts<'a> {
    /// The version's SemVer string.
    pub version: &'a str,
    /// Its CI job link, if any.
    pub ci: Option<&'a CiJob>,
    /// The latest value of each metric the rules name (`None`: the run has none).
    pub metrics: BTreeMap<String, Option<f64>>,
}

/// One rule a version failed, and why.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FailedRule {
    pub rule: String,
    pub reason: String,
    /// The alias whose move the rule refused (none for a seal).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alias: Option<String>,
    pub version: String,
}

/// A refused promotion: its message names every failed rule.
#[derive(Debug, Clone, PartialEq)]
pub struct Refusal {
    pub message: String,
    pub failed_rules: Vec<FailedRule>,
}

/// The rules a version fails, in the model's order; empty when it passes.
pub fn check(rules: &[String], facts: &Facts, alias: Option<&str>) -> Vec<FailedRule> {
    kept_rules(rules)
        .into_iter()
        .filter_map(|(text, rule)| {
            let reason = match rule {
                Ok(rule) => rule.check(facts)?,
                Err(problem) => format!("the rule {problem}"),
            };
            Some(FailedRule {
                rule: text,
                reason,
                alias: alias.map(str::to_string),
                version: facts.version.to_string(),
            })
        })
        .collect()
}

/// What a refusal was refusing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Moving protected aliases (one request's changes).
    AliasMove,
    Seal,
}

/// The refusal's message: what was refused, then each failed rule with its reason.
pub fn refusal(model: &str, step: Step, failed: Vec<FailedRule>) -> Refusal {
    let rules = failed
        .iter()
        .map(|f| match &f.alias {
            Some(alias) => format!("{} (alias {alias} -> {}: {})", f.rule, f.version, f.reason),
            None => format!("{} ({})", f.rule, f.reason),
        })
        .collect::<Vec<_>>()
        .join("; ");
    let what = match step {
        Step::AliasMove => {
            format!("the protected aliases of model '{model}' were not moved, nothing was changed")
        }
        Step::Seal => {
            let version = failed.first().map(|f| f.version.as_str()).unwrap_or("");
            format!("version {version} of model '{model}' was not sealed")
        }
    };
    let count = failed.len();
    Refusal {
        message: format!(
            "Promotion policy refused: {what}; {count} failed rule{}: {rules}",
            if count == 1 { "" } else { "s" }
        ),
        failed_rules: failed,
    }
}

impl Registry {
    /// The rules of `model` that `version` fails (nothing read when the model has none).
    pub(crate) fn failed_rules(
        &self,
        model: &Model,
        version: &ModelVersion,
        alias: Option<&str>,
    ) -> Result<Vec<FailedRule>> {
        if model.promotion_rules.is_empty() {
            return Ok(Vec::new());
        }
        let candidate = self.candidate(version.candidate_id)?;
        let package_ci = match candidate.ci {
            Some(_) => None,
            None => super::schema::packages::get(self.meta.as_ref(), version.package_id)?
                .and_then(|p| p.ci),
        };
        // A version's metrics are its run's; a source run named at creation answers for the
        // metrics the version's own run does not have.
        let source = match &version.source_run_id {
            Some(run_id) if *run_id != candidate.run_id => self
                .candidate_by_run_id(version.project_id, run_id)
                .ok()
                .map(|c| c.id),
            _ => None,
        };
        let mut metrics = BTreeMap::new();
        for (_, rule) in kept_rules(&model.promotion_rules) {
            if let Ok(Rule::Metric { key, .. }) = rule {
                let mut value = self.latest_metric(candidate.id, &key)?.map(|p| p.value);
                if value.is_none() {
                    if let Some(source) = source {
                        value = self.latest_metric(source, &key)?.map(|p| p.value);
                    }
                }
                metrics.insert(key, value);
            }
        }
        let facts = Facts {
            version: &version.version,
            ci: candidate.ci.as_ref().or(package_ci.as_ref()),
            metrics,
        };
        Ok(check(&model.promotion_rules, &facts, alias))
    }

    /// Refuses (409) a seal of `version` its model's rules do not allow; the refusal is audited.
    pub(crate) async fn check_seal_policy(
        &self,
        caller: &Caller,
        model: &Model,
        version: &ModelVersion,
    ) -> Result<()> {
        let failed = self.failed_rules(model, version, None)?;
        if failed.is_empty() {
            return Ok(());
        }
        let refusal = refusal(&model.name, Step::Seal, failed);
        self.audit_policy_refusal(caller, model, version, "seal_refused", &refusal)
            .await?;
        Err(Error::PolicyRefused(refusal))
    }

    /// Sets a model's promotion rules (Maintainers); each is checked and kept canonical.
    pub async fn set_promotion_rules(
        &self,
        caller: &Caller,
        access: &super::projects::ProjectAccess,
        model_id: u64,
        rules: Vec<String>,
    ) -> Result<Model> {
        access.check(caller, super::access::Action::MoveProtectedAlias)?;
        let rules = parse_rules(&rules)?;
        self.project_model(access, model_id)?;
        self.update_record::<super::schema::models::Models>(model_id, "Model", |model| {
            model.promotion_rules = rules.clone();
            model.updated_at = super::records::now();
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts<'a>(
        version: &'a str,
        ci: Option<&'a CiJob>,
        metrics: &[(&str, Option<f64>)],
    ) -> Facts<'a> {
        Facts {
            version,
            ci,
            metrics: metrics.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
        }
    }

    fn rules(texts: &[&str]) -> Vec<String> {
        parse_rules(&texts.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap()
    }

    #[test]
    fn rules_read_and_spell_canonically() {
        assert_eq!(
            rules(&[
                "metrics.auc>=0.92",
                " ci_link ",
                "no_prerelease",
                "metrics.auc >= 0.92"
            ]),
            vec!["metrics.auc >= 0.92", "ci_link", "no_prerelease"]
        );
        assert_eq!(
            Rule::parse("metrics.val/loss < 1e-1").unwrap(),
            Rule::Metric {
                key: "val/loss".into(),
                op: Op::Lt,
                threshold: 0.1
            }
        );
        for (text, op) in [
            ("metrics.a >= 1", Op::Ge),
            ("metrics.a > 1", Op::Gt),
            ("metrics.a <= 1", Op::Le),
            ("metrics.a < 1", Op::Lt),
            ("metrics.a == 1", Op::Eq),
            ("metrics.a != 1", Op::Ne),
        ] {
            assert!(
                matches!(Rule::parse(text), Ok(Rule::Metric { op: o, .. }) if o == op),
                "{text}"
            );
        }
    }

    #[test]
    fn bad_rules_are_refused_by_name() {
        for bad in [
            "auc >= 0.9",
            "metrics.auc",
            "metrics.auc => 0.9",
            "metrics. >= 1",
            "metrics.auc >= high",
            "metrics.auc >= NaN",
            "metrics.auc >= inf",
            "metrics.a$b >= 1",
            "ci-link",
            "",
        ] {
            let error = parse_rules(&[bad.to_string()]).unwrap_err();
            let text = error.to_string();
            assert!(text.starts_with("promotion_rules rule '"), "{bad}: {text}");
            assert!(text.contains(&format!("'{bad}'")), "{bad}: {text}");
        }
        let many: Vec<String> = (0..=MAX_RULES)
            .map(|i| format!("metrics.m{i} > 0"))
            .collect();
        assert!(parse_rules(&many).is_err());
    }

    #[test]
    fn each_rule_fails_then_passes() {
        let policy = rules(&["metrics.auc >= 0.92", "ci_link", "no_prerelease"]);
        let failed = check(
            &policy,
            &facts("1.0.0-rc.1", None, &[("auc", Some(0.81))]),
            Some("production"),
        );
        let names: Vec<&str> = failed.iter().map(|f| f.rule.as_str()).collect();
        assert_eq!(names, ["metrics.auc >= 0.92", "ci_link", "no_prerelease"]);
        assert_eq!(failed[0].reason, "metric 'auc' is 0.81, not >= 0.92");
        assert_eq!(failed[0].alias.as_deref(), Some("production"));
        assert!(failed[2].reason.contains("prerelease (rc.1)"));

        let missing = check(&policy[..1], &facts("1.0.0", None, &[("auc", None)]), None);
        assert_eq!(missing[0].reason, "the version's run has no metric 'auc'");
        let nan = check(
            &policy[..1],
            &facts("1.0.0", None, &[("auc", Some(f64::NAN))]),
            None,
        );
        assert_eq!(nan[0].reason, "metric 'auc' is NaN");
        let empty_ci = CiJob::default();
        assert_eq!(
            check(&policy[1..2], &facts("1.0.0", Some(&empty_ci), &[]), None).len(),
            1
        );

        let ci = CiJob {
            job_id: Some("42".into()),
            ..CiJob::default()
        };
        assert!(check(
            &policy,
            &facts("1.0.0", Some(&ci), &[("auc", Some(0.92))]),
            None
        )
        .is_empty());
        let strict = rules(&[
            "metrics.loss < 0.5",
            "metrics.n != 0",
            "metrics.x == 1",
            "metrics.y <= 2",
            "metrics.z > 3",
        ]);
        let good = facts(
            "2.0.0",
            None,
            &[
                ("loss", Some(0.4)),
                ("n", Some(1.0)),
                ("x", Some(1.0)),
                ("y", Some(2.0)),
                ("z", Some(3.5)),
            ],
        );
        assert!(check(&strict, &good, None).is_empty());
        let bad = facts(
            "2.0.0",
            None,
            &[
                ("loss", Some(0.5)),
                ("n", Some(0.0)),
                ("x", Some(1.5)),
                ("y", Some(2.1)),
                ("z", Some(3.0)),
            ],
        );
        assert_eq!(check(&strict, &bad, None).len(), 5);
    }

    #[test]
    fn a_refusal_names_every_failed_rule() {
        let policy = rules(&["metrics.auc >= 0.92", "ci_link"]);
        let failed = check(
            &policy,
            &facts("1.2.0", None, &[("auc", Some(0.5))]),
            Some("production"),
        );
        let refused = refusal("fraud", Step::AliasMove, failed);
        assert!(
            refused.message.contains(
                "metrics.auc >= 0.92 (alias production -> 1.2.0: metric 'auc' is 0.5, not >= 0.92)"
            ),
            "{}",
            refused.message
        );
        assert!(
            refused
                .message
                .contains("ci_link (alias production -> 1.2.0"),
            "{}",
            refused.message
        );
        assert!(refused.message.contains("2 failed rules"));
        let sealed = refusal(
            "fraud",
            Step::Seal,
            check(&policy[1..], &facts("1.2.0", None, &[]), None),
        );
        assert!(
            sealed.message.contains(
                "version 1.2.0 of model 'fraud' was not sealed; 1 failed rule: ci_link ("
            ),
            "{}",
            sealed.message
        );
    }
}
