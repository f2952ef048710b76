//! Table-driven checks of registries.conf reading against the man page: prefix matching, rewrites,
//! mirror selection by kind of pull, `blocked`, `insecure`, drop-ins and the messages for bad files.
//! The rules cited are containers/image at df7e80d2: `docs/containers-registries.conf.5.md` (the man
//! page, "man:LINE"), `docs/containers-registries.conf.d.5.md` ("man.d:LINE") and
//! `pkg/sysregistriesv2/system_registries_v2.go` ("go:LINE").

use super::*;

const ORIGIN: &str = "/etc/containers/registries.conf";
const USER_FILE: &str = "/home/u/.config/containers/registries.conf";

fn ep(repository: &str, insecure: bool, mirror: bool) -> Endpoint {
    Endpoint {
        repository: repository.to_string(),
        insecure,
        mirror,
    }
}

fn endpoints(conf: &str, repository: &str, by_digest: bool) -> anyhow::Result<Vec<Endpoint>> {
    Mirrors::parse(conf, ORIGIN)?.endpoints(repository, by_digest)
}

/// The man page's own example (man:231-259), plus the tables the other cases need.
const EXAMPLE: &str = r#"
unqualified-search-registries = ["example.com"]

[[registry]]
prefix = "example.com/foo"
insecure = false
blocked = false
location = "internal-registry-for-example.com/bar"

[[registry.mirror]]
location = "example-mirror-0.local/mirror-for-foo"

[[registry.mirror]]
location = "example-mirror-1.local/mirrors/foo"
insecure = true

[[registry]]
location = "registry.com"

[[registry.mirror]]
location = "mirror.registry.com"
"#;

#[test]
fn the_man_page_example_tries_mirrors_in_order_then_the_rewritten_location() {
    // man:253-261: the mirrors in order, the location last; another table's mirrors never.
    let cases: &[(&str, bool, &[Endpoint])] = &[
        (
            "example.com/foo/image",
            false,
            &[
                ep("example-mirror-0.local/mirror-for-foo/image", false, true),
                ep("example-mirror-1.local/mirrors/foo/image", true, true),
                ep("internal-registry-for-example.com/bar/image", false, false),
            ],
        ),
        (
            "registry.com/image",
            true,
            &[
                ep("mirror.registry.com/image", false, true),
                ep("registry.com/image", false, false),
            ],
        ),
        // No table matches: the repository itself, as named.
        (
            "quay.io/spinkube/spin-operator",
            false,
            &[ep("quay.io/spinkube/spin-operator", false, false)],
        ),
        // man:45-47: the name must continue with a separator after the prefix.
        (
            "example.com/foobar/image",
            false,
            &[ep("example.com/foobar/image", false, false)],
        ),
        (
            "registry.community/image",
            false,
            &[ep("registry.community/image", false, false)],
        ),
    ];
    for (repository, by_digest, expected) in cases {
        assert_eq!(
            endpoints(EXAMPLE, repository, *by_digest).unwrap(),
            *expected,
            "{repository}"
        );
    }
}

#[test]
fn the_longest_matching_prefix_is_the_one_used() {
    // man:45-47: only the table with the longest match is used; a mirror's location takes the
    // rest of the name after the prefix, path prefixes included (man:85-91).
    let conf = r#"
        [[registry]]
        prefix = "quay.io"
        location = "127.0.0.1:5000/quay.io"

        [[registry]]
        prefix = "quay.io/spinkube"
        location = "quay.io/spinkube"
        [[registry.mirror]]
        location = "mirror.local:5000/copies/spinkube-copy/"

        [[registry]]
        location = "docker.io/library"
        [[registry.mirror]]
        location = "mirror.local:5000/hub"
    "#;
    let cases: &[(&str, &[Endpoint])] = &[
        (
            "quay.io/jetstack/cert-manager-controller",
            &[ep(
                "127.0.0.1:5000/quay.io/jetstack/cert-manager-controller",
                false,
                false,
            )],
        ),
        (
            "quay.io/spinkube/spin-operator",
            &[
                ep(
                    "mirror.local:5000/copies/spinkube-copy/spin-operator",
                    false,
                    true,
                ),
                ep("quay.io/spinkube/spin-operator", false, false),
            ],
        ),
        (
            "quay.io/spinkubex/other",
            &[ep("127.0.0.1:5000/quay.io/spinkubex/other", false, false)],
        ),
        // A prefix equal to the whole name matches too.
        (
            "quay.io/spinkube",
            &[
                ep("mirror.local:5000/copies/spinkube-copy", false, true),
                ep("quay.io/spinkube", false, false),
            ],
        ),
        // man:222-227: docker.io's library namespace only as written out.
        (
            "docker.io/library/alpine",
            &[
                ep("mirror.local:5000/hub/alpine", false, true),
                ep("docker.io/library/alpine", false, false),
            ],
        ),
        (
            "docker.io/bitnami/kubectl",
            &[ep("docker.io/bitnami/kubectl", false, false)],
        ),
    ];
    for (repository, expected) in cases {
        assert_eq!(
            endpoints(conf, repository, false).unwrap(),
            *expected,
            "{repository}"
        );
    }
}

