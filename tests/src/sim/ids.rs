//! Ids of generated estates, shaped like the providers' own: random version-4 UUIDs
//! (Scaleway's resources, Azure's subscriptions, principals and role assignments), made
//! deterministic by deriving them from a hash.
//!
//! Random rather than counted because the store behaves differently with counted ids:
//! they sit side by side in its `(label, id)` index, so a run's writes touch few of its
//! pages, where real ids scatter over all of them, which a micro-benchmark of the node
//! upserts measured at two to three times the work (`docs/benchmarks/connections.md`).

use std::hash::{DefaultHasher, Hash, Hasher};

/// A version-4 UUID, the same for the same arguments: `seed` tells estates apart, `kind`
/// the kinds of resource in one, `n` the resource.
pub(crate) fn uuid(seed: u64, kind: u32, n: u64) -> String {
    let (hi, lo) = (mix(seed, kind, n, 0), mix(seed, kind, n, 1));
    let hi = (hi & !0xf000) | 0x4000; // version 4
    let lo = (lo & !(0xc << 60)) | (0x8 << 60); // variant 10
    format!(
        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        hi >> 32,
        (hi >> 16) & 0xffff,
        hi & 0xffff,
        lo >> 48,
        lo & 0xffff_ffff_ffff
    )
}

/// 64 well-mixed bits of the arguments, the same for the same arguments in one build.
pub(crate) fn mix(seed: u64, kind: u32, n: u64, half: u8) -> u64 {
    let mut hasher = DefaultHasher::new();
    (seed, kind, n, half).hash(&mut hasher);
    hasher.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_v4_uuids_the_same_each_time_and_apart_for_other_arguments() {
        let id = uuid(3, 0x10, 7);
        assert_eq!(id, uuid(3, 0x10, 7));
        let groups: Vec<&str> = id.split('-').collect();
        let lens: Vec<usize> = groups.iter().map(|g| g.len()).collect();
        assert_eq!(lens, [8, 4, 4, 4, 12], "{id}");
        assert!(groups[2].starts_with('4'), "version 4: {id}");
        assert!("89ab".contains(&groups[3][..1]), "variant 10: {id}");
        let others = [uuid(4, 0x10, 7), uuid(3, 0x11, 7), uuid(3, 0x10, 8)];
        assert!(others.iter().all(|o| *o != id), "{others:?} against {id}");
        // Scattered, not in counting order with shared prefixes as counted ids would be.
        let ids: Vec<String> = (0..64).map(|n| uuid(3, 0x10, n)).collect();
        assert!(!ids.is_sorted(), "{ids:?}");
        let prefixes: std::collections::HashSet<&str> = ids.iter().map(|i| &i[..4]).collect();
        assert!(prefixes.len() > 32, "{prefixes:?}");
    }
}
