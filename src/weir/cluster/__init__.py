"""Cluster membership: several `serve` processes (nodes) sharing one bucket.

The bucket's conditional writes are the only coordination (no consensus protocol, no
second database): `claim` settles at start-up that the store keeps them, that the bucket
is this cluster's and that the node id is free; `membership` keeps each node's record
fresh with a heartbeat and reads who is in the cluster; `lease` is the compactor lease,
which makes one node at a time the cluster's compactor.

Layout in the bucket (file store: under --data-dir):
    weir-cluster.json                  the cluster the bucket belongs to
    <cluster id>/nodes/<node id>.json  each node's record (heartbeat)
    <cluster id>/compactor-lease.json  the compactor lease
"""

from weir.cluster.claim import (
    MARKER_KEY,
    ClusterIdMismatch,
    NodeIdInUse,
    ObjectStoreUnsafe,
    check_conditional_writes,
    claim_bucket,
    claim_node_id,
    join_cluster,
)
from weir.cluster.lease import CompactorLease, lease_key
from weir.cluster.membership import (
    HEARTBEAT_INTERVAL_S,
    RUNNING,
    STARTING,
    STOPPED,
    UNRESPONSIVE,
    Heartbeat,
    NodeRecord,
    node_key,
    read_node,
    read_nodes,
)

__all__ = [
    "HEARTBEAT_INTERVAL_S", "MARKER_KEY", "RUNNING", "STARTING", "STOPPED", "UNRESPONSIVE",
    "ClusterIdMismatch", "CompactorLease", "Heartbeat", "NodeIdInUse", "NodeRecord",
    "ObjectStoreUnsafe", "check_conditional_writes", "claim_bucket", "claim_node_id",
    "join_cluster", "lease_key", "node_key", "read_node", "read_nodes",
]
