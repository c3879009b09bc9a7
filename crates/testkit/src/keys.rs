//! Key material made at test time, never stored in the repository.

use aws_lc_rs::encoding::AsDer as _;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair as _};

/// An EC P-256 key pair in PEM, the kind a Pexip OAuth2 client signs its assertions with.
#[derive(Debug, Clone)]
pub struct P256 {
    /// PKCS#8 (`-----BEGIN PRIVATE KEY-----`).
    pub private_pem: String,
    /// SPKI (`-----BEGIN PUBLIC KEY-----`), what Pexip registers for the client.
    pub public_pem: String,
}

/// A fresh P-256 key pair.
pub fn p256() -> P256 {
    let pair = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).expect("a P-256 key");
    let pkcs8 = pair.to_pkcs8v1().expect("PKCS#8 encoding");
    let spki = pair.public_key().as_der().expect("SPKI encoding");
    P256 {
        private_pem: pem::encode(&pem::Pem::new("PRIVATE KEY", pkcs8.as_ref().to_vec())),
        public_pem: pem::encode(&pem::Pem::new("PUBLIC KEY", spki.as_ref().to_vec())),
    }
}
