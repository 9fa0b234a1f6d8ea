//! Jobs files: `[[job]]` tables in TOML, as `sisyctl apply` reads them.

use std::collections::BTreeSet;

use serde::Deserialize;

use crate::error::{Error, Result};
use crate::spec::{InvalidJob, JobDefinition, JobSpec};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct JobsFile {
    #[serde(default)]
    job: Vec<JobDefinition>,
}

/// Parses and checks a whole jobs file. Any problem in any job refuses the whole file, with every
/// problem of every job listed; `path` only names the file in messages.
pub fn parse(text: &str, path: &str) -> Result<Vec<JobSpec>> {
    let file: JobsFile = toml::from_str(text).map_err(|e| Error::JobsFile {
        path: path.to_string(),
        message: e.to_string(),
    })?;
    check(&file.job)
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
