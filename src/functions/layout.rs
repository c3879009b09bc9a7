//! The Function App's files: `host.json` and one `function.json` per function folder.
//!
//! `dev` mode reads the timers' schedules from here, and a test checks that every folder
//! matches a route of the router (and vice versa), so the files and the binary cannot drift.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::{Schedule, ScheduleError};

/// Why the app layout could not be read or is not what forwarding needs.
#[derive(Debug, thiserror::Error)]
pub enum LayoutError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not valid JSON for its purpose: {source}")]
    Json {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("{path}: {reason}")]
    Invalid { path: PathBuf, reason: String },
    #[error("{path}: {source}")]
    Schedule {
        path: PathBuf,
        source: ScheduleError,
    },
}

/// What `host.json` says about the custom handler.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostSettings {
    pub executable: String,
    pub arguments: Vec<String>,
    pub working_directory: String,
    pub forwarding: bool,
    pub route_prefix: String,
    /// `functionTimeout`: how long the host lets one invocation run (a timer run included)
    /// before it cancels it; `None` means the plan's default (5 minutes on Consumption).
    pub function_timeout: Option<std::time::Duration>,
}

/// An HTTP-triggered function: forwarded to the router unchanged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpFunction {
    pub name: String,
    /// Upper-case methods (`GET`, `POST`, ...).
    pub methods: Vec<String>,
    /// The route template without the prefix, e.g. `room/{name}`.
    pub route: String,
    pub auth_level: String,
}

/// A timer-triggered function: invoked with `POST /{name}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimerFunction {
    pub name: String,
    pub schedule: Schedule,
}

/// One function folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FunctionDef {
    Http(HttpFunction),
    Timer(TimerFunction),
}

/// The whole app: host settings and every function, sorted by name.
#[derive(Debug, Clone)]
pub struct AppLayout {
    pub host: HostSettings,
    pub functions: Vec<FunctionDef>,
}

#[derive(Deserialize)]
struct HostJson {
    #[serde(rename = "customHandler")]
    custom_handler: CustomHandler,
    #[serde(rename = "functionTimeout", default)]
    function_timeout: Option<String>,
    #[serde(default)]
    extensions: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct CustomHandler {
    description: HandlerDescription,
    #[serde(rename = "enableForwardingHttpRequest", default)]
    forwarding: bool,
}

#[derive(Deserialize)]
struct HandlerDescription {
    #[serde(rename = "defaultExecutablePath")]
    executable: String,
    #[serde(default)]
    arguments: Vec<String>,
    #[serde(rename = "workingDirectory", default)]
    working_directory: String,
}

#[derive(Deserialize)]
struct FunctionJson {
    bindings: Vec<Binding>,
}

#[derive(Deserialize)]
struct Binding {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    direction: String,
    #[serde(default)]
    methods: Option<Vec<String>>,
    #[serde(default)]
    route: Option<String>,
    #[serde(rename = "authLevel", default)]
    auth_level: Option<String>,
    #[serde(default)]
    schedule: Option<String>,
}

impl AppLayout {
    /// Read `host.json` and every `*/function.json` under `root`.
    pub fn load(root: &Path) -> Result<Self, LayoutError> {
        let host_path = root.join("host.json");
        let host: HostJson = read_json(&host_path)?;
        let route_prefix = host
            .extensions
            .as_ref()
            .and_then(|e| e.pointer("/http/routePrefix"))
            .and_then(|v| v.as_str())
            .unwrap_or("api")
            .to_owned();
        let function_timeout = match host.function_timeout.as_deref() {
            None => None,
            Some(text) => Some(parse_timespan(text).ok_or_else(|| LayoutError::Invalid {
                path: host_path.clone(),
                reason: format!("functionTimeout {text:?} is not hh:mm:ss"),
            })?),
        };
        let host = HostSettings {
            executable: host.custom_handler.description.executable,
            arguments: host.custom_handler.description.arguments,
            working_directory: host.custom_handler.description.working_directory,
            forwarding: host.custom_handler.forwarding,
            function_timeout,
            route_prefix,
        };

        let entries = std::fs::read_dir(root).map_err(|source| LayoutError::Io {
            path: root.to_owned(),
            source,
        })?;
        let mut functions = Vec::new();
        for entry in entries.flatten() {
            let path = entry.path().join("function.json");
            if path.is_file() {
                let name = entry.file_name().to_string_lossy().into_owned();
                functions.push(parse_function(&name, &path)?);
            }
        }
        functions.sort_by(|a, b| a.name().cmp(b.name()));
        Ok(Self { host, functions })
    }

    /// The timer functions.
    pub fn timers(&self) -> impl Iterator<Item = &TimerFunction> {
        self.functions.iter().filter_map(|f| match f {
            FunctionDef::Timer(t) => Some(t),
            FunctionDef::Http(_) => None,
        })
    }