#[test]
fn a_wildcard_prefix_matches_any_subdomain_but_not_the_domain() {
    // man:47-53 and man:93-104: `*.example.com` matches any number of subdomains; with no
    // location the name is used as is, while mirrors and insecure still apply.
    let conf = r#"
        [[registry]]
        prefix = "*.example.com"
        insecure = true
        [[registry.mirror]]
        location = "mirror.local/example"

        [[registry]]
        prefix = "*.rewritten.io"
        location = "local.rewritten"

        [[registry]]
        prefix = "pinned.example.com"
        location = "pinned.example.com"
    "#;
    let cases: &[(&str, &[Endpoint])] = &[
        (
            "a.example.com/x/y",
            &[
                ep("mirror.local/example/x/y", false, true),
                ep("a.example.com/x/y", true, false),
            ],
        ),
        (
            "a.b.example.com/y",
            &[
                ep("mirror.local/example/y", false, true),
                ep("a.b.example.com/y", true, false),
            ],
        ),
        // go:859-877: a port after the host name still matches. The mirror replaces host and
        // port (containers/image would append ":5000/y" to the mirror and fail to parse it).
        (
            "a.example.com:5000/y",
            &[
                ep("mirror.local/example/y", false, true),
                ep("a.example.com:5000/y", true, false),
            ],
        ),
        ("example.com/y", &[ep("example.com/y", false, false)]),
        ("notexample.com/y", &[ep("notexample.com/y", false, false)]),
        (
            "other.io/a.example.com/y",
            &[ep("other.io/a.example.com/y", false, false)],
        ),
        (
            "x.rewritten.io/app",
            &[ep("local.rewritten/app", false, false)],
        ),
        // go:929-945: a longer plain prefix wins over the wildcard.
        (
            "pinned.example.com/app",
            &[ep("pinned.example.com/app", false, false)],
        ),
    ];
    for (repository, expected) in cases {
        assert_eq!(
            endpoints(conf, repository, false).unwrap(),
            *expected,
            "{repository}"
        );
    }
}

#[test]
fn mirrors_serve_the_pulls_their_settings_allow() {
    // man:120-129 and go:149-185: mirror-by-digest-only keeps every mirror for digest pulls;
    // pull-from-mirror chooses per mirror; the location always comes last.
    let by_registry = r#"
        [[registry]]
        location = "ghcr.io"
        mirror-by-digest-only = true
        [[registry.mirror]]
        location = "m1.local/ghcr"
        [[registry.mirror]]
        location = "m2.local/ghcr"
    "#;
    let per_mirror = r#"
        [[registry]]
        location = "ghcr.io"
        [[registry.mirror]]
        location = "digests.local/ghcr"
        pull-from-mirror = "digest-only"
        [[registry.mirror]]
        location = "tags.local/ghcr"
        pull-from-mirror = "tag-only"
        [[registry.mirror]]
        location = "all.local/ghcr"
        pull-from-mirror = "all"
        [[registry.mirror]]
        location = "default.local/ghcr"
        pull-from-mirror = ""
    "#;
    let own = ep("ghcr.io/spinkube/charts/spin-operator", false, false);
    let m = |host: &str| {
        ep(
            &format!("{host}/spinkube/charts/spin-operator"),
            false,
            true,
        )
    };
    let cases = [
        (by_registry, false, vec![own.clone()]),
        (
            by_registry,
            true,
            vec![m("m1.local/ghcr"), m("m2.local/ghcr"), own.clone()],
        ),
        (
            per_mirror,
            false,
            vec![
                m("tags.local/ghcr"),
                m("all.local/ghcr"),
                m("default.local/ghcr"),
                own.clone(),
            ],
        ),
        (
            per_mirror,
            true,
            vec![
                m("digests.local/ghcr"),
                m("all.local/ghcr"),
                m("default.local/ghcr"),
                own.clone(),
            ],
        ),
    ];
    for (conf, by_digest, expected) in cases {
        let got = endpoints(conf, "ghcr.io/spinkube/charts/spin-operator", by_digest).unwrap();
        assert_eq!(got, expected, "by_digest = {by_digest}");
    }
}

