//! The `aks:` cluster reference parser and the ARM name rules: any text gives a reference, a
//! context (no `aks:`) or a bad-input error, never a panic. A parsed reference prints back as the
//! same text and parses again to itself, each part follows its rule, and whatever a rule accepts
//! is a safe ARM path segment.
#![no_main]

use libfuzzer_sys::fuzz_target;
use spin_aks::azure::names::{self, AksReference};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match AksReference::parse(text) {
        Ok(Some(reference)) => {
            let printed = reference.to_string();
            assert_eq!(printed, text, "a reference prints back as given");
            let again = AksReference::parse(&printed).expect("a printed reference parses");
            assert_eq!(again.as_ref(), Some(&reference));
            let parts = [
                (&names::RESOURCE_GROUP, reference.resource_group.as_str()),
                (&names::CLUSTER, reference.name.as_str()),
            ];
            let subscription = reference.subscription.as_deref();
            let subscription = subscription.map(|s| (&names::SUBSCRIPTION, s));
            for (rule, part) in parts.into_iter().chain(subscription) {
                assert!(rule.holds(part), "{} {part:?}", rule.what);
            }
        }
        Ok(None) => assert!(!text.starts_with("aks:")),
        Err(err) => {
            assert!(text.starts_with("aks:"));
            assert_eq!(spin_aks::error::exit_code(&err), 2);
        }
    }
    for rule in [
        names::SUBSCRIPTION,
        names::RESOURCE_GROUP,
        names::CLUSTER,
        names::REGISTRY,
        names::IDENTITY,
    ] {
        let holds = rule.holds(text);
        assert_eq!(rule.check("--flag", text).is_ok(), holds);
        assert_eq!(rule.parse(text).is_ok(), holds);
        if holds {
            assert!(names::is_path_segment(text), "{} {text:?}", rule.what);
            assert!(names::resource_path(&format!("/subscriptions/{text}")).is_ok());
        }
    }
    assert_eq!(names::path_segment("name", text).is_ok(), names::is_path_segment(text));
    let _ = names::parse_registry(text);
    let _ = names::resource_path(text);
});
