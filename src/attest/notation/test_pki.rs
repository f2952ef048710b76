//! Test certificates for Notation signing: a root CA and a code-signing leaf of each key type
//! Notation supports, made with rcgen. Shared by the unit tests and tests/it/notation.rs.

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, RsaKeySize,
};

/// The key types Notation signs with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyKind {
    Rsa2048,
    Rsa3072,
    Rsa4096,
    P256,
    P384,
    P521,
}

impl KeyKind {
    pub const ALL: [KeyKind; 6] = [
        KeyKind::Rsa2048,
        KeyKind::Rsa3072,
        KeyKind::Rsa4096,
        KeyKind::P256,
        KeyKind::P384,
        KeyKind::P521,
    ];

    fn generate(self) -> KeyPair {
        let rsa = |size| KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, size);
        match self {
            KeyKind::Rsa2048 => rsa(RsaKeySize::_2048),
            KeyKind::Rsa3072 => rsa(RsaKeySize::_3072),
            KeyKind::Rsa4096 => rsa(RsaKeySize::_4096),
            KeyKind::P256 => KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256),
            KeyKind::P384 => KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384),
            KeyKind::P521 => KeyPair::generate_for(&rcgen::PKCS_ECDSA_P521_SHA512),
        }
        .expect("key generation")
    }
}

/// How the leaf certificate differs from a valid code-signing certificate.
#[derive(Clone, Debug)]
pub struct Leaf {
    pub kind: KeyKind,
    pub common_name: String,
    pub extended_key_usages: Vec<ExtendedKeyUsagePurpose>,
    /// Validity, as (year, month, day) of not-before and not-after.
    pub valid: ((i32, u8, u8), (i32, u8, u8)),
    /// The leaf's key as PEM, to certify a key again; else a new key of `kind`.
    pub key_pem: Option<String>,
}

impl Leaf {
    pub fn new(kind: KeyKind) -> Self {
        Leaf {
            kind,
            common_name: "spin-aks test signer".into(),
            extended_key_usages: vec![ExtendedKeyUsagePurpose::CodeSigning],
            valid: ((2020, 1, 1), (2049, 12, 31)),
            key_pem: None,
        }
    }
}

/// A root CA and a leaf it issued, as PEM and DER.
pub struct Pki {
    pub root_pem: String,
    pub key_pem: String,
    /// Leaf then root.
    pub chain_pem: String,
    pub chain_der: Vec<Vec<u8>>,
}

/// The subject attributes of every test leaf apart from its CN, in Notation's x509.subject form.
pub const SUBJECT_BASE: &str = "C=US,ST=WA,O=spin-aks tests";

fn name(common_name: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CountryName, "US");
    dn.push(DnType::StateOrProvinceName, "WA");
    dn.push(DnType::OrganizationName, "spin-aks tests");
    dn.push(DnType::CommonName, common_name);
    dn
}

/// A new root (named `root_name`) and a leaf as `leaf` says.
pub fn make(root_name: &str, leaf: &Leaf) -> Pki {
    let root_key = match leaf.kind {
        KeyKind::Rsa2048 | KeyKind::Rsa3072 | KeyKind::Rsa4096 => KeyKind::Rsa2048.generate(),
        _ => KeyKind::P384.generate(),
    };
    let mut root = CertificateParams::default();
    root.distinguished_name = name(root_name);
    root.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    root.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    root.not_before = rcgen::date_time_ymd(2019, 1, 1);
    root.not_after = rcgen::date_time_ymd(2050, 1, 1);
    let root_cert = root.self_signed(&root_key).expect("root certificate");
    let issuer = Issuer::new(root, root_key);

    let leaf_key = match &leaf.key_pem {
        Some(pem) => KeyPair::from_pem(pem).expect("the leaf's key"),
        None => leaf.kind.generate(),
    };
    let mut params = CertificateParams::default();
    params.distinguished_name = name(&leaf.common_name);
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = leaf.extended_key_usages.clone();
    let ((y0, m0, d0), (y1, m1, d1)) = leaf.valid;
    params.not_before = rcgen::date_time_ymd(y0, m0, d0);
    params.not_after = rcgen::date_time_ymd(y1, m1, d1);
    let leaf_cert = params
        .signed_by(&leaf_key, &issuer)
        .expect("leaf certificate");
    Pki {
        root_pem: root_cert.pem(),
        key_pem: leaf_key.serialize_pem(),
        chain_pem: format!("{}{}", leaf_cert.pem(), root_cert.pem()),
        chain_der: vec![leaf_cert.der().to_vec(), root_cert.der().to_vec()],
    }
}
