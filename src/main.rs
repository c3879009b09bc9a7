//! The `pexip-sdk` binary: everything lives in the library, see [`pexip_sdk::cli`].

fn main() -> std::process::ExitCode {
    pexip_sdk::cli::main()
}
