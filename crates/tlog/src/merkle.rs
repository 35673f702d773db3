//! RFC 6962 Merkle trees (as RFC 9162 restates them): hashing, the complete subtrees a range of
//! leaves is made of, and inclusion and consistency proofs.
//!
//! The store keeps one hash per complete subtree (a [`NodeId`]: `2^level` leaves starting at
//! `index << level`), written once when its last leaf arrives and never changed. Every hash a
//! proof or a root needs is the hash of a range `[lo, hi)` that the RFC's recursion produces,
//! and such a range is a run of complete subtrees of decreasing size ([`complete_subtrees`]),
//! so proofs are made from stored hashes alone: [`inclusion_ranges`] / [`consistency_ranges`]
//! say which ranges, [`range_hash`] folds each from its subtrees. Nothing here holds the tree.

use sha2::{Digest, Sha256};

/// A SHA-256 tree hash.
pub type Hash = [u8; 32];

/// A complete subtree: the `2^level` leaves from `index << level`. Level 0 is a leaf.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId {
    /// Height above the leaves.
    pub level: u8,
    /// Position among the subtrees of its level, from 0.
    pub index: u64,
}

/// Why a proof did not check.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    /// The sizes or index make no proof (leaf beyond the tree, old tree larger than new).
    #[error("no such proof: {0}")]
    Impossible(String),
    /// The proof has the wrong number of hashes for these sizes.
    #[error("the proof has {got} hashes, {want} expected")]
    WrongLength {
        /// Hashes given.
        got: usize,
        /// Hashes these sizes need.
        want: usize,
    },
    /// The proof leads to another root.
    #[error("the proof leads to another root")]
    Mismatch,
}

/// The hash of the empty tree: SHA-256 of nothing.
pub fn empty_root() -> Hash {
    Sha256::digest([]).into()
}

/// A leaf's hash: SHA-256(0x00 ‖ entry).
pub fn leaf_hash(entry: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([0u8]);
    h.update(entry);
    h.finalize().into()
}

