//! Real loopback test servers and clients for weir's integration tests.
//!
//! Everything here talks over real TCP sockets bound to `127.0.0.1:0`, so a
//! test never guesses or reserves a port: it starts a server, asks it for its
//! address, and points the proxy under test at it.
//!
//! - [`Backend`]: an HTTP/1.1 + h2c (prior knowledge) echo server that answers
//!   with a JSON description of the request and of itself (name, version,
//!   port), so a test can tell which upstream served a request. Its behaviour
//!   (status override, extra headers, delay, "fail the next K requests") can be
//!   changed while it runs. It also serves `/stream` (chunked, optionally gated
//!   chunk by chunk) and `/echo-body` (streams the request body back).
//! - [`GrpcBackend`]: a gRPC server over h2c that speaks gRPC framing only
//!   (no protobuf), with unary, server-streaming, bidi-streaming and failing
//!   methods under `/test.Echo/*`.
//! - [`TlsBackend`]: an HTTPS server (HTTP/1.1, and HTTP/2 by ALPN) that records the
//!   SNI, ALPN and client certificate of each TLS session, optionally requiring
//!   client certificates: the upstream of TLS-origination tests.
//! - [`HttpClient`] ([`http1_client`], [`http2_client`]) and [`GrpcClient`]:
//!   clients that connect to a real address while presenting any virtual host
//!   as `Host` (HTTP/1.1) or `:authority` (HTTP/2).
//! - [`wait_for`] / [`wait_for_async`]: poll a condition with a generous bound
//!   instead of sleeping, panicking with the caller's location if it never
//!   holds.
//! - [`ConfigDir`]: a temporary directory of config files whose writes are
//!   atomic (temp file + rename), removed on drop.
//! - [`FakeApiServer`]: a stand-in Kubernetes API server (lists, chunked watches,
//!   `410 Gone`, discovery, restarts) for the Kubernetes source, since no real cluster
//!   can run here.

mod backend;
mod body;
mod client;
mod config;
mod grpc;
mod kube_api;
mod server;
mod tls;
mod tls_backend;
mod wait;

pub use backend::{Backend, BackendBuilder};
pub use body::{BodyClosed, BodySender, ChannelBody, TestBody, channel_body, empty_body, full_body};
pub use client::{
    HttpClient, Protocol, TestResponse, build_request, get, http1_client, http2_client, next_data, read_bytes, request,
};
pub use config::ConfigDir;
pub use grpc::{GrpcBackend, GrpcBidi, GrpcClient, GrpcDecoder, GrpcReply, grpc_frame, grpc_unary, parse_grpc_frames};
pub use kube_api::{Collection, FakeApiServer, collections};
pub use tls::{Pem, TcpNamed, TestCa, TlsClient, TlsNamed, TlsSession, https_get};
pub use tls_backend::{TlsBackend, TlsBackendBuilder, TlsSeen};
pub use wait::{wait_for, wait_for_async};

use std::time::Duration;

/// Boxed error type used by bodies and fallible helpers.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Generous upper bound used by the panicking helpers (requests, body reads)
/// so that a broken test fails instead of hanging. Not a synchronisation
/// device: nothing waits for it to elapse on the happy path.
pub const TEST_TIMEOUT: Duration = Duration::from_secs(30);
