//! Next-hop computation (docs/behaviour.md §5.3, the recommended reading).
//!
//! A true breadth-first search from the local node over the gossiped adjacency lists: the
//! route to a node has the fewest hops, and among routes of equal length the one whose first
//! hop has the lowest (priority, node id) wins. This fixes quirk #2 (OpenSIPS expands
//! best-first by (priority, id) over the whole queue and may pick longer paths); since every
//! node applies the same rule to the same topology, routes agree and a packet cannot loop
//! once gossip has converged.
//!
//! The table is computed for all destinations at once and cached by the cluster per topology
//! version.

use alloc::collections::{BTreeMap, VecDeque};
use alloc::vec;
use alloc::vec::Vec;

use crate::id::NodeId;

/// One remote node as the search sees it.
#[derive(Clone, Copy, Debug)]
pub struct RouteNode<'a> {
    /// The node.
    pub id: NodeId,
    /// Its priority (lower preferred as a first hop).
    pub priority: i32,
    /// The node's UP links as gossiped (directional: the node reported them).
    pub adjacency: &'a [NodeId],
}

/// A route to one destination.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Route {
    /// The neighbour to hand the packet to (the destination itself for a direct link).
    pub next_hop: NodeId,
    /// Number of hops (1 = direct link).
    pub hops: u32,
}

/// Routes from the local node to every reachable node.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RouteTable {
    routes: BTreeMap<NodeId, Route>,
}

impl RouteTable {
    /// Runs the search. `direct` are the local node's UP links; `nodes` every remote node of
    /// the cluster. Adjacency entries naming unknown nodes or the local node are ignored.
    pub fn compute(me: NodeId, direct: &[NodeId], nodes: &[RouteNode<'_>]) -> Self {
        let index: BTreeMap<NodeId, usize> =
            nodes.iter().enumerate().map(|(i, n)| (n.id, i)).collect();
        let rank = |i: usize| (nodes[i].priority, nodes[i].id);
        // Per node: hop count and index of the first hop.
        let mut seen: Vec<Option<(u32, usize)>> = vec![None; nodes.len()];
        let mut queue = VecDeque::with_capacity(nodes.len());
        for id in direct {
            if let Some(&i) = index.get(id)
                && seen[i].is_none()
            {
                seen[i] = Some((1, i));
                queue.push_back(i);
            }
        }
        while let Some(x) = queue.pop_front() {
            let Some((hops, first)) = seen[x] else {
                continue;
            };
            for y in nodes[x].adjacency {
                if *y == me {
                    continue;
                }
                let Some(&yi) = index.get(y) else { continue };
                match seen[yi] {
                    None => {
                        seen[yi] = Some((hops + 1, first));
                        queue.push_back(yi);
                    }
                    // Another shortest path: keep the better first hop. Every node of level
                    // `hops` is dequeued before any of level `hops + 1`, so first hops are
                    // final when their owner is expanded.
                    Some((h, f)) if h == hops + 1 && rank(first) < rank(f) => {
                        seen[yi] = Some((h, first));
                    }
                    Some(_) => {}
                }
            }
        }
        let routes = seen
            .iter()
            .enumerate()
            .filter_map(|(i, s)| {
                s.map(|(hops, first)| {
                    (
                        nodes[i].id,
                        Route {
                            next_hop: nodes[first].id,
                            hops,
                        },
                    )
                })
            })
            .collect();
        RouteTable { routes }
    }

    /// The route to `dest`, `None` when it is unreachable.
    pub fn get(&self, dest: NodeId) -> Option<Route> {
        self.routes.get(&dest).copied()
    }

    /// Every reachable node with its route, by node id.
    pub fn iter(&self) -> impl Iterator<Item = (NodeId, Route)> + '_ {
        self.routes.iter().map(|(id, r)| (*id, *r))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(i: u32) -> NodeId {
        NodeId::new(i).unwrap()
    }

    fn table(me: u32, direct: &[u32], adj: &[(u32, i32, &[u32])]) -> RouteTable {
        let lists: Vec<(NodeId, i32, Vec<NodeId>)> = adj
            .iter()
            .map(|(id, p, l)| (n(*id), *p, l.iter().map(|&x| n(x)).collect()))
            .collect();
        let nodes: Vec<RouteNode<'_>> = lists
            .iter()
            .map(|(id, p, l)| RouteNode {
                id: *id,
                priority: *p,
                adjacency: l,
            })
            .collect();
        let direct: Vec<NodeId> = direct.iter().map(|&x| n(x)).collect();
        RouteTable::compute(n(me), &direct, &nodes)
    }

    #[test]
    fn shortest_path_wins_over_lower_id_detour() {
        // docs/behaviour.md §5.2 example: OpenSIPS picks 10→1→2→3; BFS picks 10→5→3.
        let t = table(
            10,
            &[1, 5],
            &[(1, 50, &[2]), (2, 50, &[3]), (3, 50, &[]), (5, 50, &[3])],
        );
        assert_eq!(
            t.get(n(3)),
            Some(Route {
                next_hop: n(5),
                hops: 2
            })
        );
        assert_eq!(
            t.get(n(2)),
            Some(Route {
                next_hop: n(1),
                hops: 2
            })
        );
    }

    #[test]
    fn equal_length_paths_prefer_the_first_hop_with_lower_priority_then_id() {
        let t = table(9, &[4, 2], &[(4, 10, &[7]), (2, 50, &[7]), (7, 50, &[])]);
        assert_eq!(
            t.get(n(7)).map(|r| r.next_hop),
            Some(n(4)),
            "priority 10 beats 50"
        );
        let t = table(9, &[4, 2], &[(4, 50, &[7]), (2, 50, &[7]), (7, 50, &[])]);
        assert_eq!(
            t.get(n(7)).map(|r| r.next_hop),
            Some(n(2)),
            "same priority: lower id"
        );
    }

    #[test]
    fn tie_break_carries_through_deeper_levels() {
        // 1 → {2, 3}; 2 → 4; 3 → 5; both 4 and 5 reach 6. Hop via 2 (lower id) must win.
        let t = table(
            1,
            &[3, 2],
            &[
                (2, 50, &[4]),
                (3, 50, &[5]),
                (4, 50, &[6]),
                (5, 50, &[6]),
                (6, 50, &[]),
            ],
        );
        assert_eq!(
            t.get(n(6)),
            Some(Route {
                next_hop: n(2),
                hops: 3
            })
        );
    }

    #[test]
    fn direct_link_is_its_own_next_hop_and_unreachable_nodes_have_none() {
        let t = table(1, &[2], &[(2, 50, &[1]), (3, 50, &[2])]);
        assert_eq!(
            t.get(n(2)),
            Some(Route {
                next_hop: n(2),
                hops: 1
            })
        );
        assert_eq!(t.get(n(3)), None, "3 lists 2, but nobody lists 3");
    }

    #[test]
    fn links_are_directional_as_reported() {
        // 2 reports a link to 3; 3's own list is irrelevant for reaching 3.
        let t = table(1, &[2], &[(2, 50, &[3]), (3, 50, &[])]);
        assert_eq!(t.get(n(3)).map(|r| r.hops), Some(2));
    }
}
