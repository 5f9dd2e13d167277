//! Load balancers (spec §3.5), built once per cluster when a table is installed and
//! lock-free per request: LEAST_REQUEST (power of two choices on in-flight requests),
//! ROUND_ROBIN (a precomputed weighted schedule), RANDOM (weighted), and consistent
//! hashing with Envoy's ring hash and Maglev on xxHash64, so the same keys land on the
//! same hosts as under Istio.

use std::sync::atomic::{AtomicUsize, Ordering};

use weir_table::LbPolicy;
use xxhash_rust::xxh64::xxh64;

use crate::dice;

/// What a balancer needs to know about an endpoint.
pub(crate) trait Candidate {
    /// Load-balancing weight (>= 1).
    fn weight(&self) -> u32;
    /// In-flight requests.
    fn active(&self) -> u32;
    /// The string Envoy hashes for ring and Maglev placement (`ip:port`).
    fn hash_key(&self) -> String;
}

/// A cluster's balancer.
#[derive(Debug)]
pub(crate) enum Balancer {
    /// P2C on active requests (weighted sampling when weights differ).
    LeastRequest { cumulative: Option<Box<[u64]>> },
    /// A schedule of endpoint indexes walked by an atomic counter.
    RoundRobin { schedule: Box<[u32]>, next: AtomicUsize },
    /// Weighted random.
    Random { cumulative: Option<Box<[u64]>> },
    /// To the requested address (no endpoints).
    Passthrough,
    /// Ring hash: sorted (hash, endpoint) pairs.
    Ring { ring: Box<[(u64, u32)]> },
    /// Maglev lookup table.
    Maglev { table: Box<[u32]> },
}

fn cumulative<C: Candidate>(eps: &[C]) -> Option<Box<[u64]>> {
    let first = eps.first()?.weight();
    if eps.iter().all(|e| e.weight() == first) {
        return None;
    }
    let mut acc = 0u64;
    Some(
        eps.iter()
            .map(|e| {
                acc += u64::from(e.weight());
                acc
            })
            .collect(),
    )
}

fn gcd(a: u32, b: u32) -> u32 {
    if b == 0 { a } else { gcd(b, a % b) }
}

/// Interleaved weighted round robin (smooth WRR), at most `cap` slots.
fn schedule<C: Candidate>(eps: &[C]) -> Box<[u32]> {
    if eps.is_empty() {
        return Box::new([]);
    }
    let g = eps.iter().map(Candidate::weight).fold(0, gcd).max(1);
    let weights: Vec<i64> = eps.iter().map(|e| i64::from(e.weight() / g)).collect();
    let total: i64 = weights.iter().sum();
    let len = total.clamp(1, 10_000) as usize;
    let mut current = vec![0i64; eps.len()];
    let mut out = Vec::with_capacity(len);
    for _ in 0..len {
        let mut best = 0;
        for i in 0..eps.len() {
            current[i] += weights[i];
            if current[i] > current[best] {
                best = i;
            }
        }
        current[best] -= total;
        out.push(best as u32);
    }
    out.into()
}

/// Envoy's ring: each host gets `floor(normalized_weight * scale)` points hashed from
/// `"<address>_<i>"`, where scale brings the lightest host up to the minimum ring size.
fn ring<C: Candidate>(eps: &[C], min_ring_size: u64) -> Box<[(u64, u32)]> {
    if eps.is_empty() {
        return Box::new([]);
    }
    const MAX_RING: f64 = 8_388_608.0;
    let total: f64 = eps.iter().map(|e| f64::from(e.weight())).sum();
    let min_norm = eps.iter().map(|e| f64::from(e.weight()) / total).fold(f64::MAX, f64::min);
    let scale = ((min_norm * min_ring_size as f64).ceil() / min_norm).min(MAX_RING);
    let mut ring = Vec::new();
    let mut target = 0.0f64;
    let mut current = 0u64;
    for (i, e) in eps.iter().enumerate() {
        target += f64::from(e.weight()) / total * scale;
        let hashes = target.floor() as u64 - current;
        current += hashes;
        let key = e.hash_key();
        for n in 0..hashes {
            ring.push((xxh64(format!("{key}_{n}").as_bytes(), 0), i as u32));
        }
    }
    ring.sort_unstable_by_key(|(h, _)| *h);
    ring.into()
}