/// An interior node's hash: SHA-256(0x01 ‖ left ‖ right).
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([1u8]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// The root of a tree of these leaf hashes (MTH), computed in full: for tests and small trees.
pub fn root(leaves: &[Hash]) -> Hash {
    match leaves.len() {
        0 => empty_root(),
        1 => leaves[0],
        n => {
            let k = split(n as u64) as usize;
            node_hash(&root(&leaves[..k]), &root(&leaves[k..]))
        }
    }
}

/// The largest power of two smaller than `n` (n ≥ 2): where RFC 6962 splits a tree.
fn split(n: u64) -> u64 {
    debug_assert!(n >= 2);
    1u64 << (63 - (n - 1).leading_zeros())
}

/// The complete subtrees `[lo, hi)` is made of, left to right, largest first: each as large as
/// `lo`'s alignment and the rest of the range allow.
pub fn complete_subtrees(mut lo: u64, hi: u64) -> Vec<NodeId> {
    let mut out = Vec::new();
    while lo < hi {
        let mut level = if lo == 0 { 63 } else { lo.trailing_zeros() };
        while level > 0 && (1u64 << level) > hi - lo {
            level -= 1;
        }
        out.push(NodeId {
            level: level as u8,
            index: lo >> level,
        });
        lo += 1u64 << level;
    }
    out
}

/// MTH of leaves `[lo, hi)`, a range the RFC's recursion produces (`lo` a multiple of a power
/// of two at least `hi - lo`), from its complete subtrees' hashes: the last, then each earlier
/// one as the left child of what is to its right.
pub fn range_hash(lo: u64, hi: u64, get: &mut impl FnMut(NodeId) -> Hash) -> Hash {
    if lo == hi {
        return empty_root();
    }
    let nodes = complete_subtrees(lo, hi);
    let mut it = nodes.iter().rev();
    let mut acc = get(*it.next().expect("a non-empty range has a subtree"));
    for n in it {
        acc = node_hash(&get(*n), &acc);
    }
    acc
}

/// The root of a tree of `size` leaves from its stored subtrees.
pub fn tree_root(size: u64, get: &mut impl FnMut(NodeId) -> Hash) -> Hash {
    range_hash(0, size, get)
}

/// The complete subtrees `ranges` need, each once, for one fetch from the store.
pub fn nodes_for(ranges: &[(u64, u64)]) -> Vec<NodeId> {
    let mut v: Vec<NodeId> = ranges
        .iter()
        .flat_map(|&(lo, hi)| complete_subtrees(lo, hi))
        .collect();
    v.sort();
    v.dedup();
    v
}

/// The ranges whose hashes make the inclusion proof of leaf `index` in a tree of `size`
/// (RFC 9162 2.1.3.1, PATH), in proof order.
pub fn inclusion_ranges(index: u64, size: u64) -> Result<Vec<(u64, u64)>, ProofError> {
    if index >= size {
        return Err(ProofError::Impossible(format!(
            "leaf {index} is not in a tree of {size}"
        )));
    }
    let mut out = Vec::new();
    path(index, 0, size, &mut out);
    Ok(out)
}

/// PATH(m, D[lo:hi]), appended to `out` deepest first.
fn path(m: u64, lo: u64, hi: u64, out: &mut Vec<(u64, u64)>) {
    let n = hi - lo;
    if n <= 1 {
        return;
    }
    let k = split(n);
    if m < k {
        path(m, lo, lo + k, out);
        out.push((lo + k, hi));
    } else {
        path(m - k, lo + k, hi, out);
        out.push((lo, lo + k));
    }
}

/// The ranges whose hashes make the consistency proof from a tree of `old` leaves to one of
/// `new` (RFC 9162 2.1.4.1, PROOF), in proof order. Empty when `old` is 0 or equals `new`.
pub fn consistency_ranges(old: u64, new: u64) -> Result<Vec<(u64, u64)>, ProofError> {
    if old > new {
        return Err(ProofError::Impossible(format!(
            "a tree of {old} is not a prefix of one of {new}"
        )));
    }
    let mut out = Vec::new();
    if old > 0 && old < new {
        subproof(old, 0, new, true, &mut out);
    }
    Ok(out)
}

/// SUBPROOF(m, D[lo:hi], b).
fn subproof(m: u64, lo: u64, hi: u64, whole: bool, out: &mut Vec<(u64, u64)>) {
    let n = hi - lo;
    if m == n {
        if !whole {
            out.push((lo, hi));
        }
        return;
    }
    let k = split(n);
    if m <= k {
        subproof(m, lo, lo + k, whole, out);
        out.push((lo + k, hi));
    } else {
        subproof(m - k, lo + k, hi, false, out);
        out.push((lo, lo + k));
    }
}

/// Checks that `leaf` is at `index` in the tree of `size` with `root` (RFC 9162 2.1.3.2).
pub fn verify_inclusion(
    leaf: &Hash,
    index: u64,
    size: u64,
    proof: &[Hash],
    root: &Hash,
) -> Result<(), ProofError> {
    let want = inclusion_ranges(index, size)?.len();
    if proof.len() != want {
        return Err(ProofError::WrongLength {
            got: proof.len(),
            want,
        });
    }
    let (mut f, mut s) = (index, size - 1);
    let mut r = *leaf;
    for p in proof {
        if s == 0 {
            return Err(ProofError::Mismatch);
        }
        if f & 1 == 1 || f == s {
            r = node_hash(p, &r);
            while f & 1 == 0 && f != 0 {
                f >>= 1;
                s >>= 1;
            }
        } else {
            r = node_hash(&r, p);
        }
        f >>= 1;
        s >>= 1;
    }
    if s == 0 && &r == root {
        Ok(())
    } else {
        Err(ProofError::Mismatch)
    }
}

/// Checks that the tree of `old` leaves with `old_root` is a prefix of the tree of `new` with
/// `new_root` (RFC 9162 2.1.4.2). From the empty tree every tree follows (empty proof); equal
/// sizes need an empty proof and equal roots.
pub fn verify_consistency(
    old: u64,
    new: u64,
    old_root: &Hash,
    new_root: &Hash,
    proof: &[Hash],
) -> Result<(), ProofError> {
    let want = consistency_ranges(old, new)?.len();
    if proof.len() != want {
        return Err(ProofError::WrongLength {
            got: proof.len(),
            want,
        });
    }
    if old == 0 {
        return Ok(());
    }
    if old == new {
        return if old_root == new_root {
            Ok(())
        } else {
            Err(ProofError::Mismatch)
        };
    }
    // When the old tree is a complete subtree its root is the path's first hash (the RFC
    // leaves it out of the proof).
    let mut path: Vec<Hash> = Vec::with_capacity(proof.len() + 1);
    if old.is_power_of_two() {
        path.push(*old_root);
    }
    path.extend_from_slice(proof);
    let (mut f, mut s) = (old - 1, new - 1);
    while f & 1 == 1 {
        f >>= 1;
        s >>= 1;
    }
    let (mut fr, mut sr) = (path[0], path[0]);
    for c in &path[1..] {
        if s == 0 {
            return Err(ProofError::Mismatch);
        }
        if f & 1 == 1 || f == s {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            while f & 1 == 0 && f != 0 {
                f >>= 1;
                s >>= 1;
            }
        } else {
            sr = node_hash(&sr, c);
        }
        f >>= 1;
        s >>= 1;
    }
    if &fr == old_root && &sr == new_root && s == 0 {
        Ok(())
    } else {
        Err(ProofError::Mismatch)
    }
}

/// The complete subtrees that become whole when leaves `from..to` are appended to a tree of
/// `from` leaves: each new leaf, and every subtree whose last leaf is among them. Stored once,
/// they are never changed. `get` reads those already stored (left siblings), `leaves` are the
/// new leaves' hashes; returns the new subtrees in the order they were completed.
pub fn appended(
    from: u64,
    leaves: &[Hash],
    get: &mut impl FnMut(NodeId) -> Hash,
) -> Vec<(NodeId, Hash)> {
    let mut out: Vec<(NodeId, Hash)> = Vec::with_capacity(leaves.len() * 2);
    let mut made = std::collections::HashMap::<NodeId, Hash>::new();
    for (i, leaf) in leaves.iter().enumerate() {
        let mut id = NodeId {
            level: 0,
            index: from + i as u64,
        };
        let mut h = *leaf;
        out.push((id, h));
        made.insert(id, h);
        // A right child completes its parent.
        while id.index & 1 == 1 {
            let left = NodeId {
                level: id.level,
                index: id.index - 1,
            };
            let lh = match made.get(&left) {
                Some(x) => *x,
                None => get(left),
            };
            h = node_hash(&lh, &h);
            id = NodeId {
                level: id.level + 1,
                index: id.index >> 1,
            };
            out.push((id, h));
            made.insert(id, h);
        }
    }
    out
}

/// The stored subtrees a tree of `size` leaves needs to grow: its right edge, the complete
/// subtrees [`appended`] may ask for.
pub fn frontier(size: u64) -> Vec<NodeId> {
    complete_subtrees(0, size)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn leaves(n: u64) -> Vec<Hash> {
        (0..n).map(|i| leaf_hash(&i.to_be_bytes())).collect()
    }

    /// Every complete subtree of `leaves`, as the store would hold them.
    fn store(l: &[Hash]) -> HashMap<NodeId, Hash> {
        let mut m = HashMap::new();
        for (id, h) in appended(0, l, &mut |_| unreachable!("all in one go")) {
            m.insert(id, h);
        }
        m
    }

    #[test]
    fn the_empty_tree_hashes_to_sha256_of_nothing() {
        assert_eq!(
            hex(&empty_root()),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    fn hex(h: &Hash) -> String {
        h.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn roots_from_stored_subtrees_match_the_recursive_definition() {
        let l = leaves(300);
        let s = store(&l);
        for n in 0..=300u64 {
            let r = tree_root(n, &mut |id| s[&id]);
            assert_eq!(r, root(&l[..n as usize]), "size {n}");
        }
    }

    #[test]
    fn appending_in_pieces_stores_the_same_subtrees_as_at_once() {
        let l = leaves(200);
        let whole = store(&l);
        let mut s = HashMap::new();
        let mut from = 0usize;
        for step in [1usize, 2, 3, 7, 64, 1, 122] {
            let got = appended(from as u64, &l[from..from + step], &mut |id| s[&id]);
            for (id, h) in got {
                assert!(s.insert(id, h).is_none(), "{id:?} stored twice");
            }
            from += step;
        }
        assert_eq!(s, whole);
    }

    #[test]
    fn inclusion_proofs_verify_and_fail_when_changed() {
        let l = leaves(70);
        let s = store(&l);
        for n in 1..=70u64 {
            let r = root(&l[..n as usize]);
            for i in 0..n {
                let proof: Vec<Hash> = inclusion_ranges(i, n)
                    .unwrap()
                    .iter()
                    .map(|&(a, b)| range_hash(a, b, &mut |id| s[&id]))
                    .collect();
                verify_inclusion(&l[i as usize], i, n, &proof, &r).unwrap();
                assert!(verify_inclusion(&l[(i as usize + 1) % 70], i, n, &proof, &r).is_err());
                if let Some(first) = proof.first() {
                    let mut bad = proof.clone();
                    bad[0] = node_hash(first, first);
                    assert_eq!(
                        verify_inclusion(&l[i as usize], i, n, &bad, &r),
                        Err(ProofError::Mismatch)
                    );
                }
            }
        }
    }

    #[test]
    fn consistency_proofs_verify_and_refuse_a_fork() {
        let l = leaves(70);
        let s = store(&l);
        let mut forked = l.clone();
        forked[5] = leaf_hash(b"fork");
        for new in 1..=70u64 {
            let nr = root(&l[..new as usize]);
            for old in 0..=new {
                let or = root(&l[..old as usize]);
                let proof: Vec<Hash> = consistency_ranges(old, new)
                    .unwrap()
                    .iter()
                    .map(|&(a, b)| range_hash(a, b, &mut |id| s[&id]))
                    .collect();
                verify_consistency(old, new, &or, &nr, &proof).unwrap();
                if old > 5 {
                    let fr = root(&forked[..old as usize]);
                    assert!(verify_consistency(old, new, &fr, &nr, &proof).is_err());
                }
            }
        }
        assert!(verify_consistency(5, 4, &l[0], &l[0], &[]).is_err());
    }

    #[test]
    fn a_range_is_made_of_aligned_complete_subtrees() {
        assert_eq!(
            complete_subtrees(0, 7),
            vec![
                NodeId { level: 2, index: 0 },
                NodeId { level: 1, index: 2 },
                NodeId { level: 0, index: 6 }
            ]
        );
        assert_eq!(
            complete_subtrees(8, 12),
            vec![NodeId { level: 2, index: 2 }]
        );
    }
}