#[test]
fn a_blocked_registry_is_reached_through_its_mirrors_only() {
    // man:66-68: pulling a blocked name is forbidden; docker/docker_client.go:255-262
    // refuses each place whose own longest match is blocked, so mirrors of it still serve.
    let conf = r#"
        [[registry]]
        location = "quay.io"
        blocked = true
        [[registry.mirror]]
        location = "mirror.local/quay"
        pull-from-mirror = "digest-only"

        [[registry]]
        location = "ghcr.io"
        [[registry.mirror]]
        location = "forbidden.local/ghcr"
        [[registry.mirror]]
        location = "allowed.local/ghcr"

        [[registry]]
        location = "forbidden.local"
        blocked = true
    "#;
    assert_eq!(
        endpoints(conf, "quay.io/a/b", true).unwrap(),
        [ep("mirror.local/quay/a/b", false, true)]
    );
    assert_eq!(
        endpoints(conf, "ghcr.io/a", false).unwrap(),
        [
            ep("allowed.local/ghcr/a", false, true),
            ep("ghcr.io/a", false, false)
        ]
    );
    let err = endpoints(conf, "quay.io/a/b", false).unwrap_err();
    assert_eq!(crate::error::exit_code(&err), 2);
    let message = err.to_string();
    for part in [
        "quay.io/a/b",
        "prefix \"quay.io\"",
        ORIGIN,
        "blocked = true",
        "pull by tag",
    ] {
        assert!(message.contains(part), "{part:?} missing from: {message}");
    }
    let err = endpoints(conf, "forbidden.local/x", true)
        .unwrap_err()
        .to_string();
    assert!(err.contains("prefix \"forbidden.local\""), "{err}");
}

#[test]
fn insecure_is_per_place() {
    // man:60-64 and man:115-119: the table's insecure applies to its location, each mirror's to it.
    let conf = r#"
        [[registry]]
        prefix = "registry.internal:5000"
        location = "registry.internal:5000"
        insecure = true
        [[registry.mirror]]
        location = "secure-mirror.local"
        [[registry.mirror]]
        location = "plain-mirror.local:8080"
        insecure = true
    "#;
    assert_eq!(
        endpoints(conf, "registry.internal:5000/app", false).unwrap(),
        [
            ep("secure-mirror.local/app", false, true),
            ep("plain-mirror.local:8080/app", true, true),
            ep("registry.internal:5000/app", true, false),
        ]
    );
    // A port is part of the host: `registry.internal` alone is another registry.
    assert_eq!(
        endpoints(conf, "registry.internal/app", false).unwrap(),
        [ep("registry.internal/app", false, false)]
    );
}

#[test]
fn keys_spin_aks_does_not_use_are_accepted_and_the_first_table_of_a_prefix_wins() {
    // man:16-26, man:157-199: global keys and aliases; go:504-521: a repeated prefix in one file
    // keeps its first table.
    let conf = r#"
        unqualified-search-registries = ["docker.io", "quay.io"]
        short-name-mode = "enforcing"
        credential-helpers = ["containers-auth.json", "pass"]
        additional-layer-store-auth-helper = "helper"
        some-future-key = 1

        [aliases]
        "spin-operator" = "ghcr.io/spinkube/spin-operator"

        [[registry]]
        location = "ghcr.io"
        [[registry.mirror]]
        location = "first.local"

        [[registry]]
        location = "ghcr.io/"
        [[registry.mirror]]
        location = "second.local"
    "#;
    assert_eq!(
        endpoints(conf, "ghcr.io/x", false).unwrap(),
        [
            ep("first.local/x", false, true),
            ep("ghcr.io/x", false, false)
        ]
    );
    assert_eq!(
        endpoints("", "ghcr.io/x", false).unwrap(),
        [ep("ghcr.io/x", false, false)]
    );
}

