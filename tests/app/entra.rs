//! In-app Entra ID authentication of `/room*`: tokens signed with keys the tests make, the
//! JWKS served by the tests (`idp.rs`), checked over real HTTP.

use serde_json::{Value, json};

use crate::idp::*;
use crate::support::*;

/// An app with the check on against `idp`, plus `extra` settings.
async fn app_with(idp: &Idp, extra: &[(&str, &str)]) -> TestApp {
    let mut env = idp.env();
    env.extend(
        extra
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    TestApp::spawn(Options {
        env,
        ..Options::default()
    })
    .await
}

/// `POST /room/create` for a fresh video call, with `authorization` if given.
async fn create(app: &TestApp, authorization: Option<&str>, call: &str) -> reqwest::Response {
    let mut request =
        reqwest::Client::new().post(app.at(&format!("/room/create?uuiData={}", uui("id", call))));
    if let Some(value) = authorization {
        request = request.header("authorization", value);
    }
    request.send().await.unwrap()
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

#[tokio::test]
async fn room_create_without_an_acceptable_token_gets_401_with_a_bearer_challenge() {
    let idp = Idp::start(&[&KEY_A, &KEY_B]).await;
    let app = app_with(&idp, &[]).await;
    let now = now();
    let hs256 = jsonwebtoken::encode(
        &jsonwebtoken::Header {
            kid: Some("kid-a".into()),
            ..jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256)
        },
        &claims(),
        &jsonwebtoken::EncodingKey::from_secret(b"the public modulus, say"),
    )
    .unwrap();
    // (case, Authorization header, what the detail says)
    let cases: Vec<(&str, Option<String>, &str)> = vec![
        ("no Authorization header", None, "required"),
        (
            "another scheme",
            Some("Basic cGV4aXA6cGFzcw==".into()),
            "required",
        ),
        ("not a JWT", Some(bearer("not-a-jwt")), "well-formed"),
        (
            "expired an hour ago",
            Some(bearer(&KEY_A.sign(&claims_with(
                json!({"exp": now - 3600, "nbf": now - 7200, "iat": now - 7200}),
            )))),
            "expired",
        ),
        (
            "for another audience",
            Some(bearer(&KEY_A.sign(&claims_with(
                json!({"aud": "https://graph.microsoft.com"}),
            )))),
            "audience",
        ),
        (
            "from another issuer",
            Some(bearer(&KEY_A.sign(&claims_with(json!({
                "iss": "https://login.microsoftonline.com/another-tenant/v2.0"
            }))))),
            "issuer",
        ),
        (
            "signed by an unknown key",
            Some(bearer(&ROGUE.sign(&claims()))),
            "unknown key",
        ),
        (
            "signed by an unknown key under a published kid",
            Some(bearer(&ROGUE.sign_as("kid-a", &claims()))),
            "signature is invalid",
        ),
        (
            "signed by one published key under the other's kid",
            Some(bearer(&KEY_B.sign_as("kid-a", &claims()))),
            "signature is invalid",
        ),
        (
            "HS256 with a guessable secret",
            Some(bearer(&hs256)),
            "algorithm",
        ),
        (
            "not valid before an hour from now",
            Some(bearer(
                &KEY_A.sign(&claims_with(json!({"nbf": now + 3600}))),
            )),
            "not valid yet",
        ),
        (
            "without an expiry",
            Some(bearer(&KEY_A.sign(&claims_with(json!({"exp": null}))))),
            "no exp claim",
        ),
        (
            "without an audience",
            Some(bearer(&KEY_A.sign(&claims_with(json!({"aud": null}))))),
            "no aud claim",
        ),
    ];
    for (i, (case, authorization, reason)) in cases.iter().enumerate() {
        let response = create(&app, authorization.as_deref(), &format!("CALL{i}")).await;
        assert_eq!(response.status(), 401, "{case}");
        // RFC 6750: no error code when no token was presented.
        let code = if i < 2 {
            "missing_token"
        } else {
            "invalid_token"
        };
        let challenge = response.headers()["www-authenticate"].to_str().unwrap();
        assert!(
            challenge.starts_with("Bearer realm=\"pexip-sdk\""),
            "{case}: {challenge}"
        );
        assert_eq!(
            challenge.contains("error=\"invalid_token\""),
            i >= 2,
            "{case}"
        );
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["code"], code, "{case}: {body}");
        let detail = body["detail"].as_str().unwrap();
        assert!(detail.contains(reason), "{case}: {detail}");
    }
    assert_eq!(app.sim_room_count(), 0, "no room was created or handed out");
    assert_eq!(app.sim_requests(CREATE_ROUTE), 0);
}

