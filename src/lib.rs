//! usher: a standalone authenticating reverse proxy.
//!
//! Bird's-eye view: [`server`] accepts connections (optionally TLS, see
//! [`tls`]) and hands each request to [`service::Service::handle`], the
//! pipeline that names every phase (normalise → strip → session → decide →
//! inject → forward → respond). The phases are built from pure parts —
//! [`target`], [`hop`], [`headers`], [`session`], [`access`], [`redirect`],
//! [`guard`], [`respond`] — and IO parts: [`proxy`] (the pooled upstream
//! client) and [`auth`] (usher's own endpoints). [`config`] parses and
//! validates the TOML once; a reload swaps a whole [`live::Live`]
//! generation. [`admin`] serves health and [`metrics`]. See ARCHITECTURE.md.

#![forbid(unsafe_code)]

pub mod access;
pub mod admin;
pub mod assertion;
pub mod auth;
pub mod body;
pub mod carrier;
pub mod cli;
pub mod config;
pub mod conn;
pub mod demo;
pub mod error;
#[doc(hidden)]
pub mod fuzzing;
pub mod guard;
pub mod headers;
pub mod hop;
pub mod inspect;
pub mod live;
pub mod logfmt;
pub mod metrics;
pub mod oidc;
pub mod proxy;
pub mod redirect;
pub mod respond;
pub mod server;
pub mod service;
pub mod session;
pub mod store;
pub mod target;
pub mod tls;
pub mod users;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use arc_swap::ArcSwap;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tracing::{error, info, warn};

pub use config::Config;

use crate::live::Live;
use crate::metrics::Metrics;

/// `configured`, or else one per CPU this process may use (its affinity
/// and its cgroup CPU quota count): the default of `server.worker_threads`
/// and `login.concurrent_hashes`.
pub fn per_cpu(configured: Option<std::num::NonZeroUsize>) -> usize {
    configured
        .or_else(|| std::thread::available_parallelism().ok())
        .map_or(1, std::num::NonZeroUsize::get)
}

/// The sockets usher serves, bound by the caller so tests can use port 0
/// and `main` can report bind errors before anything starts.
pub struct Listeners {
    /// The proxy listener.
    pub proxy: TcpListener,
    /// The admin listener, when `[admin]` is configured.
    pub admin: Option<TcpListener>,
}

/// Serve `config` on `listener` until `shutdown` completes, then drain.
/// No admin listener and no reloads: the shape tests and the demo use.
pub async fn run(config: Config, listener: TcpListener, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
    let (_never, reloads) = mpsc::channel(1);
    serve(
        config,
        Listeners {
            proxy: listener,
            admin: None,
        },
        shutdown,
        reloads,
    )
    .await
}

/// Serve until `shutdown` completes, then drain in-flight requests. Each
/// configuration received on `reloads` replaces the running one atomically;
/// one that cannot be used (unreadable certificate, say) is logged and the
/// old one keeps serving.
pub async fn serve(
    config: Config,
    listeners: Listeners,
    shutdown: impl Future<Output = ()>,
    mut reloads: mpsc::Receiver<Config>,
) -> anyhow::Result<()> {
    let metrics = Arc::new(Metrics::new());
    // What the listener and the connection tasks were started with: a
    // reload is compared with this, not with the previous reload.
    let bound = config.server.clone();
    let bound_upstream = config.upstream.clone();
    let live = Arc::new(ArcSwap::from_pointee(
        Live::build(config, Arc::clone(&metrics)).context("setting up")?,
    ));
    let (stop_tx, stop) = watch::channel(false);
    let admin = listeners
        .admin
        .map(|l| tokio::spawn(admin::serve(l, Arc::clone(&live), Arc::clone(&metrics), stop.clone())));
    let proxy = tokio::spawn(server::serve(
        listeners.proxy,
        Arc::clone(&live),
        Arc::clone(&metrics),
        stop,
    ));
    let housekeeping = tokio::spawn(housekeeping(Arc::clone(&live)));
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            Some(config) = reloads.recv() => reload(&live, config, &metrics, (&bound, &bound_upstream)),
        }
    }
    let _ = stop_tx.send(true);
    housekeeping.abort();
    if let Some(admin) = admin {
        let _ = admin.await;
    }
    proxy.await.context("proxy task")?.context("proxy listener")?;
    Ok(())
}

fn reload(live: &live::Shared, config: Config, metrics: &Arc<Metrics>, bound: (&config::Server, &config::Upstream)) {
    let current = live.load_full();
    let pending = config::needs_restart(bound, (&config.server, &config.upstream));
    if !pending.is_empty() {
        warn!(
            keys = pending.join(", "),
            "these settings differ from what the running listener uses and need a restart; until then the \
             values it was started with stay in force"
        );
    }
    for w in &config.warnings {
        warn!("{w}");
    }
    match Live::build_after(Some(&current), config, Arc::clone(metrics)) {
        Ok(next) => {
            live.store(Arc::new(next));
            info!("configuration reloaded");
        }
        Err(e) => error!(error = %e, "reload failed; the previous configuration keeps serving"),
    }
}

/// Periodic upkeep: forget idle sign-in rate-limit buckets.
async fn housekeeping(live: live::Shared) {
    let mut tick = tokio::time::interval(Duration::from_secs(60));
    loop {
        tick.tick().await;
        live.load().service.housekeeping();
    }
}
