//! The infrastructure code (deploy/main.bicep) against the configuration contract. It cannot
//! be deployed from here, so its app settings are fed to the service's own configuration
//! parsers instead: every setting `serve` requires must be there, the secrets must come from
//! Key Vault under the names `serve` asks for, no secret value may be written inline, and
//! every name must be one the README's configuration table documents.

use std::collections::BTreeMap;
use std::path::Path;

use pexip_sdk::app::AppSettings;
use pexip_sdk::config::{Env, KeyVaultSettings, StorageSettings, TelemetrySettings};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn read(path: &str) -> String {
    std::fs::read_to_string(Path::new(ROOT).join(path)).unwrap()
}

/// Which in-app authentication setup an app setting belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Auth {
    /// Always set.
    Both,
    /// Only without a tenant (`authTenantId` empty).
    Off,
    /// Only with a tenant.
    On,
}

/// The `{ name: '…', value: … }` entries of `var appSettings`, and which part of the
/// `empty(authTenantId) ? [off] : [on]` choice each is in.
fn app_settings(bicep: &str) -> Vec<(String, String, Auth)> {
    let start = bicep.find("var appSettings").expect("var appSettings");
    let end = start
        + bicep[start..]
            .find("\nresource ")
            .expect("a resource after it");
    let block = &bicep[start..end];
    let off_from = block.find("? [").expect("the choice on authTenantId");
    let on_from = block.find("] : [").expect("its second branch");
    let mut settings = Vec::new();
    let mut at = 0;
    for line in block.lines() {
        let line_start = at;
        at += line.len() + 1;
        let Some(rest) = line.trim().strip_prefix("{ name: '") else {
            continue;
        };
        let (name, rest) = rest.split_once("', value: ").expect("name, then value");
        let value = rest.strip_suffix(" }").expect("one entry per line");
        let part = if line_start > on_from {
            Auth::On
        } else if line_start > off_from {
            Auth::Off
        } else {
            Auth::Both
        };
        settings.push((name.to_owned(), value.to_owned(), part));
    }
    assert!(settings.len() > 5, "parsed the settings: {settings:?}");
    settings
}

/// A value like the one Azure will put in each setting whose value is an expression.
fn stand_in(name: &str, expression: &str) -> String {
    if let Some(literal) = expression
        .strip_prefix('\'')
        .and_then(|e| e.strip_suffix('\''))
        .filter(|e| !e.contains("${"))
    {
        return literal.to_owned();
    }
    let value = match name {
        "AzureWebJobsStorage__accountName" => "stpexipdevabc123",
        "APPLICATIONINSIGHTS_CONNECTION_STRING" => {
            "InstrumentationKey=00000000-0000-0000-0000-000000000001;IngestionEndpoint=https://canadacentral-1.in.applicationinsights.azure.com/"
        }
        "KEY_VAULT_URL" => "https://kv-pexipdev-abc123.vault.azure.net/",
        "PEXIP_BASE_URL" => "https://pexip-mgr.example.gov.bc.ca",
        "PEXIP_CLIENT_ID" => "pexip-sdk",
        "EVENT_SINK_USERNAME" => "pexip",
        "EVENT_SINK_ALLOWED_NETWORKS" => "10.20.0.0/16",
        "ROOM_POOL_TARGET" => "10",
        "GENESYS_API_BASE" => "https://api.cac1.pure.cloud",
        "GENESYS_ALLOWED_DIVISIONS" => "division-1",
        "AUTH_JWKS_URL" => "https://login.microsoftonline.com/tenant/discovery/v2.0/keys",
        "AUTH_ISSUER" => "https://login.microsoftonline.com/tenant/v2.0",
        "AUTH_AUDIENCE" => "api://pexip-sdk",
        "AUTH_ALLOWED_ROLES" => "Rooms.Manage",
        other => panic!("{other} = {expression}: add a stand-in value for it to this test"),
    };
    value.to_owned()
}

/// A real EC P-256 key in PKCS#8 PEM, as the vault would hold.
fn pexip_key() -> String {
    rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
        .unwrap()
        .serialize_pem()
}

/// The app settings of main.bicep, with or without in-app authentication, as the process
/// environment `serve` gets (plus what the host sets itself).
fn environment(with_auth: bool) -> BTreeMap<String, String> {
    let bicep = read("deploy/main.bicep");
    let mut env: BTreeMap<String, String> = app_settings(&bicep)
        .into_iter()
        .filter(|(_, _, part)| *part == Auth::Both || (*part == Auth::On) == with_auth)
        .map(|(name, value, _)| {
            let v = stand_in(&name, &value);
            (name, v)
        })
        .collect();
    env.insert("FUNCTIONS_CUSTOMHANDLER_PORT".into(), "40123".into());
    env
}

