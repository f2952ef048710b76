//! Artifacts that prove themselves: signatures, SBOMs and provenance attached to an image as
//! OCI referrers.

pub mod notation;
