"""Ask/tell, the Optuna-style study and the early-stopping surrogates."""

import math

import numpy as np
import pytest

import propulate_lite as pl
from propulate_lite import AskTell, LogLinearSurrogate, Propulator, StaticSurrogate
from propulate_lite.optuna_style import objective_as_loss


def test_ask_tell_minimises_the_sphere():
    f = pl.get_function("sphere")
    opt = AskTell(f.limits, pop_size=8, seed=0)
    for _ in range(1500):
        ind = opt.ask()
        opt.tell(ind, f.loss(ind))
    assert opt.best.loss < 1e-3
    with pytest.raises(ValueError, match="already told"):
        opt.tell(opt.best, 0.0)


def test_ask_tell_records_a_nan_as_failed():
    opt = AskTell({"x": (0.0, 1.0)}, seed=0)
    ind = opt.ask()
    opt.tell(ind, float("nan"))
    assert ind.failed and opt.best is None


def objective(trial):
    x = trial.suggest_float("x", -3.0, 3.0)
    n = trial.suggest_int("n", 0, 5)
    kind = trial.suggest_categorical("kind", ["good", "bad"])
    lr = trial.suggest_float("lr", 1e-4, 1.0, log=True)
    return (x - 1.0) ** 2 + (n - 2) ** 2 + (kind == "bad") + math.log10(lr / 1e-2) ** 2


def test_optuna_style_study_finds_the_optimum_of_a_mixed_space():
    study = pl.create_study(seed=0)
    study.optimize(objective, n_trials=600)
    best = study.best_params
    assert best["n"] == 2 and best["kind"] == "good"
    assert abs(best["x"] - 1.0) < 0.2 and 1e-3 < best["lr"] < 1e-1
    assert study.best_value < 0.1
    assert set(study.search_space) == {"x", "n", "kind", "lr"}


def test_optuna_style_maximize_and_space_changes():
    study = pl.create_study(direction="maximize", seed=1)
    study.optimize(lambda t: -((t.suggest_float("x", 0.0, 1.0) - 0.3) ** 2), n_trials=200)
    assert abs(study.best_params["x"] - 0.3) < 0.05

    def changing(trial):
        return trial.suggest_float("x", 0.0, 1.0 + trial.number)

    study = pl.create_study(seed=0)
    study.optimize(changing, 1)
    with pytest.raises(ValueError, match="differs from the first"):
        changing(study.ask())


@pytest.mark.parametrize("fail_after", [0, 1], ids=["before-any-suggestion", "mid-space"])
def test_a_failing_first_trial_does_not_fix_the_search_space(fail_after):
    calls = []

    def flaky(trial):
        calls.append(trial.number)
        x = trial.suggest_float("x", -3.0, 3.0) if fail_after >= 1 else None
        if len(calls) == 1:
            raise RuntimeError("the first evaluation crashes")
        x = trial.suggest_float("x", -3.0, 3.0)
        y = trial.suggest_int("y", 0, 4)
        return (x - 1.0) ** 2 + (y - 3) ** 2

    study = pl.create_study(seed=0)
    study.optimize(flaky, n_trials=300)
    assert study.trials[0].value is None  # failed, and recorded as such
    assert all(t.value is not None for t in study.trials[1:])
    assert set(study.search_space) == {"x", "y"}
    assert study.best_params["y"] == 3 and abs(study.best_params["x"] - 1.0) < 0.2


def test_an_optuna_objective_runs_in_a_propulator(comm):
    study = pl.create_study(seed=0)
    study.optimize(objective, n_trials=1)
    limits = study.search_space
    loss = objective_as_loss(objective)
    propagator = pl.get_default_propagator(8, limits, rng=np.random.default_rng([0, comm.rank]))
    prop = Propulator(loss, propagator, comm=comm, generations=200, limits=limits)
    prop.propulate()
    best = prop.summarize(1)[0][0]
    assert best.loss == pytest.approx(objective(pl.optuna_style._FixedTrial(best)))
    assert best.loss < 1.0


def curve(final, steps=10):
    """A decaying learning curve towards ``final``: loss_t = final · (t + 1)^(-0.5) · √steps."""
    return [final * math.sqrt(steps) / math.sqrt(t + 1) for t in range(steps)]


def test_static_surrogate_cancels_curves_above_the_best_by_the_margin():
    s = StaticSurrogate(margin=0.5)
    s.start()
    for v in curve(1.0):
        assert not s.cancel(v)  # nothing to compare with yet
    s.finish(curve(1.0)[-1])
    s.start()
    assert not any(s.cancel(v) for v in curve(1.4))  # within 50 % of the baseline
    s.start()
    assert s.cancel(curve(2.0)[0])  # 100 % above at the first step


def test_log_linear_surrogate_extrapolates_a_power_law():
    s = LogLinearSurrogate(min_steps=3)
    s.start()
    for v in curve(1.0):
        s.cancel(v)
    s.finish(curve(1.0)[-1])
    s.start()
    for v in curve(2.0)[:3]:
        stopped = s.cancel(v)
    assert s.predict_final() == pytest.approx(2.0)  # the exact power law is extrapolated exactly
    assert stopped
    s.start()
    assert not any(s.cancel(v) for v in curve(0.5))  # a better curve runs to the end


@pytest.mark.mpi
def test_generator_losses_are_cut_short_by_the_surrogate(comm):
    steps_taken = []

    def training(params):
        final = 1.0 + params["x"] ** 2
        for t, value in enumerate(curve(final)):
            steps_taken.append(t)
            yield value

    propagator = pl.get_default_propagator(4, {"x": (-3.0, 3.0)}, rng=comm.rank)
    prop = Propulator(
        training,
        propagator,
        comm=comm,
        generations=30,
        rng=comm.rank,
        surrogate=LogLinearSurrogate(min_steps=3),
    )
    prop.propulate()
    mine = [i for i in prop.population if i.uid[1] == comm.rank]
    cancelled = [i for i in mine if i.cancelled]
    assert cancelled and len(steps_taken) < 30 * 10
    for ind in mine:  # finished ones report the final value; cancelled ones their last value
        if not ind.cancelled:
            assert ind.loss == pytest.approx(1.0 + ind["x"] ** 2)
