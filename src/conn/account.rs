//! Every request counted exactly once, when it ends (SPEC §5):
//! `usher_requests_total` by status class and outcome. An [`Account`] is
//! opened as a request reaches the service and travels with its response
//! body; whatever ends it (the last byte, the client leaving, the upstream
//! breaking off) counts it on drop. A request that ends other than complete
//! also gets an access line saying how, with its path.

use std::sync::Arc;

use http::{Method, Uri};
use tracing::info;

use crate::metrics::{Metrics, Outcome};

/// One request's entry in the books, counted when dropped.
pub struct Account {
    metrics: Arc<Metrics>,
    method: Method,
    uri: Uri,
    /// 0 until the response head exists.
    status: u16,
    ended: bool,
    upstream_failed: bool,
}

impl Account {
    /// Open an account for a request (cheap: a standard method and a
    /// shared `Uri` are copied without allocating).
    pub fn open(metrics: &Arc<Metrics>, method: &Method, uri: &Uri) -> Account {
        Account {
            metrics: Arc::clone(metrics),
            method: method.clone(),
            uri: uri.clone(),
            status: 0,
            ended: false,
            upstream_failed: false,
        }
    }

    /// The response head is written with `status`.
    pub fn answered(&mut self, status: u16) {
        self.status = status;
    }

    /// The response was sent to its end.
    pub fn ended(&mut self) {
        self.ended = true;
    }

    /// The response body failed on the upstream's side.
    pub fn upstream_failed(&mut self) {
        self.upstream_failed = true;
    }

    /// Count a request hyper refused before the service saw it.
    pub fn refused(metrics: &Metrics, status: u16, why: &str) {
        metrics.request_ended(status, Outcome::refused);
        info!(target: "usher::access", status, outcome = "refused", reason = why, "request refused before routing");
    }
}

impl Drop for Account {
    fn drop(&mut self) {
        let outcome = if self.upstream_failed {
            Outcome::upstream_abort
        } else if self.ended {
            Outcome::complete
        } else {
            Outcome::client_abort
        };
        self.metrics.request_ended(self.status, outcome);
        if outcome != Outcome::complete {
            info!(
                target: "usher::access",
                method = %self.method,
                path = self.uri.path(),
                status = self.status,
                outcome = ?outcome,
                "request aborted"
            );
        }
    }
}
