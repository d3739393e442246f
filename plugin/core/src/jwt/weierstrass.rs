//! ECDSA verification on P-256, P-384 and P-521 in the narrow limbs of
//! [`super::montgomery`], for wasm32.
//!
//! On wasm32 the `p256`, `p384` and `p521` crates compute in 32-bit limbs
//! and propagate a carry after every multiply-add, as `crypto-bigint` does
//! for RSA. Here field elements and scalars are Montgomery forms in limbs of
//! 28 bits, whose products are summed without carries, and the limb count
//! is a constant of each curve so that loops have fixed bounds. Points are
//! in Jacobian coordinates, and `u1 * G + u2 * Q` is computed with both
//! scalars read four bits at a time from one run of doublings. Every input
//! of a verification is public, so the arithmetic branches on values freely
//! and takes variable time.
//!
//! The crates still parse keys and check that the point lies on the curve,
//! and they supply each curve's order and generator.

use super::keys::strip_leading_zeros;
use super::montgomery::{bit_length, compare, from_limbs, subtract, to_limbs, Modulus};
use sha2::Digest as _;
use std::cmp::Ordering;
use std::sync::OnceLock;

/// The curves this module verifies on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CurveName {
    P256,
    P384,
    P521,
}

/// A number below a modulus of `N` limbs, least significant limb first.
type Element<const N: usize> = [u32; N];

/// Arithmetic modulo an odd number in `N` limbs of `bits` bits, with the
/// constants of [`Modulus`]. Products are summed in `W = 2N + 1`
/// accumulators.
struct Field<const N: usize, const W: usize> {
    modulus: [u32; N],
    bits: u32,
    /// `-modulus^-1 mod 2^bits`.
    inverse: u64,
    /// `R^2 mod modulus`, where `R = 2^(bits * N)`.
    r_squared: [u32; N],
    /// `R mod modulus`, the Montgomery form of one.
    one: [u32; N],
    /// `t + 1` when the modulus is `(t + 1) * 2^(bits * (N - 1)) - 1`: every
    /// limb below the top one `t` is all ones, as for P-521's `2^521 - 1`.
    /// Adding `factor * modulus` in a reduction row then comes down to two
    /// terms, `-factor` at the row's limb and `factor * (t + 1)` at the top.
    ones_below_top: Option<u64>,
    /// The modulus, big-endian, without leading zero bytes.
    bytes: Vec<u8>,
}

impl<const N: usize, const W: usize> Field<N, W> {
    /// Prepares arithmetic modulo big-endian `modulus`, or returns `None`
    /// when [`Modulus`] rejects it or splits it into another number of limbs.
    fn new(modulus: &[u8]) -> Option<Self> {
        let prepared = Modulus::new(modulus)?;
        let (limbs, bits, inverse, r_squared) = prepared.parts();
        if W < 2 * N + 1 {
            return None;
        }
        let modulus_limbs: [u32; N] = limbs.try_into().ok()?;
        let mask = (1u32 << bits) - 1;
        let ones_below_top = match modulus_limbs.split_last() {
            Some((&top, below)) if below.iter().all(|&limb| limb == mask) => {
                Some(u64::from(top) + 1)
            }
            _ => None,
        };
        let mut field = Field {
            modulus: modulus_limbs,
            bits,
            inverse,
            r_squared: r_squared.try_into().ok()?,
            one: [0; N],
            ones_below_top,
            bytes: strip_leading_zeros(modulus).to_vec(),
        };
        let mut one = [0u32; N];
        one[0] = 1;
        field.one = field.to_form(&one);
        Some(field)
    }

    /// Returns `a * b / R mod modulus`, below the modulus, for `a` and `b`
    /// below twice the modulus.
    fn multiply(&self, a: &Element<N>, b: &Element<N>) -> Element<N> {
        if let Some(top) = self.ones_below_top {
            return self.multiply_ones_below_top(a, b, top);
        }
        let mask = (1u64 << self.bits) - 1;
        let mut sums = [0u64; W];
        for i in 0..N {
            let a_limb = u64::from(a[i]);
            let low = sums[i] + a_limb * u64::from(b[0]);
            let factor = ((low & mask) * self.inverse) & mask;
            for j in 0..N {
                sums[i + j] += a_limb * u64::from(b[j]) + factor * u64::from(self.modulus[j]);
            }
            // The row made the low `bits` bits of this sum zero.
            sums[i + 1] += sums[i] >> self.bits;
        }
        self.finish(&sums)
    }

