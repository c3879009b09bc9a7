//! The OAuth2 client's private key: an EC P-256 key given as PKCS#8 PEM
//! (`BEGIN PRIVATE KEY`, what Pexip hands out), SEC1 PEM (`BEGIN EC PRIVATE KEY`, what
//! `openssl ecparam -genkey` writes), or base64 of either (how the older service stored it).
//! Everything is normalised to PKCS#8 DER, which is what the JWT signer takes.

use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use base64::Engine;
use jsonwebtoken::EncodingKey;

/// A parsed signing key. Debug never shows key material.
#[derive(Clone)]
pub struct SigningKey {
    pkcs8_der: Vec<u8>,
    public_key: Vec<u8>,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SigningKey(P-256, redacted)")
    }
}

/// Why a key was refused. Messages never contain key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// Neither PEM nor base64 of PEM.
    #[error("the private key is neither PEM nor base64 of PEM")]
    NotPem,
    /// A PEM block of a kind we do not take (RSA, public key, encrypted key, ...).
    #[error("unsupported PEM block {0:?}; expected PRIVATE KEY or EC PRIVATE KEY")]
    UnsupportedTag(String),
    /// The block does not hold a valid P-256 private key.
    #[error("the PEM block is not a valid EC P-256 private key")]
    InvalidKey,
}

impl SigningKey {
    /// Parse PKCS#8 PEM, SEC1 PEM, or base64 of either.
    pub fn parse(text: &str) -> Result<Self, KeyError> {
        let text = text.trim();
        let block = if text.starts_with("-----BEGIN") {
            pem::parse(text).map_err(|_| KeyError::NotPem)?
        } else {
            // Base64 of the PEM text; tolerate line breaks the way files wrap it.
            let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(compact.as_bytes())
                .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(&compact))
                .map_err(|_| KeyError::NotPem)?;
            let inner = String::from_utf8(decoded).map_err(|_| KeyError::NotPem)?;
            let inner = inner.trim();
            if !inner.starts_with("-----BEGIN") {
                return Err(KeyError::NotPem);
            }
            pem::parse(inner).map_err(|_| KeyError::NotPem)?
        };
        let pair = match block.tag() {
            "PRIVATE KEY" => {
                EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, block.contents())
            }
            // RFC 5915 ECPrivateKey; aws-lc re-encodes it as PKCS#8 below.
            "EC PRIVATE KEY" => EcdsaKeyPair::from_private_key_der(
                &ECDSA_P256_SHA256_FIXED_SIGNING,
                block.contents(),
            ),
            other => return Err(KeyError::UnsupportedTag(other.to_owned())),
        }
        .map_err(|_| KeyError::InvalidKey)?;
        let pkcs8_der = pair
            .to_pkcs8v1()
            .map_err(|_| KeyError::InvalidKey)?
            .as_ref()
            .to_vec();
        Ok(Self {
            pkcs8_der,
            public_key: pair.public_key().as_ref().to_vec(),
        })
    }

    /// The uncompressed SEC1 public point (65 bytes), to compare keys and verify signatures.
    pub fn public_key(&self) -> &[u8] {
        &self.public_key
    }

    /// The key in the form `jsonwebtoken` signs with.
    pub(crate) fn encoding_key(&self) -> EncodingKey {
        EncodingKey::from_ec_der(&self.pkcs8_der)
    }
}

#[cfg(test)]
mod tests {
    use aws_lc_rs::encoding::AsDer;
    use proptest::prelude::*;

    use super::*;

