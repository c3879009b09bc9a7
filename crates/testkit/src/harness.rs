//! The test harness for tests that must own their process environment: each test runs in a
//! child process of the test binary, with an environment the binary prepares.
//!
//! Why: some code reads the *process* environment with no way to pass values in (the Azure
//! SDK's `ManagedIdentityCredential` picks its source from `IDENTITY_ENDPOINT` when it is
//! built), and the workspace forbids the `unsafe` that `std::env::set_var` needs. libtest
//! runs every test in one process, so such a binary sets `harness = false` in Cargo.toml
//! and its `main` hands its tests to [`run`]:
//!
//! ```text
//! fn main() -> std::process::ExitCode {
//!     testkit::harness::run(
//!         testkit::tests![queue::tokens_authorize_queue_operations, key_vault::secrets_are_read],
//!         testkit::identity::child_env,
//!     )
//! }
//! ```
//!
//! [`tests!`](crate::tests) names each test by its function path, so a test cannot be
//! missing from a list of names (the rejected design: a function not in the list is dead
//! code, which the lints refuse). The parent behaves like libtest as far as `cargo test`
//! needs: name filters, `--exact`, `--skip`, `--list`, `--ignored`, a `test <name> ... ok`
//! line per test, the failures with their output, the summary line, and exit status 101 when
//! a test failed. Tests run one at a time: each child starts its own servers and runtimes,
//! and the paused-time tests among them count virtual seconds a busy machine stretches.
//!
//! A passing child's stderr is passed on (it carries lines meant for CI logs, such as
//! `queue-conformance: azurite ok <test>`); its stdout is shown only when it fails.

use std::io::Write as _;
use std::process::{Command, ExitCode, Output};
use std::time::{Duration, Instant};

/// One test: its path (`module::function`) and the function the child calls.
#[derive(Debug, Clone, Copy)]
pub struct Test {
    pub name: &'static str,
    pub run: fn(),
}

/// The tests of a harness binary, named after their functions: `tests![a, module::b]`.
#[macro_export]
macro_rules! tests {
    ($($first:ident $(:: $rest:ident)*),+ $(,)?) => {
        &[$($crate::harness::Test {
            name: concat!(stringify!($first) $(, "::", stringify!($rest))*),
            run: $first $(:: $rest)*,
        }),+]
    };
}

/// The argument that makes the binary run one test as a child.
const CHILD_FLAG: &str = "--harness-child";
/// A child that has not finished by then fails (paused-time tests cannot bound themselves).
const TIMEOUT: Duration = Duration::from_secs(120);
/// libtest's exit status when a test failed.
const FAILED: u8 = 101;

/// The `main` of a harness binary: run as the parent, start one child per selected test
/// with `child_env` applied to its command; run as a child, run its test.
pub fn run(tests: &[Test], child_env: fn(&mut Command)) -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let [flag, name] = args.as_slice()
        && flag == CHILD_FLAG
    {
        return run_child(tests, name);
    }
    let options = Options::parse(&args);
    let selected: Vec<&Test> = tests.iter().filter(|t| options.selects(t.name)).collect();
    let filtered_out = tests.len() - selected.len();
    if options.list {
        for test in &selected {
            println!("{}: test", test.name);
        }
        return ExitCode::SUCCESS;
    }

    let started = Instant::now();
    let plural = if selected.len() == 1 { "" } else { "s" };
    println!("\nrunning {} test{plural}", selected.len());
    let mut failures: Vec<(&str, Output)> = Vec::new();
    for test in &selected {
        let output = spawn_child(test, child_env);
        let ok = output.status.success();
        println!(
            "test {} ... {}",
            test.name,
            if ok { "ok" } else { "FAILED" }
        );
        if ok {
            let _ = std::io::stderr().write_all(&output.stderr);
        } else {
            failures.push((test.name, output));
        }
    }
    if !failures.is_empty() {
        println!("\nfailures:\n");
        for (name, output) in &failures {
            println!("---- {name} stdout ----");
            println!("{}", String::from_utf8_lossy(&output.stdout));
            println!("---- {name} stderr ({}) ----", output.status);
            println!("{}", String::from_utf8_lossy(&output.stderr));
        }
        println!("\nfailures:");
        for (name, _) in &failures {
            println!("    {name}");
        }
    }
    println!(
        "\ntest result: {}. {} passed; {} failed; 0 ignored; 0 measured; {filtered_out} filtered out; finished in {:.2}s\n",
        if failures.is_empty() { "ok" } else { "FAILED" },
        selected.len() - failures.len(),
        failures.len(),
        started.elapsed().as_secs_f64()
    );
    if failures.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(FAILED)
    }
}