    /// [`Self::multiply`] for a modulus of [`Self::ones_below_top`] form.
    /// The modulus is `-1` modulo `2^bits`, so each row's factor is its low
    /// limb, and the row's `factor * modulus` is `-factor` at limb `i` and
    /// `factor * top` at limb `i + N - 1`.
    fn multiply_ones_below_top(&self, a: &Element<N>, b: &Element<N>, top: u64) -> Element<N> {
        let mask = (1u64 << self.bits) - 1;
        let mut sums = [0u64; W];
        for i in 0..N {
            let a_limb = u64::from(a[i]);
            for j in 0..N {
                sums[i + j] += a_limb * u64::from(b[j]);
            }
            self.reduce_row(&mut sums, i, mask, top);
        }
        self.finish(&sums)
    }

    /// Makes limb `i` of `sums` a multiple of `2^bits` by adding a multiple
    /// of a modulus of [`Self::ones_below_top`] form, and carries it into
    /// limb `i + 1`.
    fn reduce_row(&self, sums: &mut [u64; W], i: usize, mask: u64, top: u64) {
        let factor = sums[i] & mask;
        sums[i] -= factor;
        sums[i + N - 1] += factor * top;
        sums[i + 1] += sums[i] >> self.bits;
    }

    /// Returns `a * a / R mod modulus`, below the modulus, for `a` below
    /// twice the modulus. Each product of two different limbs is summed
    /// once and doubled, so a square takes about three quarters of the limb
    /// products of a multiplication.
    fn square(&self, a: &Element<N>) -> Element<N> {
        let mask = (1u64 << self.bits) - 1;
        let mut sums = [0u64; W];
        for i in 0..N {
            let a_limb = u64::from(a[i]);
            for j in i + 1..N {
                sums[i + j] += a_limb * u64::from(a[j]);
            }
        }
        for i in 0..N {
            let a_limb = u64::from(a[i]);
            sums[2 * i] = 2 * sums[2 * i] + a_limb * a_limb;
            sums[2 * i + 1] *= 2;
        }
        for i in 0..N {
            if let Some(top) = self.ones_below_top {
                self.reduce_row(&mut sums, i, mask, top);
                continue;
            }
            let factor = ((sums[i] & mask) * self.inverse) & mask;
            for j in 0..N {
                sums[i + j] += factor * u64::from(self.modulus[j]);
            }
            sums[i + 1] += sums[i] >> self.bits;
        }
        self.finish(&sums)
    }

    /// Carries the sums from limb `N` up into limbs and reduces the result,
    /// which is below twice the modulus, below the modulus.
    fn finish(&self, sums: &[u64; W]) -> Element<N> {
        let mask = (1u64 << self.bits) - 1;
        let mut out = [0u32; N];
        let mut carry = 0u64;
        for j in 0..N {
            let total = sums[N + j] + carry;
            out[j] = (total & mask) as u32;
            carry = total >> self.bits;
        }
        self.reduce_once(&mut out);
        out
    }

    /// Subtracts the modulus from a value below twice the modulus when the
    /// value is not below it.
    fn reduce_once(&self, value: &mut Element<N>) {
        if compare(value, &self.modulus) != Ordering::Less {
            subtract(value, &self.modulus, self.bits);
        }
    }

    /// Returns `a + b` for a sum below twice the modulus. The limbs span two
    /// bits more than the modulus, so the sum never carries out of the top
    /// limb.
    fn raw_add(&self, a: &Element<N>, b: &Element<N>) -> Element<N> {
        let mask = (1u32 << self.bits) - 1;
        let mut out = [0u32; N];
        let mut carry = 0u32;
        for j in 0..N {
            let sum = a[j] + b[j] + carry;
            carry = sum >> self.bits;
            out[j] = sum & mask;
        }
        out
    }

    /// Returns `a + b mod modulus` for `a` and `b` below the modulus.
    fn add(&self, a: &Element<N>, b: &Element<N>) -> Element<N> {
        let mut sum = self.raw_add(a, b);
        self.reduce_once(&mut sum);
        sum
    }

    /// Returns `2 * a mod modulus` for `a` below the modulus.
    fn double(&self, a: &Element<N>) -> Element<N> {
        self.add(a, a)
    }

