"""The two levels DASO communicates on: the node-local group and the per-local-rank global group."""

from __future__ import annotations

from dataclasses import dataclass

from hpc_comm import Communicator


def check_node_size(comm: Communicator, node_size: int | None) -> None:
    """Validate ``node_size`` locally (every rank sees the same values, so all raise alike)."""
    if node_size is None:
        return
    if not isinstance(node_size, int) or isinstance(node_size, bool):
        raise TypeError(f"node_size must be an int or None, got {type(node_size).__name__}")
    if node_size < 1 or comm.size % node_size != 0:
        raise ValueError(
            f"node_size must be a positive divisor of the number of ranks ({comm.size}), "
            f"got {node_size}"
        )


@dataclass
class Topology:
    """``node``: the ranks of this node (g of them, ``local_rank`` is this rank's place);
    ``group``: one rank per node, all with this rank's local rank (P of them).

    Global group i is {i, i+g, i+2g, ...} when nodes are contiguous blocks of ranks.
    """

    node: Communicator
    group: Communicator
    owns_node: bool

    @property
    def local_rank(self) -> int:
        """This rank's place in its node (0 … g − 1), which is also its global group's index."""
        return self.node.rank

    @property
    def ranks_per_node(self) -> int:
        """g, the number of ranks on each node."""
        return self.node.size

    @property
    def nodes(self) -> int:
        """P, the number of nodes (the size of every global group)."""
        return self.group.size

    @classmethod
    def build(cls, comm: Communicator, node_size: int | None = None) -> Topology:
        """Collective over ``comm``. Nodes come from ``comm.node()`` (real or emulated with
        ``HPC_COMM_RANKS_PER_NODE``), or blocks of ``node_size`` consecutive ranks if given."""
        check_node_size(comm, node_size)
        if node_size is None:
            node, owns = comm.node(), False
        else:
            node, owns = comm.split(comm.rank // node_size, comm.rank), True
        sizes = comm.allgather_obj(node.size)
        if len(set(sizes)) != 1:
            if owns:
                node.free()
            raise ValueError(
                "DASO needs the same number of ranks on every node, got node sizes "
                f"{sorted(set(sizes))}; set HPC_COMM_RANKS_PER_NODE or node_size to a divisor "
                f"of {comm.size}"
            )
        group = comm.split(node.rank, comm.rank)
        return cls(node=node, group=group, owns_node=owns)

    def free(self) -> None:
        """Free ``group``, and ``node`` when it was split here rather than taken from
        ``comm.node()``."""
        self.group.free()
        if self.owns_node:
            self.node.free()
