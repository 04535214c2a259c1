"""One pipeline-throughput measurement under mpiexec; rank 0 prints a JSON line."""

import copy
import json
import sys
import time

import torch

import hpc_comm as hc
from f3.data import load
from f3.network import F3Network, mlp_blocks
from f3.pipeline import PipelineTrainer, check_partition
from f3.trainer import Trainer


def main(epochs: int) -> None:
    comm = hc.world()
    torch.set_num_threads(1)
    split = load("digits", seed=0)
    net = F3Network(mlp_blocks(64, [128] * 6, 10, seed=0), 10, (64,), seed=0)
    reference = copy.deepcopy(net)
    pipe = PipelineTrainer(net, comm, "f3", lr=1e-3)
    comm.barrier()
    start = time.perf_counter()
    pipe.fit(split.x_train, split.y_train, epochs, batch_size=50, seed=0)
    comm.barrier()
    seconds = time.perf_counter() - start
    accuracy = pipe.evaluate(split.x_test, split.y_test)["accuracy"]
    single = Trainer(reference, "f3", lr=1e-3)
    single.fit(split.x_train, split.y_train, epochs, batch_size=50, seed=0)
    mine = [p for i in range(pipe.start, pipe.stop) for p in net.blocks[i].parameters()]
    theirs = [p for i in range(pipe.start, pipe.stop) for p in reference.blocks[i].parameters()]
    bitwise = all(torch.equal(a, b) for a, b in zip(mine, theirs))
    bitwise = bitwise and torch.equal(pipe.buffer.errors, single.buffer.errors)
    close = all(torch.allclose(a, b, rtol=1e-5, atol=1e-6) for a, b in zip(mine, theirs))
    verdicts = comm.allgather_obj("bitwise" if bitwise else ("within 1e-5" if close else "NO"))
    if comm.rank == 0:
        verdict = (
            "bitwise"
            if set(verdicts) == {"bitwise"}
            else ("NO" if "NO" in verdicts else "within 1e-5")
        )
        row = {
            "partition": check_partition(None, net.num_blocks, comm.size),
            "samples_per_second": epochs * len(split.x_train) / seconds,
            "accuracy": accuracy,
            "equal": verdict,
        }
        print(json.dumps(row))


if __name__ == "__main__":
    main(int(sys.argv[1]))
