//! The token endpoint and the credential gate on `/api/admin/**`.

use std::time::Duration;

use base64::Engine as _;
use reqwest::StatusCode;
use serde_json::Value;

use pexip_sim::SimConfig;

use crate::helpers::{
    Api, Assertion, CONFERENCES, http, other_key, request_token, start_sim, start_sim_with, token,
};

#[tokio::test]
async fn a_good_assertion_gets_a_bearer_token_that_opens_the_admin_api() {
    let sim = start_sim().await;
    let response = request_token(&sim, &Assertion::for_sim(&sim).sign()).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 3600);
    let token = body["access_token"].as_str().unwrap();
    assert!(token.len() >= 32);

    let list = http()
        .get(format!("{}{CONFERENCES}", sim.base_url()))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(list.status(), StatusCode::OK);
    assert_eq!(sim.counters().tokens_issued, 1);
}

#[tokio::test]
async fn scope_is_ignored_and_aud_may_omit_the_trailing_slash() {
    let sim = start_sim().await;
    let mut assertion = Assertion::for_sim(&sim);
    assertion.aud = assertion.aud.trim_end_matches('/').to_owned();
    let response = http()
        .post(format!("{}/oauth/token/", sim.base_url()))
        .form(&[
            ("grant_type", "client_credentials"),
            (
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            ),
            ("client_assertion", assertion.sign().as_str()),
            ("scope", "is_admin use_api"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn bad_assertions_are_refused_as_invalid_client() {
    let sim = start_sim().await;
    let (foreign_key, _) = other_key();
    type Breaker = fn(&mut Assertion, &str);
    let cases: &[(&str, Breaker)] = &[
        ("signed by another key", |a, foreign| {
            a.key_pem = foreign.to_owned()
        }),
        ("wrong aud", |a, _| {
            a.aud = "https://elsewhere.example.com/oauth/token/".into()
        }),
        ("aud of another path", |a, _| {
            a.aud = a.aud.replace("/oauth/token/", "/oauth/other/")
        }),
        ("expired", |a, _| {
            a.iat -= 600;
            a.exp = a.iat + 300;
        }),
        ("iat far in the future", |a, _| {
            a.iat += 600;
            a.exp += 600;
        }),
        ("sub differs from iss", |a, _| a.sub = "someone-else".into()),
        ("unknown client", |a, _| {
            a.iss = "nobody".into();
            a.sub = "nobody".into();
        }),
        ("no jti", |a, _| a.jti = None),
    ];
    for (case, breaker) in cases {
        let mut assertion = Assertion::for_sim(&sim);
        breaker(&mut assertion, &foreign_key);
        let response = request_token(&sim, &assertion.sign()).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{case}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"], "invalid_client", "{case}");
    }
    assert_eq!(sim.counters().tokens_issued, 0);
}

#[tokio::test]
async fn a_reused_jti_is_refused() {
    let sim = start_sim().await;
    let signed = Assertion::for_sim(&sim).sign();
    assert_eq!(request_token(&sim, &signed).await.status(), StatusCode::OK);
    let replay = request_token(&sim, &signed).await;
    assert_eq!(replay.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        replay.json::<Value>().await.unwrap()["error"],
        "invalid_client"
    );
    assert_eq!(sim.counters().tokens_issued, 1);
}

#[tokio::test]
async fn malformed_token_requests_get_oauth_error_codes() {
    let sim = start_sim().await;
    let url = format!("{}/oauth/token/", sim.base_url());
    let signed = Assertion::for_sim(&sim).sign();
    let signed = signed.as_str();
    type Form<'a> = &'a [(&'a str, &'a str)];
    let cases: [(Form<'_>, StatusCode, &str); 4] = [
        (
            &[("grant_type", "password"), ("client_assertion", signed)],
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
        ),
        (
            &[("client_assertion", signed)],
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            &[
                ("grant_type", "client_credentials"),
                ("client_assertion_type", "basic"),
                ("client_assertion", signed),
            ],
            StatusCode::UNAUTHORIZED,
            "invalid_client",
        ),
        (
            &[
                ("grant_type", "client_credentials"),
                (
                    "client_assertion_type",
                    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                ),
                ("client_assertion", "not-a-jwt"),
            ],
            StatusCode::UNAUTHORIZED,
            "invalid_client",
        ),
    ];
    for (form, status, error) in cases {
        let response = http().post(&url).form(form).send().await.unwrap();
        assert_eq!(response.status(), status, "{form:?}");
        assert_eq!(
            response.json::<Value>().await.unwrap()["error"],
            error,
            "{form:?}"
        );
    }
}

#[tokio::test]
async fn the_admin_api_answers_401_with_an_empty_body_without_valid_credentials() {
    let sim = start_sim().await;
    let url = format!("{}{CONFERENCES}", sim.base_url());
    let basic = base64::engine::general_purpose::STANDARD.encode("admin:admin");
    let attempts = [
        None,
        Some("Bearer not-a-token".to_owned()),
        Some(format!("Basic {basic}")),
        Some("Token abc".to_owned()),
    ];
    for authorization in attempts {
        let mut request = http().get(&url);
        if let Some(value) = &authorization {
            request = request.header("authorization", value);
        }
        let response = request.send().await.unwrap();
        assert_eq!(
            response.status(),
            StatusCode::UNAUTHORIZED,
            "{authorization:?}"
        );
        assert_eq!(
            response.headers()["www-authenticate"],
            "Basic realm=\"pexip\"",
            "{authorization:?}"
        );
        assert!(
            response.bytes().await.unwrap().is_empty(),
            "{authorization:?}"
        );
    }
}

#[tokio::test]
async fn tokens_expire_by_the_simulator_clock() {
    let sim = start_sim_with(SimConfig {
        token_lifetime: Duration::from_secs(60),
        replication_delay: Duration::ZERO,
        ..SimConfig::default()
    })
    .await;
    let api = Api::new(&sim).await;
    assert_eq!(api.get(CONFERENCES).await.status(), StatusCode::OK);
    sim.advance_clock(Duration::from_secs(59));
    assert_eq!(api.get(CONFERENCES).await.status(), StatusCode::OK);
    sim.advance_clock(Duration::from_secs(1));
    assert_eq!(
        api.get(CONFERENCES).await.status(),
        StatusCode::UNAUTHORIZED
    );
    // A new assertion (signed with the wall clock) still works after the jump.
    let fresh = token(&sim).await;
    let response = http()
        .get(format!("{}{CONFERENCES}", sim.base_url()))
        .bearer_auth(fresh)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn basic_auth_is_accepted_only_when_configured_and_correct() {
    let sim = start_sim_with(SimConfig {
        basic_auth: Some(("admin".into(), "s3cret".into())),
        ..SimConfig::default()
    })
    .await;
    let url = format!("{}{CONFERENCES}", sim.base_url());
    let good = http()
        .get(&url)
        .basic_auth("admin", Some("s3cret"))
        .send()
        .await
        .unwrap();
    assert_eq!(good.status(), StatusCode::OK);
    let bad = http()
        .get(&url)
        .basic_auth("admin", Some("wrong"))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_client_registered_later_can_get_tokens_with_its_own_key() {
    let sim = start_sim().await;
    let (private, public) = other_key();
    sim.register_client("second-client", &public).unwrap();
    let mut assertion = Assertion::for_sim(&sim);
    assertion.iss = "second-client".into();
    assertion.sub = "second-client".into();
    assertion.key_pem = private;
    assert_eq!(
        request_token(&sim, &assertion.sign()).await.status(),
        StatusCode::OK
    );
    assert!(sim.register_client("third", "not a key").is_err());
}
