//! Log capture: a `tracing_subscriber` writer that keeps every formatted line in memory, for
//! tests that assert what the service logs (stable fields) and what it never logs (secrets).
//!
//! Only the writer is shared: each test builds the subscriber it needs (JSON or text, its
//! filter, global or thread-local) and passes `.with_writer(captured.clone())`.

use std::sync::{Arc, Mutex};

/// Every line written so far. Cheap to clone; clones share the buffer.
#[derive(Debug, Clone, Default)]
pub struct Captured(Arc<Mutex<Vec<u8>>>);

impl Captured {
    /// A new, empty buffer.
    pub fn new() -> Self {
        Self::default()
    }

    /// Everything captured so far, as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().expect("log buffer")).into_owned()
    }
}

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("log buffer").extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
    type Writer = Captured;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}
