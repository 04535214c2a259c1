"""The `heatlike` command line: `kmeans` on an HDF5 file against scikit-learn, labels written
back without touching the rest of the file, one clear line and exit code 2 on bad input;
`info` and `bench`."""

from __future__ import annotations

import json
import os
import tempfile

import h5py  # the test extra installs it
import numpy as np
import pytest
import torch
from scipy.spatial.distance import cdist
from sklearn.cluster import KMeans as SkKMeans
from sklearn.datasets import make_blobs

from heatlike.cli import main

pytestmark = pytest.mark.mpi

DATA, _ = make_blobs(211, 3, centers=5, cluster_std=0.6, random_state=2)


@pytest.fixture
def data_file(comm):
    """An HDF5 file every rank sees, with the data in 'X' and an unrelated dataset 'keep'."""
    folder = tempfile.mkdtemp(prefix="heatlike-cli-") if comm.rank == 0 else None
    folder = comm.bcast_obj(folder, 0)
    path = os.path.join(folder, "data.h5")
    if comm.rank == 0:
        with h5py.File(path, "w") as handle:
            handle["X"] = DATA
            handle["keep"] = np.arange(5)
            handle["flat"] = DATA[:, 0]
    comm.barrier()
    yield path
    comm.barrier()
    if comm.rank == 0:
        for name in os.listdir(folder):
            os.remove(os.path.join(folder, name))
        os.rmdir(folder)


def _json_of(out: str, comm):
    """The JSON rank 0 printed, shared with every rank."""
    return comm.bcast_obj(json.loads(out) if comm.rank == 0 else None, 0)


def test_kmeans_command_matches_sklearn_and_writes_labels(comm, data_file, capsys):
    code = main(["kmeans", data_file, "--dataset", "X", "-k", "5", "--seed", "3", "--json"])
    assert code == 0
    result = _json_of(capsys.readouterr().out, comm)
    ref = SkKMeans(5, n_init=10, random_state=0).fit(DATA)
    np.testing.assert_allclose(result["inertia"], ref.inertia_, rtol=1e-6)
    centres = np.array(result["centres"])
    match = cdist(ref.cluster_centers_, centres).argmin(1)
    np.testing.assert_allclose(centres[match], ref.cluster_centers_, rtol=1e-6, atol=1e-6)
    with h5py.File(data_file, "r") as handle:
        labels = handle["labels"][...]
        np.testing.assert_array_equal(handle["X"][...], DATA)
        np.testing.assert_array_equal(handle["keep"][...], np.arange(5))
    assert labels.dtype == np.int64 and labels.shape == (211,)
    np.testing.assert_array_equal(labels, cdist(DATA, centres, "sqeuclidean").argmin(1))
    np.testing.assert_array_equal(match[ref.labels_], labels)
    assert not [f for f in os.listdir(os.path.dirname(data_file)) if ".tmp" in f]


def test_kmeans_command_prints_centres_and_inertia(comm, data_file, capsys):
    args = ["kmeans", data_file, "--dataset", "X", "-k", "2", "--init", "random"]
    code = main([*args, "--labels-dataset", "", "--max-iter", "50"])
    out = capsys.readouterr().out
    assert code == 0
    if comm.rank == 0:
        assert "centres:" in out and "inertia" in out
        inertia = float(out.split("inertia")[-1].split()[0])
        ref = SkKMeans(2, n_init=10, random_state=0).fit(DATA)
        assert inertia >= ref.inertia_ * (1 - 1e-9)
    else:
        assert out == ""
    with h5py.File(data_file, "r") as handle:
        assert "labels" not in handle


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["kmeans", "{missing}", "--dataset", "X", "-k", "2"], "does not exist"),
        (["kmeans", "{file}", "--dataset", "nope", "-k", "2"], "has no dataset 'nope'"),
        (["kmeans", "{file}", "--dataset", "flat", "-k", "2"], "must be 2-d"),
        (["kmeans", "{file}", "--dataset", "X", "-k", "500"], "n_clusters=500"),
        (["kmeans", "{file}", "--dataset", "X", "-k", "2", "--labels-dataset", "X"],
         "--labels-dataset must differ"),
        (["bench", "--rows", "0", "--cdist-rows", "0"], "nothing to time"),
    ],
)  # fmt: skip
def test_bad_input_exits_with_code_2_and_one_line(comm, data_file, capsys, args, message):
    missing = os.path.join(os.path.dirname(data_file), "missing.h5")
    argv = [a.format(file=data_file, missing=missing) for a in args]
    assert main(argv) == 2
    err = capsys.readouterr().err
    if comm.rank == 0:
        lines = err.strip().splitlines()
        assert len(lines) == 1 and message in lines[0], err
    with h5py.File(data_file, "r") as handle:
        assert sorted(handle) == ["X", "flat", "keep"]


def test_bad_argument_type_exits_with_code_2(comm, data_file, capsys):
    with pytest.raises(SystemExit) as stop:
        main(["kmeans", data_file, "--dataset", "X", "-k", "0"])
    assert stop.value.code == 2
    assert ("expected an int >= 1" in capsys.readouterr().err) == (comm.rank == 0)


def test_info_reports_this_job(comm, capsys):
    assert main(["info", "--json"]) == 0
    facts = _json_of(capsys.readouterr().out, comm)
    assert facts["ranks"] == comm.size
    assert facts["torch"] == torch.__version__
    assert facts["h5py"] == h5py.__version__


def test_bench_times_every_operation(comm, capsys):
    argv = ["bench", "--rows", "500", "--cdist-rows", "60", "--repeat", "1", "--json"]
    assert main(argv) == 0
    rows = _json_of(capsys.readouterr().out, comm)
    assert [r["operation"] for r in rows] == [
        "cdist (quadratic expansion)",
        "cdist (direct)",
        "KMeans.fit (random init)",
    ]
    assert all(r["seconds"] > 0 and r["ranks"] == comm.size for r in rows)
