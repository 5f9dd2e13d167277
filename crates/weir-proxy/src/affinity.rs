//! Consistent-hash inputs (spec §3.5): the key a request hashes to, and the cookie
//! Envoy generates when a cookie key is missing and has a `ttl`.

use std::net::SocketAddr;

use http::HeaderValue;
use http::header;
use http::request::Parts;
use weir_table::{HashKey, LbPolicy};

use crate::balance::hash_value;
use crate::upstream::ClusterState;

/// The consistent-hash input of a request, and a cookie to set when the key is a
/// cookie that was absent and has a `ttl`.
pub(crate) fn hash_input(
    key: &HashKey,
    parts: &Parts,
    peer: SocketAddr,
    query: Option<&str>,
) -> (Option<u64>, Option<HeaderValue>) {
    match key {
        HashKey::Header(name) => {
            let h = parts.headers.get(name).map(|v| hash_value(v.as_bytes()));
            (h, None)
        }
        HashKey::SourceIp => (Some(hash_value(peer.ip().to_string().as_bytes())), None),
        HashKey::QueryParameter(name) => {
            (query.and_then(|q| weir_table::matcher::query_param(q, name)).map(|v| hash_value(v.as_bytes())), None)
        }
        HashKey::Cookie { name, set_cookie_suffix } => {
            let found = parts.headers.get_all(header::COOKIE).iter().filter_map(|v| v.to_str().ok()).find_map(|c| {
                c.split(';').map(str::trim).find_map(|kv| {
                    let (k, v) = kv.split_once('=')?;
                    (k == &**name).then(|| v.trim_matches('"').to_string())
                })
            });
            match (found, set_cookie_suffix) {
                (Some(v), _) => (Some(hash_value(v.as_bytes())), None),
                (None, Some(suffix)) => {
                    let value = format!("{:016x}", rand::random::<u64>());
                    let cookie = format!("{name}=\"{value}\"{suffix}");
                    (Some(hash_value(value.as_bytes())), HeaderValue::from_str(&cookie).ok())
                }
                (None, None) => (None, None),
            }
        }
    }
}

pub(crate) fn hash_key_of(c: &ClusterState) -> Option<&HashKey> {
    match &c.spec.lb {
        LbPolicy::RingHash { key, .. } | LbPolicy::Maglev { key, .. } => Some(key),
        _ => None,
    }
}
