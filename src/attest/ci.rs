//! The CI run a build happens in, read from the environment once ([`CiRun::from_env`]) so that
//! provenance is made from explicit input: GitHub Actions, Azure Pipelines, or none (a local run).

use crate::git::public_source;

/// Where the build ran.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CiRun {
    /// Not in a CI system spin-aks knows.
    Local,
    /// A GitHub Actions workflow run (GitHub docs, "Variables reference", default variables).
    GitHubActions {
        /// `GITHUB_SERVER_URL`, e.g. `https://github.com`.
        server: String,
        /// `GITHUB_REPOSITORY`, `owner/name`.
        repository: String,
        /// `GITHUB_RUN_ID`.
        run_id: String,
        /// `GITHUB_RUN_ATTEMPT`.
        run_attempt: Option<String>,
        /// `GITHUB_REF`, e.g. `refs/heads/main`.
        git_ref: Option<String>,
    },
    /// An Azure Pipelines run (Azure DevOps docs, "Use predefined variables").
    AzurePipelines {
        /// `SYSTEM_COLLECTIONURI` (else `SYSTEM_TEAMFOUNDATIONCOLLECTIONURI`), e.g.
        /// `https://dev.azure.com/org/`.
        collection: String,
        /// `SYSTEM_TEAMPROJECT`, the project's name.
        project: String,
        /// `BUILD_BUILDID`.
        build_id: String,
        /// `BUILD_REPOSITORY_URI`, without the user name Azure Repos puts in it.
        repository: Option<String>,
        /// `BUILD_SOURCEBRANCH`, e.g. `refs/heads/main`.
        source_branch: Option<String>,
    },
}

impl CiRun {
    /// The run this process is part of, from its environment.
    pub fn from_env() -> Self {
        Self::from_vars(|name| std::env::var(name).ok())
    }

    /// The run the variables `var` gives describe (empty values count as unset).
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Self {
        let get = |name: &str| var(name).filter(|v| !v.trim().is_empty());
        if get("GITHUB_ACTIONS").as_deref() == Some("true") {
            if let (Some(server), Some(repository), Some(run_id)) = (
                get("GITHUB_SERVER_URL"),
                get("GITHUB_REPOSITORY"),
                get("GITHUB_RUN_ID"),
            ) {
                return CiRun::GitHubActions {
                    server: server.trim_end_matches('/').to_string(),
                    repository,
                    run_id,
                    run_attempt: get("GITHUB_RUN_ATTEMPT"),
                    git_ref: get("GITHUB_REF"),
                };
            }
        }
        if get("TF_BUILD").is_some_and(|v| v.eq_ignore_ascii_case("true")) {
            let collection =
                get("SYSTEM_COLLECTIONURI").or_else(|| get("SYSTEM_TEAMFOUNDATIONCOLLECTIONURI"));
            if let (Some(collection), Some(project), Some(build_id)) =
                (collection, get("SYSTEM_TEAMPROJECT"), get("BUILD_BUILDID"))
            {
                return CiRun::AzurePipelines {
                    collection,
                    project,
                    build_id,
                    repository: get("BUILD_REPOSITORY_URI").map(|uri| public_source(&uri)),
                    source_branch: get("BUILD_SOURCEBRANCH"),
                };
            }
        }
        CiRun::Local
    }

    /// The run's page: `…/actions/runs/<id>` on GitHub, `…/_build/results?buildId=<id>` on Azure
    /// DevOps; none for a local run.
    pub fn run_url(&self) -> Option<String> {
        match self {
            CiRun::Local => None,
            CiRun::GitHubActions {
                server,
                repository,
                run_id,
                ..
            } => Some(format!("{server}/{repository}/actions/runs/{run_id}")),
            CiRun::AzurePipelines {
                collection,
                project,
                build_id,
                ..
            } => {
                let collection = collection.trim_end_matches('/');
                let project = url::form_urlencoded::byte_serialize(project.as_bytes())
                    .collect::<String>()
                    .replace('+', "%20");
                Some(format!(
                    "{collection}/{project}/_build/results?buildId={build_id}"
                ))
            }
        }
    }

    /// This attempt of the run, where the CI tells attempts apart (GitHub's re-runs).
    pub fn invocation(&self) -> Option<String> {
        match self {
            CiRun::GitHubActions {
                run_attempt: Some(attempt),
                ..
            } => Some(format!("{}/attempts/{attempt}", self.run_url()?)),
            _ => self.run_url(),
        }
    }

