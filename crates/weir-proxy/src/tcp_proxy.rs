//! TCP and TLS routes: a connection is routed once (pure: the first route whose
//! conditions hold, a destination by weight, its cluster), then sent: the cluster's
//! connection limit, a host from the balancer over non-ejected hosts, a connect within
//! the DestinationRule's `connectTimeout` (with the TLS handshake when the cluster
//! originates TLS; no ALPN is offered), and bytes copied both ways until both sides
//! have closed (a FIN from one side is passed on as a half-close, as Envoy's TCP proxy
//! does). Connect failures count for outlier detection.

use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncWrite};
use weir_table::{ConnView, L4Route};

use crate::dice::ThreadDice;
use crate::outlier::Outcome;
use crate::stats::ClusterStats;
use crate::telemetry::{DestLabels, Flags, Metrics};
use crate::upstream::{ClusterState, InFlight, Snapshot};

/// Why a connection was not forwarded (Envoy's TCP response flags).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refused {
    /// No route matched (`NR`).
    NoRoute,
    /// The route's destination names no cluster (`NC`).
    NoCluster,
    /// The cluster is at `maxConnections` (`UO`).
    Overflow,
    /// No host to send to (`UH`).
    NoHealthyHost,
    /// The connect failed or timed out (`UF`).
    ConnectFailed,
}

impl Refused {
    pub(crate) fn flags(self) -> Flags {
        match self {
            Refused::NoRoute => Flags::NO_ROUTE,
            Refused::NoCluster => Flags::NO_CLUSTER,
            Refused::Overflow => Flags::UPSTREAM_OVERFLOW,
            Refused::NoHealthyHost => Flags::NO_HEALTHY_UPSTREAM,
            Refused::ConnectFailed => Flags::UPSTREAM_CONNECTION_FAILURE,
        }
    }
}

/// Records a connection refused before it reached a cluster (`NR`, `NC`): opened and
/// closed at once, for `service` (BlackHoleCluster on the mesh listener, as Istio
/// reports blocked TCP traffic).
pub(crate) fn refused(metrics: &Metrics, service: &str, why: Refused) {
    let dest = DestLabels::unknown_shared(service);
    metrics.tcp_opened(&dest);
    metrics.tcp_closed(&dest, why.flags(), 0, 0);
}

/// Decides where a connection goes: route, weighted destination, cluster.
pub(crate) fn choose(
    routes: &[L4Route],
    view: &ConnView<'_>,
    snapshot: &Snapshot,
) -> Result<Arc<ClusterState>, Refused> {
    use weir_table::Dice as _;
    let route = weir_table::transport::l4_route(routes, view).ok_or(Refused::NoRoute)?;
    let dest = route.pick((ThreadDice.roll() >> 32) as u32);
    let id = dest.cluster.resolve(view.port).ok_or(Refused::NoCluster)?;
    Ok(snapshot.clusters[id.0].clone())
}

/// Gives back a connection slot when the connection ends.
struct Slot<'a>(&'a ClusterState);

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        self.0.breakers.release_connection();
    }
}

/// Sends the client's stream to a host of `cluster` (for a passthrough cluster, to
/// `target`: the SNI name and port) and copies bytes both ways.
pub(crate) async fn forward<S: AsyncRead + AsyncWrite + Unpin>(
    mut down: S,
    cluster: &ClusterState,
    metrics: &Metrics,
    listener: &str,
    target: Option<(&str, u16)>,
) {
    if let Err(refused) = send(&mut down, cluster, metrics, target).await {
        tracing::debug!(listener, cluster = %cluster.name, flags = %refused.flags().render(), "TCP connection not forwarded");
        metrics.tcp_opened(&cluster.labels);
        metrics.tcp_closed(&cluster.labels, refused.flags(), 0, 0);
    }
}

async fn send<S: AsyncRead + AsyncWrite + Unpin>(
    down: &mut S,
    cluster: &ClusterState,
    metrics: &Metrics,
    target: Option<(&str, u16)>,
) -> Result<(), Refused> {
    let limits = &cluster.spec.limits;
    if !cluster.breakers.reserve_connection(limits) {
        ClusterStats::inc(&cluster.stats.upstream_cx_overflow);
        return Err(Refused::Overflow);
    }
    let _slot = Slot(cluster);
    let ep = match crate::attempt::pick(cluster, None, &[], 0) {
        Some(ep) => ep,
        None => match target {
            Some((host, port)) if cluster.spec.lb == weir_table::LbPolicy::Passthrough => {
                let port = if cluster.spec.port == 0 { port } else { cluster.spec.port };
                cluster.passthrough_endpoint(host, port)
            }
            _ => return Err(Refused::NoHealthyHost),
        },
    };
    ClusterStats::inc(&cluster.stats.upstream_cx_total);
    let tls = cluster.tls.as_deref().map(|t| (t, crate::tls::Alpn::None));
    let mut up = match crate::upstream_io::open(&ep.address, limits, tls).await {
        Ok(s) => s,
        Err((e, timed_out)) => {
            ClusterStats::inc(&cluster.stats.upstream_cx_connect_fail);
            if timed_out {
                ClusterStats::inc(&cluster.stats.upstream_cx_connect_timeout);
            }
            cluster.report(&ep, Outcome::ConnectFailed);
            tracing::debug!(host = %ep.host, error = %e, "TCP upstream connect failed");
            return Err(Refused::ConnectFailed);
        }
    };
    cluster.report(&ep, Outcome::Connected);
    let _active = InFlight::new(&ep);
    metrics.tcp_opened(&ep.labels);
    let (flags, received, sent) = match tokio::io::copy_bidirectional(down, &mut up).await {
        Ok((received, sent)) => (Flags::NONE, received, sent),
        // Either side reset: Envoy's TCP proxy reports the upstream's end as UC.
        Err(_) => (Flags::UPSTREAM_CONNECTION_TERMINATION, 0, 0),
    };
    metrics.tcp_closed(&ep.labels, flags, received, sent);
    Ok(())
}
