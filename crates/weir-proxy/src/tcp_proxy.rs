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
    fn flag(self) -> &'static str {
        match self {
            Refused::NoRoute => "NR",
            Refused::NoCluster => "NC",
            Refused::Overflow => "UO",
            Refused::NoHealthyHost => "UH",
            Refused::ConnectFailed => "UF",
        }
    }
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

/// Sends the client's stream to a host of `cluster` and copies bytes both ways.
pub(crate) async fn forward<S: AsyncRead + AsyncWrite + Unpin>(mut down: S, cluster: &ClusterState, listener: &str) {
    if let Err(refused) = send(&mut down, cluster).await {
        tracing::debug!(listener, cluster = %cluster.name, flag = refused.flag(), "TCP connection not forwarded");
    }
}

async fn send<S: AsyncRead + AsyncWrite + Unpin>(down: &mut S, cluster: &ClusterState) -> Result<(), Refused> {
    let limits = &cluster.spec.limits;
    if !cluster.breakers.reserve_connection(limits) {
        ClusterStats::inc(&cluster.stats.upstream_cx_overflow);
        return Err(Refused::Overflow);
    }
    let _slot = Slot(cluster);
    let ep = crate::attempt::pick(cluster, None, &[], 0).ok_or(Refused::NoHealthyHost)?;
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
    let _ = tokio::io::copy_bidirectional(down, &mut up).await;
    Ok(())
}

/// A plain TCP listener's connection.
pub(crate) fn view_plain(local: std::net::SocketAddr, port: u16) -> ConnView<'static> {
    ConnView { sni: None, local: local.ip(), port }
}

/// The routes of `listener`'s plain TCP servers.
pub(crate) fn plain_routes(listener: &weir_table::Listener) -> &[L4Route] {
    &listener.tcp
}
