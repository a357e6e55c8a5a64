//! Primality (deterministic Miller-Rabin on u64) and NTT-friendly prime generation (p = 1 mod 2N).

use super::Error;
use super::modulus::MAX_MODULUS_BITS;

/// Bases that make Miller-Rabin deterministic for every n < 3.3e24 > 2^64
/// (Sorenson and Webster, "Strong pseudoprimes to twelve prime bases", 2017).
const MILLER_RABIN_BASES: [u64; 12] = [2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37];

fn mul_mod(a: u64, b: u64, n: u64) -> u64 {
    (a as u128 * b as u128 % n as u128) as u64
}

fn pow_mod(mut base: u64, mut e: u64, n: u64) -> u64 {
    let mut acc = 1 % n;
    base %= n;
    while e > 0 {
        if e & 1 == 1 {
            acc = mul_mod(acc, base, n);
        }
        base = mul_mod(base, base, n);
        e >>= 1;
    }
    acc
}

/// Whether `n` is prime (deterministic for all u64).
pub fn is_prime(n: u64) -> bool {
    if n < 2 {
        return false;
    }
    for p in MILLER_RABIN_BASES {
        if n.is_multiple_of(p) {
            return n == p;
        }
    }
    let s = (n - 1).trailing_zeros();
    let d = (n - 1) >> s;
    'bases: for a in MILLER_RABIN_BASES {
        let mut x = pow_mod(a, d, n);
        if x == 1 || x == n - 1 {
            continue;
        }
        for _ in 1..s {
            x = mul_mod(x, x, n);
            if x == n - 1 {
                continue 'bases;
            }
        }
        return false;
    }
    true
}

/// Whether `q` is a prime with `q = 1 mod 2N`, i.e. supports a negacyclic NTT of size N.
pub fn is_ntt_friendly(q: u64, log_n: u32) -> bool {
    let two_n = 1u64 << (log_n + 1);
    q % two_n == 1 && is_prime(q)
}

/// Iterator over the primes `p = 1 mod 2N` in one direction from a start, skipping `exclude`.
struct Cursor<'a> {
    next: Option<u64>,
    step: u64,
    upward: bool,
    lower_bound: u64,
    upper_bound: u64,
    exclude: &'a [u64],
}

impl Iterator for Cursor<'_> {
    type Item = u64;

    fn next(&mut self) -> Option<u64> {
        while let Some(candidate) = self.next {
            self.next = if self.upward {
                candidate
                    .checked_add(self.step)
                    .filter(|&c| c < self.upper_bound)
            } else {
                candidate
                    .checked_sub(self.step)
                    .filter(|&c| c > self.lower_bound)
            };
            if is_prime(candidate) && !self.exclude.contains(&candidate) {
                return Some(candidate);
            }
        }
        None
    }
}

fn check_request(log_n: u32, bits: u32, max_bits: u32) -> Result<u64, Error> {
    let two_n = 1u64
        .checked_shl(log_n + 1)
        .filter(|_| log_n + 1 < bits)
        .ok_or(Error::PrimeBitsTooSmall { bits, log_n })?;
    if bits > max_bits {
        return Err(Error::PrimeBitsTooLarge { bits, max_bits });
    }
    Ok(two_n)
}

/// `count` NTT-friendly primes near `2^bits` for rescaling, taken alternately just above
/// and just below `2^bits` (first above), each the closest one not yet taken on its side
/// and not in `exclude`.
///
/// Alternating keeps the product of the primes within a factor `(1 + 2N·count/2^bits)` of
/// `2^(bits·count)`, so that a FLEXIBLEAUTO-style scale, which follows the actual primes,
/// stays close to `2^bits` (Kim, Papadimitriou, Polyakov, eprint 2020/1118). Deterministic.
/// `bits` may be at most 61 so that the primes above `2^bits` stay below `2^62`.
pub fn scaling_primes(
    log_n: u32,
    bits: u32,
    count: usize,
    exclude: &[u64],
) -> Result<Vec<u64>, Error> {
    let two_n = check_request(log_n, bits, MAX_MODULUS_BITS - 1)?;
    let center = 1u64 << bits;
    let mut above = Cursor {
        next: Some(center + 1),
        step: two_n,
        upward: true,
        lower_bound: 0,
        upper_bound: 1 << MAX_MODULUS_BITS,
        exclude,
    };
    let mut below = Cursor {
        next: Some(center - two_n + 1),
        step: two_n,
        upward: false,
        lower_bound: 1 << (bits - 1),
        upper_bound: 0,
        exclude,
    };
    let mut primes = Vec::with_capacity(count);
    for i in 0..count {
        let next = if i % 2 == 0 {
            above.next().or_else(|| below.next())
        } else {
            below.next().or_else(|| above.next())
        };
        primes.push(next.ok_or(Error::NotEnoughPrimes { bits, log_n, count })?);
    }
    Ok(primes)
}

