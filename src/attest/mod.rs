//! What an image says about itself: an SBOM (CycloneDX 1.6) and build provenance (an in-toto
//! Statement with a SLSA v1 predicate), deterministic bytes made from what the build knows.

use crate::build::{BuildSettings, BuiltImage};
use crate::oci::{Descriptor, ImageManifest};
use crate::output::Output;

pub mod auditable;
pub mod ci;
pub mod key_vault;
pub mod notation;
pub mod pkcs12;
pub mod provenance;
pub mod sbom;
pub mod signing;

/// The `artifactType` of the SBOM referrer: CycloneDX's JSON media type, registered with IANA
/// (CycloneDX/specification README.md:53-59).
pub const SBOM_ARTIFACT_TYPE: &str = "application/vnd.cyclonedx+json";

/// The `artifactType` of the provenance referrer: an in-toto Statement in JSON, the payload type
/// in-toto gives a Statement of any predicate (in-toto/attestation spec/v1/envelope.md:45-46).
pub const PROVENANCE_ARTIFACT_TYPE: &str = "application/vnd.in-toto+json";

/// Attaches to the built image, in its layout, the SBOM and the provenance statement the settings
/// ask for (each replacing the one before; one not asked for is removed): an unchanged build makes
/// the same bytes and writes nothing. The statement names the image by the app's name and tag, so
/// it does not depend on where the image is pushed. Returns what is attached.
pub fn attach(
    built: &BuiltImage,
    settings: &BuildSettings,
    out: &Output,
) -> anyhow::Result<Vec<Descriptor>> {
    let layout = &built.layout;
    let image = &built.descriptor;
    if !settings.sbom && !settings.provenance {
        layout.remove_referrers(&image.digest, SBOM_ARTIFACT_TYPE)?;
        layout.remove_referrers(&image.digest, PROVENANCE_ARTIFACT_TYPE)?;
        return Ok(Vec::new());
    }
    let mut warnings = Vec::new();
    let facts = sbom::SbomInput::from_build(built, &mut warnings)?;
    for warning in &warnings {
        out.warn(warning);
    }
    let mut documents = Vec::new();
    if settings.sbom {
        documents.push((SBOM_ARTIFACT_TYPE, sbom::cyclonedx(&facts)?));
    } else {
        layout.remove_referrers(&image.digest, SBOM_ARTIFACT_TYPE)?;
    }
    if settings.provenance {
        let subject = format!(
            "{}:{}",
            crate::workload::objects::dns_name(&built.app.name),
            built.tag
        );
        let input = provenance::ProvenanceInput::from_build(
            built,
            &facts,
            &subject,
            ci::CiRun::from_env(),
        )?;
        documents.push((PROVENANCE_ARTIFACT_TYPE, provenance::statement(&input)?));
    } else {
        layout.remove_referrers(&image.digest, PROVENANCE_ARTIFACT_TYPE)?;
    }
    let mut attached = Vec::new();
    for (artifact_type, bytes) in documents {
        let (digest, size) = layout.write_blob(&bytes)?;
        let layer = Descriptor::new(artifact_type, digest, size);
        let manifest =
            ImageManifest::artifact(artifact_type, image, vec![layer], Default::default());
        attached.push(layout.add_referrer(&manifest)?);
    }
    Ok(attached)
}
