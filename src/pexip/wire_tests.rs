//! Edge cases of the client's wire format against a stub that records what it got (testkit's
//! recording stub): the exact token request (form fields, JWT header and claims), Basic
//! credentials, odd `Location` and `meta.next` values. Flows are tested against the simulator
//! in `tests/pexip_client.rs`.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use secrecy::SecretString;
use testkit::recording::{Request as Seen, Stub};

use super::*;
use crate::config::{PexipAuth, PexipSettings, parse_base_url};
use crate::secrets::Secret;

/// Serve `respond` on 127.0.0.1:0 (testkit's recording stub); returns the base URL and the
/// stub, which keeps every request it got.
async fn stub(respond: impl Fn(&Seen) -> Response + Send + Sync + 'static) -> (String, Stub) {
    let stub = Stub::start(respond).await;
    (stub.url().to_owned(), stub)
}

/// A secret from the environment, as configuration makes it.
fn fixed(value: String) -> Secret {
    Secret::fixed("test", SecretString::from(value))
}

fn settings(base: &str, auth: PexipAuth) -> PexipSettings {
    PexipSettings {
        base_url: parse_base_url("PEXIP_BASE_URL", base).unwrap(),
        auth,
        max_in_flight: 5,
        request_timeout: Duration::from_secs(30),
        max_retries: 3,
    }
}

fn new_key_pem() -> String {
    use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(
        &ECDSA_P256_SHA256_FIXED_SIGNING,
        &aws_lc_rs::rand::SystemRandom::new(),
    )
    .unwrap();
    pem::encode(&pem::Pem::new("PRIVATE KEY", pkcs8.as_ref().to_vec()))
}

fn json(status: StatusCode, value: serde_json::Value) -> Response {
    (status, axum::Json(value)).into_response()
}

fn token_reply() -> Response {
    json(
        StatusCode::OK,
        serde_json::json!({"access_token": "tok-1", "token_type": "Bearer", "expires_in": 3600}),
    )
}

fn empty_list() -> Response {
    json(
        StatusCode::OK,
        serde_json::json!({"meta": {"next": null, "total_count": 0}, "objects": []}),
    )
}

#[tokio::test]
async fn the_token_request_has_exactly_the_three_form_fields_and_a_valid_assertion() {
    let (base, seen) = stub(|req| {
        if req.uri.path().starts_with("/oauth/token/") {
            token_reply()
        } else {
            empty_list()
        }
    })
    .await;
    let pem = new_key_pem();
    let key = SigningKey::parse(&pem).unwrap();
    let client = PexipClient::new(&settings(
        &format!("{base}/"),
        PexipAuth::OAuth2 {
            client_id: "client-7".into(),
            private_key: fixed(pem),
        },
    ))
    .unwrap();

    client.list_conferences(&[]).await.unwrap();

    let seen = seen.requests();
    assert_eq!(seen.len(), 2, "{seen:?}");
    let token_request = &seen[0];
    assert_eq!(token_request.method, Method::POST);
    assert_eq!(token_request.uri, "/oauth/token/");
    assert_eq!(
        token_request.headers["content-type"],
        "application/x-www-form-urlencoded"
    );
    let form: BTreeMap<String, String> = url::form_urlencoded::parse(&token_request.body)
        .into_owned()
        .collect();
    assert_eq!(
        form.keys().collect::<Vec<_>>(),
        ["client_assertion", "client_assertion_type", "grant_type"]
    );
    assert_eq!(form["grant_type"], "client_credentials");
    assert_eq!(
        form["client_assertion_type"],
        "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
    );

    let assertion = &form["client_assertion"];
    let header = jsonwebtoken::decode_header(assertion).unwrap();
    assert_eq!(header.alg, jsonwebtoken::Algorithm::ES256);
    assert_eq!(header.typ.as_deref(), Some("JWT"));
    assert_eq!(header.kid, None);
    let point = key.public_key();
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let decoding = jsonwebtoken::DecodingKey::from_ec_components(
        &b64.encode(&point[1..33]),
        &b64.encode(&point[33..65]),
    )
    .unwrap();
    let token_url = format!("{base}/oauth/token/");
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::ES256);
    validation.set_audience(&[token_url.as_str()]);
    validation.set_issuer(&["client-7"]);
    validation.sub = Some("client-7".into());
    let claims = jsonwebtoken::decode::<serde_json::Value>(assertion, &decoding, &validation)
        .unwrap()
        .claims;
    assert_eq!(claims["aud"], token_url.as_str());
    let iat = claims["iat"].as_u64().unwrap();
    let exp = claims["exp"].as_u64().unwrap();
    assert_eq!(exp - iat, 300);
    assert!(claims["jti"].as_str().is_some_and(|j| j.len() >= 32));

    let list = &seen[1];
    assert_eq!(list.headers["authorization"], "Bearer tok-1");
    assert_eq!(list.headers["accept"], "application/json");
    assert_eq!(
        list.uri,
        "/api/admin/configuration/v1/conference/?limit=500"
    );
}

