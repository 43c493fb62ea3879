//! The `usher` binary: parse the command line, set up logging, load the
//! configuration, bind, and call into the library. The only place that
//! exits or reads the process environment.

#![forbid(unsafe_code)]

use std::path::Path;
use std::process::ExitCode;

use clap::Parser;
use clap::error::ErrorKind;
use tokio::net::TcpListener;
use tracing::{error, info};
use tracing_subscriber::EnvFilter;
use usher::Config;
use usher::cli::{CONFIG_ENV, Cli, Command};

/// Environment variable holding session keys, comma separated; overrides the file.
const SECRET_KEYS_ENV: &str = "USHER_SECRET_KEYS";

/// Bad usage or bad configuration (sysexits `EX_USAGE`); nothing was bound.
const EXIT_USAGE: u8 = 64;
/// A failure at run time.
const EXIT_RUNTIME: u8 = 1;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage_error(&e),
    };
    match cli.command {
        Command::Check(arg) => check(&arg.resolve(std::env::var_os(CONFIG_ENV))),
        Command::Run(arg) => run(&arg.resolve(std::env::var_os(CONFIG_ENV))),
    }
}

/// Help and version go to stdout with 0; anything else is bad usage.
fn usage_error(e: &clap::Error) -> ExitCode {
    let _ = e.print();
    match e.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => ExitCode::SUCCESS,
        _ => ExitCode::from(EXIT_USAGE),
    }
}

fn load(path: &Path) -> Result<Config, ExitCode> {
    Config::load(path, std::env::var(SECRET_KEYS_ENV).ok()).map_err(|e| {
        eprintln!("usher: {}: {e}", path.display());
        ExitCode::from(EXIT_USAGE)
    })
}

fn check(path: &Path) -> ExitCode {
    match load(path) {
        Ok(config) => {
            println!("{}: ok\n{}", path.display(), config.summary());
            for w in &config.warnings {
                println!("warning: {w}");
            }
            ExitCode::SUCCESS
        }
        Err(code) => code,
    }
}

fn run(path: &Path) -> ExitCode {
    init_logging();
    let config = match load(path) {
        Ok(config) => config,
        Err(code) => return code,
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            error!(error = %e, "cannot start the async runtime");
            return ExitCode::from(EXIT_RUNTIME);
        }
    };
    runtime.block_on(serve(config))
}

async fn serve(config: Config) -> ExitCode {
    for w in &config.warnings {
        tracing::warn!("{w}");
    }
    let listener = match TcpListener::bind(config.server.listen).await {
        Ok(l) => l,
        Err(e) => {
            error!(error = %e, listen = %config.server.listen, "cannot bind");
            return ExitCode::from(EXIT_RUNTIME);
        }
    };
    let bound = listener
        .local_addr()
        .map_or_else(|_| config.server.listen.to_string(), |a| a.to_string());
    info!(listen = %bound, upstream = %config.upstream.authority, "usher listening");
    match usher::run(config, listener, shutdown_signal()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            error!(error = format!("{e:#}"), "usher stopped");
            ExitCode::from(EXIT_RUNTIME)
        }
    }
}

fn init_logging() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

/// Completes on SIGTERM or Ctrl-C.
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
    info!("shutdown requested");
}
