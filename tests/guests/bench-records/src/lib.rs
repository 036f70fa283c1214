//! The records of the emit benchmark, built by the same code on both of its sides: the
//! `emit-bench` guest (compiled to wasm) and the native baseline in `infragraph-tests`.
//! Sharing the code keeps the two sides' records identical by construction, and makes
//! the benchmark compare what it is about, the way records leave a plugin, rather than
//! two builds of different code.
//!
//! Text values are zero-padded numbers, their digits written into a small buffer and
//! appended at once: `format!("{i:011}")` pads through `core::fmt`'s character-at-a-time
//! path, which in wasm cost more than everything else the guest did (see the README's
//! benchmark notes). Real plugins take their strings from parsed responses, not from
//! padded formatting.

#![no_std]

extern crate alloc;

use alloc::string::String;

/// The node label.
pub const LABEL: &str = "BenchNode";
/// The relationship type of the edges.
pub const LINKS: &str = "LINKS";
/// The property names, in the order every node sets them.
pub const COLUMNS: [&str; 10] = ["p0", "p1", "p2", "p3", "p4", "p5", "p6", "p7", "p8", "p9"];
/// The edge property.
pub const WEIGHT: &str = "weight";

/// One property value of a benchmark node. Text is lent from a [`Scratch`] buffer, as a
/// plugin lends the strings of a response it parsed: each side copies it where it
/// belongs (the plugin into its batch, the native baseline into an owned `String`).
#[derive(Debug, Clone, PartialEq)]
pub enum Prop<'a> {
    Text(&'a str),
    Int(i64),
    Float(f64),
    Bool(bool),
}

/// Node `i`'s key: `n<i>`, owned.
pub fn id(i: u64) -> String {
    let mut s = String::with_capacity(21);
    s.push('n');
    decimal(&mut s, i, 1);
    s
}

/// A buffer the records' strings are written into, one at a time, and lent from.
#[derive(Debug, Default)]
pub struct Scratch {
    buf: String,
}

impl Scratch {
    /// Node `i`'s key, as [`id`].
    pub fn id(&mut self, i: u64) -> &str {
        self.buf.clear();
        self.buf.push('n');
        decimal(&mut self.buf, i, 1);
        &self.buf
    }

    /// Node `i`'s ten properties, in [`COLUMNS`] order, each handed to `set`.
    #[inline]
    pub fn props(&mut self, i: u64, mut set: impl FnMut(&'static str, Prop<'_>)) {
        let n = i as i64;
        set(COLUMNS[0], Prop::Text(self.padded("name-", i)));
        set(COLUMNS[1], Prop::Int(n));
        set(COLUMNS[2], Prop::Text(self.padded("zone-", i % 97)));
        set(COLUMNS[3], Prop::Int(n * 7));
        set(COLUMNS[4], Prop::Float(i as f64 * 0.5));
        set(COLUMNS[5], Prop::Bool(i.is_multiple_of(2)));
        set(COLUMNS[6], Prop::Text(self.padded("type-", i % 13)));
        set(COLUMNS[7], Prop::Int(n % 1_000));
        set(COLUMNS[8], Prop::Text(self.hex16(i)));
        set(COLUMNS[9], Prop::Int(-n));
    }

    /// `prefix` then `v` in eleven decimal digits, zero-padded: `format!("{prefix}{v:011}")`.
    fn padded(&mut self, prefix: &str, v: u64) -> &str {
        self.buf.clear();
        self.buf.push_str(prefix);
        decimal(&mut self.buf, v, 11);
        &self.buf
    }

    /// `v` in sixteen lower-case hex digits: `format!("{v:016x}")`.
    fn hex16(&mut self, v: u64) -> &str {
        let mut digits = [0u8; 16];
        for (i, d) in digits.iter_mut().enumerate() {
            let nibble = ((v >> ((15 - i) * 4)) & 0xf) as u8;
            *d = if nibble < 10 {
                b'0' + nibble
            } else {
                b'a' + nibble - 10
            };
        }
        self.buf.clear();
        self.buf.push_str(ascii(&digits));
        &self.buf
    }
}

/// The ends of edge `k` among `count` nodes: two edges leave each node `i`, to
/// `(7i + 1) % count` and to `(13i + 5) % count` (moved on by one where both land on the
/// same node, so that no (from, type, to) repeats and a plain INSERT baseline meets no
/// duplicate).
pub fn link(k: u64, count: u64) -> (u64, u64) {
    let i = (k / 2) % count;
    let a = (i * 7 + 1) % count;
    let b = (i * 13 + 5) % count;
    let to = match k % 2 {
        0 => a,
        _ if b == a => (b + 1) % count,
        _ => b,
    };
    (i, to)
}

/// Appends `v` in decimal, zero-padded to `width` digits (at most 20). The digits are
/// written into a small buffer and appended at once: pushing them a `char` at a time
/// costs a capacity check and an encoding branch per digit.
fn decimal(s: &mut String, mut v: u64, width: usize) {
    let mut digits = [b'0'; 20];
    let mut at = digits.len();
    while v > 0 {
        at -= 1;
        digits[at] = b'0' + (v % 10) as u8;
        v /= 10;
    }
    at = at.min(digits.len() - width.min(digits.len()));
    s.push_str(ascii(&digits[at..]));
}

/// Digits as text. They are ASCII by construction, so checking them again as UTF-8
/// (which in wasm cost more than writing them) is skipped.
fn ascii(digits: &[u8]) -> &str {
    debug_assert!(digits.is_ascii());
    // SAFETY: every caller passes only the ASCII digits `0-9` and `a-f`.
    unsafe { core::str::from_utf8_unchecked(digits) }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use std::format;

    use super::*;

    #[test]
    fn strings_match_format() {
        for i in [
            0,
            1,
            9,
            10,
            96,
            12_345,
            999_999,
            u64::from(u32::MAX),
            u64::MAX,
        ] {
            let mut s = Scratch::default();
            assert_eq!(id(i), format!("n{i}"));
            assert_eq!(s.id(i), format!("n{i}"));
            assert_eq!(s.padded("name-", i), format!("name-{i:011}"));
            assert_eq!(s.hex16(i), format!("{i:016x}"));
        }
    }

    #[test]
    fn two_edges_per_node_never_repeat() {
        // Collisions of the two targets occur for some counts (6i + 4 = 0 mod count).
        for count in [10, 1_000, 10_000] {
            let mut seen = std::collections::HashSet::new();
            for k in 0..2 * count {
                assert!(seen.insert(link(k, count)), "edge {k} of {count} repeats");
            }
        }
    }
}
