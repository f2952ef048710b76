//! What an image says about itself: an SBOM (CycloneDX 1.6) and build provenance (an in-toto
//! Statement with a SLSA v1 predicate), deterministic bytes made from what the build knows.

pub mod auditable;
pub mod ci;
pub mod provenance;
pub mod sbom;

/// The `artifactType` of the SBOM referrer: CycloneDX's JSON media type, registered with IANA
/// (CycloneDX/specification README.md:53-59).
pub const SBOM_ARTIFACT_TYPE: &str = "application/vnd.cyclonedx+json";

/// The `artifactType` of the provenance referrer: an in-toto Statement in JSON, the payload type
/// in-toto gives a Statement of any predicate (in-toto/attestation spec/v1/envelope.md:45-46).
pub const PROVENANCE_ARTIFACT_TYPE: &str = "application/vnd.in-toto+json";
