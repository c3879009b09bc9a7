//! `pexip-sdk sim` as a process: it prints its URL and credentials, and the key it writes
//! works for a client.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use base64::Engine as _;
use reqwest::StatusCode;
use tokio::io::{AsyncBufReadExt as _, BufReader};
use tokio::process::{Child, Command};

/// Conference collection path.
const CONFERENCES: &str = "/api/admin/configuration/v1/conference/";

/// An HTTP client that never goes through an environment proxy.
fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("http client")
}

/// The simulator process and the `KEY=VALUE` lines it printed (and any PEM lines after).
struct SimProcess {
    child: Child,
    lines: Vec<String>,
}

impl SimProcess {
    async fn spawn(args: &[&str], until: &str) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_pexip-sdk"))
            .arg("sim")
            .args(["--port", "0"])
            .args(args)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn pexip-sdk sim");
        let stdout = child.stdout.take().expect("stdout");
        let mut reader = BufReader::new(stdout).lines();
        let mut lines = Vec::new();
        let read = async {
            while let Some(line) = reader.next_line().await.expect("read stdout") {
                let done = line.starts_with(until);
                lines.push(line);
                if done {
                    return;
                }
            }
            panic!("the simulator exited before printing {until}: {lines:?}");
        };
        tokio::time::timeout(Duration::from_secs(60), read)
            .await
            .expect("the simulator printed its settings");
        Self { child, lines }
    }

    fn value(&self, key: &str) -> String {
        let prefix = format!("{key}=");
        self.lines
            .iter()
            .find_map(|l| l.strip_prefix(&prefix))
            .unwrap_or_else(|| panic!("{key} not printed: {:?}", self.lines))
            .to_owned()
    }

    async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

/// Ask the simulator for a token with a client assertion for `client_id` signed with
/// `key_pem` (ES256, as Pexip's OAuth2 clients sign).
async fn request_token(base: &str, client_id: &str, key_pem: &str) -> reqwest::Response {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let claims = serde_json::json!({
        "iss": client_id, "sub": client_id, "aud": format!("{base}/oauth/token/"),
        "iat": now, "exp": now + 300, "jti": uuid::Uuid::new_v4().to_string(),
    });
    let key = jsonwebtoken::EncodingKey::from_ec_pem(key_pem.as_bytes()).expect("PKCS#8 EC key");
    let assertion = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256),
        &claims,
        &key,
    )
    .unwrap();
    http()
        .post(format!("{base}/oauth/token/"))
        .form(&[
            ("grant_type", "client_credentials"),
            (
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            ),
            ("client_assertion", assertion.as_str()),
        ])
        .send()
        .await
        .unwrap()
}

/// Get a token with `key_pem` for `client_id` and list rooms with it.
async fn list_with(base: &str, client_id: &str, key_pem: &str) -> StatusCode {
    let token: serde_json::Value = request_token(base, client_id, key_pem)
        .await
        .json()
        .await
        .unwrap();
    let token = token["access_token"].as_str().expect("a token");
    http()
        .get(format!("{base}{CONFERENCES}"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .status()
}

fn temp_key_path() -> PathBuf {
    std::env::temp_dir().join(format!("pexip-sim-key-{}.pem", uuid::Uuid::new_v4()))
}

#[tokio::test]
async fn the_cli_writes_a_usable_key_file_readable_only_by_its_owner() {
    let path = temp_key_path();
    let path_arg = path.to_str().unwrap().to_owned();
    let sim = SimProcess::spawn(
        &["--client-id", "cli-client", "--key-out", &path_arg],
        "PEXIP_PRIVATE_KEY_FILE=",
    )
    .await;
    let base = sim.value("PEXIP_BASE_URL");
    assert!(base.starts_with("http://127.0.0.1:"), "{base}");
    assert_eq!(sim.value("PEXIP_CLIENT_ID"), "cli-client");
    assert_eq!(sim.value("PEXIP_PRIVATE_KEY_FILE"), path_arg);

    let pem = std::fs::read_to_string(&path).unwrap();
    assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----"), "PKCS#8 PEM");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
    assert_eq!(list_with(&base, "cli-client", &pem).await, StatusCode::OK);
    let _ = std::fs::remove_file(&path);

    // Another key for the same id is refused.
    let other = testkit::keys::p256().private_pem;
    let refused = request_token(&base, "cli-client", &other).await;
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    sim.stop().await;
}

#[tokio::test]
async fn without_a_key_file_the_cli_prints_an_id_and_the_key() {
    let sim = SimProcess::spawn(&[], "-----END PRIVATE KEY-----").await;
    let base = sim.value("PEXIP_BASE_URL");
    let client_id = sim.value("PEXIP_CLIENT_ID");
    assert!(!client_id.is_empty());
    let encoded = sim.value("PEXIP_PRIVATE_KEY");
    let pem = String::from_utf8(
        base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .unwrap(),
    )
    .unwrap();
    let printed: Vec<&str> = sim
        .lines
        .iter()
        .skip_while(|l| !l.starts_with("-----BEGIN PRIVATE KEY-----"))
        .map(String::as_str)
        .collect();
    assert_eq!(printed.join("\n") + "\n", pem, "the PEM is printed as well");
    assert_eq!(list_with(&base, &client_id, &pem).await, StatusCode::OK);
    sim.stop().await;
}

#[tokio::test]
async fn the_cli_refuses_a_client_id_without_a_key_file() {
    let status = Command::new(env!("CARGO_BIN_EXE_pexip-sdk"))
        .args(["sim", "--port", "0", "--client-id", "lonely"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .await
        .unwrap();
    assert_eq!(status.code(), Some(2));
}
