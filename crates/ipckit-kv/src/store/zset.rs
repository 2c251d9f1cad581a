//! A sorted set: members ordered by (score, member), as Redis orders them.
//!
//! Two structures share each member (an `Arc<[u8]>`, one allocation): a hash map member ->
//! score (ZSCORE in O(1)) and a B-tree of (score, member) (insert, remove, pop and range in
//! O(log n)). ZRANGE by index walks from the nearer end, O(log n + offset + count) (Redis's
//! skip list has O(log n) ranks; here the middle of a large set costs its offset).
//!
//! Scores are never NaN (commands refuse them, as Redis does) and `-0` is stored as `0`, so
//! the order is total and equals Redis's (score, then member bytes).
//!
//! ```
//! use ipckit_kv::store::ZSet;
//! let mut z = ZSet::new();
//! z.insert(b"b", 1.0);
//! z.insert(b"a", 1.0);
//! z.insert(b"c", 0.5);
//! let order: Vec<&[u8]> = z.iter().map(|(m, _)| m).collect();
//! assert_eq!(order, vec![&b"c"[..], b"a", b"b"]);
//! assert_eq!(z.pop_min(), Some((b"c".to_vec(), 0.5)));
//! assert_eq!(z.score(b"a"), Some(1.0));
//! ```

use std::borrow::Borrow;
use std::cmp::Ordering;
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

/// What one member costs besides its bytes, in the memory estimate.
const MEMBER_OVERHEAD: u64 = 64;

/// A score that is never NaN, ordered as Redis compares scores.
#[derive(Debug, Clone, Copy)]
struct Score(f64);

impl PartialEq for Score {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Score {}
impl PartialOrd for Score {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Score {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.partial_cmp(&other.0).unwrap_or(Ordering::Equal)
    }
}

#[derive(Debug, Clone)]
struct Item {
    score: Score,
    member: Arc<[u8]>,
}

/// A borrowed (score, member): what the B-tree is searched with, so no member is copied to
/// find one.
trait ItemKey {
    fn key(&self) -> (Score, &[u8]);
}
impl ItemKey for Item {
    fn key(&self) -> (Score, &[u8]) {
        (self.score, &self.member)
    }
}
impl ItemKey for (Score, &[u8]) {
    fn key(&self) -> (Score, &[u8]) {
        (self.0, self.1)
    }
}
impl<'a> Borrow<dyn ItemKey + 'a> for Item {
    fn borrow(&self) -> &(dyn ItemKey + 'a) {
        self
    }
}
impl PartialEq for dyn ItemKey + '_ {
    fn eq(&self, other: &Self) -> bool {
        self.key() == other.key()
    }
}
impl Eq for dyn ItemKey + '_ {}
impl PartialOrd for dyn ItemKey + '_ {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for dyn ItemKey + '_ {
    fn cmp(&self, other: &Self) -> Ordering {
        self.key().cmp(&other.key())
    }
}
impl PartialEq for Item {
    fn eq(&self, other: &Self) -> bool {
        self.key() == other.key()
    }
}
impl Eq for Item {}
impl PartialOrd for Item {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Item {
    fn cmp(&self, other: &Self) -> Ordering {
        self.key().cmp(&other.key())
    }
}

/// A sorted set.
#[derive(Debug, Clone, Default)]
pub struct ZSet {
    scores: HashMap<Arc<[u8]>, f64>,
    order: BTreeSet<Item>,
    bytes: u64,
}

impl PartialEq for ZSet {
    fn eq(&self, other: &Self) -> bool {
        self.scores == other.scores
    }
}

/// `-0` as `0` (Redis prints a stored `-0` as `0`).
fn norm(score: f64) -> f64 {
    if score == 0.0 { 0.0 } else { score }
}

impl ZSet {
    /// An empty sorted set.
    pub fn new() -> ZSet {
        ZSet::default()
    }

    /// How many members.
    pub fn len(&self) -> usize {
        self.scores.len()
    }

    /// Whether it has no members.
    pub fn is_empty(&self) -> bool {
        self.scores.is_empty()
    }

    /// Roughly how many bytes it takes.
    pub fn approx_bytes(&self) -> u64 {
        self.bytes
    }

    /// The member's score.
    pub fn score(&self, member: &[u8]) -> Option<f64> {
        self.scores.get(member).copied()
    }

    /// Sets the member's score (adding it if new); its previous score if it had one.
    /// `score` must not be NaN.
    pub fn insert(&mut self, member: &[u8], score: f64) -> Option<f64> {
        debug_assert!(!score.is_nan());
        let score = norm(score);
        if let Some(old) = self.scores.get(member).copied() {
            if old == score {
                return Some(old);
            }
            let item = self
                .order
                .take(&(Score(old), member) as &dyn ItemKey)
                .expect("the two sides hold the same members");
            self.order.insert(Item {
                score: Score(score),
                member: item.member,
            });
            *self.scores.get_mut(member).expect("looked up above") = score;
            return Some(old);
        }
        let m: Arc<[u8]> = Arc::from(member);
        self.order.insert(Item {
            score: Score(score),
            member: m.clone(),
        });
        self.scores.insert(m, score);
        self.bytes += member.len() as u64 + MEMBER_OVERHEAD;
        None
    }

