//! Tests through the Azure SDK's `ManagedIdentityCredential` (App Service source): the queue
//! and allocation-record clients against Azurite with bearer tokens (`queue`), and secrets
//! from Key Vault (`key_vault`).
//!
//! The credential reads its source from the process environment, so this binary has its own
//! `main` (`harness = false` in Cargo.toml): `testkit::harness` runs each test in a child
//! process whose environment names a fake identity endpoint, which the test serves
//! (`testkit::identity`).

mod key_vault;
mod queue;

fn main() -> std::process::ExitCode {
    testkit::harness::run(
        testkit::tests![
            queue::managed_identity_tokens_from_the_identity_endpoint_authorize_queue_operations,
            queue::a_token_for_another_audience_is_unauthorized,
            key_vault::secrets_are_read_through_the_sdk_after_the_key_vault_challenge,
            key_vault::a_missing_secret_fails_the_start_naming_the_vault_and_the_secret,
            key_vault::a_rotated_secret_is_picked_up_within_the_refresh_interval,
            key_vault::a_vault_outage_after_start_keeps_the_last_good_value_and_warns,
            key_vault::the_pexip_client_and_the_event_sink_use_rotated_secrets,
            key_vault::serve_exits_2_with_one_line_when_the_vault_is_down_at_start,
        ],
        testkit::identity::child_env,
    )
}
