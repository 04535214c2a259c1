"""The schedule and the group layout, checked against hand-written expectations."""

import pytest

from abtrain import Schedule, group_layout

# local computations, but the issue asks for every acceptance test at 2, 3 and 4 ranks: marked
# mpi, they also run (and are checked) on every rank of each mpiexec run
pytestmark = pytest.mark.mpi


def test_schedule_example_from_the_method():
    """warmup 10, merge every 10, 3 full-rank steps: full 1-10, AB 11-20, merge after 20,
    full 21-23, re-split after 23, AB 24-30, merge after 30."""
    s = Schedule(warmup_steps=10, sync_every=10, full_rank_steps=3)
    phases = [s.phase_of(t) for t in range(1, 35)]
    expected = ["full"] * 10 + ["ab"] * 10 + ["full"] * 3 + ["ab"] * 7 + ["full"] * 3 + ["ab"]
    assert phases == expected
    actions = {t: s.actions_after(t) for t in range(0, 35) if s.actions_after(t)}
    assert actions == {
        10: ("split",),
        20: ("merge",),
        23: ("resplit",),
        30: ("merge",),
        33: ("resplit",),
    }


def test_zero_full_rank_steps_merge_and_resplit_together():
    s = Schedule(warmup_steps=0, sync_every=3, full_rank_steps=0)
    assert s.actions_after(0) == ("split",)
    assert s.actions_after(3) == ("merge", "resplit")
    assert [s.phase_of(t) for t in range(1, 7)] == ["ab"] * 6


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"warmup_steps": -1, "sync_every": 2, "full_rank_steps": 0}, ValueError, "warmup"),
        ({"warmup_steps": 0, "sync_every": 0, "full_rank_steps": 0}, ValueError, "sync_every"),
        ({"warmup_steps": 0, "sync_every": 3, "full_rank_steps": 3}, ValueError, "full_rank"),
        ({"warmup_steps": 1.5, "sync_every": 3, "full_rank_steps": 0}, TypeError, "warmup"),
    ],
)
def test_schedule_rejects_bad_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        Schedule(**kwargs)


@pytest.mark.parametrize(
    "world, size, mode, groups, roles",
    [
        (4, 2, "full", [[0, 1], [2, 3]], ["a", "b"]),
        (5, 2, "full", [[0, 1, 2], [3, 4]], ["a", "b"]),
        (7, 2, "full", [[0, 1, 2], [3, 4], [5, 6]], ["a", "b", "b"]),
        (3, 2, "full", [[0, 1, 2]], ["b"]),
        (4, -1, "full", [[0, 1], [2, 3]], ["a", "b"]),
        (3, -1, "full", [[0], [1, 2]], ["a", "b"]),
        (1, -1, "full", [[0]], ["b"]),
        (4, 1, "only-b", [[0], [1], [2], [3]], ["b"] * 4),
        (2, 8, "full", [[0, 1]], ["b"]),
    ],
)
def test_group_layout(world, size, mode, groups, roles):
    layout = group_layout(world, size, mode)
    assert [list(g) for g in layout.groups] == groups
    assert list(layout.roles) == roles
    for g, members in enumerate(groups):
        for r in members:
            assert layout.group_of(r) == g and layout.role_of(r) == roles[g]


@pytest.mark.parametrize(
    "args, error, match",
    [
        ((4, 0, "full"), ValueError, "group_size"),
        ((4, -2, "full"), ValueError, "group_size"),
        ((4, 2, "mean"), ValueError, "sync_mode"),
        ((0, 2, "full"), ValueError, "world_size"),
        ((4, "2", "full"), TypeError, "group_size"),
    ],
)
def test_group_layout_rejects_bad_arguments(args, error, match):
    with pytest.raises(error, match=match):
        group_layout(*args)
