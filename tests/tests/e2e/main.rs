//! End-to-end tests: one test binary (linking is the slow part), one module per area.
//! They run the real `sealgate` binary; build it first (`scripts/test` does).

/// Turns `fn scenario(backend: TestBackend)` into two tests, `scenario::on_sqlite` and
/// `scenario::on_postgres`: the same end-to-end scenario against both storage backends.
macro_rules! on_both_backends {
    ($scenario:ident) => {
        mod $scenario {
            #[test]
            fn on_sqlite() {
                super::$scenario(sealgate_testkit::db::TestBackend::Sqlite);
            }

            #[test]
            fn on_postgres() {
                super::$scenario(sealgate_testkit::db::TestBackend::Postgres);
            }
        }
    };
}

mod api;
mod arc;
mod audit_cli;
mod audit_fixture;
mod auth;
mod bad_input;
mod bcc;
mod clients;
mod config_files;
mod delivery;
mod deploy_files;
mod disk_full;
mod dkim;
mod docs_flow;
mod durability;
mod encrypted;
mod envelope_edges;
mod guides;
mod inspect;
mod keys_cli;
mod lab;
mod layering;
mod lifecycle;
mod loops;
mod multinode;
mod pg_roles;
mod portal;
mod portal_backend;
mod queue_cli;
mod reload;
mod returns;
mod senders;
mod smoke;
mod tenants;
mod trail;
mod verified;
mod webhooks;
