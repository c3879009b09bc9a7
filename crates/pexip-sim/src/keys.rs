//! OAuth2 client keys: the ES256 (P-256) key pair generated at start, and the registry of
//! client ids and their public keys that the token endpoint verifies assertions with.

use std::collections::HashMap;
use std::sync::RwLock;

use anyhow::Context as _;
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use jsonwebtoken::DecodingKey;
use pem::{EncodeConfig, LineEnding, Pem};

/// A freshly generated P-256 key pair, both halves as PEM.
pub(crate) struct GeneratedKey {
    /// PKCS#8 (`-----BEGIN PRIVATE KEY-----`), the form Pexip's UI hands out.
    pub(crate) private_pem: String,
    /// SubjectPublicKeyInfo (`-----BEGIN PUBLIC KEY-----`).
    pub(crate) public_pem: String,
}

/// Generate a P-256 key pair for ES256.
pub(crate) fn generate() -> anyhow::Result<GeneratedKey> {
    let pair = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING)
        .map_err(|_| anyhow::anyhow!("cannot generate a P-256 key pair"))?;
    let pkcs8 = pair
        .to_pkcs8v1()
        .map_err(|_| anyhow::anyhow!("cannot encode the private key as PKCS#8"))?;
    let spki = pair
        .public_key()
        .as_der()
        .map_err(|_| anyhow::anyhow!("cannot encode the public key"))?;
    Ok(GeneratedKey {
        private_pem: to_pem("PRIVATE KEY", pkcs8.as_ref()),
        public_pem: to_pem("PUBLIC KEY", spki.as_ref()),
    })
}

fn to_pem(tag: &str, der: &[u8]) -> String {
    pem::encode_config(
        &Pem::new(tag, der.to_vec()),
        EncodeConfig::new().set_line_ending(LineEnding::LF),
    )
}

/// Registered OAuth2 clients: client id → public key.
#[derive(Default)]
pub(crate) struct ClientRegistry {
    keys: RwLock<HashMap<String, DecodingKey>>,
}

impl ClientRegistry {
    /// Register (or replace) `client_id` with an SPKI PEM public key.
    pub(crate) fn register(&self, client_id: &str, public_key_pem: &str) -> anyhow::Result<()> {
        anyhow::ensure!(!client_id.is_empty(), "a client id must not be empty");
        let key = DecodingKey::from_ec_pem(public_key_pem.as_bytes())
            .context("the public key is not an EC public key in PEM (SubjectPublicKeyInfo)")?;
        self.keys
            .write()
            .expect("client registry lock")
            .insert(client_id.to_owned(), key);
        Ok(())
    }

    /// The public key registered for `client_id`.
    pub(crate) fn key(&self, client_id: &str) -> Option<DecodingKey> {
        self.keys
            .read()
            .expect("client registry lock")
            .get(client_id)
            .cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_are_pkcs8_and_spki_pem() {
        let key = generate().unwrap();
        assert!(key.private_pem.starts_with("-----BEGIN PRIVATE KEY-----\n"));
        assert!(key.public_pem.starts_with("-----BEGIN PUBLIC KEY-----\n"));
        assert!(jsonwebtoken::EncodingKey::from_ec_pem(key.private_pem.as_bytes()).is_ok());
    }

    #[test]
    fn registering_something_that_is_not_a_public_key_fails() {
        let registry = ClientRegistry::default();
        let key = generate().unwrap();
        assert!(registry.register("c", &key.private_pem).is_err());
        assert!(registry.register("c", "not a key").is_err());
        assert!(registry.register("c", &key.public_pem).is_ok());
        assert!(registry.key("c").is_some());
    }
}
