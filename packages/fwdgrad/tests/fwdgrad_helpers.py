"""Shared helpers of the fwdgrad tests: a small float64 network, flattening, cosine."""

import torch


class SmallNet:
    """A 6-8-4 tanh MLP in float64 with a fixed batch, and its backprop gradient."""

    def __init__(self, seed: int = 0):
        gen = torch.Generator().manual_seed(seed)
        self.x = torch.randn(11, 6, generator=gen, dtype=torch.float64)
        self.y = torch.randint(0, 4, (11,), generator=gen)
        self.params = {
            "w1": torch.randn(8, 6, generator=gen, dtype=torch.float64) / 6**0.5,
            "b1": torch.randn(8, generator=gen, dtype=torch.float64) * 0.1,
            "w2": torch.randn(4, 8, generator=gen, dtype=torch.float64) / 8**0.5,
            "b2": torch.randn(4, generator=gen, dtype=torch.float64) * 0.1,
        }
        self.n = sum(p.numel() for p in self.params.values())

    def loss(self, p, x=None, y=None):
        x = self.x if x is None else x
        y = self.y if y is None else y
        hidden = torch.tanh(x @ p["w1"].T + p["b1"])
        return torch.nn.functional.cross_entropy(hidden @ p["w2"].T + p["b2"], y)

    def gradient(self) -> torch.Tensor:
        leaves = {k: v.clone().requires_grad_() for k, v in self.params.items()}
        grads = torch.autograd.grad(self.loss(leaves), list(leaves.values()))
        return torch.cat([g.reshape(-1) for g in grads])


def flat(tree) -> torch.Tensor:
    values = tree.values() if isinstance(tree, dict) else tree
    return torch.cat([t.reshape(-1) for t in values])


def cosine(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(a @ b / (a.norm() * b.norm()))
