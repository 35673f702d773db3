//! Percentiles.

/// (p50, p99, max) of `v` (sorted here); zeros when empty.
pub fn summary(v: &mut [i64]) -> (i64, i64, i64) {
    if v.is_empty() {
        return (0, 0, 0);
    }
    v.sort_unstable();
    let at = |p: f64| v[((v.len() as f64 - 1.0) * p).round() as usize];
    (at(0.5), at(0.99), v[v.len() - 1])
}
