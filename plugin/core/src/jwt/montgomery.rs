//! RSA's public operation in narrow limbs, for targets without a 64-bit
//! multiply with a 128-bit result.
//!
//! On wasm32, `crypto-bigint` works in 32-bit limbs and propagates a carry
//! after every multiply-add. Here a number is split into limbs of 26 to 28
//! bits, each stored in a `u32`. A Montgomery product sums limb products in
//! `u64` accumulators without propagating carries, because the limb width
//! leaves room in each accumulator for every product it receives. That
//! takes more limb products but far fewer instructions for each.
//!
//! Values stay below twice the modulus between products (the limbs span at
//! least two bits more than the modulus), and the result is reduced below
//! the modulus once, at the end. Nothing here is secret: the signature, the
//! key and the result of a verification are public, so branches and
//! exponent scanning depend on the values freely.

/// The limb widths tried, widest first.
const LIMB_BITS: [u32; 3] = [28, 27, 26];

/// An odd modulus with the constants of Montgomery products modulo it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Modulus {
    /// Bits per limb.
    bits: u32,
    /// The modulus, least significant limb first.
    limbs: Vec<u32>,
    /// `-modulus^-1 mod 2^bits`.
    inverse: u64,
    /// `R^2 mod modulus`, where `R = 2^(bits * limbs.len())`.
    r_squared: Vec<u32>,
    /// The modulus, big-endian, without leading zero bytes.
    bytes: Vec<u8>,
}

impl Modulus {
    /// Prepares a modulus given as big-endian bytes. Returns `None` for an
    /// even modulus, one below 3, or one so long that no limb width leaves
    /// room in the accumulators.
    pub fn new(modulus: &[u8]) -> Option<Self> {
        let start = modulus.iter().position(|&byte| byte != 0)?;
        let modulus = &modulus[start..];
        if modulus.last().is_none_or(|low| low & 1 == 0) || modulus == [1] {
            return None;
        }
        let modulus_bits = bit_length(modulus);
        let bits = LIMB_BITS.into_iter().find(|&bits| {
            let count = (modulus_bits + 2).div_ceil(bits as usize);
            fits_accumulator(bits, count)
        })?;
        let count = (modulus_bits + 2).div_ceil(bits as usize);
        let limbs = to_limbs(modulus, bits, count);
        let inverse = negated_inverse(limbs[0], bits);
        let mut prepared = Modulus {
            bits,
            limbs,
            inverse,
            r_squared: Vec::new(),
            bytes: modulus.to_vec(),
        };
        prepared.r_squared = prepared.compute_r_squared();
        Some(prepared)
    }

    /// Returns `base^exponent mod modulus` as big-endian bytes as many as the
    /// modulus has, or `None` when `base` is not that long or not below the
    /// modulus. `exponent` is big-endian.
    pub fn pow(&self, base: &[u8], exponent: &[u8]) -> Option<Vec<u8>> {
        // Both are big-endian and equally long, so bytes compare as numbers.
        // The limbs span fewer bits than the bytes may, so the comparison
        // comes before the conversion drops any.
        if base.len() != self.bytes.len() || base >= self.bytes.as_slice() {
            return None;
        }
        let count = self.limbs.len();
        let base = to_limbs(base, self.bits, count);
        let mut scratch = vec![0u64; 2 * count];
        let mut base_form = vec![0u32; count];
        self.multiply(&base, &self.r_squared, &mut base_form, &mut scratch);
        let power = self.pow_form(&base_form, exponent, &mut scratch);

        // Dividing by `R` takes the power out of Montgomery form.
        for (sum, &limb) in scratch.iter_mut().zip(&power) {
            *sum = u64::from(limb);
        }
        scratch[count..].fill(0);
        let mut result = vec![0u32; count];
        self.reduce(&mut result, &mut scratch);
        self.reduce_once(&mut result);
        Some(from_limbs(&result, self.bits, self.bytes.len()))
    }

    /// Returns the limbs of the modulus, their width in bits, the negated
    /// inverse of the lowest limb modulo `2^bits`, and `R^2 mod modulus`,
    /// for arithmetic in fixed-size limbs elsewhere.
    pub(crate) fn parts(&self) -> (&[u32], u32, u64, &[u32]) {
        (&self.limbs, self.bits, self.inverse, &self.r_squared)
    }

