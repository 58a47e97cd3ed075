//! Keeping per-process maps bounded: a Lambda or a service that sees 100,000
//! workspaces must not keep an entry for each forever.

use std::collections::HashMap;
use std::hash::Hash;

/// Drops entries of `map` until at most `keep` remain, lowest `rank` first;
/// entries ranked `None` are never dropped (so fewer may go). Returns how
/// many went. O(n): callers run it once per many inserts, not per insert.
pub(crate) fn trim<K: Eq + Hash, V>(
    map: &mut HashMap<K, V>,
    keep: usize,
    rank: impl Fn(&K, &V) -> Option<u64>,
) -> usize {
    let excess = map.len().saturating_sub(keep);
    if excess == 0 {
        return 0;
    }
    let mut ranks: Vec<u64> = map.iter().filter_map(|(k, v)| rank(k, v)).collect();
    let n = excess.min(ranks.len());
    if n == 0 {
        return 0;
    }
    let cutoff = *ranks.select_nth_unstable(n - 1).1;
    // Ties at the cutoff: only as many as still need to go.
    let below = ranks.iter().filter(|&&r| r < cutoff).count();
    let mut ties = n - below;
    let before = map.len();
    map.retain(|k, v| match rank(k, v) {
        Some(r) if r < cutoff => false,
        Some(r) if r == cutoff && ties > 0 => {
            ties -= 1;
            false
        }
        _ => true,
    });
    before - map.len()
}

/// When a map that purges lazily should purge next: twice the size it had
/// after the last purge, and never below `floor`, so the work per insert
/// stays constant however large the map grows.
pub(crate) fn next_purge(len_after: usize, floor: usize) -> usize {
    len_after.saturating_mul(2).max(floor)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trim_drops_the_lowest_ranks_and_never_the_unranked() {
        let mut m: HashMap<u32, Option<u64>> = (0..10).map(|i| (i, Some(u64::from(i)))).collect();
        m.insert(100, None);
        m.insert(101, None);
        assert_eq!(trim(&mut m, 5, |_, v| *v), 7);
        let mut left: Vec<u32> = m.keys().copied().collect();
        left.sort_unstable();
        assert_eq!(left, [7, 8, 9, 100, 101]);
        // Nothing ranked is left to drop: the unranked stay, over `keep`.
        let mut only_unranked: HashMap<u32, Option<u64>> = [(1, None), (2, None)].into();
        assert_eq!(trim(&mut only_unranked, 0, |_, v| *v), 0);
        assert_eq!(only_unranked.len(), 2);
    }

    #[test]
    fn ties_at_the_cutoff_go_only_as_far_as_needed() {
        let mut m: HashMap<u32, u64> = (0..10).map(|i| (i, 7)).collect();
        assert_eq!(trim(&mut m, 4, |_, v| Some(*v)), 6);
        assert_eq!(m.len(), 4);
        assert_eq!(trim(&mut m, 4, |_, v| Some(*v)), 0);
    }

    #[test]
    fn purges_grow_with_the_map() {
        assert_eq!(next_purge(0, 1024), 1024);
        assert_eq!(next_purge(5000, 1024), 10_000);
    }
}
