//! Where a log line goes, and in what words, so that the Azure Functions host files it at the
//! level we gave it.
//!
//! The host reads a custom handler's output line by line (docs/azure.md §1.7 How the host reads
//! the handler's output): a stdout line is Information; a stderr line is Warning when it
//! contains "warn" (any case), else Error — always for a custom handler (its worker
//! description defaults `UseStdErrorStreamForErrorsOnly` to true), or, with that flag off, only
//! when it contains "error", "fail" or "severe". So:
//!
//! - TRACE, DEBUG and INFO go to **stdout**, whatever their text says ("3 deletions failed" stays
//!   Information). The host has no level below Information.
//! - WARN and ERROR go to **stderr**; both formats print the level word (`WARN`, `ERROR`), which
//!   gives Warning and Error under either rule.
//! - An ERROR record whose text happens to contain "warn" would be filed as a Warning: such a
//!   "warn" is written so the host's search misses it while a reader (and a JSON parser) sees
//!   the same text — in JSON as `w\u0061rn`, which decodes to "warn"; in text with a zero-width
//!   space after the "w".
//! - A record is always one line: line breaks inside it (an error chain, say) become spaces,
//!   because the host files each physical line on its own and the tail of a record would lose
//!   its level word.
//!
//! The rejected alternative, everything to stderr with the level word, is what we had: every
//! INFO line that mentions a failure count, and the metrics line with its `errors` field,
//! arrived as Errors and set off error alerts.

use std::io::Write;

use tracing::{Level, Metadata};
use tracing_subscriber::fmt::MakeWriter;

/// How records are formatted, which decides how an ERROR record's stray "warn" is hidden.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// Compact text lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// The process's stdout and stderr as a [`MakeWriter`] that picks the stream by level.
#[derive(Debug, Clone, Copy)]
pub struct Console {
    encoding: Encoding,
}

impl Console {
    /// A console writer for records formatted as `encoding`.
    pub fn new(encoding: Encoding) -> Self {
        Self { encoding }
    }
}

impl<'a> MakeWriter<'a> for Console {
    type Writer = Record<Stream>;

    fn make_writer(&'a self) -> Self::Writer {
        Record::new(Level::INFO, self.encoding, Stream::Stdout)
    }

    fn make_writer_for(&'a self, meta: &Metadata<'_>) -> Self::Writer {
        let level = *meta.level();
        Record::new(level, self.encoding, Stream::for_level(level))
    }
}

/// One of the two standard streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    /// stdout: Information for the host.
    Stdout,
    /// stderr: Warning or Error for the host.
    Stderr,
}

impl Stream {
    /// stderr for WARN and ERROR (tracing orders levels by verbosity: ERROR is the
    /// "smallest"), stdout for the rest.
    pub fn for_level(level: Level) -> Self {
        if level <= Level::WARN {
            Stream::Stderr
        } else {
            Stream::Stdout
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Stream::Stdout => std::io::stdout().lock().write(buf),
            Stream::Stderr => std::io::stderr().lock().write(buf),
        }
    }

    fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()> {
        // One locked write per record: lines of concurrent records never interleave.
        match self {
            Stream::Stdout => std::io::stdout().lock().write_all(buf),
            Stream::Stderr => std::io::stderr().lock().write_all(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Stream::Stdout => std::io::stdout().flush(),
            Stream::Stderr => std::io::stderr().flush(),
        }
    }
}

/// One record being written: collected whole, rewritten into one line the host files at the
/// record's level, and written to its stream when dropped (the formatter drops the writer
/// after each record).
pub struct Record<W: Write> {
    level: Level,
    encoding: Encoding,
    buf: Vec<u8>,
    out: W,
}

impl<W: Write> Record<W> {
    /// A record at `level` in `encoding`, for `out`.
    pub fn new(level: Level, encoding: Encoding, out: W) -> Self {
        Self {
            level,
            encoding,
            buf: Vec::with_capacity(256),
            out,
        }
    }
}

impl<W: Write> Write for Record<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<W: Write> Drop for Record<W> {
    fn drop(&mut self) {
        if self.buf.is_empty() {
            return;
        }
        let line = one_line(&self.buf, self.level, self.encoding);
        // Nowhere to report a failed write to the console; tracing's own writers drop it too.
        let _ = self.out.write_all(&line);
    }
}

/// `record` as one line ending in `\n`, with any "warn" of an ERROR record hidden from the
/// host's search.
pub fn one_line(record: &[u8], level: Level, encoding: Encoding) -> Vec<u8> {
    let body = record.strip_suffix(b"\n").unwrap_or(record);
    let body = body.strip_suffix(b"\r").unwrap_or(body);
    let mut line = Vec::with_capacity(body.len() + 1);
    let mut i = 0;
    while i < body.len() {
        let b = body[i];
        if b == b'\n' || b == b'\r' {
            line.push(b' ');
            i += 1;
        } else if level == Level::ERROR && starts_with_warn(&body[i..]) {
            line.push(body[i]);
            match encoding {
                // Inside a JSON string (the only place letters appear in JSON), `\u0061`
                // decodes to the same letter; keep its case.
                Encoding::Json => line.extend_from_slice(if body[i + 1] == b'A' {
                    b"\\u0041"
                } else {
                    b"\\u0061"
                }),
                Encoding::Text => {
                    line.extend_from_slice("\u{200B}".as_bytes());
                    line.push(body[i + 1]);
                }
            }
            line.extend_from_slice(&body[i + 2..i + 4]);
            i += 4;
        } else {
            line.push(b);
            i += 1;
        }
    }
    line.push(b'\n');
    line
}

fn starts_with_warn(bytes: &[u8]) -> bool {
    bytes.len() >= 4 && bytes[..4].eq_ignore_ascii_case(b"warn")
}

/// A line written outside tracing to stderr as an Error (the command line's fatal
/// `error: ...`): one line, without a "warn" the host would take for a Warning.
pub fn error_line(text: &str) -> String {
    let line = one_line(text.as_bytes(), Level::ERROR, Encoding::Text);
    String::from_utf8_lossy(line.strip_suffix(b"\n").unwrap_or(&line)).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(record: &str, level: Level, encoding: Encoding) -> String {
        String::from_utf8(one_line(record.as_bytes(), level, encoding)).unwrap()
    }

    #[test]
    fn a_record_becomes_one_line() {
        assert_eq!(line("a\nb\r\nc\n", Level::INFO, Encoding::Text), "a b  c\n");
        assert_eq!(
            line("no newline", Level::WARN, Encoding::Text),
            "no newline\n"
        );
    }

    #[test]
    fn only_an_error_record_hides_its_warn() {
        assert_eq!(
            line("WARN retrying: warnings\n", Level::WARN, Encoding::Text),
            "WARN retrying: warnings\n"
        );
        let text = line("ERROR a Warning sign\n", Level::ERROR, Encoding::Text);
        assert!(!text.to_lowercase().contains("warn"), "{text}");
        assert_eq!(text.replace('\u{200B}', ""), "ERROR a Warning sign\n");
        let json = line(
            r#"{"level":"ERROR","warnings":"WARN"}"#,
            Level::ERROR,
            Encoding::Json,
        );
        assert!(!json.to_lowercase().contains("warn"), "{json}");
        let decoded: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(
            decoded,
            serde_json::json!({"level": "ERROR", "warnings": "WARN"})
        );
    }
}