/// Envoy's weighted Maglev table.
fn maglev<C: Candidate>(eps: &[C], size: u64) -> Box<[u32]> {
    if eps.is_empty() || size == 0 {
        return Box::new([]);
    }
    let m = size;
    let max_w = eps.iter().map(Candidate::weight).max().unwrap_or(1) as f64;
    struct Build {
        offset: u64,
        skip: u64,
        weight: f64,
        target: f64,
        next: u64,
    }
    let mut builds: Vec<Build> = eps
        .iter()
        .map(|e| {
            let key = e.hash_key();
            Build {
                offset: xxh64(key.as_bytes(), 0) % m,
                skip: xxh64(key.as_bytes(), 1) % (m - 1).max(1) + 1,
                weight: f64::from(e.weight()) / max_w,
                target: 0.0,
                next: 0,
            }
        })
        .collect();
    let mut table = vec![u32::MAX; m as usize];
    let mut filled = 0u64;
    let mut iteration = 0u64;
    while filled < m {
        for (i, b) in builds.iter_mut().enumerate() {
            if filled >= m {
                break;
            }
            if (iteration as f64) * b.weight < b.target {
                continue;
            }
            b.target += 1.0;
            let mut c = (b.offset + b.next * b.skip) % m;
            while table[c as usize] != u32::MAX {
                b.next += 1;
                c = (b.offset + b.next * b.skip) % m;
            }
            table[c as usize] = i as u32;
            b.next += 1;
            filled += 1;
        }
        iteration += 1;
    }
    table.into()
}

impl Balancer {
    /// Builds the balancer for `policy` over `eps`.
    pub(crate) fn new<C: Candidate>(policy: &LbPolicy, eps: &[C]) -> Self {
        match policy {
            LbPolicy::LeastRequest => Balancer::LeastRequest { cumulative: cumulative(eps) },
            LbPolicy::RoundRobin => {
                Balancer::RoundRobin { schedule: schedule(eps), next: AtomicUsize::new(dice::roll() as usize) }
            }
            LbPolicy::Random => Balancer::Random { cumulative: cumulative(eps) },
            LbPolicy::Passthrough => Balancer::Passthrough,
            LbPolicy::RingHash { min_ring_size, .. } => Balancer::Ring { ring: ring(eps, (*min_ring_size).max(1)) },
            LbPolicy::Maglev { table_size, .. } => Balancer::Maglev { table: maglev(eps, *table_size) },
        }
    }

    /// Picks an endpoint index. `hash` is the request's consistent-hash value, if the
    /// policy hashes and the request carries the key; without it a hashing balancer
    /// picks at random, as Envoy does.
    pub(crate) fn pick<C: Candidate>(&self, eps: &[C], hash: Option<u64>) -> Option<usize> {
        let n = eps.len();
        if n == 0 {
            return None;
        }
        let random = |cum: &Option<Box<[u64]>>| -> usize {
            match cum {
                None => dice::below(n as u64) as usize,
                Some(c) => {
                    let x = dice::below(c[n - 1]);
                    c.partition_point(|v| *v <= x)
                }
            }
        };
        let pick = match self {
            Balancer::LeastRequest { cumulative } => {
                if n == 1 {
                    0
                } else {
                    let a = random(cumulative);
                    let mut b = random(cumulative);
                    if b == a {
                        b = (a + 1 + dice::below(n as u64 - 1) as usize) % n;
                    }
                    if eps[b].active() < eps[a].active() { b } else { a }
                }
            }
            Balancer::RoundRobin { schedule, next } => {
                let i = next.fetch_add(1, Ordering::Relaxed);
                schedule.get(i % schedule.len().max(1)).map_or(0, |v| *v as usize)
            }
            Balancer::Random { cumulative } => random(cumulative),
            Balancer::Passthrough => return None,
            Balancer::Ring { ring } => match hash {
                None => dice::below(n as u64) as usize,
                Some(h) => {
                    let i = ring.partition_point(|(k, _)| *k < h);
                    ring.get(i).or(ring.first()).map_or(0, |(_, e)| *e as usize)
                }
            },
            Balancer::Maglev { table } => match hash {
                None => dice::below(n as u64) as usize,
                Some(h) => table.get((h % table.len().max(1) as u64) as usize).map_or(0, |e| *e as usize),
            },
        };
        Some(pick.min(n - 1))
    }

    /// True for consistent-hash balancers.
    pub(crate) fn is_hashing(&self) -> bool {
        matches!(self, Balancer::Ring { .. } | Balancer::Maglev { .. })
    }
}