    /// Returns `a - b mod modulus` for `a` and `b` below the modulus.
    fn subtract(&self, a: &Element<N>, b: &Element<N>) -> Element<N> {
        let mut difference = if compare(a, b) == Ordering::Less {
            // a + modulus is below twice the modulus and above `b`.
            self.raw_add(a, &self.modulus)
        } else {
            *a
        };
        subtract(&mut difference, b, self.bits);
        difference
    }

    /// Returns the limbs of big-endian `bytes`. Bits beyond `N` limbs are
    /// dropped.
    fn plain(&self, bytes: &[u8]) -> Element<N> {
        let mut out = [0u32; N];
        out.copy_from_slice(&to_limbs(bytes, self.bits, N));
        out
    }

    /// Joins limbs into `size` big-endian bytes.
    fn to_bytes(&self, value: &Element<N>, size: usize) -> Vec<u8> {
        from_limbs(value, self.bits, size)
    }

    /// Returns the Montgomery form of `value`, a number below twice the
    /// modulus.
    fn to_form(&self, value: &Element<N>) -> Element<N> {
        self.multiply(value, &self.r_squared)
    }

    /// Returns the Montgomery form of big-endian `bytes`, a number below
    /// twice the modulus.
    fn form(&self, bytes: &[u8]) -> Element<N> {
        self.to_form(&self.plain(bytes))
    }

    /// Returns `value^-1 mod modulus` for a plain `value` that is not zero
    /// and below the prime modulus, as a plain number. It is the binary
    /// extended Euclidean algorithm: halve and subtract `u` and `v`, starting
    /// from the value and the modulus, and keep `x1 * value = u` and
    /// `x2 * value = v` modulo the modulus. It takes variable time, and far
    /// fewer products than a power (an estimate: a tenth of the time for a
    /// 521-bit modulus).
    fn invert(&self, value: &Element<N>) -> Element<N> {
        let mut one = [0u32; N];
        one[0] = 1;
        let (mut u, mut v) = (*value, self.modulus);
        let (mut x1, mut x2) = (one, [0u32; N]);
        while u != one && v != one {
            if u == [0; N] || v == [0; N] {
                // Reached only for a value that shares a factor with the modulus.
                return [0; N];
            }
            while u[0] & 1 == 0 {
                self.halve(&mut u);
                self.halve_modular(&mut x1);
            }
            while v[0] & 1 == 0 {
                self.halve(&mut v);
                self.halve_modular(&mut x2);
            }
            if compare(&u, &v) != Ordering::Less {
                subtract(&mut u, &v, self.bits);
                x1 = self.subtract(&x1, &x2);
            } else {
                subtract(&mut v, &u, self.bits);
                x2 = self.subtract(&x2, &x1);
            }
        }
        if u == one {
            x1
        } else {
            x2
        }
    }

    /// Shifts `value` right by one bit.
    fn halve(&self, value: &mut Element<N>) {
        for i in 0..N {
            let high = value.get(i + 1).map_or(0, |&next| next & 1);
            value[i] = (value[i] >> 1) | (high << (self.bits - 1));
        }
    }

    /// Returns `value / 2 mod modulus` in place, for `value` below the
    /// modulus: an odd value is made even by adding the modulus, which the
    /// limbs hold without overflow because they span two bits more.
    fn halve_modular(&self, value: &mut Element<N>) {
        if value[0] & 1 == 1 {
            *value = self.raw_add(value, &self.modulus);
        }
        self.halve(value);
    }

    /// Returns `base^exponent` for `base` in Montgomery form and a
    /// big-endian exponent, by left-to-right square-and-multiply.
    fn pow(&self, base: &Element<N>, exponent: &[u8]) -> Element<N> {
        let mut power = self.one;
        for byte in exponent {
            for shift in (0..8).rev() {
                power = self.square(&power);
                if (byte >> shift) & 1 == 1 {
                    power = self.multiply(&power, base);
                }
            }
        }
        power
    }
}

/// A point in Jacobian coordinates `(X, Y, Z)`, which represents the affine
/// point `(X / Z^2, Y / Z^3)`, each coordinate in Montgomery form. `Z = 0`
/// is the point at infinity.
#[derive(Clone, Copy)]
struct Point<const N: usize> {
    x: Element<N>,
    y: Element<N>,
    z: Element<N>,
}

