"""Training on scikit-learn's digits: more tangents give a lower loss, for mean and projection."""

import pytest

from fwdgrad.training import load_digits, train

# Small enough to run in seconds (an MLP 64-16-16-10, n = 1482), long enough to separate k.
SETTINGS = dict(steps=60, batch_size=32, hidden=16, seed=0)


@pytest.fixture(scope="module")
def digits():
    return load_digits(seed=0)


@pytest.mark.parametrize("method", ["mean", "frog"])
def test_more_tangents_reach_a_lower_loss(digits, method):
    results = {k: train(digits, method, k=k, **SETTINGS) for k in (1, 16, 64)}
    initial = results[1].initial_loss
    assert all(r.initial_loss == initial for r in results.values())  # same model, same data
    assert results[64].final_loss < results[16].final_loss < results[1].final_loss < initial


def test_backprop_reference_learns(digits):
    result = train(digits, "bp", **SETTINGS)
    assert result.final_loss < 0.6 * result.initial_loss  # 2.32 -> 1.14 measured
    assert result.test_accuracy > 0.75  # 0.83 measured


def test_training_is_reproducible_for_a_seed(digits):
    a = train(digits, "frog", k=4, steps=5, batch_size=16, hidden=8, seed=3)
    b = train(digits, "frog", k=4, steps=5, batch_size=16, hidden=8, seed=3)
    assert a.losses == b.losses


def test_digits_are_standardised_and_split(digits):
    assert digits.x_train.shape[1] == 64 and digits.x_test.shape[1] == 64
    assert digits.x_train.shape[0] + digits.x_test.shape[0] == 1797
    assert abs(float(digits.x_train.mean())) < 1e-4
    assert set(digits.y_train.tolist()) == set(range(10))


@pytest.mark.parametrize(
    ("kwargs", "word"),
    [
        ({"method": "adam"}, "method"),
        ({"k": 0}, "k"),
        ({"steps": -1}, "steps"),
        ({"lr": 0.0}, "lr"),
        ({"architecture": "rnn"}, "architecture"),
    ],
)
def test_bad_training_arguments_are_named(digits, kwargs, word):
    with pytest.raises(ValueError, match=word):
        train(digits, **kwargs)
