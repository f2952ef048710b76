//! The command line's own checks: flags that parse, and values refused before a run.

use clap::{CommandFactory, ValueEnum};

use super::*;

#[test]
fn every_command_has_unique_flags() {
    super::Cli::command().debug_assert();
}

/// Each flag value names the domain value it converts into (JSON reports and scaffold's
/// prompts use the domain name).
#[test]
fn flag_values_name_their_domain_values() {
    fn names<A: ValueEnum, D: From<A>>(name: fn(D) -> String) -> Vec<(String, String)> {
        A::value_variants()
            .iter()
            .map(|a| {
                let flag = a.to_possible_value().unwrap().get_name().to_string();
                (flag, name(D::from(a.clone())))
            })
            .collect()
    }
    fn json<T: serde::Serialize>(value: T) -> String {
        serde_json::to_value(value)
            .unwrap()
            .as_str()
            .unwrap()
            .to_string()
    }
    let pairs = [
        names::<RenderTypeArg, RenderType>(|d| d.name().to_string()),
        names::<RenderTypeArg, RenderType>(json),
        names::<WorkloadArg, WorkloadKind>(|d| d.name().to_string()),
        names::<WorkloadArg, WorkloadKind>(json),
        names::<ImageFormatArg, ImageFormat>(json),
    ];
    for (flag, domain) in pairs.iter().flatten() {
        assert_eq!(flag, domain);
    }
}