impl<const N: usize> Point<N> {
    const INFINITY: Self = Point {
        x: [0; N],
        y: [0; N],
        z: [0; N],
    };

    fn is_infinity(&self) -> bool {
        self.z == [0; N]
    }
}

/// An affine point `(x, y)` in Montgomery form.
#[derive(Clone, Copy)]
struct Affine<const N: usize> {
    x: Element<N>,
    y: Element<N>,
}

impl<const N: usize, const W: usize> Field<N, W> {
    /// Returns `2P` by the doubling formulas for `a = -3` in Jacobian
    /// coordinates ("dbl-2001-b" of the Explicit-Formulas Database). A
    /// point with `Y = 0` doubles to `Z = 0`, the point at infinity.
    fn double_point(&self, point: &Point<N>) -> Point<N> {
        if point.is_infinity() {
            return Point::INFINITY;
        }
        let delta = self.square(&point.z);
        let gamma = self.square(&point.y);
        let beta = self.multiply(&point.x, &gamma);
        let difference = self.subtract(&point.x, &delta);
        let sum = self.add(&point.x, &delta);
        let product = self.multiply(&difference, &sum);
        let alpha = self.add(&self.double(&product), &product);

        let beta_4 = self.double(&self.double(&beta));
        let beta_8 = self.double(&beta_4);
        let x = self.subtract(&self.square(&alpha), &beta_8);

        let y_plus_z = self.add(&point.y, &point.z);
        let z = self.subtract(&self.subtract(&self.square(&y_plus_z), &gamma), &delta);

        let gamma_squared = self.square(&gamma);
        let gamma_squared_8 = self.double(&self.double(&self.double(&gamma_squared)));
        let alpha_term = self.multiply(&alpha, &self.subtract(&beta_4, &x));
        let y = self.subtract(&alpha_term, &gamma_squared_8);
        Point { x, y, z }
    }

    /// Returns `P + Q` by the general addition formulas in Jacobian
    /// coordinates ("add-2007-bl"), with the cases they leave out: either
    /// point at infinity, `P = Q` and `P = -Q`.
    fn add_points(&self, p: &Point<N>, q: &Point<N>) -> Point<N> {
        if p.is_infinity() {
            return *q;
        }
        if q.is_infinity() {
            return *p;
        }
        let z1z1 = self.square(&p.z);
        let z2z2 = self.square(&q.z);
        let u1 = self.multiply(&p.x, &z2z2);
        let u2 = self.multiply(&q.x, &z1z1);
        let s1 = self.multiply(&p.y, &self.multiply(&q.z, &z2z2));
        let s2 = self.multiply(&q.y, &self.multiply(&p.z, &z1z1));
        let Some((x, y, h)) = self.add_common(&u1, &u2, &s1, &s2) else {
            return self.add_special(p, &s1, &s2);
        };
        let z_sum = self.add(&p.z, &q.z);
        let z_cross = self.subtract(&self.subtract(&self.square(&z_sum), &z1z1), &z2z2);
        let z = self.multiply(&z_cross, &h);
        Point { x, y, z }
    }

    /// Returns `P + Q` for an affine `Q` ("madd-2007-bl", the addition with
    /// `Z2 = 1`), with the same special cases as [`Field::add_points`].
    fn add_affine(&self, p: &Point<N>, q: &Affine<N>) -> Point<N> {
        if p.is_infinity() {
            return Point {
                x: q.x,
                y: q.y,
                z: self.one,
            };
        }
        let z1z1 = self.square(&p.z);
        let u2 = self.multiply(&q.x, &z1z1);
        let s2 = self.multiply(&q.y, &self.multiply(&p.z, &z1z1));
        let Some((x, y, h)) = self.add_common(&p.x, &u2, &p.y, &s2) else {
            return self.add_special(p, &p.y, &s2);
        };
        let z_plus_h = self.add(&p.z, &h);
        let z = self.subtract(
            &self.subtract(&self.square(&z_plus_h), &z1z1),
            &self.square(&h),
        );
        Point { x, y, z }
    }

