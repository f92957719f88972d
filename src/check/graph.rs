//! Graph algorithms of the liveness checker, on plain compressed adjacency (CSR) arrays so they
//! can be unit-tested on small hand-made graphs: strongly connected components (iterative
//! Tarjan: no recursion, so no stack limit on deep graphs), and the weak-fairness test of a
//! component.

/// A directed graph in compressed sparse row form: the successors of `v` are
/// `targets[start[v]..start[v + 1]]`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct Csr {
    /// Offsets, one per node plus one.
    pub start: Vec<u32>,
    /// Successor lists, concatenated.
    pub targets: Vec<u32>,
}

impl Csr {
    /// A graph from adjacency lists.
    #[cfg(test)]
    pub(super) fn from_lists(lists: &[Vec<u32>]) -> Self {
        let mut g = Csr {
            start: vec![0],
            targets: Vec::new(),
        };
        for l in lists {
            g.targets.extend_from_slice(l);
            g.start.push(g.targets.len() as u32);
        }
        g
    }

    /// Number of nodes.
    pub(super) fn len(&self) -> usize {
        self.start.len().saturating_sub(1)
    }

    /// The successors of `v`.
    pub(super) fn succ(&self, v: u32) -> &[u32] {
        &self.targets[self.start[v as usize] as usize..self.start[v as usize + 1] as usize]
    }
}

/// Marks a node that no component contains (it was left out).
pub(super) const NO_COMPONENT: u32 = u32::MAX;

/// Strongly connected components of the nodes for which `include` holds (edges to excluded
/// nodes are ignored). Returns each node's component number ([`NO_COMPONENT`] if excluded) and
/// the number of components. Components are numbered in the order Tarjan's algorithm completes
/// them: a component's successors (outside it) always have smaller numbers.
pub(super) fn sccs(g: &Csr, include: impl Fn(u32) -> bool) -> (Vec<u32>, u32) {
    const UNSEEN: u32 = u32::MAX;
    let n = g.len();
    let mut index = vec![UNSEEN; n];
    let mut low = vec![0u32; n];
    let mut on_stack = vec![false; n];
    let mut comp = vec![NO_COMPONENT; n];
    let mut stack: Vec<u32> = Vec::new();
    // Call frames: (node, position in its successor list).
    let mut frames: Vec<(u32, u32)> = Vec::new();
    let mut counter = 0u32;
    let mut comps = 0u32;
    for root in 0..n as u32 {
        if index[root as usize] != UNSEEN || !include(root) {
            continue;
        }
        index[root as usize] = counter;
        low[root as usize] = counter;
        counter += 1;
        stack.push(root);
        on_stack[root as usize] = true;
        frames.push((root, g.start[root as usize]));
        while let Some(frame) = frames.last_mut() {
            let v = frame.0;
            if frame.1 < g.start[v as usize + 1] {
                let w = g.targets[frame.1 as usize];
                frame.1 += 1;
                if !include(w) {
                    continue;
                }
                if index[w as usize] == UNSEEN {
                    index[w as usize] = counter;
                    low[w as usize] = counter;
                    counter += 1;
                    stack.push(w);
                    on_stack[w as usize] = true;
                    frames.push((w, g.start[w as usize]));
                } else if on_stack[w as usize] {
                    low[v as usize] = low[v as usize].min(index[w as usize]);
                }
            } else {
                frames.pop();
                if let Some(&(u, _)) = frames.last() {
                    low[u as usize] = low[u as usize].min(low[v as usize]);
                }
                if low[v as usize] == index[v as usize] {
                    loop {
                        let w = stack.pop().expect("v is on the stack");
                        on_stack[w as usize] = false;
                        comp[w as usize] = comps;
                        if w == v {
                            break;
                        }
                    }
                    comps += 1;
                }
            }
        }
    }
    (comp, comps)
}

/// Groups nodes by component: `members[c]` lists the nodes of component `c`.
pub(super) fn members(comp: &[u32], comps: u32) -> Vec<Vec<u32>> {
    let mut m = vec![Vec::new(); comps as usize];
    for (v, &c) in comp.iter().enumerate() {
        if c != NO_COMPONENT {
            m[c as usize].push(v as u32);
        }
    }
    m
}