    /// Raises a number in Montgomery form to `exponent` (big-endian bytes)
    /// by left-to-right square-and-multiply. An exponent of 0 gives the
    /// Montgomery form of 1, `R mod modulus`.
    fn pow_form(&self, base: &[u32], exponent: &[u8], scratch: &mut [u64]) -> Vec<u32> {
        let mut bits = exponent
            .iter()
            .flat_map(|byte| (0..8).rev().map(move |shift| (byte >> shift) & 1 == 1));
        // The power starts as the base at the exponent's top set bit.
        if !bits.any(|bit| bit) {
            return self.one_form();
        }
        let mut power = base.to_vec();
        let mut next = vec![0u32; self.limbs.len()];
        for bit in bits {
            self.square(&power, &mut next, scratch);
            std::mem::swap(&mut power, &mut next);
            if bit {
                self.multiply(&power, base, &mut next, scratch);
                std::mem::swap(&mut power, &mut next);
            }
        }
        power
    }

    /// Returns `R mod modulus`: `2^(modulus_bits - 1)`, which is below the
    /// modulus, doubled up to `R`.
    fn one_form(&self) -> Vec<u32> {
        let modulus_bits = bit_length(&self.bytes);
        let mut value = vec![0u32; self.limbs.len()];
        let top = modulus_bits - 1;
        value[top / self.bits as usize] = 1 << (top % self.bits as usize);
        let total = self.bits as usize * self.limbs.len();
        for _ in top..total {
            self.double(&mut value);
        }
        value
    }

    /// Returns `R^2 mod modulus`, the Montgomery form of `R`, as the
    /// Montgomery form of 2 raised to `log2(R)`.
    fn compute_r_squared(&self) -> Vec<u32> {
        let count = self.limbs.len();
        let mut two = self.one_form();
        self.double(&mut two);
        let exponent = (self.bits as u64 * count as u64).to_be_bytes();
        let mut scratch = vec![0u64; 2 * count];
        let mut result = self.pow_form(&two, &exponent, &mut scratch);
        self.reduce_once(&mut result);
        result
    }

    /// Subtracts the modulus from a value below twice the modulus when the
    /// value is not below it.
    fn reduce_once(&self, value: &mut [u32]) {
        if compare(value, &self.limbs) != std::cmp::Ordering::Less {
            subtract(value, &self.limbs, self.bits);
        }
    }

    /// Doubles a value below the modulus, modulo the modulus.
    fn double(&self, value: &mut [u32]) {
        let mask = (1u32 << self.bits) - 1;
        let mut carry = 0u32;
        for limb in value.iter_mut() {
            let doubled = (*limb << 1) | carry;
            carry = doubled >> self.bits;
            *limb = doubled & mask;
        }
        if carry != 0 || compare(value, &self.limbs) != std::cmp::Ordering::Less {
            subtract(value, &self.limbs, self.bits);
        }
    }

    /// Writes `a * a / R mod modulus` to `out`, as [`Modulus::multiply`]
    /// does for `a` and `a`. The product is summed first, each product of two
    /// different limbs once and then doubled, and reduced after: about three
    /// quarters of the limb products of a multiplication.
    fn square(&self, a: &[u32], out: &mut [u32], scratch: &mut [u64]) {
        let count = self.limbs.len();
        scratch.fill(0);
        // Rows i and i + 1 of the products of different limbs overlap from
        // accumulator 2i + 3 on, where one pass adds both, as in `reduce`.
        let mut i = 0;
        while i + 3 <= count {
            let first = u64::from(a[i]);
            let second = u64::from(a[i + 1]);
            scratch[2 * i + 1] += first * u64::from(a[i + 1]);
            scratch[2 * i + 2] += first * u64::from(a[i + 2]);
            add_two_products(
                &mut scratch[2 * i + 3..i + count],
                first,
                &a[i + 3..],
                second,
                &a[i + 2..count - 1],
            );
            scratch[i + count] += second * u64::from(a[count - 1]);
            i += 2;
        }
        for (i, &a_limb) in a.iter().enumerate().skip(i) {
            let a_limb = u64::from(a_limb);
            add_product(&mut scratch[2 * i + 1..i + count], a_limb, &a[i + 1..]);
        }
        for (i, &a_limb) in a.iter().enumerate() {
            let a_limb = u64::from(a_limb);
            scratch[2 * i] = 2 * scratch[2 * i] + a_limb * a_limb;
            scratch[2 * i + 1] *= 2;
        }
        self.reduce(out, scratch);
    }

