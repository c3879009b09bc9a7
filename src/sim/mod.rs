//! The Pexip simulator (placeholder: being built).

/// Command-line arguments of `pexip-sdk sim`.
#[derive(Debug, clap::Args)]
pub struct SimArgs {
    /// Port to listen on (127.0.0.1).
    #[arg(long, default_value_t = 7072)]
    pub port: u16,
}

/// Run the simulator until interrupted.
pub async fn run(_args: SimArgs, _env: &crate::config::Env) -> anyhow::Result<()> {
    anyhow::bail!("the simulator is not built yet")
}
