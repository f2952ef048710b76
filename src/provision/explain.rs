//! ARM's refusals of a cluster creation turned into what to do next (quota, VM size, region,
//! provider registration), and the cluster write that waits out another operation on the cluster.

use std::time::Duration;

use serde_json::Value;

use super::spec::ClusterSpec;
use crate::azure::arm::{Arm, ArmError};
use crate::bad_input;
use crate::output::Output;

/// How long to wait between tries while another operation runs on the cluster.
const BUSY_PAUSE: Duration = Duration::from_secs(30);
/// Tries of the cluster write while another operation runs (30 s apart: a quarter of an hour).
const BUSY_TRIES: u32 = 30;

/// Writes the cluster resource and waits for the operation; while another operation runs on the
/// cluster (409), waits for it and tries again, as a person would.
pub async fn put_cluster_when_free(
    arm: &Arm,
    spec: &ClusterSpec,
    body: &Value,
    out: &Output,
) -> anyhow::Result<()> {
    let mut tries = 0;
    let started = loop {
        tries += 1;
        match arm.start_put_cluster(&spec.cluster, body).await {
            Ok(started) => break started,
            Err(err) if busy(&err) && tries < BUSY_TRIES => {
                out.info(format!(
                    "another operation is running on {}; waiting for it to finish",
                    spec.cluster.name
                ));
                arm.pause(BUSY_PAUSE).await;
            }
            Err(err) => return Err(self::arm(err, spec)),
        }
    };
    arm.wait_for(started)
        .await
        .map_err(|err| self::arm(err, spec))
}

/// 409: another operation holds the cluster.
fn busy(err: &anyhow::Error) -> bool {
    (err.downcast_ref::<ArmError>()).is_some_and(|e| {
        e.status == 409
            && ["OperationNotAllowed", "AnotherOperationInProgress"]
                .iter()
                .any(|code| e.code.eq_ignore_ascii_case(code))
    })
}

/// `err` with the fix for the refusals a creation meets (ARM's own words kept); others unchanged.
pub fn arm(err: anyhow::Error, spec: &ClusterSpec) -> anyhow::Error {
    let Some(refusal) = err.downcast_ref::<ArmError>() else {
        return err;
    };
    match fix(refusal, spec) {
        Some((fix, true)) => bad_input!("{fix}\n  ARM answered: {refusal}"),
        Some((fix, false)) => anyhow::anyhow!("{fix}\n  ARM answered: {refusal}"),
        None => err,
    }
}

/// The fix for `refusal`, and whether it lies in a flag the user gave (exit 2).
fn fix(refusal: &ArmError, spec: &ClusterSpec) -> Option<(String, bool)> {
    let code = refusal.code.to_ascii_lowercase();
    let message = refusal.message.to_ascii_lowercase();
    let (count, size, location) = (spec.node_count, &spec.node_vm_size, &spec.location);
    let quota =
        code.contains("quota") || (code == "operationnotallowed" && message.contains("quota"));
    Some(if quota {
        (format!("the subscription's vCPU quota in {location} does not cover {count} × {size}: ask for more (Azure portal → Quotas → Compute, for the VM family and the region's total), or ask for less (--node-count 1, a smaller --node-vm-size such as Standard_B2s)"), false)
    } else if matches!(
        code.as_str(),
        "skunotavailable" | "vmsizenotsupported" | "invalidvmsize"
    ) {
        (format!("--node-vm-size {size} is not offered to this subscription in {location}: choose another size (such as Standard_D2s_v5 or Standard_B2s) or another --location"), true)
    } else if matches!(
        code.as_str(),
        "locationnotavailableforresourcetype" | "invalidlocation" | "locationrequired"
    ) {
        (format!("--location {location}: AKS does not offer this region to the subscription; choose one from the list ARM gave"), true)
    } else if code == "missingsubscriptionregistration" {
        (format!("the subscription {} has not registered the resource provider this needs: register Microsoft.ContainerService and Microsoft.ContainerRegistry (Azure portal → Subscription → Resource providers), then run again", spec.cluster.subscription), false)
    } else if code == "operationnotallowed" && refusal.status == 409 {
        (format!("another operation is still running on {}: wait until its provisioningState is Succeeded or Failed, then run again", spec.cluster.name), false)
    } else {
        return None;
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::azure::ClusterRef;
    use crate::provision::spec::RegistryWish;

    fn spec() -> ClusterSpec {
        ClusterSpec {
            cluster: ClusterRef {
                subscription: "s".into(),
                resource_group: "rg".into(),
                name: "c".into(),
            },
            location: "westeurope".into(),
            node_count: 3,
            node_vm_size: "Standard_D4s_v5".into(),
            kubernetes_version: None,
            registry: RegistryWish::Default,
            registry_sku: "Basic".into(),
        }
    }

    #[test]
    fn each_refusal_gets_its_fix_and_exit_code() {
        let cases = [
            (
                400,
                "QuotaExceeded",
                "exceeding approved Total Regional Cores quota",
                "Quotas",
                1,
            ),
            (
                400,
                "ErrCode_InsufficientVCPUQuota",
                "Insufficient regional vcpu quota left",
                "--node-count 1",
                1,
            ),
            (
                400,
                "SkuNotAvailable",
                "The requested VM size Standard_D4s_v5 is currently not available",
                "--node-vm-size Standard_D4s_v5",
                2,
            ),
            (
                400,
                "LocationNotAvailableForResourceType",
                "The provided location 'westeurope' is not available",
                "--location westeurope",
                2,
            ),
            (
                409,
                "MissingSubscriptionRegistration",
                "The subscription is not registered to use namespace 'Microsoft.ContainerService'",
                "Resource providers",
                1,
            ),
            (
                409,
                "OperationNotAllowed",
                "Another operation (Updating) is in progress",
                "provisioningState",
                1,
            ),
        ];
        for (status, code, message, fix, exit) in cases {
            let body = serde_json::json!({"error": {"code": code, "message": message}});
            let refusal = ArmError::from_body(status, &body.to_string(), "PUT x".into());
            let explained = arm(refusal.into(), &spec());
            let text = explained.to_string();
            assert!(text.contains(fix), "{code}: {text}");
            assert!(text.contains(message), "{code} keeps ARM's words: {text}");
            assert_eq!(crate::error::exit_code(&explained), exit, "{code}");
        }
    }
}
