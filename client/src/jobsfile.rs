//! Jobs files: `[[job]]` tables in TOML, as `sisyctl apply` reads them.

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;

use crate::model::JobRef;
use crate::notifications::{check_rules, ProjectDefaults, RuleDefinition};
use crate::spec::{check_project, InvalidJob, JobDefinition, JobSpec};
use crate::{Error, Result};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct JobsFile {
    #[serde(default)]
    job: Vec<JobDefinition>,
    /// `[projects.NAME]`: settings for every job of a project.
    #[serde(default)]
    projects: BTreeMap<String, ProjectSection>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ProjectSection {
    /// Notification rules for the project's jobs that set none of their own.
    #[serde(default)]
    notify: Vec<RuleDefinition>,
}

/// A checked jobs file: its jobs and its projects' defaults.
#[derive(Debug, Clone)]
pub struct Checked {
    pub jobs: Vec<JobSpec>,
    pub projects: Vec<ProjectDefaults>,
}

impl Checked {
    /// What is allowed but probably a mistake ([`env_warnings`]).
    pub fn warnings(&self) -> Vec<EnvWarning> {
        env_warnings(&self.jobs)
    }
}

/// A plain env value under a key that looks secret (`PASSWORD`, `TOKEN`, `SECRET`, `KEY`): it
/// will be stored in the database and shown to whoever reads the job. Names the job and the key,
/// never the value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvWarning {
    pub job: JobRef,
    pub key: String,
}

impl std::fmt::Display for EnvWarning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "job {}: env `{}` has a plain value but its name looks secret; the value is stored \
             in the database as it is. Write {} = {{ secret = \"NAME\" }} to have each guardian \
             read it on its host (--secrets-dir or SISYPHUS_SECRET_NAME)",
            self.job, self.key, self.key
        )
    }
}

/// The [`EnvWarning`]s of these jobs, in their order.
pub fn env_warnings(specs: &[JobSpec]) -> Vec<EnvWarning> {
    specs
        .iter()
        .flat_map(|spec| {
            spec.plain_keys_looking_secret()
                .into_iter()
                .map(|key| EnvWarning {
                    job: spec.job.clone(),
                    key: key.to_string(),
                })
        })
        .collect()
}

/// Parses and checks a whole jobs file. Any problem in any job refuses the whole file, with every
/// problem of every job listed; `path` only names the file in messages.
pub fn parse(text: &str, path: &str) -> Result<Vec<JobSpec>> {
    Ok(parse_all(text, path)?.jobs)
}

/// As [`parse`], with the `[projects.NAME]` sections.
pub fn parse_all(text: &str, path: &str) -> Result<Checked> {
    let bad = |message: String| Error::JobsFile {
        path: path.to_string(),
        message,
    };
    let file: JobsFile = toml::from_str(text).map_err(|e| bad(e.to_string()))?;
    let mut projects = Vec::new();
    for (project, section) in &file.projects {
        check_project(project).map_err(|e| bad(format!("[projects.\"{project}\"]: {e}")))?;
        let notify = check_rules(&section.notify)
            .map_err(|e| bad(format!("projects.{project}.notify: {e}")))?;
        projects.push(ProjectDefaults {
            project: project.clone(),
            notify,
        });
    }
    Ok(Checked {
        jobs: check(&file.job)?,
        projects,
    })
}

/// Checks a list of definitions: each must be valid, and no two may share a name.
pub fn check(definitions: &[JobDefinition]) -> Result<Vec<JobSpec>> {
    let mut specs = Vec::with_capacity(definitions.len());
    let mut invalid = Vec::new();
    let mut seen = BTreeSet::new();
    for (i, def) in definitions.iter().enumerate() {
        match def.validate_at(Some(i)) {
            Ok(spec) => {
                if !seen.insert(spec.job.clone()) {
                    invalid.push(InvalidJob {
                        job: spec.job.to_string(),
                        problems: vec![crate::spec::FieldProblem {
                            field: "name",
                            problem: "is defined twice in the same file".to_string(),
                        }],
                    });
                }
                specs.push(spec);
            }
            Err(e) => invalid.push(e),
        }
    }
    if invalid.is_empty() {
        Ok(specs)
    } else {
        Err(Error::Invalid(invalid))
    }
}