/// Envoy hashes header, cookie and query values with xxHash64, seed 0.
#[cfg(test)]
fn hash_value(v: &[u8]) -> u64 {
    weir_table::plan::hash_value(v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU32;

    struct Ep {
        w: u32,
        active: AtomicU32,
        key: String,
    }

    impl Candidate for Ep {
        fn weight(&self) -> u32 {
            self.w
        }
        fn active(&self) -> u32 {
            self.active.load(Ordering::Relaxed)
        }
        fn hash_key(&self) -> String {
            self.key.clone()
        }
    }

    fn eps(weights: &[u32]) -> Vec<Ep> {
        weights
            .iter()
            .enumerate()
            .map(|(i, w)| Ep { w: *w, active: AtomicU32::new(0), key: format!("10.0.0.{}:80", i + 1) })
            .collect()
    }

    fn counts(b: &Balancer, e: &[Ep], n: usize) -> Vec<usize> {
        let mut c = vec![0; e.len()];
        for _ in 0..n {
            c[b.pick(e, None).unwrap()] += 1;
        }
        c
    }

    #[test]
    fn round_robin_is_exact_and_weighted() {
        let e = eps(&[1, 1, 1]);
        let b = Balancer::new(&LbPolicy::RoundRobin, &e);
        assert_eq!(counts(&b, &e, 300), [100, 100, 100]);
        let e = eps(&[3, 1]);
        let b = Balancer::new(&LbPolicy::RoundRobin, &e);
        assert_eq!(counts(&b, &e, 400), [300, 100]);
    }

    #[test]
    fn least_request_prefers_idle_hosts() {
        let e = eps(&[1, 1]);
        e[0].active.store(10, Ordering::Relaxed);
        let b = Balancer::new(&LbPolicy::LeastRequest, &e);
        // With two hosts, P2C always compares both: the idle one always wins.
        assert_eq!(counts(&b, &e, 200), [0, 200]);
    }

    #[test]
    fn random_spreads_by_weight() {
        let e = eps(&[1, 3]);
        let b = Balancer::new(&LbPolicy::Random, &e);
        let c = counts(&b, &e, 20_000);
        // Expected 5000 / 15000; six standard deviations (~370) of slack.
        assert!((4_000..=6_000).contains(&c[0]), "{c:?}");
    }

    fn key(k: &str) -> weir_table::HashKey {
        weir_table::HashKey::Header(http::HeaderName::from_bytes(k.as_bytes()).unwrap())
    }

    #[test]
    fn ring_and_maglev_are_sticky_and_spread() {
        let e = eps(&[1, 1, 1, 1]);
        for policy in [
            LbPolicy::RingHash { key: key("x-user"), min_ring_size: 1024 },
            LbPolicy::Maglev { key: key("x-user"), table_size: 65537 },
        ] {
            let b = Balancer::new(&policy, &e);
            let mut c = [0usize; 4];
            for user in 0..4000 {
                let h = hash_value(format!("user-{user}").as_bytes());
                let first = b.pick(&e, Some(h)).unwrap();
                assert_eq!(b.pick(&e, Some(h)), Some(first), "{policy:?}");
                c[first] += 1;
            }
            assert!(c.iter().all(|n| (600..=1400).contains(n)), "{policy:?}: {c:?}");
        }
    }

    #[test]
    fn maglev_moves_few_keys_when_a_host_goes() {
        let e4 = eps(&[1, 1, 1, 1]);
        let e3: Vec<Ep> = eps(&[1, 1, 1, 1]).into_iter().take(3).collect();
        let p = LbPolicy::Maglev { key: key("x"), table_size: 65537 };
        let (b4, b3) = (Balancer::new(&p, &e4), Balancer::new(&p, &e3));
        let mut moved = 0;
        for k in 0..4000 {
            let h = hash_value(format!("k{k}").as_bytes());
            let (a, b) = (b4.pick(&e4, Some(h)).unwrap(), b3.pick(&e3, Some(h)).unwrap());
            if a != 3 && a != b {
                moved += 1;
            }
        }
        // Keys on surviving hosts should mostly stay (Maglev's minimal disruption).
        assert!(moved < 400, "{moved} keys moved");
    }

    #[test]
    fn ring_size_follows_the_minimum() {
        let e = eps(&[1, 2]);
        let Balancer::Ring { ring } = Balancer::new(&LbPolicy::RingHash { key: key("x"), min_ring_size: 1024 }, &e)
        else {
            panic!()
        };
        // Envoy: the whole ring has at least the minimum size, shared by weight.
        let first = ring.iter().filter(|(_, i)| *i == 0).count();
        assert_eq!(ring.len(), 1026);
        assert_eq!((first, ring.len() - first), (342, 684));
    }
}
