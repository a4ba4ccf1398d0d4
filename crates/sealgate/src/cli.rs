//! Command-line interface.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand, ValueEnum};
use sealgate_config::Config;
use sealgate_store::Store;

/// Sealgate: the secure email relay for protected health information.
#[derive(Debug, Parser)]
#[command(name = "sealgate", version, about)]
pub(crate) struct Cli {
    /// Configuration file (TOML). Without one, the embedded defaults apply.
    #[arg(long, short = 'c', global = true, env = "SEALGATE_CONFIG")]
    pub config: Option<PathBuf>,
    /// Log format; overrides `log.format`.
    #[arg(long, global = true, value_enum)]
    pub log_format: Option<LogFormatArg>,
    #[command(subcommand)]
    pub command: Command,
}

/// `--log-format`
#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum LogFormatArg {
    /// Readable lines.
    Human,
    /// JSON lines.
    Json,
}

/// Commands.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Run the relay (applies pending database migrations first when its database role may;
    /// a least-privilege role refuses to start until the owner ran `sealgate migrate`).
    Serve,
    /// Apply database migrations and exit (on PostgreSQL, as the owner of the tables).
    Migrate(MigrateArgs),
    /// The database's roles (PostgreSQL): who owns the schema and who serves.
    #[command(subcommand)]
    Db(DbCommand),
    /// Configuration tools.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// The audit log.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// REST API keys: add (printed once), list, revoke.
    #[command(subcommand, name = "api-keys")]
    ApiKeys(crate::cmd_api_keys::ApiKeysCommand),
    /// Webhook endpoints: add (secret printed once), list, remove, disable, enable, rotate;
    /// events and replay.
    #[command(subcommand)]
    Webhooks(crate::cmd_webhooks::WebhooksCommand),
    /// SMTP AUTH users.
    #[command(subcommand)]
    Users(UsersCommand),
    /// The delivery queue.
    #[command(subcommand)]
    Queue(QueueCommand),
    /// Recipients' OpenPGP keys and S/MIME certificates.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// The secure portal's grants: the links recipients read sealed messages through.
    #[command(subcommand)]
    Portal(PortalCommand),
    /// Dry run: how a message to ADDRESS would be delivered and why (probes DNS and MTA-STS
    /// like delivery does; sends nothing).
    Check(CheckArgs),
    /// DKIM signing keys: make one, check what DNS publishes.
    #[command(subcommand)]
    Dkim(crate::cmd_dkim::DkimCommand),
}