    /// Removes the member; its score if it was there.
    pub fn remove(&mut self, member: &[u8]) -> Option<f64> {
        let score = self.scores.remove(member)?;
        self.order.remove(&(Score(score), member) as &dyn ItemKey);
        self.bytes = self
            .bytes
            .saturating_sub(member.len() as u64 + MEMBER_OVERHEAD);
        Some(score)
    }

    fn take(&mut self, item: Item) -> (Vec<u8>, f64) {
        self.scores.remove(&item.member);
        self.bytes = self
            .bytes
            .saturating_sub(item.member.len() as u64 + MEMBER_OVERHEAD);
        (item.member.to_vec(), item.score.0)
    }

    /// Removes and returns the lowest (score, member).
    pub fn pop_min(&mut self) -> Option<(Vec<u8>, f64)> {
        let item = self.order.pop_first()?;
        Some(self.take(item))
    }

    /// Removes and returns the highest (score, member).
    pub fn pop_max(&mut self) -> Option<(Vec<u8>, f64)> {
        let item = self.order.pop_last()?;
        Some(self.take(item))
    }

    /// Every member with its score, lowest first.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = (&[u8], f64)> {
        self.order.iter().map(|i| (&*i.member, i.score.0))
    }

    /// Members at ranks `start..=stop` (0-based, already clamped to the set), lowest first
    /// (`rev`: highest first), walking from the nearer end.
    pub fn range_by_rank(&self, start: usize, stop: usize, rev: bool) -> Vec<(&[u8], f64)> {
        let n = self.len();
        if start > stop || start >= n {
            return Vec::new();
        }
        let stop = stop.min(n - 1);
        let count = stop - start + 1;
        // Rank r from the low end when !rev; from the high end when rev.
        let from_low = if rev { n - 1 - stop } else { start };
        let mut out: Vec<(&[u8], f64)> = if from_low <= n - 1 - (from_low + count - 1) {
            self.iter().skip(from_low).take(count).collect()
        } else {
            let mut v: Vec<_> = self
                .iter()
                .rev()
                .skip(n - from_low - count)
                .take(count)
                .collect();
            v.reverse();
            v
        };
        if rev {
            out.reverse();
        }
        out
    }

    /// Members with `min <= score <= max` (each bound exclusive when its flag says so),
    /// lowest first, or highest first with `rev`.
    pub fn range_by_score(
        &self,
        min: f64,
        min_excl: bool,
        max: f64,
        max_excl: bool,
        rev: bool,
    ) -> Vec<(&[u8], f64)> {
        let inside = |s: f64| {
            (if min_excl { s > min } else { s >= min })
                && (if max_excl { s < max } else { s <= max })
        };
        if min > max || min.is_nan() || max.is_nan() {
            return Vec::new();
        }
        let lo: &dyn ItemKey = &(Score(norm(min)), &b""[..]);
        let range = self
            .order
            .range::<dyn ItemKey, _>((std::ops::Bound::Included(lo), std::ops::Bound::Unbounded));
        let mut out: Vec<(&[u8], f64)> = range
            .map(|i| (&*i.member, i.score.0))
            .skip_while(|(_, s)| !inside(*s))
            .take_while(|(_, s)| inside(*s))
            .collect();
        if rev {
            out.reverse();
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insert_update_remove_keep_both_sides_in_step() {
        let mut z = ZSet::new();
        assert_eq!(z.insert(b"a", 3.0), None);
        assert_eq!(z.insert(b"b", 1.0), None);
        assert_eq!(z.insert(b"a", 0.0), Some(3.0));
        assert_eq!(z.insert(b"c", -0.0), None);
        assert_eq!(z.score(b"c").map(f64::to_bits), Some(0f64.to_bits()));
        let order: Vec<(&[u8], f64)> = z.iter().collect();
        assert_eq!(
            order,
            vec![(&b"a"[..], 0.0), (&b"c"[..], 0.0), (&b"b"[..], 1.0)]
        );
        assert_eq!(z.remove(b"c"), Some(0.0));
        assert_eq!(z.remove(b"c"), None);
        assert_eq!(z.order.len(), z.len());
        assert_eq!(z.pop_max(), Some((b"b".to_vec(), 1.0)));
        assert_eq!(z.pop_min(), Some((b"a".to_vec(), 0.0)));
        assert!(z.is_empty());
        assert_eq!(z.approx_bytes(), 0);
    }

    #[test]
    fn ranges() {
        let mut z = ZSet::new();
        for i in 0..10 {
            z.insert(format!("m{i}").as_bytes(), i as f64);
        }
        let names = |v: Vec<(&[u8], f64)>| -> Vec<String> {
            v.into_iter()
                .map(|(m, _)| String::from_utf8(m.to_vec()).unwrap())
                .collect()
        };
        assert_eq!(names(z.range_by_rank(0, 1, false)), ["m0", "m1"]);
        assert_eq!(names(z.range_by_rank(7, 20, false)), ["m7", "m8", "m9"]);
        assert_eq!(names(z.range_by_rank(0, 1, true)), ["m9", "m8"]);
        assert_eq!(names(z.range_by_rank(8, 9, true)), ["m1", "m0"]);
        assert_eq!(names(z.range_by_rank(3, 2, false)), Vec::<String>::new());
        assert_eq!(
            names(z.range_by_score(2.0, true, 4.0, false, false)),
            ["m3", "m4"]
        );
        assert_eq!(
            names(z.range_by_score(f64::NEG_INFINITY, false, 1.0, false, true)),
            ["m1", "m0"]
        );
    }
}
