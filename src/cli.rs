//! Command-line arguments (clap). No logic beyond choosing the config path.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// usher: an authenticating reverse proxy that owns the session cookie.
#[derive(Debug, Parser)]
#[command(name = "usher", version, about, propagate_version = true)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands (SPEC §1).
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve with the given configuration.
    Run(ConfigArg),
    /// Validate the configuration: list every problem (exit 64) or summarise it (exit 0).
    Check {
        #[command(flatten)]
        config: ConfigArg,
        /// Also fetch each [[oidc]] provider's discovery document and keys,
        /// and say what was found (exit 1 when one cannot be used).
        #[arg(long)]
        online: bool,
    },
    /// Run usher in front of a built-in demo app; no config needed.
    Demo {
        /// Address for the proxy.
        #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080")]
        listen: std::net::SocketAddr,
        /// Also offer sign-in with this OpenID Connect provider (its issuer
        /// URL); the client secret, if any, from $USHER_OIDC_DEMO_SECRET.
        #[arg(long, value_name = "ISSUER")]
        oidc: Option<String>,
        /// The client id registered at that provider for
        /// http://LISTEN/.usher/oidc/demo/callback.
        #[arg(long, value_name = "ID", default_value = "usher", requires = "oidc")]
        oidc_client_id: String,
    },
    /// Print a fresh session key: 32 random bytes as base64url text.
    GenSecret,
    /// Print a new API key (first line), then the [[api_keys]] snippet with its id and argon2id hash.
    GenApiKey,
    /// Read a password (no echo on a terminal, else one line of stdin) and print an argon2id hash.
    HashPassword,
    /// Exit 0 when the admin health endpoint answers 200 (for container health checks).
    Healthcheck {
        /// The URL to check.
        #[arg(long, default_value = "http://127.0.0.1:9090/healthz")]
        url: String,
    },
    /// Session cookie tools.
    #[command(subcommand)]
    Session(SessionCommand),
}

/// `usher session ...`
#[derive(Debug, Subcommand)]
pub enum SessionCommand {
    /// Verify a cookie with the configured keys and print its contents, or why it is rejected.
    Decode {
        #[command(flatten)]
        config: ConfigArg,
        /// The cookie value, or `name=value` as copied from a browser.
        cookie: String,
    },
    /// Sign a session (a JSON object) with the configured signing key and print the cookie value.
    Encode {
        #[command(flatten)]
        config: ConfigArg,
        /// The session fields as a JSON object, e.g. '{"user":"alice"}'.
        json: String,
    },
    /// List a user's sessions in the Redis store (JSON, as GET /sessions).
    List {
        #[command(flatten)]
        config: ConfigArg,
        /// The user whose sessions to list.
        #[arg(long, value_name = "NAME")]
        user: String,
    },
    /// End sessions in the Redis store: every session of a user, or one by id.
    Revoke {
        #[command(flatten)]
        config: ConfigArg,
        /// End every session of this user.
        #[arg(long, value_name = "NAME", required_unless_present = "id", conflicts_with = "id")]
        user: Option<String>,
        /// End the session with this id (as `usher session list` shows it).
        #[arg(long, value_name = "ID")]
        id: Option<String>,
    },
}

/// `-c FILE`, shared by the commands that read a config.
#[derive(Debug, clap::Args)]
pub struct ConfigArg {
    /// Config file; default: $USHER_CONFIG, else ./usher.toml.
    #[arg(short = 'c', long = "config", value_name = "FILE")]
    pub config: Option<PathBuf>,
}

/// The environment variable naming the config file when `-c` is absent.
pub const CONFIG_ENV: &str = "USHER_CONFIG";

impl ConfigArg {
    /// `-c`, else the value of `$USHER_CONFIG` (passed in), else `./usher.toml`.
    pub fn resolve(&self, env_value: Option<OsString>) -> PathBuf {
        self.config
            .clone()
            .or_else(|| env_value.filter(|v| !v.is_empty()).map(PathBuf::from))
            .unwrap_or_else(|| PathBuf::from("usher.toml"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_path_precedence() {
        let flag = ConfigArg {
            config: Some("a.toml".into()),
        };
        assert_eq!(flag.resolve(Some("b.toml".into())), PathBuf::from("a.toml"));
        let none = ConfigArg { config: None };
        assert_eq!(none.resolve(Some("b.toml".into())), PathBuf::from("b.toml"));
        assert_eq!(none.resolve(Some("".into())), PathBuf::from("usher.toml"));
        assert_eq!(none.resolve(None), PathBuf::from("usher.toml"));
    }

    #[test]
    fn clap_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