    /// Writes `a * b / R mod modulus` to `out`, for `a` and `b` below twice
    /// the modulus. The result is below twice the modulus too. `scratch` has
    /// room for `2 * limbs` accumulators.
    fn multiply(&self, a: &[u32], b: &[u32], out: &mut [u32], scratch: &mut [u64]) {
        let count = self.limbs.len();
        let bits = self.bits;
        let mask = (1u64 << bits) - 1;
        scratch.fill(0);
        for (i, &a_limb) in a.iter().enumerate() {
            let a_limb = u64::from(a_limb);
            let low = scratch[i] + a_limb * u64::from(b[0]);
            let factor = ((low & mask) * self.inverse) & mask;
            add_two_products(&mut scratch[i..i + count], a_limb, b, factor, &self.limbs);
            // The row made the low `bits` bits of this accumulator zero.
            let carry = scratch[i] >> bits;
            scratch[i + 1] += carry;
        }
        self.normalize(out, scratch);
    }

    /// Divides the product in `scratch` by `R` modulo the modulus: adds the
    /// multiple of the modulus that clears the low `count` limbs, one limb at
    /// a time, and writes the rest to `out`.
    ///
    /// Limbs are cleared in pairs. The second factor of a pair depends only
    /// on the first two products of the first, so one pass adds the rest of
    /// both rows, which halves the loads and stores of the accumulators.
    fn reduce(&self, out: &mut [u32], scratch: &mut [u64]) {
        let count = self.limbs.len();
        let bits = self.bits;
        let mask = (1u64 << bits) - 1;
        let limbs = &self.limbs;
        let mut i = 0;
        while count >= 3 && i + 1 < count {
            let first = ((scratch[i] & mask) * self.inverse) & mask;
            let cleared = scratch[i] + first * u64::from(limbs[0]);
            scratch[i + 1] += (cleared >> bits) + first * u64::from(limbs[1]);
            let second = ((scratch[i + 1] & mask) * self.inverse) & mask;
            let cleared = scratch[i + 1] + second * u64::from(limbs[0]);
            scratch[i + 2] +=
                (cleared >> bits) + first * u64::from(limbs[2]) + second * u64::from(limbs[1]);
            add_two_products(
                &mut scratch[i + 3..i + count],
                first,
                &limbs[3..],
                second,
                &limbs[2..count - 1],
            );
            scratch[i + count] += second * u64::from(limbs[count - 1]);
            i += 2;
        }
        for i in i..count {
            let factor = ((scratch[i] & mask) * self.inverse) & mask;
            add_product(&mut scratch[i..i + count], factor, limbs);
            let carry = scratch[i] >> bits;
            scratch[i + 1] += carry;
        }
        self.normalize(out, scratch);
    }

    /// Writes the accumulators from limb `count` up to `out`, carrying
    /// between them.
    fn normalize(&self, out: &mut [u32], scratch: &[u64]) {
        let count = self.limbs.len();
        let bits = self.bits;
        let mask = (1u64 << bits) - 1;
        let mut carry = 0u64;
        for (limb, &sum) in out.iter_mut().zip(&scratch[count..]) {
            let total = sum + carry;
            *limb = (total & mask) as u32;
            carry = total >> bits;
        }
        debug_assert_eq!(carry, 0);
    }
}

/// Adds `factor * limbs[j]` to `sums[j]` for each `j`, eight lanes at a
/// time: in wasm32 eight lanes took about 9% less time per RSA verification
/// than four on the machine of BENCHMARKS.md.
fn add_product(sums: &mut [u64], factor: u64, limbs: &[u32]) {
    let mut sum_chunks = sums.chunks_exact_mut(8);
    let mut limb_chunks = limbs.chunks_exact(8);
    for (sum, limb) in (&mut sum_chunks).zip(&mut limb_chunks) {
        for lane in 0..8 {
            sum[lane] += factor * u64::from(limb[lane]);
        }
    }
    let rest = sum_chunks.into_remainder().iter_mut();
    for (sum, &limb) in rest.zip(limb_chunks.remainder()) {
        *sum += factor * u64::from(limb);
    }
}