    /// An RFC 5915 ECPrivateKey with only the version, the scalar and the P-256 OID: the
    /// smallest SEC1 document, so the strategy can range over raw scalars.
    fn sec1_der_from_scalar(scalar: &[u8; 32]) -> Vec<u8> {
        const P256_OID: [u8; 10] = [0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
        let mut body = vec![0x02, 0x01, 0x01, 0x04, 0x20];
        body.extend_from_slice(scalar);
        body.extend_from_slice(&[0xa0, P256_OID.len() as u8]);
        body.extend_from_slice(&P256_OID);
        let mut der = vec![0x30, body.len() as u8];
        der.extend_from_slice(&body);
        der
    }

    fn pem_text(tag: &str, der: &[u8], line_ending: pem::LineEnding) -> String {
        pem::encode_config(
            &pem::Pem::new(tag, der.to_vec()),
            pem::EncodeConfig::new().set_line_ending(line_ending),
        )
    }

    fn b64(text: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(text)
    }

    proptest! {
        #[test]
        fn every_accepted_encoding_of_a_key_parses_to_the_same_public_key(
            scalar in any::<[u8; 32]>(),
            crlf in any::<bool>(),
            padding in "[ \n\t]{0,3}",
        ) {
            let sec1_min = sec1_der_from_scalar(&scalar);
            // Scalars of zero or >= the group order are not keys; skip them.
            let pair = EcdsaKeyPair::from_private_key_der(&ECDSA_P256_SHA256_FIXED_SIGNING, &sec1_min);
            prop_assume!(pair.is_ok());
            let pair = pair.unwrap();
            let expected = pair.public_key().as_ref().to_vec();
            let pkcs8 = pair.to_pkcs8v1().unwrap().as_ref().to_vec();
            let sec1_full = pair.private_key().as_der().unwrap().as_ref().to_vec();
            let ending = if crlf { pem::LineEnding::CRLF } else { pem::LineEnding::LF };
            let pems = [
                pem_text("PRIVATE KEY", &pkcs8, ending),
                pem_text("EC PRIVATE KEY", &sec1_full, ending),
                pem_text("EC PRIVATE KEY", &sec1_min, ending),
            ];
            for pem in &pems {
                for text in [
                    format!("{padding}{pem}{padding}"),
                    b64(pem),
                    format!("{padding}{}{padding}", b64(pem)),
                ] {
                    let key = SigningKey::parse(&text).unwrap();
                    prop_assert_eq!(key.public_key(), expected.as_slice());
                }
            }
        }
    }

    #[test]
    fn a_pkcs8_key_signs_a_jwt_its_public_key_verifies() {
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(
            &ECDSA_P256_SHA256_FIXED_SIGNING,
            &aws_lc_rs::rand::SystemRandom::new(),
        )
        .unwrap();
        let key = SigningKey::parse(&pem_text(
            "PRIVATE KEY",
            pkcs8.as_ref(),
            pem::LineEnding::LF,
        ))
        .unwrap();
        let token = jsonwebtoken::encode(
            &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256),
            &serde_json::json!({"sub": "x", "exp": 4_000_000_000u64}),
            &key.encoding_key(),
        )
        .unwrap();
        let point = key.public_key();
        let decoding = jsonwebtoken::DecodingKey::from_ec_components(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&point[1..33]),
            &base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&point[33..65]),
        )
        .unwrap();
        let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::ES256);
        validation.validate_aud = false;
        validation.required_spec_claims.clear();
        jsonwebtoken::decode::<serde_json::Value>(&token, &decoding, &validation).unwrap();
        // JOSE signatures are raw r||s (64 bytes), not DER.
        let signature = token.rsplit('.').next().unwrap();
        let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(signature)
            .unwrap();
        assert_eq!(raw.len(), 64);
    }

    #[test]
    fn other_inputs_are_refused_without_echoing_them() {
        let rsa_like = pem_text("RSA PRIVATE KEY", &[1, 2, 3], pem::LineEnding::LF);
        let cases = [
            ("", KeyError::NotPem),
            ("not a key", KeyError::NotPem),
            ("aGVsbG8=", KeyError::NotPem),
            (
                rsa_like.as_str(),
                KeyError::UnsupportedTag("RSA PRIVATE KEY".into()),
            ),
            (
                "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
                KeyError::InvalidKey,
            ),
        ];
        for (input, expected) in cases {
            let err = SigningKey::parse(input).unwrap_err();
            assert_eq!(err, expected, "input {input:?}");
            assert!(input.len() < 8 || !err.to_string().contains(input));
        }
    }
}