#[tokio::test]
async fn basic_auth_sends_the_configured_account_and_never_asks_for_a_token() {
    let (base, seen) = stub(|_| empty_list()).await;
    let client = PexipClient::new(&settings(
        &base,
        PexipAuth::Basic {
            username: "admin".into(),
            password: fixed("s3cret".to_owned()),
        },
    ))
    .unwrap();
    client.live_conferences(&[("tag", "pool")]).await.unwrap();
    let seen = seen.requests();
    assert_eq!(seen.len(), 1);
    assert_eq!(
        seen[0].uri,
        "/api/admin/status/v1/conference/?tag=pool&limit=500"
    );
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("admin:s3cret")
    );
    assert_eq!(seen[0].headers["authorization"], expected.as_str());
    assert_eq!(client.stats().token_renewals, 0);
}

#[tokio::test]
async fn a_401_with_basic_auth_is_not_retried() {
    let (base, seen) = stub(|_| StatusCode::UNAUTHORIZED.into_response()).await;
    let client = PexipClient::new(&settings(
        &base,
        PexipAuth::Basic {
            username: "admin".into(),
            password: fixed("wrong".to_owned()),
        },
    ))
    .unwrap();
    let err = client.get_conference(1).await.unwrap_err();
    assert!(matches!(err, PexipError::Unauthorized), "{err:?}");
    assert_eq!(seen.count(), 1);
    assert_eq!(client.stats().errors.unauthorized, 1);
}

#[tokio::test]
async fn a_refused_assertion_is_unauthorized_and_not_retried() {
    let (base, seen) = stub(|_| {
        json(
            StatusCode::BAD_REQUEST,
            serde_json::json!({"error": "invalid_client"}),
        )
    })
    .await;
    let client = PexipClient::new(&settings(
        &base,
        PexipAuth::OAuth2 {
            client_id: "c".into(),
            private_key: fixed(new_key_pem()),
        },
    ))
    .unwrap();
    let err = client.get_conference(1).await.unwrap_err();
    assert!(matches!(err, PexipError::Unauthorized), "{err:?}");
    assert_eq!(seen.count(), 1);
}

#[tokio::test]
async fn a_403_is_unauthorized_without_a_token_renewal() {
    let (base, seen) = stub(|req| {
        if req.uri.path().starts_with("/oauth/token/") {
            token_reply()
        } else {
            StatusCode::FORBIDDEN.into_response()
        }
    })
    .await;
    let client = PexipClient::new(&settings(
        &base,
        PexipAuth::OAuth2 {
            client_id: "c".into(),
            private_key: fixed(new_key_pem()),
        },
    ))
    .unwrap();
    let err = client.get_conference(1).await.unwrap_err();
    assert!(matches!(err, PexipError::Unauthorized), "{err:?}");
    let uris: Vec<String> = seen.requests().iter().map(|s| s.uri.to_string()).collect();
    assert_eq!(
        uris,
        ["/oauth/token/", "/api/admin/configuration/v1/conference/1/"]
    );
}

#[tokio::test]
async fn a_create_answered_with_an_absolute_location_reads_that_id_back() {
    let (base, seen) = stub(
        |req| match (req.method.as_str(), req.uri.to_string().as_str()) {
            ("POST", "/api/admin/configuration/v1/conference/") => (
                StatusCode::CREATED,
                [(
                    "location",
                    "https://mgr.example.com/api/admin/configuration/v1/conference/77/",
                )],
            )
                .into_response(),
            ("GET", "/api/admin/configuration/v1/conference/77/") => json(
                StatusCode::OK,
                serde_json::json!({"id": 77, "name": "r77", "service_type": "conference"}),
            ),
            _ => StatusCode::IM_A_TEAPOT.into_response(),
        },
    )
    .await;
    let client = basic_client(&base);
    let created = client
        .create_conference(&NewConference {
            name: "r77".into(),
            ..NewConference::default()
        })
        .await
        .unwrap();
    assert_eq!(created.id, 77);
    assert_eq!(seen.count(), 2);
}