#[tokio::test]
async fn every_room_route_needs_the_token_and_an_allowed_one_gets_through() {
    let idp = Idp::start(&[&KEY_A]).await;
    let app = app_with(&idp, &[]).await;
    let token = bearer(&KEY_A.sign(&claims()));
    let client = reqwest::Client::new();
    let created = create(&app, Some(&token), "ALLOWED").await;
    assert_eq!(created.status(), 200);
    let room: Value = created.json().await.unwrap();
    let name = room["name"].as_str().unwrap();
    assert_eq!(
        room["tag"],
        "https://id.gov.bc.ca/idcheck/protected/video/ALLOWED"
    );

    let routes = [
        (reqwest::Method::GET, format!("/room/{name}"), 200),
        (reqwest::Method::GET, "/room".to_owned(), 200),
        (reqwest::Method::POST, "/room/bulk?count=1".to_owned(), 202),
        (reqwest::Method::DELETE, "/room/bulk".to_owned(), 400),
        (reqwest::Method::DELETE, format!("/room/{name}"), 204),
    ];
    for (method, path, allowed) in routes {
        let refused = client
            .request(method.clone(), app.at(&path))
            .send()
            .await
            .unwrap();
        assert_eq!(refused.status(), 401, "{method} {path} without a token");
        let answered = client
            .request(method.clone(), app.at(&path))
            .header("authorization", &token)
            .send()
            .await
            .unwrap();
        assert_eq!(answered.status(), allowed, "{method} {path} with a token");
    }
    let refused = client
        .patch(app.at("/room/whatever"))
        .json(&json!({"description": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        refused.status(),
        401,
        "PATCH is checked before its body is read"
    );
}

#[tokio::test]
async fn many_requests_fetch_the_jwks_once() {
    let idp = Idp::start(&[&KEY_A]).await;
    let app = app_with(&idp, &[]).await;
    app.seed_pool().await;
    let token = bearer(&KEY_A.sign(&claims()));
    // Concurrent first requests: one fetch serves them all.
    let (app_ref, token_ref) = (&app, token.as_str());
    let responses = futures::future::join_all(
        (0..24).map(|i| async move { create(app_ref, Some(token_ref), &format!("MANY{i}")).await }),
    )
    .await;
    for response in responses {
        assert_eq!(response.status(), 200);
    }
    for i in 0..8 {
        let response = create(&app, Some(&token), &format!("MORE{i}")).await;
        assert_eq!(response.status(), 200);
    }
    assert_eq!(idp.fetches(), 1);
}

#[tokio::test]
async fn a_valid_token_of_a_client_or_role_not_allowed_gets_403() {
    let idp = Idp::start(&[&KEY_A]).await;
    let app = app_with(&idp, &[("AUTH_ALLOWED_ROLES", "Rooms.Manage,Rooms.Admin")]).await;
    let cases = [
        ("another client", json!({"azp": OTHER_CLIENT_ID}), 403),
        // Not an application token at all (issue 13, item 16): refused before the lists.
        ("no client claim", json!({"azp": null}), 401),
        ("no role", json!({"roles": null}), 403),
        ("another role", json!({"roles": ["Rooms.Read"]}), 403),
        ("allowed client and role", json!({}), 200),
        (
            "the other allowed role",
            json!({"roles": ["Rooms.Read", "Rooms.Admin"]}),
            200,
        ),
        (
            "a v1 token (appid, sts.windows.net issuer, App ID URI audience)",
            json!({"azp": null, "appid": CLIENT_ID, "ver": "1.0",
                   "iss": format!("https://sts.windows.net/{TENANT}/")}),
            200,
        ),
        (
            "a v2 token for the application id",
            json!({"aud": "11111111-2222-3333-4444-555555555555"}),
            200,
        ),
    ];
    for (i, (case, changes, status)) in cases.into_iter().enumerate() {
        let token = bearer(&KEY_A.sign(&claims_with(changes)));
        let response = create(&app, Some(&token), &format!("ROLE{i}")).await;
        assert_eq!(response.status(), status, "{case}");
        if status == 403 {
            let challenge = response.headers()["www-authenticate"].to_str().unwrap();
            assert!(
                challenge.contains("insufficient_scope"),
                "{case}: {challenge}"
            );
            let body: Value = response.json().await.unwrap();
            assert_eq!(body["code"], "client_not_allowed", "{case}");
        }
    }
    let mut tagged: Vec<String> = app
        .sim
        .rooms()
        .into_iter()
        .filter_map(|r| r.tag.rsplit('/').next().map(str::to_owned))
        .filter(|call| call.starts_with("ROLE"))
        .collect();
    tagged.sort();
    assert_eq!(
        tagged,
        ["ROLE4", "ROLE5", "ROLE6", "ROLE7"],
        "only allowed calls got rooms"
    );
}

#[tokio::test]
async fn a_new_signing_key_in_the_jwks_is_picked_up() {
    let idp = Idp::start(&[&KEY_A]).await;
    let app = app_with(&idp, &[]).await;
    let before = create(&app, Some(&bearer(&KEY_A.sign(&claims()))), "ROTATE0").await;
    assert_eq!(before.status(), 200);
    assert_eq!(idp.fetches(), 1);

    // Entra rolls its keys: kid-b appears in the JWKS and tokens signed with it arrive while
    // our cached copy is still fresh.
    idp.publish(&KEY_B);
    for i in 0..3 {
        let token = bearer(&KEY_B.sign(&claims()));
        let response = create(&app, Some(&token), &format!("ROTATED{i}")).await;
        assert_eq!(response.status(), 200, "a token of the new key");
    }
    assert_eq!(idp.fetches(), 2, "one refresh for the new kid");
    let old = create(&app, Some(&bearer(&KEY_A.sign(&claims()))), "ROTATE1").await;
    assert_eq!(
        old.status(),
        200,
        "the old key is still published and trusted"
    );
    assert_eq!(idp.fetches(), 2);
}

#[tokio::test]
async fn a_flood_of_unknown_kids_refreshes_the_jwks_once() {
    let idp = Idp::start(&[&KEY_A]).await;
    let app = app_with(&idp, &[("AUTH_JWKS_REFRESH_MIN_SECONDS", "3600")]).await;
    for i in 0..40 {
        let token = ROGUE.sign_as(&format!("made-up-kid-{i}"), &claims());
        let response = create(&app, Some(&bearer(&token)), &format!("FLOOD{i}")).await;
        assert_eq!(response.status(), 401);
    }
    assert_eq!(
        idp.fetches(),
        2,
        "the first use, then one refresh for an unknown kid within AUTH_JWKS_REFRESH_MIN_SECONDS"
    );
    let response = create(&app, Some(&bearer(&KEY_A.sign(&claims()))), "AFTER").await;
    assert_eq!(response.status(), 200, "known keys keep working");
    assert_eq!(idp.fetches(), 2);
}

#[tokio::test]
async fn expiry_is_judged_with_the_configured_clock_skew_and_es256_is_accepted() {
    let idp = Idp::start(&[&KEY_A, &EC_KEY]).await;
    let app = app_with(&idp, &[("AUTH_CLOCK_SKEW_SECONDS", "120")]).await;
    let now = now();
    let cases = [
        (
            "expired 60 s ago, inside the skew",
            &*KEY_A,
            json!({"exp": now - 60}),
            200,
        ),
        ("expired 300 s ago", &*KEY_A, json!({"exp": now - 300}), 401),
        (
            "valid 60 s from now, inside the skew",
            &*KEY_A,
            json!({"nbf": now + 60}),
            200,
        ),
        (
            "valid 300 s from now",
            &*KEY_A,
            json!({"nbf": now + 300}),
            401,
        ),
        ("signed with ES256", &*EC_KEY, json!({}), 200),
    ];
    for (i, (case, key, changes, status)) in cases.into_iter().enumerate() {
        let token = bearer(&key.sign(&claims_with(changes)));
        let response = create(&app, Some(&token), &format!("SKEW{i}")).await;
        assert_eq!(response.status(), status, "{case}");
    }
}

#[tokio::test]
async fn public_routes_docs_timers_and_unknown_paths_need_no_token() {
    let idp = Idp::start(&[&KEY_A]).await;
    let app = app_with(&idp, &[]).await;
    let client = reqwest::Client::new();
    for (path, status) in [
        ("/public/health", 200),
        ("/openapi.json", 200),
        ("/docs/", 200),
        ("/", 200),
        ("/room/a/b", 404),
    ] {
        let response = client.get(app.at(path)).send().await.unwrap();
        assert_eq!(response.status(), status, "{path}");
    }
    let agent = client
        .get(app.at("/public/room/vbv-nosuchroom"))
        .header("x-auth-token", AGENT_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(agent.status(), 404, "the agent route has its own check");
    let event = app
        .send_event(conference_ended("vbv-nosuchroom", EXAMPLE_TAG, "n"))
        .await;
    assert_eq!(event.status(), 200);
    app.invoke_timer("gc_timer").await;
    app.invoke_timer("metrics_timer").await;
    assert_eq!(idp.fetches(), 0, "nothing asked for a token");
}

#[tokio::test]
async fn a_failed_refresh_keeps_the_last_good_keys_and_is_not_retried_at_once() {
    let idp = Idp::start(&[&KEY_A]).await;
    // Keys expire at once, so every request after the first wants a refresh; after a failed
    // one the next try waits AUTH_JWKS_REFRESH_MIN_SECONDS.
    let app = app_with(
        &idp,
        &[
            ("AUTH_JWKS_CACHE_SECONDS", "0"),
            ("AUTH_JWKS_REFRESH_MIN_SECONDS", "3600"),
        ],
    )
    .await;
    let token = bearer(&KEY_A.sign(&claims()));
    assert_eq!(create(&app, Some(&token), "OUTAGE0").await.status(), 200);
    assert_eq!(idp.fetches(), 1);
    idp.set_down(true);
    for i in 1..6 {
        let response = create(&app, Some(&token), &format!("OUTAGE{i}")).await;
        assert_eq!(response.status(), 200, "the last good keys still verify");
    }
    assert_eq!(
        idp.fetches(),
        2,
        "one failed refresh, then a pause before the next try"
    );
    // The same holds for the rotation refresh: nothing new is fetched for an unknown kid.
    let unknown = create(&app, Some(&bearer(&KEY_B.sign(&claims()))), "OUTAGE6").await;
    assert_eq!(unknown.status(), 401);
    assert_eq!(idp.fetches(), 2);
}

#[tokio::test]
async fn an_unreachable_jwks_gives_503_not_401() {
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/keys", closed.local_addr().unwrap());
    drop(closed);
    let idp = Idp::start(&[&KEY_A]).await;
    let mut env = idp.env();
    env.retain(|(k, _)| k != "AUTH_JWKS_URL");
    env.push(("AUTH_JWKS_URL".into(), url));
    let app = TestApp::spawn(Options {
        env,
        ..Options::default()
    })
    .await;
    let response = create(&app, Some(&bearer(&KEY_A.sign(&claims()))), "DOWN").await;
    assert_eq!(response.status(), 503);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["code"], "auth_unavailable");
    assert_eq!(app.sim_room_count(), 0);
}

/// Issue 13, item 16: when refreshes keep failing, the last good keys are trusted only
/// `AUTH_JWKS_MAX_STALE_SECONDS` past their cache time; then requests get 503.
#[tokio::test]
async fn keys_stop_being_trusted_past_their_maximum_staleness() {
    let idp = Idp::start(&[&KEY_A]).await;
    let app = app_with(
        &idp,
        &[
            ("AUTH_JWKS_CACHE_SECONDS", "0"),
            ("AUTH_JWKS_MAX_STALE_SECONDS", "0"),
            ("AUTH_JWKS_REFRESH_MIN_SECONDS", "3600"),
        ],
    )
    .await;
    let token = bearer(&KEY_A.sign(&claims()));
    assert_eq!(create(&app, Some(&token), "STALE0").await.status(), 200);
    idp.set_down(true);
    let response = create(&app, Some(&token), "STALE1").await;
    assert_eq!(response.status(), 503);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["code"], "auth_unavailable");
}

/// Issue 13, item 16: only application tokens (client credentials) get in, even with an
/// allowed role: not a user's token obtained through some client of the tenant.
#[tokio::test]
async fn only_application_tokens_are_accepted() {
    let idp = Idp::start(&[&KEY_A]).await;
    // Roles alone as the allow-list, so the client id is not what refuses these.
    let app = app_with(
        &idp,
        &[
            ("AUTH_ALLOWED_CLIENT_IDS", ""),
            ("AUTH_ALLOWED_ROLES", ROLE),
        ],
    )
    .await;
    let app_token = bearer(&KEY_A.sign(&claims()));
    assert_eq!(create(&app, Some(&app_token), "APP").await.status(), 200);
    let not_app = [
        ("delegated (scp)", json!({"scp": "user_impersonation"})),
        ("a user's (idtyp)", json!({"idtyp": "user"})),
        ("no client", json!({"azp": null, "azpacr": null})),
    ];
    for (i, (case, changes)) in not_app.into_iter().enumerate() {
        let token = bearer(&KEY_A.sign(&claims_with(changes)));
        let response = create(&app, Some(&token), &format!("USER{i}")).await;
        assert_eq!(response.status(), 401, "{case}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["code"], "invalid_token", "{case}");
    }
}
