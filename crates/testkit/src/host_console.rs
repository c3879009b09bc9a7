//! How the Azure Functions host files a custom handler's output lines, replayed for tests
//! (host source: `src/WebJobs.Script/Workers/ProcessManagement/WorkerProcess.cs`,
//! `ParseErrorMessageAndLog`; docs/azure.md §1.7 How the host reads the handler's output).
//!
//! Each line on its own: stdout → Information. stderr → Warning if it contains "warn"; else
//! Error when the worker's `UseStdErrorStreamForErrorsOnly` is on (a custom handler's default,
//! `HttpWorkerDescription`); else, with it off, Error if it contains "error", "fail", "severe"
//! or "unhandled exception", and Information otherwise. Every match ignores case.

/// A level of the host's logger, as far as a handler's lines go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostLevel {
    /// `LogLevel.Information`.
    Information,
    /// `LogLevel.Warning`.
    Warning,
    /// `LogLevel.Error`.
    Error,
}

/// Which stream the line came on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    /// The handler's stdout.
    Stdout,
    /// The handler's stderr.
    Stderr,
}

/// The level the host gives `line`, with `UseStdErrorStreamForErrorsOnly` = `errors_only`.
pub fn classify(stream: Stream, line: &str, errors_only: bool) -> HostLevel {
    if stream == Stream::Stdout {
        return HostLevel::Information;
    }
    let lower = line.to_lowercase();
    if lower.contains("warn") {
        HostLevel::Warning
    } else if errors_only
        || ["error", "fail", "severe", "unhandled exception"]
            .iter()
            .any(|word| lower.contains(word))
    {
        HostLevel::Error
    } else {
        HostLevel::Information
    }
}

/// The level a tracing record gave itself: `"level"` of a JSON line, or the level word after
/// the timestamp of a compact text line. `None` for a line that is not a record.
pub fn own_level(line: &str) -> Option<String> {
    if line.starts_with('{') {
        let record: serde_json::Value = serde_json::from_str(line).ok()?;
        return record["level"].as_str().map(str::to_owned);
    }
    let word = line.split_whitespace().nth(1)?;
    ["TRACE", "DEBUG", "INFO", "WARN", "ERROR"]
        .contains(&word)
        .then(|| word.to_owned())
}

/// The host level a record of `level` should get.
pub fn expected(level: &str) -> HostLevel {
    match level {
        "WARN" => HostLevel::Warning,
        "ERROR" => HostLevel::Error,
        _ => HostLevel::Information,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rule_as_the_host_applies_it() {
        use HostLevel::*;
        use Stream::*;
        let cases = [
            (Stdout, "ERROR something failed", true, Information),
            (Stderr, "a WARNing", true, Warning),
            (Stderr, "error but also warn", false, Warning),
            (Stderr, "plain text", true, Error),
            (Stderr, "plain text", false, Information),
            (Stderr, "it FAILED", false, Error),
            (Stderr, "Unhandled exception.", false, Error),
            (Stderr, "severe weather", false, Error),
        ];
        for (stream, line, errors_only, level) in cases {
            assert_eq!(classify(stream, line, errors_only), level, "{line}");
        }
    }
}