#[test]
fn main_bicep_sets_every_setting_serve_needs_and_the_vault_holds_the_secrets() {
    let bicep = read("deploy/main.bicep");
    for with_auth in [false, true] {
        let vars = environment(with_auth);
        let env = Env::from_pairs(vars.clone());
        let telemetry = TelemetrySettings::from_env(&env).unwrap();
        assert!(
            telemetry.app_insights.is_some(),
            "Application Insights is on"
        );
        let vault = KeyVaultSettings::from_env(&env)
            .unwrap()
            .expect("KEY_VAULT_URL is set: the secrets come from the vault");
        // What `serve` does after reading the vault: each secret stands in for its setting.
        let mut with_secrets = vars.clone();
        for secret in &vault.secrets {
            assert!(
                bicep.contains(&format!("name: '{}'", secret.name)),
                "the vault must hold {:?} (for {})",
                secret.name,
                secret.setting
            );
            let value = if secret.setting == "PEXIP_PRIVATE_KEY" {
                pexip_key()
            } else {
                "a-vault-value".to_owned()
            };
            with_secrets.insert(secret.setting.to_owned(), value);
        }
        let settings = AppSettings::from_env(&Env::from_pairs(with_secrets), None)
            .unwrap_or_else(|e| panic!("serve would fail to start (auth {with_auth}): {e}"));
        assert!(
            matches!(settings.storage, StorageSettings::ManagedIdentity { .. }),
            "identity-based storage"
        );
        assert_eq!(settings.auth.is_some(), with_auth);
        // `serve`'s own rule: the in-app check, or its absence on purpose.
        assert!(
            settings.auth.is_some() || settings.auth_disabled,
            "serve refuses to start without AUTH_JWKS_URL or AUTH_DISABLED=true"
        );
    }
}

#[test]
fn main_bicep_writes_no_secret_value() {
    let bicep = read("deploy/main.bicep");
    let params = read("deploy/main.bicepparam");
    let settings = app_settings(&bicep);
    for secret in [
        "PEXIP_PRIVATE_KEY",
        "PEXIP_PRIVATE_KEY_FILE",
        "PEXIP_PASSWORD",
        "EVENT_SINK_PASSWORD",
        // A connection string carries the account key.
        "AzureWebJobsStorage",
    ] {
        assert!(
            settings.iter().all(|(name, _, _)| name != secret),
            "{secret} must come from Key Vault or the identity, not an app setting"
        );
    }
    for text in [&bicep, &params] {
        for forbidden in ["AccountKey", "listKeys(", "SharedAccessSignature", "BEGIN "] {
            assert!(!text.contains(forbidden), "{forbidden} in the deployment");
        }
    }
    assert!(bicep.contains("allowSharedKeyAccess: false"));

    // Every @secure() parameter: no default but empty, and set from the deploying shell.
    let lines: Vec<&str> = bicep.lines().collect();
    let mut secure = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        if line.trim() == "@secure()" {
            let declaration = lines[i + 1].trim();
            let name = declaration.split_whitespace().nth(1).unwrap();
            assert!(
                !declaration.contains('=') || declaration.ends_with("= ''"),
                "{declaration}: a secure parameter has no default value"
            );
            secure.push(name.to_owned());
        }
    }
    assert_eq!(secure.len(), 3, "{secure:?}");
    for name in &secure {
        assert!(
            bicep.contains(&format!("properties: {{ value: {name} }}")),
            "{name} is stored in the vault"
        );
        if let Some(line) = params
            .lines()
            .find(|l| l.starts_with(&format!("param {name} ")))
        {
            assert!(
                line.contains("readEnvironmentVariable("),
                "{line}: read it from the environment"
            );
        }
    }
}

#[test]
fn main_bicep_names_are_the_documented_ones() {
    let bicep = read("deploy/main.bicep");
    let readme = read("README.md");
    let table = &readme[readme.find("## Configuration").expect("the table")..];
    let documented: Vec<&str> = table
        .lines()
        .filter_map(|l| l.strip_prefix("| `"))
        .filter_map(|l| l.split_once('`').map(|(name, _)| name))
        .collect();
    for (name, _, _) in app_settings(&bicep) {
        assert!(
            documented.contains(&name.as_str()),
            "{name} is not in the README's configuration table"
        );
    }
    // The alerts watch metrics the service sends.
    let watched: Vec<&str> = bicep
        .match_indices("customMetrics | where name == \"")
        .map(|(i, m)| {
            let rest = &bicep[i + m.len()..];
            &rest[..rest.find('"').unwrap()]
        })
        .collect();
    assert_eq!(watched, ["pool_depth", "poison_count"]);
    for metric in watched {
        assert!(pexip_sdk::telemetry::metrics::GAUGES.contains(&metric));
    }
    // The vault's secret names are the service's defaults, so no KV_SECRET_* is needed.
    for secret in ["pexip-jwt-key", "event-sink-password", "pexip-password"] {
        assert!(bicep.contains(&format!("name: '{secret}'")));
    }
}