fn spawn_child(test: &Test, child_env: fn(&mut Command)) -> Output {
    let exe = std::env::current_exe().expect("the test binary's path");
    let mut command = Command::new(exe);
    command.args([CHILD_FLAG, test.name]);
    child_env(&mut command);
    command.output().expect("the test binary runs as a child")
}

/// In the child: run `name`; a panic fails it (exit status 101, the message on stderr).
fn run_child(tests: &[Test], name: &str) -> ExitCode {
    let Some(test) = tests.iter().find(|t| t.name == name) else {
        eprintln!("no test named {name}");
        return ExitCode::from(2);
    };
    let name = test.name;
    std::thread::spawn(move || {
        std::thread::sleep(TIMEOUT);
        // Through the panic hook, so whatever the test put there (its captured logs, say)
        // is shown too; then the process ends whatever the test is stuck on.
        let _ = std::panic::catch_unwind(|| panic!("{name}: timed out after {TIMEOUT:?}"));
        std::process::exit(1);
    });
    (test.run)();
    ExitCode::SUCCESS
}

/// What the parent was asked on its command line (the part of libtest's that `cargo test`
/// and `cargo nextest` use; the rest is accepted and ignored).
#[derive(Debug, Default)]
struct Options {
    filters: Vec<String>,
    skip: Vec<String>,
    exact: bool,
    list: bool,
    /// `--ignored`: only ignored tests, and there are none.
    only_ignored: bool,
}

impl Options {
    fn parse(args: &[String]) -> Self {
        /// libtest options whose value is the next argument, not a filter.
        const WITH_VALUE: [&str; 7] = [
            "--test-threads",
            "--skip",
            "--format",
            "--color",
            "--logfile",
            "--shuffle-seed",
            "-Z",
        ];
        let mut options = Self::default();
        let mut args = args.iter();
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "--exact" => options.exact = true,
                "--list" => options.list = true,
                "--ignored" => options.only_ignored = true,
                "--skip" => options.skip.extend(args.next().cloned()),
                flag if WITH_VALUE.contains(&flag) => {
                    args.next();
                }
                flag if flag.starts_with('-') => {}
                filter => options.filters.push(filter.to_owned()),
            }
        }
        options
    }

    fn selects(&self, name: &str) -> bool {
        let matches = |pattern: &String| {
            if self.exact {
                name == pattern
            } else {
                name.contains(pattern.as_str())
            }
        };
        !self.only_ignored
            && (self.filters.is_empty() || self.filters.iter().any(matches))
            && !self.skip.iter().any(matches)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(args: &[&str]) -> Options {
        Options::parse(&args.iter().map(|a| (*a).to_owned()).collect::<Vec<_>>())
    }

    #[test]
    fn filters_select_like_libtest() {
        let name = "key_vault::a_rotated_secret_is_picked_up";
        assert!(options(&[]).selects(name));
        assert!(options(&["rotated"]).selects(name));
        assert!(!options(&["queue::"]).selects(name));
        assert!(options(&["queue::", "key_vault"]).selects(name));
        assert!(!options(&["--exact", "rotated"]).selects(name));
        assert!(options(&["--exact", name]).selects(name));
        assert!(!options(&["--skip", "rotated"]).selects(name));
        assert!(!options(&["--ignored"]).selects(name));
        // A flag's value is not a filter.
        assert!(options(&["--test-threads", "1", "--color", "never"]).selects(name));
        assert!(options(&["--list", "--format", "terse"]).list);
    }

    fn doubled() {}
    mod inner {
        pub fn nested() {}
    }

    #[test]
    fn the_list_names_each_test_by_its_function_path() {
        let tests: &[Test] = crate::tests![doubled, inner::nested];
        let names: Vec<&str> = tests.iter().map(|t| t.name).collect();
        assert_eq!(names, ["doubled", "inner::nested"]);
    }
}