    /// Computes the `X` and `Y` of a sum from `U1`, `U2`, `S1` and `S2`, and
    /// returns them with `H = U2 - U1`, or `None` when `H` is zero: the
    /// points are then equal or opposite.
    fn add_common(
        &self,
        u1: &Element<N>,
        u2: &Element<N>,
        s1: &Element<N>,
        s2: &Element<N>,
    ) -> Option<(Element<N>, Element<N>, Element<N>)> {
        let h = self.subtract(u2, u1);
        if h == [0; N] {
            return None;
        }
        let i = self.square(&self.double(&h));
        let j = self.multiply(&h, &i);
        let r = self.double(&self.subtract(s2, s1));
        let v = self.multiply(u1, &i);
        let x = self.subtract(&self.subtract(&self.square(&r), &j), &self.double(&v));
        let r_term = self.multiply(&r, &self.subtract(&v, &x));
        let y = self.subtract(&r_term, &self.double(&self.multiply(s1, &j)));
        Some((x, y, h))
    }

    /// Returns the sum of two points with the same affine `x`: the double of
    /// `P` when their `y` agree too, the point at infinity otherwise.
    fn add_special(&self, p: &Point<N>, s1: &Element<N>, s2: &Element<N>) -> Point<N> {
        if s1 == s2 {
            self.double_point(p)
        } else {
            Point::INFINITY
        }
    }

    /// Returns `k * point` for `k` from 0 to 15.
    fn multiples(&self, point: &Point<N>) -> [Point<N>; 16] {
        let mut table = [Point::INFINITY; 16];
        table[1] = *point;
        for k in 2..16 {
            table[k] = if k % 2 == 0 {
                self.double_point(&table[k / 2])
            } else {
                self.add_points(&table[k - 1], point)
            };
        }
        table
    }

    /// Returns the affine forms of points none of which is at infinity,
    /// with one inversion for all of them (Montgomery's trick).
    fn to_affine(&self, points: &[Point<N>], inverse_exponent: &[u8]) -> Vec<Affine<N>> {
        // prefix[k] is the product of the Z of points[..k].
        let mut prefix = Vec::with_capacity(points.len() + 1);
        prefix.push(self.one);
        for point in points {
            let last = prefix[prefix.len() - 1];
            prefix.push(self.multiply(&last, &point.z));
        }
        let mut inverse = self.pow(&prefix[points.len()], inverse_exponent);
        let mut affine = vec![
            Affine {
                x: [0; N],
                y: [0; N]
            };
            points.len()
        ];
        for k in (0..points.len()).rev() {
            // inverse is 1 / (Z_0 ... Z_k) here.
            let z_inverse = self.multiply(&inverse, &prefix[k]);
            inverse = self.multiply(&inverse, &points[k].z);
            let z_inverse_squared = self.square(&z_inverse);
            let z_inverse_cubed = self.multiply(&z_inverse_squared, &z_inverse);
            affine[k] = Affine {
                x: self.multiply(&points[k].x, &z_inverse_squared),
                y: self.multiply(&points[k].y, &z_inverse_cubed),
            };
        }
        affine
    }
}

/// A curve `y^2 = x^3 - 3x + b` over a prime field of `N` limbs, with a
/// generator of prime order whose scalars also take `N` limbs.
struct Curve<const N: usize, const W: usize> {
    field: Field<N, W>,
    order: Field<N, W>,
    /// Bytes of a field element or a scalar, the same for all three curves.
    size: usize,
    /// The order's bit length, to which a message digest is cut.
    order_bits: usize,
    /// `k * G` for `k` from 1 to 15, affine, at index `k - 1`.
    generator_multiples: Vec<Affine<N>>,
}

impl<const N: usize, const W: usize> Curve<N, W> {
    /// Builds a curve from its field modulus, order and the generator's
    /// affine coordinates, all big-endian and `size` bytes long.
    fn new(field: &[u8], order: &[u8], generator_x: &[u8], generator_y: &[u8]) -> Option<Self> {
        let size = field.len();
        let field_inverse_exponent = minus_two(field)?;
        let field = Field::<N, W>::new(field)?;
        let order_bits = bit_length(strip_leading_zeros(order));
        let order = Field::<N, W>::new(order)?;
        // Scalars are then as long as the order, whose top byte is not zero,
        // so their bytes compare as numbers.
        if order.bytes.len() != size {
            return None;
        }
        let generator = Point {
            x: field.form(generator_x),
            y: field.form(generator_y),
            z: field.one,
        };
        let multiples = field.multiples(&generator);
        let generator_multiples = field.to_affine(&multiples[1..], &field_inverse_exponent);
        Some(Curve {
            field,
            order,
            size,
            order_bits,
            generator_multiples,
        })
    }

