//! The percentile line the propagation benchmarks print.

use std::time::Duration;

/// Sorts `lags` and prints `title`, the count, and p50, p90, p99 and max in ms.
pub fn print(title: &str, lags: &mut [Duration]) {
    lags.sort();
    let q = |p: f64| lags[((lags.len() as f64 * p) as usize).min(lags.len() - 1)];
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!("{title}, {} observations, ms:", lags.len());
    println!(
        "p50 {:.2}  p90 {:.2}  p99 {:.2}  max {:.2}",
        ms(q(0.5)),
        ms(q(0.9)),
        ms(q(0.99)),
        ms(lags[lags.len() - 1])
    );
}
