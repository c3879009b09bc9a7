//! What the clients built on the Azure SDK for Rust (queues, Key Vault, blobs) share.

/// One line with the error and its causes: the SDK's own `Display` is often only
/// "non-transport error occurred", the cause says what happened. Line breaks are folded so a
/// log line stays one line.
pub(crate) fn describe(e: &azure_core::Error) -> String {
    let mut line = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !line.contains(&cause_text) {
            line.push_str(": ");
            line.push_str(&cause_text);
        }
        source = cause.source();
    }
    line.replace(['\n', '\r'], " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cause_chain_is_one_line_without_repeats() {
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused\nby peer");
        let e = azure_core::Error::new(azure_core::error::ErrorKind::Io, io);
        let line = describe(&e);
        assert!(line.contains("refused by peer"), "{line}");
        assert!(!line.contains('\n'), "{line}");
        assert_eq!(line.matches("refused by peer").count(), 1, "{line}");
    }
}
