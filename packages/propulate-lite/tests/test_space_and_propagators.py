"""Search spaces and propagators: outputs keep the limits and types; operators do what they say."""

import numpy as np
import pytest

from propulate_lite import Categorical, Float, Individual, Int, SearchSpace
from propulate_lite.propagators import (
    Compose,
    Conditional,
    CrossoverMulti,
    CrossoverUniform,
    InitUniform,
    IntervalMutationMultiScale,
    IntervalMutationNormal,
    PointMutation,
    RandomPointMutation,
    SelectMax,
    SelectMin,
    SelectUniform,
    get_default_propagator,
)

LIMITS = {
    "lr": (1e-4, 1e-1),
    "layers": (1, 8),
    "width": (16, 32, 64, 128),  # an ordinal tuple of more than two ints
    "act": ("relu", "tanh", "gelu", "silu"),
    "opt": ("sgd", "adam"),
}


def evaluated(space, rng, n):
    inds = []
    for i in range(n):
        ind = Individual(space.sample(rng))
        ind.loss = float(rng.normal())
        ind.uid = (0, 0, i)
        inds.append(ind)
    return inds


def test_limits_are_typed_by_their_first_element():
    space = SearchSpace(LIMITS)
    assert space.params["lr"] == Float(1e-4, 1e-1)
    assert space.params["layers"] == Int(1, 8)
    assert space.params["width"] == Categorical((16, 32, 64, 128))
    assert space.params["act"] == Categorical(("relu", "tanh", "gelu", "silu"))


@pytest.mark.parametrize(
    "limits",
    [{}, {"_x": (0.0, 1.0)}, {"x": (1.0, 0.0)}, {"x": (0, 0)}, {"x": "ab"}, {"x": (True, False)}],
)
def test_bad_limits_are_rejected(limits):
    with pytest.raises((ValueError, TypeError)):
        SearchSpace(limits)


def test_ordinal_tuple_samples_every_listed_value_and_nothing_else():
    space = SearchSpace({"width": (16, 32, 64, 128)})
    rng = np.random.default_rng(0)
    seen = {space.sample(rng)["width"] for _ in range(400)}
    assert seen == {16, 32, 64, 128}


def test_categorical_encoding_round_trips_at_any_position():
    space = SearchSpace({f"f{i}": (0.0, 1.0) for i in range(5)} | {"c": ("a", "b", "c", "d")})
    values = {f"f{i}": 0.5 for i in range(5)} | {"c": "d"}
    assert space.decode(space.encode(values)) == values
    values["c"] = "b"
    assert space.decode(space.encode(values))["c"] == "b"


def all_propagators(space, rng):
    return [
        InitUniform(space, rng=rng),
        InitUniform(space, parents=1, probability=0.5, rng=rng),
        PointMutation(space, points=2, rng=rng),
        RandomPointMutation(space, min_points=1, max_points=4, rng=rng),
        IntervalMutationNormal(space, sigma_factor=0.5, points=2, rng=rng),
        IntervalMutationMultiScale(space, sigma_factor=0.5, decades=3.0, rng=rng),
        CrossoverUniform(probability=1.0, rng=rng),
        CrossoverMulti(probability=1.0, rng=rng),
        get_default_propagator(4, space, rng=rng),
    ]


def test_every_propagator_output_respects_limits_and_types():
    space = SearchSpace(LIMITS)
    rng = np.random.default_rng(1)
    for prop in all_propagators(space, rng):
        for _trial in range(300):
            parents = evaluated(space, rng, 6)
            child = prop(parents)
            assert isinstance(child, Individual)
            assert space.contains(child), (type(prop).__name__, dict(child))


def test_interval_mutation_clips_at_the_limits():
    space = SearchSpace({"x": (0.0, 1.0), "n": (0, 3)})
    prop = IntervalMutationNormal(space, sigma_factor=10.0, points=2, rng=0)
    parent = Individual({"x": 0.99, "n": 3})
    outs = [prop([parent]) for _ in range(200)]
    assert {o["x"] for o in outs} >= {0.0, 1.0}  # a huge sigma hits both ends
    assert {o["n"] for o in outs} <= {0, 1, 2, 3}


def test_point_mutation_changes_a_categorical_to_another_choice():
    space = SearchSpace({"c": ("a", "b", "c")})
    prop = PointMutation(space, rng=0)
    assert all(prop([Individual({"c": "a"})])["c"] != "a" for _ in range(100))


def test_crossover_probability_controls_whether_crossover_happens():
    a = Individual({f"x{i}": 0.0 for i in range(20)})
    b = Individual({f"x{i}": 1.0 for i in range(20)})
    never = CrossoverUniform(probability=0.0, rng=0)
    assert dict(never([a, b])) == dict(a)
    always = CrossoverUniform(probability=1.0, relative_parent_contribution=0.5, rng=0)
    share = np.mean([sum(always([a, b]).values()) / 20 for _ in range(500)])
    assert abs(share - 0.5) < 0.03  # each trait from the second parent half the time


def test_default_propagator_passes_crossover_prob_as_the_probability():
    prop = get_default_propagator(4, {"x": (0.0, 1.0)}, crossover_prob=0.3, rng=0)
    crossover = next(p for p in prop.true_prop.propagators if isinstance(p, CrossoverUniform))
    assert crossover.probability == 0.3
    assert crossover.contribution == 0.5


def test_selections_match_a_sorted_reference():
    space = SearchSpace({"x": (0.0, 1.0)})
    inds = evaluated(space, np.random.default_rng(2), 30)
    by_loss = sorted(inds, key=lambda i: i.loss)
    assert SelectMin(5)(inds) == by_loss[:5]
    assert SelectMax(5)(inds) == by_loss[::-1][:5]
    picked = SelectUniform(7, rng=0)(inds)
    assert len({id(i) for i in picked}) == 7 and all(i in inds for i in picked)


def test_conditional_switches_at_pop_size():
    space = SearchSpace({"x": (0.0, 1.0)})
    fresh = InitUniform(space, rng=0)
    best_copy = Compose([SelectMin(1), InitUniform(space, parents=1, probability=0.0, rng=0)])
    prop = Conditional(3, best_copy, fresh)
    inds = evaluated(space, np.random.default_rng(3), 3)
    assert dict(prop(inds)) == dict(min(inds, key=lambda i: i.loss))
    assert dict(prop(inds[:2])) not in [dict(i) for i in inds]


def test_compose_rejects_mismatched_parent_counts():
    with pytest.raises(ValueError, match="needs 2 parents"):
        Compose([SelectMin(3), CrossoverUniform()])