#[tokio::test]
async fn a_validation_error_on_create_is_returned_without_a_lookup_or_a_retry() {
    let (base, seen) = stub(|_| {
        json(
            StatusCode::BAD_REQUEST,
            serde_json::json!({"conference": {"pin": ["Enter a valid PIN."]}}),
        )
    })
    .await;
    let client = basic_client(&base);
    let err = client
        .create_conference(&NewConference {
            name: "r".into(),
            pin: "12".into(),
            ..NewConference::default()
        })
        .await
        .unwrap_err();
    let PexipError::Validation { fields, .. } = err else {
        panic!("expected validation, got {err:?}");
    };
    assert_eq!(fields["pin"], ["Enter a valid PIN."]);
    assert_eq!(seen.count(), 1);
}

#[tokio::test]
async fn a_next_link_to_another_host_is_not_followed() {
    let (base, seen) = stub(|_| {
        json(
            StatusCode::OK,
            serde_json::json!({"meta": {"next": "http://evil.example.com/api/admin/configuration/v1/conference/?offset=1"},
                               "objects": [{"id": 1, "name": "a"}]}),
        )
    })
    .await;
    let client = basic_client(&base);
    let err = client.list_conferences(&[]).await.unwrap_err();
    assert!(matches!(err, PexipError::Other { .. }), "{err:?}");
    assert_eq!(seen.count(), 1);
}

#[tokio::test]
async fn a_next_link_that_repeats_the_page_stops_the_list() {
    let (base, seen) = stub(|req| {
        json(
            StatusCode::OK,
            serde_json::json!({"meta": {"next": req.uri.to_string()}, "objects": [{"id": 1, "name": "a"}]}),
        )
    })
    .await;
    let client = basic_client(&base);
    let err = client.list_conferences(&[]).await.unwrap_err();
    assert!(matches!(err, PexipError::Other { .. }), "{err:?}");
    assert_eq!(seen.count(), 1);
}

#[tokio::test]
async fn a_base_url_with_a_path_prefix_is_kept_on_every_request_and_next_link() {
    let (base, seen) = stub(|req| {
        let next = if req.uri.to_string().contains("offset") {
            serde_json::Value::Null
        } else {
            // A node behind a prefixing proxy may include the prefix in its links.
            "/pexip/api/admin/configuration/v1/conference/?limit=500&offset=1".into()
        };
        json(
            StatusCode::OK,
            serde_json::json!({"meta": {"next": next}, "objects": [{"id": 1, "name": "a"}]}),
        )
    })
    .await;
    let client = basic_client(&format!("{base}/pexip/"));
    let all = client.list_conferences(&[]).await.unwrap();
    assert_eq!(all.len(), 2);
    let uris: Vec<String> = seen.requests().iter().map(|s| s.uri.to_string()).collect();
    assert_eq!(
        uris,
        [
            "/pexip/api/admin/configuration/v1/conference/?limit=500",
            "/pexip/api/admin/configuration/v1/conference/?limit=500&offset=1"
        ]
    );
}

#[tokio::test]
async fn a_bad_private_key_fails_when_the_client_is_built() {
    let err = PexipClient::new(&settings(
        "http://127.0.0.1:9",
        PexipAuth::OAuth2 {
            client_id: "c".into(),
            private_key: Secret::fixed("PEXIP_PRIVATE_KEY", SecretString::from("not a key")),
        },
    ))
    .unwrap_err();
    assert!(
        matches!(err, PexipError::Config(ref m) if m.starts_with("PEXIP_PRIVATE_KEY")),
        "{err:?}"
    );
}

fn basic_client(base: &str) -> PexipClient {
    PexipClient::new(&settings(
        base,
        PexipAuth::Basic {
            username: "admin".into(),
            password: fixed("pw".to_owned()),
        },
    ))
    .unwrap()
}