#[test]
fn a_bad_file_is_bad_input_naming_the_file_the_field_and_the_value() {
    let cases: &[(&str, &[&str])] = &[
        (
            "[[registry]]\nlocation = \"quay.io\"\ninsecure = \"yes\"",
            &["[[registry]] number 1", "insecure = \"yes\"", "true or false"],
        ),
        // go:320-342: no URI scheme in a location.
        (
            "[[registry]]\nlocation = \"quay.io\"\n[[registry]]\nlocation = \"https://ghcr.io\"",
            &["[[registry]] number 2", "location = \"https://ghcr.io\"", "host[:port]/path"],
        ),
        // man:49-51: a wildcard only as a leading `*.` of a host.
        ("[[registry]]\nprefix = \"example.*.com\"\nlocation = \"x.io\"", &["prefix = \"example.*.com\"", "*.example.com"]),
        ("[[registry]]\nprefix = \"*.example.com/foo\"", &["prefix = \"*.example.com/foo\"", "wildcard"]),
        // go:412-427: a location unless the prefix is a wildcard; one of the two at least.
        ("[[registry]]\nprefix = \"quay.io\"", &["has no location", "prefix = \"quay.io\""]),
        ("[[registry]]\ninsecure = true", &["[[registry]] number 1 has no location", "location or a prefix"]),
        // go:429-455: the mirror settings' rules.
        (
            "[[registry]]\nlocation = \"q.io\"\n[[registry.mirror]]\nlocation = \"m.local\"\npull-from-mirror = \"sometimes\"",
            &["[[registry.mirror]] number 1 of [[registry]] number 1", "pull-from-mirror = \"sometimes\"", "\"digest-only\""],
        ),
        ("[[registry]]\nlocation = \"q.io\"\npull-from-mirror = \"all\"", &["pull-from-mirror = \"all\"", "[[registry.mirror]] only"]),
        (
            "[[registry]]\nlocation = \"q.io\"\nmirror-by-digest-only = true\n[[registry.mirror]]\nlocation = \"m.local\"\npull-from-mirror = \"tag-only\"",
            &["pull-from-mirror = \"tag-only\"", "mirror-by-digest-only"],
        ),
        ("[[registry]]\nlocation = \"q.io\"\n[[registry.mirror]]\ninsecure = true", &["[[registry.mirror]] number 1", "has no location"]),
        ("[[registry]]\nlocation = \"q.io\"\nmirror = \"m.local\"", &["mirror = \"m.local\"", "[[registry.mirror]] tables"]),
        // go:463-491: one location, two different `insecure`.
        (
            "[[registry]]\nprefix = \"a.io\"\nlocation = \"m.local\"\n[[registry]]\nprefix = \"b.io\"\nlocation = \"m.local\"\ninsecure = true",
            &["location \"m.local\"", "insecure = false (prefix \"a.io\")", "insecure = true (prefix \"b.io\")"],
        ),
        // man:287-303: version 1 is refused, not guessed at.
        ("[registries.search]\nregistries = ['registry1.com']", &["[registries.search]", "version 1", "[[registry]]"]),
        ("[registry]\nlocation = \"q.io\"", &["[registry]", "[[registry]]"]),
        ("[[registry]]\nlocation = \"q.io\"\n\ninsecure = tru", &["line 4", "not valid TOML"]),
    ];
    for (conf, parts) in cases {
        let err = Mirrors::parse(conf, "conf.d/10-bad.conf").unwrap_err();
        assert_eq!(crate::error::exit_code(&err), 2, "{conf}");
        let message = err.to_string();
        for part in parts.iter().chain(&["conf.d/10-bad.conf"]) {
            assert!(message.contains(part), "{part:?} missing from: {message}");
        }
    }
}

