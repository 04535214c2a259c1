"""Printing: ``str``/``repr`` show the global array like NumPy, fetching only what is shown."""

from __future__ import annotations

import numpy as np
import torch

from .dndarray import DNDarray

__all__ = ["get_printoptions", "set_printoptions"]

_options = {"threshold": 1000, "edgeitems": 3, "precision": 4, "linewidth": 120}


def set_printoptions(precision=None, threshold=None, edgeitems=None, linewidth=None, **_):
    """Change how arrays print (NumPy's meanings)."""
    for name, value in (
        ("precision", precision),
        ("threshold", threshold),
        ("edgeitems", edgeitems),
        ("linewidth", linewidth),
    ):
        if value is not None:
            _options[name] = int(value)


def get_printoptions() -> dict:
    """A copy of the current print options: ``precision``, ``threshold``, ``edgeitems`` and
    ``linewidth``."""
    return dict(_options)


def _shown_part(x: DNDarray) -> np.ndarray:
    """The array reduced to what NumPy's summary shows: the first and last ``edgeitems`` of
    every long axis, with one placeholder between them (never printed)."""
    from .indexing import take

    edge = _options["edgeitems"]
    summarize = x.size > _options["threshold"]
    y = x
    for axis, n in enumerate(x.gshape):
        if summarize and n > 2 * edge:
            idx = torch.tensor([*list(range(edge)), edge, *list(range(n - edge, n))])
            y = take(y, idx, axis)
    from ._redistribute import resplit

    t = resplit(y, None).larray.detach().cpu()
    if t.dtype is torch.bfloat16:
        t = t.float()
    return t.numpy()


def _format(x: DNDarray) -> str:
    data = _shown_part(x)
    summarize = x.size > _options["threshold"]
    body = np.array2string(
        data,
        separator=", ",
        prefix="DNDarray(",
        threshold=0 if summarize else max(data.size, 1),
        edgeitems=_options["edgeitems"],
        precision=_options["precision"],
        max_line_width=_options["linewidth"],
    )
    return f"DNDarray({body}, dtype=ht.{x.dtype.__name__}, device={x.device}, split={x.split})"


def _str(x: DNDarray) -> str:
    """Collective: every rank takes part; rank 0 gets the text, the others an empty string."""
    text = _format(x)
    return text if x.comm.rank == 0 else ""


DNDarray.__str__ = _str
DNDarray.__repr__ = _str
