//! What a reload replaces as one unit: the configuration, the service built
//! from it and the TLS acceptor for its certificate. Held in an `ArcSwap`:
//! each connection takes the TLS acceptor current when it arrives, each
//! request the service current when it arrives, and in-flight requests
//! finish on the state they started with.

use std::sync::Arc;

use arc_swap::ArcSwap;
use tokio_rustls::TlsAcceptor;

use crate::config::Config;
use crate::metrics::Metrics;
use crate::service::{BuildError, Service};
use crate::tls;

/// One generation of configuration-derived state.
pub struct Live {
    /// The request pipeline.
    pub service: Arc<Service>,
    /// The HTTPS acceptor, when `tls_cert`/`tls_key` are set.
    pub tls: Option<TlsAcceptor>,
}

/// The swappable current generation.
pub type Shared = Arc<ArcSwap<Live>>;

impl Live {
    /// Build everything `config` needs: reads certificate files. Nothing is
    /// replaced when this fails.
    pub fn build(config: Config, metrics: Arc<Metrics>) -> Result<Live, BuildError> {
        Live::build_after(None, config, metrics)
    }

    /// [`Live::build`] for a reload: state that must survive it (the
    /// sign-in buckets) is carried over from `previous`.
    pub fn build_after(previous: Option<&Live>, config: Config, metrics: Arc<Metrics>) -> Result<Live, BuildError> {
        let tls = match &config.server.tls {
            Some(files) => Some(TlsAcceptor::from(
                tls::server_config(&files.cert, &files.key).map_err(BuildError::Tls)?,
            )),
            None => None,
        };
        let mut service = Service::new(Arc::new(config), metrics)?;
        if let Some(previous) = previous {
            service.carry_over(&previous.service);
        }
        service.start();
        Ok(Live {
            service: Arc::new(service),
            tls,
        })
    }

    /// The configuration of this generation.
    pub fn config(&self) -> &Config {
        self.service.config()
    }
}