#[test]
fn drop_ins_beside_the_file_are_read_in_lexical_order_and_later_wins_per_prefix() {
    // man.d:14-27: `*.conf` files only, in alpha-numerical order; a table with the same prefix
    // replaces the earlier one, new prefixes are added.
    let dir = tempfile::tempdir().unwrap();
    let main = dir.path().join("registries.conf");
    let conf_d = dir.path().join("registries.conf.d");
    std::fs::create_dir_all(conf_d.join("ignored.conf")).unwrap();
    let table = |location: &str, mirror: &str| {
        format!("[[registry]]\nlocation = \"{location}\"\n[[registry.mirror]]\nlocation = \"{mirror}\"\n")
    };
    std::fs::write(
        &main,
        table("quay.io", "main.local") + &table("ghcr.io", "main.local"),
    )
    .unwrap();
    std::fs::write(
        conf_d.join("20-later.conf"),
        table("quay.io", "later.local"),
    )
    .unwrap();
    std::fs::write(
        conf_d.join("10-earlier.conf"),
        table("quay.io", "earlier.local") + &table("docker.io", "earlier.local"),
    )
    .unwrap();
    std::fs::write(conf_d.join("30-notes.txt"), "not toml at all [").unwrap();
    let mirrors = Mirrors::load(Some(&main)).unwrap();
    let first = |repository: &str| {
        mirrors.endpoints(repository, false).unwrap()[0]
            .repository
            .clone()
    };
    assert_eq!(first("quay.io/a"), "later.local/a");
    assert_eq!(first("ghcr.io/a"), "main.local/a");
    assert_eq!(first("docker.io/a"), "earlier.local/a");

    std::fs::write(
        conf_d.join("40-broken.conf"),
        "[registries.block]\nregistries = []",
    )
    .unwrap();
    let err = Mirrors::load(Some(&main)).unwrap_err();
    assert_eq!(crate::error::exit_code(&err), 2);
    assert!(err.to_string().contains("40-broken.conf"), "{err}");
}

#[test]
fn a_given_file_must_exist() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("registries.conf");
    let err = Mirrors::load(Some(&missing)).unwrap_err();
    assert_eq!(crate::error::exit_code(&err), 2);
    let expected = format!(
        "the registries.conf file ({}) does not exist",
        missing.display()
    );
    assert!(err.to_string().contains(&expected), "{err}");
}

#[test]
fn the_main_file_is_found_where_skopeo_and_podman_look() {
    // The environment, the files that exist, the file chosen, and whether it must exist.
    type Case = (
        &'static [(&'static str, &'static str)],
        &'static [&'static str],
        &'static str,
        bool,
    );
    let cases: &[Case] = &[
        (
            &[
                ("CONTAINERS_REGISTRIES_CONF", "/srv/r.conf"),
                ("HOME", "/home/u"),
            ],
            &[USER_FILE],
            "/srv/r.conf",
            true,
        ),
        (&[("HOME", "/home/u")], &[USER_FILE], USER_FILE, false),
        (&[("HOME", "/home/u")], &[], SYSTEM_FILE, false),
        (
            &[("XDG_CONFIG_HOME", "/xdg"), ("HOME", "/home/u")],
            &[USER_FILE, "/xdg/containers/registries.conf"],
            "/xdg/containers/registries.conf",
            false,
        ),
        (
            &[("XDG_CONFIG_HOME", "/xdg"), ("HOME", "/home/u")],
            &[USER_FILE],
            SYSTEM_FILE,
            false,
        ),
        (&[], &[], SYSTEM_FILE, false),
    ];
    for (vars, existing, expected, must_exist) in cases {
        let var = |name: &str| {
            vars.iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| OsString::from(v))
        };
        let found = locate(None, var, |path| {
            existing.iter().any(|e| Path::new(e) == path)
        });
        assert_eq!(found.path, Path::new(expected), "{vars:?}");
        assert_eq!(found.named_by.is_some(), *must_exist, "{vars:?}");
    }
    let given = locate(Some(Path::new("/given.conf")), |_| None, |_| true);
    assert_eq!(given.path, Path::new("/given.conf"));
}
