//! `lavabeacon-v1`: selections from a pulse without MD5 and without modulo bias.
//!
//! ```text
//! block(i) = HMAC-SHA-512(key = outputValue (64 bytes),
//!                         "lavabeacon-v1" ‖ 0x00 ‖ drawId (64 bytes) ‖ u64be(i)),  i = 0, 1, …
//! stream   = block(0) ‖ block(1) ‖ …, read as big-endian u64 words, in order
//! uniform(n), 1 ≤ n ≤ 2^64: the next word x; with zone = 2^64 − (2^64 mod n), redraw while
//!             x ≥ zone; the answer is x mod n (every value equally likely)
//! ```
//!
//! Every operation reads the stream in order and only as far as it needs, so the first k picks
//! are the same however many are drawn:
//!
//! - `pick` k of N entries: the j-th pick is `uniform(N − j)`, a 0-based position among the
//!   entries not yet picked in their published order; that entry is removed (as RFC 3797 does).
//!   `shuffle` is `pick` N of N.
//! - `weighted` k of N (whole weights ≥ 1, without replacement): the j-th pick is
//!   `uniform(W)`, W the sum of the remaining weights, located in the remaining entries'
//!   cumulative weights (published order); that entry is removed.
//! - `integers` c values in [min, max], with replacement: `min + uniform(max − min + 1)` each.

use hmac::{Hmac, Mac};
use sha2::Sha512;

/// The method's name in a draw spec.
pub const NAME: &str = "lavabeacon-v1";

/// The domain tag of every block.
const DOMAIN: &[u8] = b"lavabeacon-v1\0";

/// The stream of a draw: keyed by the pulse's outputValue, bound to the draw's id.
pub struct Stream {
    mac: Hmac<Sha512>,
    draw_id: [u8; 64],
    block: [u8; 64],
    counter: u64,
    used: usize,
}

impl Stream {
    /// The stream of the draw `draw_id` from a pulse whose outputValue is `output_value`.
    pub fn new(output_value: &[u8; 64], draw_id: &[u8; 64]) -> Stream {
        Stream {
            mac: Hmac::<Sha512>::new_from_slice(output_value).expect("HMAC takes any key"),
            draw_id: *draw_id,
            block: [0; 64],
            counter: 0,
            // No block made yet: the first word makes block(0).
            used: 64,
        }
    }

    /// The next big-endian u64 of the stream.
    pub fn next_word(&mut self) -> u64 {
        if self.used == 64 {
            let mut mac = self.mac.clone();
            mac.update(DOMAIN);
            mac.update(&self.draw_id);
            mac.update(&self.counter.to_be_bytes());
            self.block = mac.finalize().into_bytes().into();
            self.counter += 1;
            self.used = 0;
        }
        let word = u64::from_be_bytes(self.block[self.used..self.used + 8].try_into().unwrap());
        self.used += 8;
        word
    }

    /// A uniform value in `[0, n)`, `1 ≤ n ≤ 2^64`, by rejection: no modulo bias.
    pub fn uniform(&mut self, n: u128) -> u128 {
        assert!(
            (1..=1u128 << 64).contains(&n),
            "uniform(n) needs 1 ≤ n ≤ 2^64"
        );
        let zone = (1u128 << 64) - (1u128 << 64) % n;
        loop {
            let x = u128::from(self.next_word());
            if x < zone {
                return x % n;
            }
        }
    }
}

/// `count` picks of `pool` entries: their 1-based positions in the published list, in order.
pub fn pick(stream: &mut Stream, pool: usize, count: usize) -> Vec<usize> {
    let mut remaining: Vec<usize> = (1..=pool).collect();
    (0..count.min(pool))
        .map(|_| {
            let at = stream.uniform(remaining.len() as u128) as usize;
            remaining.remove(at)
        })
        .collect()
}

/// `count` picks without replacement, each entry as likely as its weight among those left;
/// 1-based positions.
pub fn weighted(stream: &mut Stream, weights: &[u64], count: usize) -> Vec<usize> {
    let mut remaining: Vec<(usize, u64)> = weights
        .iter()
        .enumerate()
        .map(|(i, &w)| (i + 1, w))
        .collect();
    let mut picks = Vec::with_capacity(count.min(weights.len()));
    for _ in 0..count.min(weights.len()) {
        let total: u128 = remaining.iter().map(|&(_, w)| u128::from(w)).sum();
        let mut r = stream.uniform(total);
        let at = remaining
            .iter()
            .position(|&(_, w)| {
                if r < u128::from(w) {
                    true
                } else {
                    r -= u128::from(w);
                    false
                }
            })
            .expect("r < total");
        picks.push(remaining.remove(at).0);
    }
    picks
}

/// `count` whole numbers in `[min, max]`, with replacement.
pub fn integers(stream: &mut Stream, min: i64, max: i64, count: usize) -> Vec<i64> {
    let span = (i128::from(max) - i128::from(min) + 1) as u128;
    (0..count)
        .map(|_| (i128::from(min) + stream.uniform(span) as i128) as i64)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream(seed: u8) -> Stream {
        Stream::new(&[seed; 64], &[7; 64])
    }

    #[test]
    fn the_stream_is_hmac_sha512_of_the_domain_the_id_and_the_counter() {
        let mut mac = Hmac::<Sha512>::new_from_slice(&[1; 64]).unwrap();
        mac.update(b"lavabeacon-v1\0");
        mac.update(&[7; 64]);
        mac.update(&1u64.to_be_bytes());
        let block1 = mac.finalize().into_bytes();
        let mut s = stream(1);
        for _ in 0..8 {
            s.next_word();
        }
        assert_eq!(s.next_word().to_be_bytes(), block1[..8]);
    }

    #[test]
    fn the_first_picks_do_not_change_when_more_are_drawn() {
        let three = pick(&mut stream(2), 100, 3);
        let ten = pick(&mut stream(2), 100, 10);
        assert_eq!(three, ten[..3]);
        let all = pick(&mut stream(2), 100, 100);
        assert_eq!(ten, all[..10]);
        let mut sorted = all.clone();
        sorted.sort_unstable();
        assert_eq!(
            sorted,
            (1..=100).collect::<Vec<_>>(),
            "a shuffle is a permutation"
        );
        assert_eq!(
            weighted(&mut stream(3), &[5, 1, 1, 9], 2),
            weighted(&mut stream(3), &[5, 1, 1, 9], 4)[..2]
        );
    }

    #[test]
    fn rejection_leaves_no_modulo_bias_even_for_a_range_of_two_thirds_of_the_words() {
        // n = 2^64 · 2/3: plain x mod n would give the low third of the values twice the
        // chance of the rest. Count how often a value lands in the low half of [0, n).
        let n = ((1u128 << 64) / 3) * 2;
        let mut s = stream(4);
        let draws = 60_000;
        let low = (0..draws).filter(|_| s.uniform(n) < n / 2).count();
        let share = low as f64 / draws as f64;
        assert!((share - 0.5).abs() < 0.01, "low half drawn {share}");
    }

    #[test]
    fn the_whole_range_of_i64_and_a_single_value_are_drawn_without_overflow() {
        let mut s = stream(5);
        assert_eq!(integers(&mut s, 7, 7, 3), [7, 7, 7]);
        let wide = integers(&mut s, i64::MIN, i64::MAX, 100);
        assert!(wide.iter().any(|&v| v < 0) && wide.iter().any(|&v| v > 0));
    }
}