    /// The HTTP functions.
    pub fn http_functions(&self) -> impl Iterator<Item = &HttpFunction> {
        self.functions.iter().filter_map(|f| match f {
            FunctionDef::Http(h) => Some(h),
            FunctionDef::Timer(_) => None,
        })
    }
}

impl FunctionDef {
    /// The folder name, which is the function name.
    pub fn name(&self) -> &str {
        match self {
            FunctionDef::Http(h) => &h.name,
            FunctionDef::Timer(t) => &t.name,
        }
    }
}

/// A .NET `TimeSpan` as host.json writes it: `hh:mm:ss` (or `d.hh:mm:ss`).
fn parse_timespan(text: &str) -> Option<std::time::Duration> {
    let (days, rest) = match text.split_once('.') {
        Some((d, rest)) if !rest.contains('.') => (d.parse::<u64>().ok()?, rest),
        _ => (0, text),
    };
    let parts: Vec<u64> = rest
        .split(':')
        .map(|p| p.parse().ok())
        .collect::<Option<_>>()?;
    let [h, m, s] = parts.as_slice() else {
        return None;
    };
    if *m >= 60 || *s >= 60 {
        return None;
    }
    Some(std::time::Duration::from_secs(
        ((days * 24 + h) * 60 + m) * 60 + s,
    ))
}

fn parse_function(name: &str, path: &Path) -> Result<FunctionDef, LayoutError> {
    let json: FunctionJson = read_json(path)?;
    let invalid = |reason: &str| LayoutError::Invalid {
        path: path.to_owned(),
        reason: reason.to_owned(),
    };
    let triggers: Vec<&Binding> = json
        .bindings
        .iter()
        .filter(|b| b.kind.ends_with("Trigger"))
        .collect();
    let [trigger] = triggers.as_slice() else {
        return Err(invalid("needs exactly one trigger binding"));
    };
    match trigger.kind.as_str() {
        "httpTrigger" => {
            // Forwarding only applies to exactly one httpTrigger in + one http out: any other
            // binding silently switches the function to the JSON payload protocol.
            let outs: Vec<&Binding> = json
                .bindings
                .iter()
                .filter(|b| b.direction == "out")
                .collect();
            if json.bindings.len() != 2 || outs.len() != 1 || outs[0].kind != "http" {
                return Err(invalid(
                    "an HTTP function needs exactly one httpTrigger and one http output",
                ));
            }
            let methods = trigger
                .methods
                .clone()
                .unwrap_or_else(|| vec!["get".into(), "post".into()])
                .into_iter()
                .map(|m| m.to_ascii_uppercase())
                .collect();
            Ok(FunctionDef::Http(HttpFunction {
                name: name.to_owned(),
                methods,
                route: trigger.route.clone().unwrap_or_else(|| name.to_owned()),
                auth_level: trigger
                    .auth_level
                    .clone()
                    .unwrap_or_else(|| "function".into()),
            }))
        }
        "timerTrigger" => {
            if json.bindings.len() != 1 {
                return Err(invalid(
                    "timers talk to queues through the SDK: no other bindings",
                ));
            }
            let text = trigger
                .schedule
                .as_deref()
                .ok_or_else(|| invalid("timer without schedule"))?;
            let schedule = Schedule::parse(text).map_err(|source| LayoutError::Schedule {
                path: path.to_owned(),
                source,
            })?;
            Ok(FunctionDef::Timer(TimerFunction {
                name: name.to_owned(),
                schedule,
            }))
        }
        other => Err(invalid(&format!("unsupported trigger {other}"))),
    }
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, LayoutError> {
    let text = std::fs::read_to_string(path).map_err(|source| LayoutError::Io {
        path: path.to_owned(),
        source,
    })?;
    serde_json::from_str(&text).map_err(|source| LayoutError::Json {
        path: path.to_owned(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repo_root() -> &'static Path {
        Path::new(env!("CARGO_MANIFEST_DIR"))
    }

    #[test]
    fn the_committed_host_json_runs_this_binary_with_forwarding_and_no_prefix() {
        let layout = AppLayout::load(repo_root()).unwrap();
        assert_eq!(layout.host.executable, "target/release/pexip-sdk");
        assert_eq!(layout.host.arguments, ["serve"]);
        assert!(layout.host.forwarding);
        assert_eq!(layout.host.route_prefix, "");
    }

    #[test]
    fn host_json_timespans_parse_as_dotnet_writes_them() {
        let secs = |t: &str| parse_timespan(t).map(|d| d.as_secs());
        assert_eq!(secs("00:10:00"), Some(600));
        assert_eq!(secs("01:00:05"), Some(3605));
        assert_eq!(secs("1.00:00:00"), Some(86_400));
        for bad in ["10", "00:60:00", "00:10", "-1:00:00", "a:b:c", ""] {
            assert_eq!(secs(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn the_committed_timers_have_the_documented_schedules() {
        let layout = AppLayout::load(repo_root()).unwrap();
        let timers: Vec<(&str, &str)> = layout
            .timers()
            .map(|t| (t.name.as_str(), t.schedule.as_str()))
            .collect();
        assert_eq!(
            timers,
            [
                ("gc_timer", "0 */10 * * * *"),
                ("metrics_timer", "0 */5 * * * *")
            ]
        );
    }

    #[test]
    fn an_http_function_with_an_extra_binding_is_refused() {
        let dir = std::env::temp_dir().join(format!("layout-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(dir.join("f")).unwrap();
        std::fs::write(
            dir.join("f/function.json"),
            r#"{"bindings":[{"type":"httpTrigger","direction":"in","name":"req"},
                {"type":"http","direction":"out","name":"res"},
                {"type":"queue","direction":"out","name":"q","queueName":"x"}]}"#,
        )
        .unwrap();
        let err = parse_function("f", &dir.join("f/function.json")).unwrap_err();
        assert!(err.to_string().contains("exactly one httpTrigger"), "{err}");
        std::fs::remove_dir_all(dir).unwrap();
    }
}
