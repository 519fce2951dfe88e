//! The clusters the structured target aims at, shared with the seed-corpus
//! generator so that its seeds choose them the way the target does.

use nats_harness::hostile::StormTarget;
use socketioxide_core::Uid;

/// A few clusters: the default prefix and namespace, a multi-token prefix, and
/// namespaces whose token is escaped or hashed; with three, one or no real nodes.
pub(crate) fn targets() -> [StormTarget; 4] {
    let uid = |s: &str| s.parse::<Uid>().expect("a valid id");
    let nodes = vec![
        uid("NodeA00000000000"),
        uid("NodeB00000000000"),
        uid("NodeC00000000000"),
    ];
    [
        StormTarget {
            prefix: "socket.io".into(),
            ns: "/".into(),
            nodes: nodes.clone(),
        },
        StormTarget {
            prefix: "app.v2".into(),
            ns: "/chat.room*".into(),
            nodes: nodes[..1].to_vec(),
        },
        StormTarget {
            prefix: "x".into(),
            ns: String::new(),
            nodes: Vec::new(),
        },
        StormTarget {
            prefix: "socket.io".into(),
            ns: "/😀".repeat(40), // over 200 bytes escaped: hashed
            nodes,
        },
    ]
}