/// The weak-fairness test of a strongly connected set of states.
///
/// `enabled(v)` lists (sorted, deduplicated) the fair tasks enabled at `v`; `taken` lists the
/// tasks of the edges that stay inside the set. An infinite path that stays in the set and
/// visits all of its states and edges is weakly fair iff every task enabled at *every* state of
/// the set is taken by some edge inside it. (If a task is disabled at some state, the path passes
/// there infinitely often, so the task is not continuously enabled.) No sub-cycle can do better:
/// a task enabled everywhere in the set and taken nowhere inside it is enabled everywhere on the
/// sub-cycle and taken nowhere on it either. Returns the tasks that make the set unfair (empty:
/// it is fair).
pub(super) fn unfair_tasks<'a>(
    states: &[u32],
    enabled: impl Fn(u32) -> &'a [u32],
    taken: &[u32],
) -> Vec<u32> {
    let Some((&first, rest)) = states.split_first() else {
        return Vec::new();
    };
    let mut always: Vec<u32> = enabled(first).to_vec();
    for &v in rest {
        if always.is_empty() {
            break;
        }
        let e = enabled(v);
        always.retain(|t| e.binary_search(t).is_ok());
    }
    let mut taken = taken.to_vec();
    taken.sort_unstable();
    always.retain(|t| taken.binary_search(t).is_err());
    always
}

#[cfg(test)]
mod tests {
    use super::*;

    fn comps_of(lists: &[Vec<u32>]) -> Vec<Vec<u32>> {
        let g = Csr::from_lists(lists);
        let (comp, n) = sccs(&g, |_| true);
        let mut m = members(&comp, n);
        m.iter_mut().for_each(|c| c.sort());
        m.sort();
        m
    }

    #[test]
    fn finds_cycles_and_singletons() {
        // 0 -> 1 -> 2 -> 0, 2 -> 3, 3 -> 4 -> 3.
        let m = comps_of(&[vec![1], vec![2], vec![0, 3], vec![4], vec![3]]);
        assert_eq!(m, vec![vec![0, 1, 2], vec![3, 4]]);
    }

    #[test]
    fn a_dag_join_is_not_a_cycle() {
        // The diamond 0 -> {1, 2} -> 3: state 3 is reached twice, but there is no cycle. A
        // checker that treats "state already seen" as "loop" (stateright's FIXME) misjudges it.
        let m = comps_of(&[vec![1, 2], vec![3], vec![3], vec![]]);
        assert_eq!(m, vec![vec![0], vec![1], vec![2], vec![3]]);
    }

    #[test]
    fn successors_complete_first() {
        let g = Csr::from_lists(&[vec![1], vec![2], vec![]]);
        let (comp, n) = sccs(&g, |_| true);
        assert_eq!(n, 3);
        assert!(comp[2] < comp[1] && comp[1] < comp[0]);
    }

    #[test]
    fn excluded_nodes_cut_cycles() {
        // 0 -> 1 -> 0 is a cycle, unless 1 is excluded.
        let g = Csr::from_lists(&[vec![1], vec![0]]);
        let (comp, n) = sccs(&g, |v| v != 1);
        assert_eq!(n, 1);
        assert_eq!(comp, vec![0, NO_COMPONENT]);
    }

    #[test]
    fn deep_chains_need_no_recursion() {
        let n = 200_000u32;
        let lists: Vec<Vec<u32>> = (0..n).map(|v| vec![(v + 1) % n]).collect();
        let g = Csr::from_lists(&lists);
        let (_, comps) = sccs(&g, |_| true);
        assert_eq!(comps, 1);
    }

    #[test]
    fn fairness_of_a_component() {
        // Two states; task 7 enabled in both.
        let en: Vec<Vec<u32>> = vec![vec![1, 7], vec![2, 7]];
        let enabled = |v: u32| en[v as usize].as_slice();
        // Taken inside: 1 and 2 only, so 7 is continuously enabled and never taken: unfair.
        assert_eq!(unfair_tasks(&[0, 1], enabled, &[1, 2]), vec![7]);
        // Taking 7 somewhere inside makes it fair.
        assert!(unfair_tasks(&[0, 1], enabled, &[1, 7]).is_empty());
        // A task disabled at some state of the set imposes nothing.
        let en2: Vec<Vec<u32>> = vec![vec![1, 7], vec![2]];
        assert!(unfair_tasks(&[0, 1], |v| en2[v as usize].as_slice(), &[1, 2]).is_empty());
    }
}