    /// Checks the raw `r || s` signature of `digest` with the public point
    /// `(x, y)`, which the caller has checked lies on the curve.
    fn verify(&self, x: &[u8], y: &[u8], digest: &[u8], signature: &[u8]) -> bool {
        let size = self.size;
        if signature.len() != 2 * size || x.len() != size || y.len() != size {
            return false;
        }
        let (r, s) = signature.split_at(size);
        let order = self.order.bytes.as_slice();
        let in_range = |scalar: &[u8]| scalar.iter().any(|&byte| byte != 0) && scalar < order;
        if !in_range(r) || !in_range(s) {
            return false;
        }

        // w = s^-1, u1 = e * w and u2 = r * w modulo the order. w is put in
        // Montgomery form, w * R, whose Montgomery product with a plain
        // number is plain again.
        let scalars = &self.order;
        let w = scalars.to_form(&scalars.invert(&scalars.plain(s)));
        let e = scalars.plain(&self.truncate(digest));
        let u1 = scalars.to_bytes(&scalars.multiply(&e, &w), size);
        let u2 = scalars.to_bytes(&scalars.multiply(&scalars.plain(r), &w), size);

        let field = &self.field;
        let key = Point {
            x: field.form(x),
            y: field.form(y),
            z: field.one,
        };
        let key_multiples = field.multiples(&key);
        let mut sum = Point::INFINITY;
        for (&g_byte, &q_byte) in u1.iter().zip(&u2) {
            for shift in [4, 0] {
                if !sum.is_infinity() {
                    for _ in 0..4 {
                        sum = field.double_point(&sum);
                    }
                }
                let g_digit = usize::from((g_byte >> shift) & 0xf);
                let q_digit = usize::from((q_byte >> shift) & 0xf);
                if g_digit != 0 {
                    sum = field.add_affine(&sum, &self.generator_multiples[g_digit - 1]);
                }
                if q_digit != 0 {
                    sum = field.add_points(&sum, &key_multiples[q_digit]);
                }
            }
        }
        if sum.is_infinity() {
            return false;
        }

        // The affine x is X / Z^2, reduced modulo the order before the
        // comparison, so it matches when it equals r, or r + order below the
        // field modulus. Comparing r * Z^2 with X avoids an inversion.
        let z_squared = field.square(&sum.z);
        let matches =
            |candidate: &[u8]| field.multiply(&field.form(candidate), &z_squared) == sum.x;
        if matches(r) {
            return true;
        }
        match add_bytes(r, order) {
            Some(r_plus_order) if r_plus_order.as_slice() < field.bytes.as_slice() => {
                matches(&r_plus_order)
            }
            _ => false,
        }
    }

    /// Returns the leftmost `order_bits` bits of `digest` as a number, as
    /// long as the order in bytes (SEC 1, section 4.1.4, step 5).
    fn truncate(&self, digest: &[u8]) -> Vec<u8> {
        let digest_bits = digest.len() * 8;
        let mut value = digest.to_vec();
        if digest_bits > self.order_bits {
            shift_right(&mut value, digest_bits - self.order_bits);
        }
        let mut out = vec![0u8; self.size];
        let length = value.len().min(self.size);
        out[self.size - length..].copy_from_slice(&value[value.len() - length..]);
        out
    }
}

/// Returns `value - 2`, big-endian, for a value of at least 2.
fn minus_two(value: &[u8]) -> Option<Vec<u8>> {
    let mut out = value.to_vec();
    let mut borrow = 2u16;
    for byte in out.iter_mut().rev() {
        let current = u16::from(*byte);
        if current >= borrow {
            *byte = (current - borrow) as u8;
            return Some(out);
        }
        *byte = (current + 256 - borrow) as u8;
        borrow = 1;
    }
    None
}

/// Returns `a + b` for big-endian numbers of the same length, or `None`
/// when the sum needs another byte.
fn add_bytes(a: &[u8], b: &[u8]) -> Option<Vec<u8>> {
    let mut out = vec![0u8; a.len()];
    let mut carry = 0u16;
    for ((sum, &a), &b) in out.iter_mut().zip(a).zip(b).rev() {
        let total = u16::from(a) + u16::from(b) + carry;
        *sum = total as u8;
        carry = total >> 8;
    }
    (carry == 0).then_some(out)
}