/// Adds `a * b[j] + c * d[j]` to `sums[j]` for each `j`, eight lanes at a
/// time as [`add_product`] does.
fn add_two_products(sums: &mut [u64], a: u64, b: &[u32], c: u64, d: &[u32]) {
    let mut sum_chunks = sums.chunks_exact_mut(8);
    let mut b_chunks = b.chunks_exact(8);
    let mut d_chunks = d.chunks_exact(8);
    for ((sum, b), d) in (&mut sum_chunks).zip(&mut b_chunks).zip(&mut d_chunks) {
        for lane in 0..8 {
            sum[lane] += a * u64::from(b[lane]) + c * u64::from(d[lane]);
        }
    }
    let rest = sum_chunks.into_remainder().iter_mut();
    for ((sum, &b), &d) in rest.zip(b_chunks.remainder()).zip(d_chunks.remainder()) {
        *sum += a * u64::from(b) + c * u64::from(d);
    }
}

/// Tells whether `2 * count + 1` products of two limbs of `bits` bits, and
/// the carries moved into an accumulator, fit in it. A square puts at most
/// `count + 1` products in one accumulator (counting each doubled one
/// twice), a multiplication `count`, and a reduction `count` more.
fn fits_accumulator(bits: u32, count: usize) -> bool {
    let limb_max = (1u128 << bits) - 1;
    let products = (2 * count as u128 + 1) * limb_max * limb_max;
    let carries = 2u128 << (64 - bits);
    products + carries < 1u128 << 64
}

/// Returns `-value^-1 mod 2^bits` for an odd `value`, by Newton's iteration,
/// which doubles the number of correct low bits at each step.
fn negated_inverse(value: u32, bits: u32) -> u64 {
    let value = u64::from(value);
    let mut inverse = 1u64;
    for _ in 0..6 {
        inverse = inverse.wrapping_mul(2u64.wrapping_sub(value.wrapping_mul(inverse)));
    }
    inverse.wrapping_neg() & ((1u64 << bits) - 1)
}

/// Returns the bit length of a big-endian number without leading zero bytes.
pub(crate) fn bit_length(bytes: &[u8]) -> usize {
    match bytes.first() {
        Some(&first) => bytes.len() * 8 - first.leading_zeros() as usize,
        None => 0,
    }
}

/// Splits big-endian bytes into `count` limbs of `bits` bits, least
/// significant first. Bits beyond `count` limbs are dropped.
pub(crate) fn to_limbs(bytes: &[u8], bits: u32, count: usize) -> Vec<u32> {
    let mut limbs = vec![0u32; count];
    let mut accumulator = 0u64;
    let mut buffered = 0u32;
    let mut index = 0;
    for &byte in bytes.iter().rev() {
        accumulator |= u64::from(byte) << buffered;
        buffered += 8;
        while buffered >= bits {
            if let Some(limb) = limbs.get_mut(index) {
                *limb = (accumulator & ((1u64 << bits) - 1)) as u32;
            }
            index += 1;
            accumulator >>= bits;
            buffered -= bits;
        }
    }
    if buffered > 0 {
        if let Some(limb) = limbs.get_mut(index) {
            *limb = accumulator as u32;
        }
    }
    limbs
}

/// Joins limbs of `bits` bits into `size` big-endian bytes, dropping bits
/// beyond them.
pub(crate) fn from_limbs(limbs: &[u32], bits: u32, size: usize) -> Vec<u8> {
    let mut bytes = vec![0u8; size];
    let mut accumulator = 0u64;
    let mut buffered = 0u32;
    let mut written = 0;
    for &limb in limbs {
        accumulator |= u64::from(limb) << buffered;
        buffered += bits;
        while buffered >= 8 && written < size {
            bytes[size - 1 - written] = accumulator as u8;
            written += 1;
            accumulator >>= 8;
            buffered -= 8;
        }
    }
    while buffered > 0 && written < size {
        bytes[size - 1 - written] = accumulator as u8;
        written += 1;
        accumulator >>= 8;
        buffered = buffered.saturating_sub(8);
    }
    bytes
}

/// Compares two numbers of the same limb count.
pub(crate) fn compare(a: &[u32], b: &[u32]) -> std::cmp::Ordering {
    a.iter().rev().cmp(b.iter().rev())
}

/// Subtracts `b` from `a` in place, for `a` at least `b`. It also serves an
/// `a` that overflowed its top limb by one carry, because the borrow out of
/// the top limb cancels that carry.
pub(crate) fn subtract(a: &mut [u32], b: &[u32], bits: u32) {
    let mask = (1i64 << bits) - 1;
    let mut borrow = 0i64;
    for (limb, &other) in a.iter_mut().zip(b) {
        let difference = i64::from(*limb) - i64::from(other) - borrow;
        borrow = i64::from(difference < 0);
        *limb = (difference & mask) as u32;
    }
}

#[cfg(test)]
pub(crate) mod tests;
