//! `spin-aks verify`: an image's Notary Project signatures checked against `--trust-cert` (in a
//! registry, or offline in an oci-archive), with its SBOM and provenance (the step is `crate::verify`).

use crate::cli::{GlobalArgs, VerifyArgs};
use crate::output::Output;
use crate::verify;

pub async fn run(_global: &GlobalArgs, args: &VerifyArgs, out: &Output) -> anyhow::Result<()> {
    let settings = args.settings()?;
    let policy = verify::trust_policy(&settings.trust)?;
    let report = verify::verify(&settings.subject, &policy, &settings.registry, out).await?;
    out.report(&report, report.lines())?;
    report.require().map(drop)
}
