//! usher: a standalone authenticating reverse proxy.
//!
//! Bird's-eye view: [`server`] accepts connections and hands each request to
//! [`service::Service::handle`], the pipeline that names every phase
//! (normalise → strip → session → decide → inject → forward → respond). The
//! phases are built from pure parts — [`target`] (request-target
//! normalisation), [`hop`] (connection and forwarding headers), [`respond`]
//! (usher's own responses) — and one IO part, [`proxy`] (the pooled upstream
//! client). [`config`] parses and validates the TOML once at startup; nothing
//! on the request path parses configuration. See ARCHITECTURE.md.

#![forbid(unsafe_code)]

pub mod access;
pub mod auth;
pub mod body;
pub mod cli;
pub mod config;
pub mod demo;
pub mod error;
pub mod guard;
pub mod headers;
pub mod hop;
pub mod inspect;
pub mod metrics;
pub mod proxy;
pub mod redirect;
pub mod respond;
pub mod server;
pub mod service;
pub mod session;
pub mod target;

use std::future::Future;
use std::sync::Arc;

use tokio::net::TcpListener;

pub use config::Config;

/// Serve `config` on an already bound `listener` until `shutdown` completes,
/// then drain in-flight requests. The caller binds so that tests can use
/// port 0 and `main` can report bind errors before anything starts.
pub async fn run(config: Config, listener: TcpListener, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
    let config = Arc::new(config);
    let service = Arc::new(service::Service::new(Arc::clone(&config)));
    server::serve(listener, config, service, shutdown).await?;
    Ok(())
}
