//! Per-request random draws (weighted destinations, balancer picks, back-off jitter,
//! generated affinity cookies) from a fast generator that lives in each thread: no lock,
//! no system call per draw. With a seed (`weir run --seed N`) every worker's sequence
//! is fixed, so tests and demos can reproduce a run.

use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use rand::rngs::SmallRng;
use rand::{Rng as _, SeedableRng};

static SEEDED: AtomicBool = AtomicBool::new(false);
static SEED: AtomicU64 = AtomicU64::new(0);

thread_local! {
    static RNG: RefCell<SmallRng> = RefCell::new(fresh(crate::workers::current() as u64));
}

fn fresh(stream: u64) -> SmallRng {
    if SEEDED.load(Ordering::Acquire) {
        seeded(SEED.load(Ordering::Acquire), stream)
    } else {
        rand::make_rng::<SmallRng>()
    }
}

/// Distinct, reproducible sequences per worker (`stream`).
fn seeded(seed: u64, stream: u64) -> SmallRng {
    SmallRng::seed_from_u64(seed ^ stream.wrapping_mul(0x9e37_79b9_7f4a_7c15))
}

/// Makes every thread that starts drawing after this call use sequences derived from
/// `seed` (the worker threads call [`reseed`] when they start).
pub(crate) fn set_seed(seed: Option<u64>) {
    if let Some(s) = seed {
        SEED.store(s, Ordering::Release);
        SEEDED.store(true, Ordering::Release);
    }
}

/// Restarts this thread's sequence (for worker `index`) from the configured seed.
pub(crate) fn reseed(index: usize) {
    RNG.with(|r| *r.borrow_mut() = fresh(index as u64));
}

/// A uniformly random `u64`.
pub(crate) fn roll() -> u64 {
    RNG.with(|r| r.borrow_mut().next_u64())
}

/// A uniformly random number in `0..n` (`n > 0`; 0 when `n == 0`).
pub(crate) fn below(n: u64) -> u64 {
    if n == 0 {
        return 0;
    }
    // Lemire's multiply-shift: unbiased enough for load balancing, no division.
    ((u128::from(roll()) * u128::from(n)) >> 64) as u64
}

/// The dice `weir_table::decide` rolls.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ThreadDice;

impl weir_table::Dice for ThreadDice {
    fn roll(&mut self) -> u64 {
        roll()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_stay_in_range_and_spread() {
        let mut seen = [0u32; 4];
        for _ in 0..4000 {
            seen[below(4) as usize] += 1;
        }
        assert!(seen.iter().all(|n| (700..=1300).contains(n)), "{seen:?}");
        assert_eq!(below(0), 0);
        assert_eq!(below(1), 0);
    }

    #[test]
    fn a_seed_fixes_the_sequence() {
        let draw = |seed, stream| -> Vec<u64> {
            let mut r = seeded(seed, stream);
            (0..5).map(|_| r.next_u64()).collect()
        };
        assert_eq!(draw(42, 3), draw(42, 3));
        assert_ne!(draw(42, 3), draw(42, 4), "each worker has its own sequence");
        assert_ne!(draw(42, 3), draw(43, 3));
    }
}