/// Whether `assertion` carries a valid ES256 signature by `key`.
fn signed_by(assertion: &str, key: &SigningKey) -> bool {
    let point = key.public_key();
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let decoding = jsonwebtoken::DecodingKey::from_ec_components(
        &b64.encode(&point[1..33]),
        &b64.encode(&point[33..65]),
    )
    .unwrap();
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::ES256);
    validation.validate_aud = false;
    jsonwebtoken::decode::<serde_json::Value>(assertion, &decoding, &validation).is_ok()
}

#[tokio::test]
async fn a_rotated_key_signs_the_next_token_request_and_an_unusable_one_is_ignored() {
    // Tokens are numbered; a token listed in `revoked` is refused by /api/admin, which makes
    // the client ask for a new one.
    let issued = Arc::new(Mutex::new(0u32));
    let revoked = Arc::new(Mutex::new(Vec::<String>::new()));
    let (base, seen) = stub({
        let (issued, revoked) = (issued.clone(), revoked.clone());
        move |req| {
            if req.uri.path().starts_with("/oauth/token/") {
                let mut n = issued.lock().unwrap();
                *n += 1;
                return json(
                    StatusCode::OK,
                    serde_json::json!({"access_token": format!("tok-{n}"), "expires_in": 3600}),
                );
            }
            let bearer = req.headers["authorization"].to_str().unwrap();
            if revoked.lock().unwrap().iter().any(|t| bearer.ends_with(t)) {
                StatusCode::UNAUTHORIZED.into_response()
            } else {
                empty_list()
            }
        }
    })
    .await;
    let assertions = |seen: &Stub| -> Vec<String> {
        seen.requests()
            .iter()
            .filter(|s| s.uri == "/oauth/token/")
            .map(|s| {
                url::form_urlencoded::parse(&s.body)
                    .find(|(k, _)| k == "client_assertion")
                    .unwrap()
                    .1
                    .into_owned()
            })
            .collect()
    };
    let (old_pem, new_pem) = (new_key_pem(), new_key_pem());
    let (old_key, new_key) = (
        SigningKey::parse(&old_pem).unwrap(),
        SigningKey::parse(&new_pem).unwrap(),
    );
    let (rotate, secret) = crate::secrets::Secret::for_test("Key Vault secret k", &old_pem);
    let client = PexipClient::new(&settings(
        &base,
        PexipAuth::OAuth2 {
            client_id: "c".into(),
            private_key: secret,
        },
    ))
    .unwrap();
    client.list_conferences(&[]).await.unwrap();

    // Rotation alone does not throw away a good token...
    rotate.send_replace(SecretString::from(
        base64::engine::general_purpose::STANDARD.encode(&new_pem),
    ));
    client.list_conferences(&[]).await.unwrap();
    assert_eq!(assertions(&seen).len(), 1);
    // ...but the next token request is signed with the new key (given as base64 of PEM).
    revoked.lock().unwrap().push("tok-1".into());
    client.list_conferences(&[]).await.unwrap();
    let signed = assertions(&seen);
    assert_eq!(signed.len(), 2);
    assert!(signed_by(&signed[0], &old_key) && !signed_by(&signed[0], &new_key));
    assert!(signed_by(&signed[1], &new_key) && !signed_by(&signed[1], &old_key));

    // A value that is not a key is refused; the last good key keeps signing.
    rotate.send_replace(SecretString::from("not a key".to_owned()));
    revoked.lock().unwrap().push("tok-2".into());
    client.list_conferences(&[]).await.unwrap();
    let signed = assertions(&seen);
    assert_eq!(signed.len(), 3);
    assert!(signed_by(&signed[2], &new_key));
}

#[tokio::test]
async fn a_rotated_basic_password_goes_out_with_the_next_request() {
    let (base, seen) = stub(|_| empty_list()).await;
    let (rotate, secret) = crate::secrets::Secret::for_test("Key Vault secret p", "first");
    let client = PexipClient::new(&settings(
        &base,
        PexipAuth::Basic {
            username: "admin".into(),
            password: secret,
        },
    ))
    .unwrap();
    client.list_conferences(&[]).await.unwrap();
    rotate.send_replace(SecretString::from("second".to_owned()));
    client.list_conferences(&[]).await.unwrap();
    let sent: Vec<String> = seen
        .requests()
        .iter()
        .map(|s| s.headers["authorization"].to_str().unwrap().to_owned())
        .collect();
    let basic = |pw: &str| {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("admin:{pw}"))
        )
    };
    assert_eq!(sent, [basic("first"), basic("second")]);
}