/// Shifts a big-endian number right by `bits`.
fn shift_right(value: &mut Vec<u8>, bits: usize) {
    let bytes = bits / 8;
    value.truncate(value.len().saturating_sub(bytes));
    let rest = (bits % 8) as u32;
    if rest > 0 {
        let mut carried = 0u8;
        for byte in value.iter_mut() {
            let next = *byte << (8 - rest);
            *byte = (*byte >> rest) | carried;
            carried = next;
        }
    }
}

/// Checks a raw `r || s` ECDSA signature over `message` with the public key
/// given as an uncompressed SEC1 point, hashing the message with the hash
/// that JWS pairs with the curve (RFC 7518, section 3.4). The caller has
/// checked that the point lies on the curve.
pub fn verify(curve: CurveName, point: &[u8], message: &[u8], signature: &[u8]) -> bool {
    match curve {
        CurveName::P256 => p256_curve().is_some_and(|curve| {
            curve.verify_point(point, &sha2::Sha256::digest(message), signature)
        }),
        CurveName::P384 => p384_curve().is_some_and(|curve| {
            curve.verify_point(point, &sha2::Sha384::digest(message), signature)
        }),
        CurveName::P521 => p521_curve().is_some_and(|curve| {
            curve.verify_point(point, &sha2::Sha512::digest(message), signature)
        }),
    }
}

impl<const N: usize, const W: usize> Curve<N, W> {
    /// Checks the signature of `digest` with an uncompressed SEC1 point.
    fn verify_point(&self, point: &[u8], digest: &[u8], signature: &[u8]) -> bool {
        match point.split_first() {
            Some((4, coordinates)) if coordinates.len() == 2 * self.size => {
                let (x, y) = coordinates.split_at(self.size);
                self.verify(x, y, digest, signature)
            }
            _ => false,
        }
    }
}

/// Field moduli: 2^256 - 2^224 + 2^192 + 2^96 - 1, 2^384 - 2^128 - 2^96 +
/// 2^32 - 1 and 2^521 - 1 (FIPS 186-5 and SP 800-186).
const P256_FIELD: &str = "ffffffff00000001000000000000000000000000ffffffffffffffffffffffff";
const P384_FIELD: &str = "fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffeffffffff0000000000000000ffffffff";

fn p521_field() -> Vec<u8> {
    let mut field = vec![0xff; 66];
    field[0] = 0x01;
    field
}

fn hex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .filter_map(|at| u8::from_str_radix(text.get(at..at + 2)?, 16).ok())
        .collect()
}

/// Returns `value + 1`, big-endian, for a value below the largest of its
/// length.
fn plus_one(value: &[u8]) -> Vec<u8> {
    let mut out = value.to_vec();
    for byte in out.iter_mut().rev() {
        let (sum, carry) = byte.overflowing_add(1);
        *byte = sum;
        if !carry {
            break;
        }
    }
    out
}

/// Builds a curve's parameters from its crate: the order is one more than
/// the scalar -1, and the generator comes as an uncompressed point.
macro_rules! curve_from_crate {
    ($name:ident, $krate:ident, $limbs:literal, $field:expr) => {
        fn $name() -> Option<&'static Curve<$limbs, { 2 * $limbs + 1 }>> {
            static CURVE: OnceLock<Option<Curve<$limbs, { 2 * $limbs + 1 }>>> = OnceLock::new();
            CURVE
                .get_or_init(|| {
                    use $krate::elliptic_curve::sec1::ToSec1Point as _;
                    use $krate::elliptic_curve::PrimeField as _;
                    let order = plus_one(&(-$krate::Scalar::ONE).to_repr());
                    let generator = $krate::AffinePoint::GENERATOR.to_sec1_point(false);
                    Curve::new(&$field, &order, generator.x()?, generator.y()?)
                })
                .as_ref()
        }
    };
}

// The limb counts are those `Modulus` picks: 28-bit limbs spanning at least
// two bits more than the modulus.
curve_from_crate!(p256_curve, p256, 10, hex(P256_FIELD));
curve_from_crate!(p384_curve, p384, 14, hex(P384_FIELD));
curve_from_crate!(p521_curve, p521, 19, p521_field());

#[cfg(test)]
mod tests;