/// The `count` largest NTT-friendly primes strictly below `2^bits` that are not in
/// `exclude`, in decreasing order. For q_0 and the special primes, whose bit size is what
/// the security bound counts. Deterministic; `bits` may be at most 62.
pub fn primes_below(
    log_n: u32,
    bits: u32,
    count: usize,
    exclude: &[u64],
) -> Result<Vec<u64>, Error> {
    let two_n = check_request(log_n, bits, MAX_MODULUS_BITS)?;
    let cursor = Cursor {
        next: Some((1u64 << bits) - two_n + 1),
        step: two_n,
        upward: false,
        lower_bound: 1 << (bits - 1),
        upper_bound: 0,
        exclude,
    };
    let primes: Vec<u64> = cursor.take(count).collect();
    if primes.len() < count {
        return Err(Error::NotEnoughPrimes { bits, log_n, count });
    }
    Ok(primes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trial_division(n: u64) -> bool {
        n >= 2
            && (2..)
                .take_while(|d| d * d <= n)
                .all(|d| !n.is_multiple_of(d))
    }

    #[test]
    fn miller_rabin_matches_trial_division_below_100000() {
        for n in 0..100_000 {
            assert_eq!(is_prime(n), trial_division(n), "n = {n}");
        }
    }

    #[test]
    fn miller_rabin_known_large_values() {
        // Largest primes below 2^62 and 2^64, a Carmichael number, strong pseudoprimes.
        assert!(is_prime((1 << 62) - 57));
        assert!(is_prime(u64::MAX - 58));
        assert!(!is_prime(561));
        assert!(!is_prime(3_215_031_751)); // strong pseudoprime to bases 2, 3, 5, 7
        assert!(!is_prime(3_825_123_056_546_413_051)); // strong pseudoprime to bases up to 23
        assert!(!is_prime((1u64 << 62) - 57 + 2));
        assert!(is_prime(0xffff_ffff_0000_0001)); // Solinas prime
    }

    #[test]
    fn scaling_primes_alternate_around_power_of_two() {
        let log_n = 12;
        let primes = scaling_primes(log_n, 40, 6, &[]).expect("enough primes");
        let center = 1u64 << 40;
        for (i, &p) in primes.iter().enumerate() {
            assert!(is_ntt_friendly(p, log_n));
            assert_eq!(p > center, i % 2 == 0, "prime {i} = {p} on the wrong side");
        }
        // Closest first on each side, strictly moving away from 2^40.
        let above: Vec<_> = primes.iter().step_by(2).collect();
        let below: Vec<_> = primes.iter().skip(1).step_by(2).collect();
        assert!(above.windows(2).all(|w| w[0] < w[1]));
        assert!(below.windows(2).all(|w| w[0] > w[1]));
        let first_above = (center + 1..).step_by(1 << 13).find(|&c| is_prime(c));
        assert_eq!(Some(primes[0]), first_above);
    }

    #[test]
    fn generation_is_deterministic_and_excludes() {
        let a = scaling_primes(13, 45, 4, &[]).expect("enough primes");
        assert_eq!(a, scaling_primes(13, 45, 4, &[]).expect("enough primes"));
        let b = scaling_primes(13, 45, 4, &a[..1]).expect("enough primes");
        assert!(!b.contains(&a[0]));
        assert_eq!(b[1], a[1]);
        let below = primes_below(13, 61, 3, &[]).expect("enough primes");
        assert!(below.windows(2).all(|w| w[0] > w[1]));
        assert!(below.iter().all(|&p| p < 1 << 61 && is_ntt_friendly(p, 13)));
        let more = primes_below(13, 61, 2, &below[..2]).expect("enough primes");
        assert_eq!(more[0], below[2]);
    }

    #[test]
    fn bad_requests_are_errors() {
        assert_eq!(
            scaling_primes(16, 62, 1, &[]).map_err(|e| e.to_string()),
            Err("primes of 62 bits requested; at most 61 supported".into())
        );
        assert_eq!(
            primes_below(16, 17, 1, &[]).map_err(|e| e.to_string()),
            Err("no prime of 17 bits can be 1 mod 2N for log N = 16".into())
        );
        assert_eq!(
            primes_below(10, 13, 1000, &[]).map_err(|e| e.to_string()),
            Err("fewer than 1000 NTT-friendly primes of 13 bits exist for log N = 10".into())
        );
    }
}
