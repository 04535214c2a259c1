"""DASO's schedule against hand-computed traces: plateau rule, skip changes, per-batch plans."""

import pytest

from daso.schedule import PlateauDetector, SkipSchedule, plan_batch


def test_plateau_fires_after_three_epochs_without_relative_improvement():
    det = PlateauDetector(patience=2, threshold=0.05)
    # 1.0 sets the best; 0.96 is not < 0.95 (bad 1); 0.951 bad 2; 0.99 bad 3 -> plateau
    assert [det.update(v) for v in [1.0, 0.96, 0.951, 0.99]] == [False, False, False, True]
    assert det.bad_epochs == 0 and det.best == 1.0
    # 0.94 < 0.95 improves and resets the count
    assert [det.update(v) for v in [0.94, 0.94, 0.94]] == [False, False, False]
    assert det.best == 0.94


def test_plateau_threshold_is_relative_for_negative_losses():
    det = PlateauDetector(patience=0, threshold=0.1)
    det.update(-1.0)
    assert det.update(-1.05) is True  # needs < -1.1 to improve
    assert det.update(-1.2) is False and det.best == -1.2


def test_skip_schedule_matches_hand_computed_trace():
    s = SkipSchedule(total_epochs=30, warmup_epochs=2, cooldown_epochs=2)
    assert (s.global_skip, s.local_skip, s.batches_to_wait) == (0, 0, 0)
    losses = {
        1: 1.0,  # still warm-up
        2: 0.8,  # end of warm-up: (4, 1, 1); first loss is the best
        3: 0.6,  # improves
        4: 0.59,
        5: 0.58,
        6: 0.575,  # three bad epochs: gs 4 -> 2, ls 1 -> 0 -> 1, B 1 -> 0 -> 1
        7: 0.574,
        8: 0.573,
        9: 0.572,  # plateau: gs 2 -> 1, ls 1, B 1
        10: 0.571,
        11: 0.5705,
        12: 0.5702,  # (best is 0.6: < 0.57 needed) plateau at gs 1: reset to 8, 8 // 4 = 2, 2
        13: 0.3,  # improves
        14: 0.3,
        15: 0.3,
        16: 0.3,  # plateau: 8 -> 4, 2 -> 1, 2 -> 1
    }
    expected = {
        1: (0, 0, 0),
        2: (4, 1, 1),
        3: (4, 1, 1),
        4: (4, 1, 1),
        5: (4, 1, 1),
        6: (2, 1, 1),
        7: (2, 1, 1),
        8: (2, 1, 1),
        9: (1, 1, 1),
        10: (1, 1, 1),
        11: (1, 1, 1),
        12: (8, 2, 2),
        13: (8, 2, 2),
        14: (8, 2, 2),
        15: (8, 2, 2),
        16: (4, 1, 1),
    }
    for epoch in range(1, 17):
        s.end_epoch(losses[epoch])
        assert s.epoch == epoch
        assert (s.global_skip, s.local_skip, s.batches_to_wait) == expected[epoch], epoch
    for _ in range(17, 28):
        s.end_epoch(0.3)
        assert s.global_skip > 0
    s.end_epoch(0.3)  # epoch counter 28 = total - cooldown: the last two epochs block
    assert (s.epoch, s.global_skip, s.local_skip, s.batches_to_wait) == (28, 0, 0, 0)


def test_no_warmup_starts_cycling_and_state_round_trips():
    s = SkipSchedule(total_epochs=10, warmup_epochs=0, cooldown_epochs=1, max_global_skips=2)
    assert (s.global_skip, s.local_skip, s.batches_to_wait) == (2, 1, 1)  # 4 capped at 2
    s.end_epoch(1.0)
    t = SkipSchedule(total_epochs=10, warmup_epochs=0, cooldown_epochs=1, max_global_skips=2)
    t.load_state_dict(s.state_dict())
    assert t.state_dict() == s.state_dict() and t.detector.best == 1.0


def _trace(last_batch, gs, ls, btw):
    """Run plan_batch over an epoch the way DASO does; return (global events, local-sync batches)."""
    pending, events, local, sends = [], [], [], 0
    for b in range(last_batch + 1):
        plan = plan_batch(b, last_batch, gs, ls, btw, tuple(d for d, _ in pending))
        for _ in plan.receive:
            _, sent = pending.pop(0)
            events.append(("recv", b, sent))
        if plan.send == "async":
            pending.append((plan.due, b))
            events.append(("send", b, plan.due))
        elif plan.send == "blocking":
            events.append(("sync", b))
        if plan.send:
            sends += 1
        if plan.local_sync:
            local.append(b)
    assert not pending
    return events, local


def test_plan_cycling_gs4_b1():
    events, local = _trace(9, 4, 1, 1)
    assert events == [
        ("send", 0, 1),
        ("recv", 1, 0),
        ("send", 4, 5),
        ("recv", 5, 4),
        ("send", 8, 9),  # min(B, last - 8) = 1
        ("recv", 9, 8),
        ("sync", 9),  # last batch: receive, then blocking sync
    ]
    assert local == list(range(10))


def test_plan_gs8_ls2_b2_clamps_wait_at_epoch_end():
    events, local = _trace(9, 8, 2, 2)
    assert events == [("send", 0, 2), ("recv", 2, 0), ("send", 8, 9), ("recv", 9, 8), ("sync", 9)]
    assert local == [0, 2, 4, 6, 8, 9]


def test_plan_gs1_receives_before_sending():
    events, _ = _trace(3, 1, 1, 1)
    assert events == [
        ("send", 0, 1),
        ("recv", 1, 0),
        ("send", 1, 2),
        ("recv", 2, 1),
        ("send", 2, 3),
        ("recv", 3, 2),
        ("sync", 3),
    ]


def test_plan_wait_longer_than_skip_keeps_several_in_flight():
    events, _ = _trace(6, 2, 1, 3)
    assert events == [
        ("send", 0, 3),
        ("send", 2, 5),
        ("recv", 3, 0),
        ("send", 4, 6),
        ("recv", 5, 2),
        ("recv", 6, 4),
        ("sync", 6),
    ]


@pytest.mark.parametrize("last_batch", [0, 1, 5])
def test_plan_blocking_phase_syncs_every_batch(last_batch):
    events, local = _trace(last_batch, 0, 0, 0)
    assert events == [("sync", b) for b in range(last_batch + 1)]
    assert local == list(range(last_batch + 1))
