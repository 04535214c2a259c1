"""The broadcast rule of heatlike's element-wise kernel against NumPy's, on random shapes."""

import random

import numpy as np
import pytest

from heatlike._operations import broadcast_shape


def test_broadcast_shape_matches_numpy_including_empty_and_mismatched_shapes():
    rng = random.Random(0)
    for _ in range(5000):
        shapes = [
            tuple(rng.choice([0, 1, 2, 3]) for _ in range(rng.randint(0, 4)))
            for _ in range(rng.randint(1, 3))
        ]
        try:
            expected = np.broadcast_shapes(*shapes)
        except ValueError:
            with pytest.raises(ValueError, match="could not be broadcast"):
                broadcast_shape(*shapes)
        else:
            assert broadcast_shape(*shapes) == expected, shapes
