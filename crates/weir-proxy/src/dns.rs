//! Names of DNS endpoints (ServiceEntry `resolution: DNS` / `DNS_ROUND_ROBIN`, endpoint
//! addresses that are host names, passthrough destinations), resolved off the event
//! loop and kept for [`REFRESH`] (Envoy's default `dns_refresh_rate`). A stale answer
//! keeps serving while one refresh runs in the background, so a connect never waits for
//! DNS once a name has resolved; a failed connect forgets the answer, so the next one
//! resolves again. New connections rotate over the addresses of an answer.
//!
//! The cache is bounded: names come from configuration, but passthrough names come
//! from clients.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

use tokio::time::Instant;

/// How long an answer is used before it is refreshed.
pub(crate) const REFRESH: Duration = Duration::from_secs(5);

/// Names kept at most; past it, stale answers are dropped first, then any.
const MAX_NAMES: usize = 4096;

#[derive(Debug)]
struct Answer {
    addrs: Arc<[SocketAddr]>,
    at: Instant,
    /// Round-robin position for new connections.
    next: AtomicUsize,
    refreshing: AtomicBool,
}

type Key = (Box<str>, u16);

#[derive(Debug, Default)]
struct Cache {
    answers: Mutex<HashMap<Key, Arc<Answer>>>,
}

static CACHE: LazyLock<Cache> = LazyLock::new(Cache::default);

async fn lookup(host: &str, port: u16) -> std::io::Result<Arc<[SocketAddr]>> {
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host, port)).await?.collect();
    if addrs.is_empty() {
        return Err(std::io::Error::new(std::io::ErrorKind::NotFound, format!("{host} has no address")));
    }
    Ok(addrs.into())
}

impl Cache {
    fn get(&self, key: &Key) -> Option<Arc<Answer>> {
        self.answers.lock().unwrap_or_else(|e| e.into_inner()).get(key).cloned()
    }

    fn put(&self, key: Key, addrs: Arc<[SocketAddr]>) -> Arc<Answer> {
        let answer = Arc::new(Answer {
            addrs,
            at: Instant::now(),
            next: AtomicUsize::new(0),
            refreshing: AtomicBool::new(false),
        });
        let mut map = self.answers.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= MAX_NAMES && !map.contains_key(&key) {
            map.retain(|_, a| a.at.elapsed() < REFRESH);
            if map.len() >= MAX_NAMES {
                map.clear();
            }
        }
        map.insert(key, answer.clone());
        answer
    }

    fn forget(&self, key: &Key) {
        self.answers.lock().unwrap_or_else(|e| e.into_inner()).remove(key);
    }
}

/// The addresses to try for `host:port`, in the order to try them (rotated per call).
pub(crate) async fn resolve(host: &str, port: u16) -> std::io::Result<Vec<SocketAddr>> {
    let key: Key = (host.into(), port);
    let answer = match CACHE.get(&key) {
        Some(a) => {
            if a.at.elapsed() >= REFRESH && !a.refreshing.swap(true, Ordering::AcqRel) {
                let key = key.clone();
                tokio::spawn(async move {
                    match lookup(&key.0, key.1).await {
                        Ok(addrs) => {
                            CACHE.put(key, addrs);
                        }
                        Err(e) => {
                            // Keep the old answer: DNS being down is no reason to stop.
                            tracing::debug!(host = %key.0, error = %e, "DNS refresh failed; the previous answer stays");
                            if let Some(a) = CACHE.get(&key) {
                                a.refreshing.store(false, Ordering::Release);
                            }
                        }
                    }
                });
            }
            a
        }
        None => CACHE.put(key, lookup(host, port).await?),
    };
    let n = answer.addrs.len();
    let start = answer.next.fetch_add(1, Ordering::Relaxed) % n;
    Ok((0..n).map(|i| answer.addrs[(start + i) % n]).collect())
}

/// A connect to `host:port` failed: resolve again next time.
pub(crate) fn forget(host: &str, port: u16) {
    CACHE.forget(&(host.into(), port));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn answers_are_kept_rotated_and_refreshed_in_the_background() {
        let first = resolve("localhost", 4711).await.expect("localhost resolves");
        assert!(first.iter().any(|a| a.ip().is_loopback() && a.port() == 4711), "{first:?}");
        let key: Key = ("localhost".into(), 4711);
        let cached = CACHE.get(&key).unwrap();
        // Kept: the same answer serves the next connects.
        resolve("localhost", 4711).await.unwrap();
        assert!(Arc::ptr_eq(&cached, &CACHE.get(&key).unwrap()));
        // Stale: still served at once, and refreshed behind.
        tokio::time::advance(REFRESH + Duration::from_secs(1)).await;
        let again = resolve("localhost", 4711).await.unwrap();
        assert_eq!(again.len(), first.len());
        for _ in 0..1000 {
            if !Arc::ptr_eq(&cached, &CACHE.get(&key).unwrap()) {
                break;
            }
            tokio::task::yield_now().await;
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        assert!(!Arc::ptr_eq(&cached, &CACHE.get(&key).unwrap()), "a fresh answer replaced the stale one");
        forget("localhost", 4711);
        assert!(CACHE.get(&key).is_none());
    }
}