/// `sealgate check` options.
#[derive(Debug, Args)]
pub(crate) struct CheckArgs {
    /// The recipient address.
    pub address: String,
    /// The message's Subject (subject-tag triggers).
    #[arg(long)]
    pub subject: Option<String>,
    /// A header field of the message, `Name: value` (repeatable; e.g. X-Sealgate-Security).
    #[arg(long = "header", value_name = "NAME:VALUE")]
    pub headers: Vec<String>,
    /// As if the sender had asked for REQUIRETLS (RFC 8689).
    #[arg(long)]
    pub requiretls: bool,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

/// `sealgate migrate` options.
#[derive(Debug, Args)]
pub(crate) struct MigrateArgs {
    /// Connect with this URL (the owner of the tables) instead of `database.url`.
    #[arg(long, env = "SEALGATE_OWNER_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
}

/// `sealgate db …`
#[derive(Debug, Subcommand)]
pub(crate) enum DbCommand {
    /// The grants of the least-privilege role `serve` runs as: read-write on the queue,
    /// users, keys and portal tables, only SELECT and INSERT on the audit log, ownership of
    /// nothing. Prints the SQL, or with --apply runs it as the owner. Create the role first;
    /// run it again after every `sealgate migrate`.
    Roles {
        /// The serving role (it must exist: `CREATE ROLE … LOGIN`).
        role: String,
        /// Run the grants now, connected as the owner of the tables.
        #[arg(long)]
        apply: bool,
        /// The schema the tables are in (printed SQL only; --apply uses the owner's current
        /// schema).
        #[arg(long, default_value = "public")]
        schema: String,
        /// With --apply: connect with this URL (the owner) instead of `database.url`.
        #[arg(long, env = "SEALGATE_OWNER_DATABASE_URL", hide_env_values = true)]
        database_url: Option<String>,
    },
}

/// `sealgate queue …`
#[derive(Debug, Subcommand)]
pub(crate) enum QueueCommand {
    /// List recipients, oldest first.
    List {
        /// Only this state: queued, inflight, deferred, delivered, bounced; or `held`: the
        /// deferred recipients that wait by policy (their chosen method cannot be carried out
        /// here now, e.g. the portal is not enabled), not for the remote side.
        #[arg(long)]
        state: Option<String>,
        /// At most this many.
        #[arg(short = 'n', long, default_value_t = 100)]
        limit: i64,
    },
    /// Show a message: envelope, recipients and its audit trail (never the content).
    Show {
        /// Queue id.
        id: String,
    },
    /// Make a message's waiting recipients due now.
    Retry {
        /// Queue id.
        id: String,
    },
    /// Give up on a message's waiting recipients now: they bounce, with a DSN to the sender.
    Bounce {
        /// Queue id.
        id: String,
    },
}

/// `sealgate keys …`
#[derive(Debug, Subcommand)]
pub(crate) enum KeysCommand {
    /// Import recipients' OpenPGP keys (armored or binary, one or several) or X.509
    /// certificates (PEM bundle or DER) from FILE; each must be usable now.
    Import {
        /// The file.
        file: PathBuf,
        /// Store only for this address (repeatable); default: every address a key binds.
        #[arg(long = "address", value_name = "ADDR")]
        addresses: Vec<String>,
    },
    /// List stored keys and certificates, each validated now.
    List {
        /// Only those for this address.
        #[arg(long, value_name = "ADDR")]
        address: Option<String>,
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
    },
    /// Remove a stored key or certificate.
    Remove {
        /// Its fingerprint (any case; spaces ignored).
        fingerprint: String,
        /// Only for this address.
        #[arg(long, value_name = "ADDR")]
        address: Option<String>,
    },
}

/// `sealgate portal …`
#[derive(Debug, Subcommand)]
pub(crate) enum PortalCommand {
    /// List grants (one per recipient and message), newest first.
    List {
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
    },
    /// Revoke a grant: its link stops working at once and its sessions end.
    Revoke {
        /// The grant id (from `list` or the `portal_notice` audit event).
        id: String,
    },
    /// Give a grant DAYS more: from its expiry, or from now when it has expired.
    Extend {
        /// The grant id.
        id: String,
        /// Days to add (1 to 3650).
        days: u32,
    },
    /// Run the retention job now: empty the sealed content of messages whose links have all
    /// expired or been revoked (`serve` does it hourly). The grants and the audit stay.
    Purge,
}

/// `sealgate config …`
#[derive(Debug, Subcommand)]
pub(crate) enum ConfigCommand {
    /// Check a configuration file and report every problem with its key.
    Check {
        /// The file to check.
        file: PathBuf,
    },
}

/// `sealgate audit …`
#[derive(Debug, Subcommand)]
pub(crate) enum AuditCommand {
    /// Verify the hash chain of the whole audit log (exit 1 when broken).
    Verify,
    /// Print audit events, oldest first; -f keeps following new ones.
    Tail(TailArgs),
}

/// `sealgate audit tail` options.
#[derive(Debug, Args)]
pub(crate) struct TailArgs {
    /// Keep printing new events as they are written.
    #[arg(short = 'f', long)]
    pub follow: bool,
    /// One JSON object per line.
    #[arg(long)]
    pub json: bool,
    /// Only events about this queue id.
    #[arg(long = "message")]
    pub message: Option<String>,
    /// Only events about this recipient address.
    #[arg(long = "rcpt")]
    pub rcpt: Option<String>,
    /// Only events at or after TIME: RFC 3339 ("2026-11-24T08:00:00Z") or an age ("15m", "2h", "7d").
    #[arg(long)]
    pub since: Option<String>,
    /// How many past events to print first.
    #[arg(short = 'n', long, default_value_t = 20)]
    pub lines: i64,
}

/// `sealgate users …`
#[derive(Debug, Subcommand)]
pub(crate) enum UsersCommand {
    /// Add a user, or set a new password for an existing one.
    Add {
        /// User name (as given in AUTH).
        name: String,
        /// Read the password from standard input (first line).
        #[arg(long, required = true)]
        password_stdin: bool,
        /// A sender the user may use in MAIL FROM and the header From (repeatable): an
        /// address, @DOMAIN, @.DOMAIN (its subdomains) or '*' (any). A new user needs this or
        /// --any-sender; for an existing user the given senders replace its list.
        #[arg(long = "sender", value_name = "RULE")]
        senders: Vec<String>,
        /// The user may use any sender (the same as --sender '*').
        #[arg(long, conflicts_with = "senders")]
        any_sender: bool,
    },
    /// Show which senders a user may use, or change them with --add and --remove.
    Senders {
        /// User name.
        name: String,
        /// Permit a sender (repeatable): an address, @DOMAIN, @.DOMAIN (subdomains) or '*'.
        #[arg(long = "add", value_name = "RULE")]
        add: Vec<String>,
        /// Stop permitting a sender (repeatable); removals apply before additions.
        #[arg(long = "remove", value_name = "RULE")]
        remove: Vec<String>,
    },
    /// Remove a user.
    Remove {
        /// User name.
        name: String,
    },
    /// List users with the senders each may use.
    List,
}

/// Loads the configuration: file (if any), then environment overrides; with the file's text
/// ("" without a file), which a reload compares with the next load.
pub(crate) fn load_config(path: Option<&std::path::Path>) -> anyhow::Result<(Config, String)> {
    let (mut cfg, text) = match path {
        Some(p) => Config::load_with_text(p)?,
        None => (Config::default(), String::new()),
    };
    cfg.apply_env(std::env::vars());
    cfg.validate()?;
    Ok((cfg, text))
}

/// Opens the store named by the configuration.
pub(crate) async fn open_store(cfg: &Config) -> anyhow::Result<Store> {
    open_store_at(cfg, &cfg.database_url()).await
}

/// Opens the store at `url` with the configured pool settings.
pub(crate) async fn open_store_at(cfg: &Config, url: &str) -> anyhow::Result<Store> {
    Store::connect(
        url,
        cfg.database.max_connections,
        cfg.database.acquire_timeout.0,
    )
    .await
    .with_context(|| format!("cannot open the database ({})", redact(url)))
}

/// A database URL without its password, for messages.
pub(crate) fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.split_once(':') {
                Some((user, _)) => format!("{}{}:***{}", &url[..s + 3], user, &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

/// Runs the chosen command.
pub(crate) async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    if let Command::Config(ConfigCommand::Check { file }) = &cli.command {
        return Ok(crate::cmd_config::check(file));
    }
    let (cfg, text) = load_config(cli.config.as_deref())?;
    match cli.command {
        Command::Serve => {
            crate::logging::init(&cfg, cli.log_format, true);
            crate::serve::serve(cfg, &text, cli.config.clone()).await
        }
        Command::Migrate(args) => {
            crate::logging::init(&cfg, cli.log_format, false);
            crate::cmd_db::migrate(&cfg, args).await
        }
        Command::Db(cmd) => {
            crate::logging::init(&cfg, cli.log_format, false);
            crate::cmd_db::run(&cfg, cmd).await
        }
        Command::Dkim(cmd) => {
            crate::logging::init(&cfg, cli.log_format, false);
            crate::cmd_dkim::run(&cfg, cmd).await
        }
        other => {
            crate::logging::init(&cfg, cli.log_format, false);
            let store = open_store(&cfg).await?;
            crate::cmd_db::ready_schema(&store).await?;
            let code = match other {
                Command::Audit(AuditCommand::Verify) => crate::cmd_audit::verify(&store).await?,
                Command::Audit(AuditCommand::Tail(args)) => {
                    crate::cmd_audit::tail(&store, args).await?
                }
                Command::Users(cmd) => crate::cmd_users::run(&store, cmd).await?,
                Command::ApiKeys(cmd) => crate::cmd_api_keys::run(&store, cmd).await?,
                Command::Webhooks(cmd) => crate::cmd_webhooks::run(&cfg, &store, cmd).await?,
                Command::Queue(cmd) => crate::cmd_queue::run(&cfg, &store, cmd).await?,
                Command::Keys(cmd) => crate::cmd_keys::run(&cfg, &store, cmd).await?,
                Command::Portal(cmd) => crate::cmd_portal::run(&store, cmd).await?,
                Command::Check(args) => crate::cmd_check::run(&cfg, &store, args).await?,
                Command::Serve
                | Command::Config(_)
                | Command::Migrate(_)
                | Command::Db(_)
                | Command::Dkim(_) => ExitCode::SUCCESS,
            };
            store.close().await;
            Ok(code)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_passwords_are_redacted() {
        assert_eq!(
            redact("postgres://u:secret@h:5432/db"),
            "postgres://u:***@h:5432/db"
        );
        assert_eq!(redact("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(redact("sqlite://./data/x.db"), "sqlite://./data/x.db");
    }
}
