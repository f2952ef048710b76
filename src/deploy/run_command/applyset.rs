//! The app's ApplySet through run command: the parent Secret and member labels a direct apply
//! writes, kept by kubectl in the cluster, so either route prunes what the other applied.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use crate::cluster::apply::{AppliedObject, ObjectAction, FIELD_MANAGER};
use crate::cluster::applyset::{self, ApplySet};
use crate::workload::validate::DnsLabel;
use crate::yaml::to_yaml;

/// The line the remote command prints per deleted member: `spin-aks-deleted <Kind.group> <name>`.
const DELETED_MARK: &str = "spin-aks-deleted";
/// The parent with this in place of its group-kinds, which the command fills in.
const GROUP_KINDS_SLOT: &str = "@GROUP_KINDS@";
const PARENT_TEMPLATE: &str = "applyset/parent.yaml";
const PARENT: &str = "applyset/listed.yaml";

pub struct RemoteSet {
    set: ApplySet,
    /// `Kind.group` → the names applied now.
    members: BTreeMap<String, BTreeSet<String>>,
}

impl RemoteSet {
    /// The set of app `app` in `namespace` whose members are `objects`, which it labels, and the
    /// Secrets in `secrets_read` (the workload reads them, so a prune keeps them, given values now
    /// or not).
    pub fn new(
        app: &DnsLabel,
        namespace: &DnsLabel,
        objects: &mut [Value],
        secrets_read: BTreeSet<String>,
    ) -> Self {
        let set = ApplySet::for_app(app.as_str(), namespace.as_str());
        let mut members: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for object in objects.iter_mut() {
            set.label_member(object);
            let kind = applyset::group_kind(
                object["apiVersion"].as_str().unwrap_or_default(),
                object["kind"].as_str().unwrap_or_default(),
            );
            let name = object["metadata"]["name"].as_str().unwrap_or_default();
            members.entry(kind).or_default().insert(name.to_string());
        }
        if !secrets_read.is_empty() {
            members
                .entry("Secret".to_string())
                .or_default()
                .extend(secrets_read);
        }
        RemoteSet { set, members }
    }

    /// The parent Secret as a file, its group-kinds left for the command to fill in.
    pub fn parent_file(&self) -> (String, Vec<u8>) {
        let slot = BTreeSet::from([GROUP_KINDS_SLOT.to_string()]);
        let text = to_yaml(&self.set.parent(&slot));
        (PARENT_TEMPLATE.to_string(), text.into_bytes())
    }

    /// Before the members are applied: the parent lists what it listed and the kinds applied now,
    /// so members of a run cut short are still found by the next prune.
    pub fn before_apply(&self) -> Vec<String> {
        vec![
            self.read_listed_kinds(),
            format!(
                "kinds=$(printf '%s\\n' $(echo \"$kinds,{}\" | tr , ' ') | LC_ALL=C sort -u | paste -sd , -)",
                self.current()
            ),
            apply_parent("$kinds"),
        ]
    }

    /// After the members are applied: every labelled member of a listed kind that was not
    /// applied now is deleted (a `spin-aks-deleted` line each), then the parent lists the kinds
    /// applied now only.
    pub fn prune(&self) -> Vec<String> {
        let mut steps = self.delete_unkept();
        steps.push(apply_parent(&self.current()));
        steps
    }

    /// The whole set: every labelled member of a listed kind, then the parent (`delete` of a set
    /// made with no members).
    pub fn delete(&self) -> Vec<String> {
        let mut steps = vec![self.read_listed_kinds()];
        steps.extend(self.delete_unkept());
        steps.push(format!(
            "kubectl delete secret {} -n {} --ignore-not-found --wait=false >/dev/null",
            self.set.parent_name, self.set.namespace
        ));
        steps
    }

    /// `kinds=` the group-kinds the live parent lists (none without a parent).
    fn read_listed_kinds(&self) -> String {
        let listed = format!(
            "{{{{with .metadata.annotations}}}}{{{{with index . \"{}\"}}}}{{{{.}}}}{{{{end}}}}{{{{end}}}}",
            applyset::GROUP_KINDS_ANNOTATION
        );
        format!(
            "kinds=$(kubectl get secret {} -n {} --ignore-not-found -o go-template='{listed}')",
            self.set.parent_name, self.set.namespace
        )
    }

    /// Deletes each labelled member of the kinds in `$kinds` that is not a member now.
    fn delete_unkept(&self) -> Vec<String> {
        let mut steps = vec!["for kind in $(echo \"$kinds\" | tr , ' '); do".to_string()];
        steps.push("case \"$kind\" in".to_string());
        for (kind, names) in &self.members {
            let names: Vec<&str> = names.iter().map(String::as_str).collect();
            steps.push(format!("{kind}) keep=' {} ' ;;", names.join(" ")));
        }
        steps.push("*) keep=' ' ;;".to_string());
        steps.push("esac".to_string());
        steps.push(format!(
            "names=$(kubectl get \"$kind\" -n {} -l {}={} -o go-template='{{{{range .items}}}}{{{{.metadata.name}}}}{{{{\"\\n\"}}}}{{{{end}}}}')",
            self.set.namespace,
            applyset::PART_OF_LABEL,
            self.set.id
        ));
        steps.push(format!(
            "for name in $names; do case \"$keep\" in *\" $name \"*) ;; *) kubectl delete \"$kind\" \"$name\" -n {} --wait=false >/dev/null && echo \"{DELETED_MARK} $kind $name\" ;; esac; done",
            self.set.namespace
        ));
        steps.push("done".to_string());
        steps
    }

    fn current(&self) -> String {
        self.members.keys().cloned().collect::<Vec<_>>().join(",")
    }
}

/// The shell lines applying the parent with `kinds` (shell words) as its group-kinds.
fn apply_parent(kinds: &str) -> String {
    format!(
        "sed \"s/{GROUP_KINDS_SLOT}/{kinds}/\" {PARENT_TEMPLATE} > {PARENT}\nkubectl apply --server-side --force-conflicts --field-manager={FIELD_MANAGER} -f {PARENT} >/dev/null"
    )
}

/// The members the command's logs say it deleted.
pub fn deleted_in(logs: &str) -> Vec<AppliedObject> {
    logs.lines()
        .filter_map(|line| line.trim().strip_prefix(DELETED_MARK))
        .filter_map(|rest| rest.trim().split_once(' '))
        .map(|(group_kind, name)| AppliedObject {
            kind: applyset::split_group_kind(group_kind).1.to_string(),
            name: name.to_string(),
            action: ObjectAction::Pruned,
            result: Value::Null,
        })
        .collect()
}