    /// The repository the CI checked out and the ref it ran for.
    pub fn repository_and_ref(&self) -> Option<(Option<String>, Option<String>)> {
        match self {
            CiRun::Local => None,
            CiRun::GitHubActions {
                server,
                repository,
                git_ref,
                ..
            } => Some((Some(format!("{server}/{repository}")), git_ref.clone())),
            CiRun::AzurePipelines {
                repository,
                source_branch,
                ..
            } => Some((repository.clone(), source_branch.clone())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn run(vars: &[(&str, &str)]) -> CiRun {
        let vars: BTreeMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        CiRun::from_vars(|name| vars.get(name).cloned())
    }

    const GITHUB: &[(&str, &str)] = &[
        ("GITHUB_ACTIONS", "true"),
        ("GITHUB_SERVER_URL", "https://github.com"),
        ("GITHUB_REPOSITORY", "org/app"),
        ("GITHUB_RUN_ID", "42"),
        ("GITHUB_RUN_ATTEMPT", "2"),
        ("GITHUB_REF", "refs/heads/main"),
    ];

    const AZURE: &[(&str, &str)] = &[
        ("TF_BUILD", "True"),
        ("SYSTEM_COLLECTIONURI", "https://dev.azure.com/org/"),
        ("SYSTEM_TEAMPROJECT", "My Project"),
        ("BUILD_BUILDID", "7"),
        (
            "BUILD_REPOSITORY_URI",
            "https://org@dev.azure.com/org/My%20Project/_git/app",
        ),
        ("BUILD_SOURCEBRANCH", "refs/heads/release"),
    ];

    #[test]
    fn each_ci_names_its_run_repository_and_ref() {
        struct Case {
            vars: Vec<(&'static str, &'static str)>,
            run_url: Option<&'static str>,
            invocation: Option<&'static str>,
            repository: Option<&'static str>,
            git_ref: Option<&'static str>,
        }
        let without = |base: &[(&'static str, &'static str)], name: &str| {
            base.iter().filter(|(k, _)| *k != name).copied().collect()
        };
        let cases = [
            Case {
                vars: GITHUB.to_vec(),
                run_url: Some("https://github.com/org/app/actions/runs/42"),
                invocation: Some("https://github.com/org/app/actions/runs/42/attempts/2"),
                repository: Some("https://github.com/org/app"),
                git_ref: Some("refs/heads/main"),
            },
            Case {
                vars: without(GITHUB, "GITHUB_RUN_ATTEMPT"),
                run_url: Some("https://github.com/org/app/actions/runs/42"),
                invocation: Some("https://github.com/org/app/actions/runs/42"),
                repository: Some("https://github.com/org/app"),
                git_ref: Some("refs/heads/main"),
            },
            Case {
                vars: AZURE.to_vec(),
                run_url: Some("https://dev.azure.com/org/My%20Project/_build/results?buildId=7"),
                invocation: Some("https://dev.azure.com/org/My%20Project/_build/results?buildId=7"),
                // Azure Repos' URI carries the organisation as a user name: published without.
                repository: Some("https://dev.azure.com/org/My%20Project/_git/app"),
                git_ref: Some("refs/heads/release"),
            },
            // Incomplete or absent: a local run, never a half-made URL.
            Case {
                vars: without(GITHUB, "GITHUB_RUN_ID"),
                run_url: None,
                invocation: None,
                repository: None,
                git_ref: None,
            },
            Case {
                vars: without(AZURE, "TF_BUILD"),
                run_url: None,
                invocation: None,
                repository: None,
                git_ref: None,
            },
            Case {
                vars: vec![],
                run_url: None,
                invocation: None,
                repository: None,
                git_ref: None,
            },
        ];
        for case in cases {
            let ci = run(&case.vars);
            assert_eq!(ci.run_url().as_deref(), case.run_url, "{ci:?}");
            assert_eq!(ci.invocation().as_deref(), case.invocation, "{ci:?}");
            let (repository, git_ref) = ci.repository_and_ref().unwrap_or_default();
            assert_eq!(repository.as_deref(), case.repository, "{ci:?}");
            assert_eq!(git_ref.as_deref(), case.git_ref, "{ci:?}");
        }
    }

    #[test]
    fn the_collection_uri_falls_back_to_the_team_foundation_one() {
        let mut vars: Vec<_> = AZURE
            .iter()
            .filter(|(k, _)| *k != "SYSTEM_COLLECTIONURI")
            .copied()
            .collect();
        vars.push((
            "SYSTEM_TEAMFOUNDATIONCOLLECTIONURI",
            "https://dev.azure.com/other/",
        ));
        assert_eq!(
            run(&vars).run_url().as_deref(),
            Some("https://dev.azure.com/other/My%20Project/_build/results?buildId=7")
        );
    }
}
