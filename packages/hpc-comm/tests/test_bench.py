"""hpc_comm.bench: size parsing, the sweep's timing and units, the Markdown table and the plot."""

import math
import sys
import time

import pytest
import torch

from hpc_comm import bench
from hpc_comm._self import SelfCommunicator

KiB, MiB, GiB = 2**10, 2**20, 2**30
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


# ------------------------------------------------------------------------------- parse_size
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (8, 8),
        ("8", 8),
        ("8B", 8),
        ("8 b", 8),
        ("4KiB", 4 * 1024),
        ("4 kib", 4 * 1024),
        ("2K", 2 * 1024),
        ("1MiB", 1024 * 1024),
        ("64MiB", 64 * 1024 * 1024),
        ("3m", 3 * 1024 * 1024),
        ("1GiB", 1024**3),
        (" 512 ", 512),
    ],
)
def test_parse_size_accepts_bytes_and_binary_units(text, expected):
    assert bench.parse_size(text) == expected


@pytest.mark.parametrize(
    "text", ["", "abc", "4KB", "1MB", "1.5MiB", "-8", "0", "0KiB", "8 XiB", "8B8", 0, -1, True, 2.0]
)
def test_parse_size_rejects_everything_else_naming_the_argument(text):
    with pytest.raises(ValueError, match=r"^--sizes: "):
        bench.parse_size(text, name="--sizes")


def test_parse_size_explains_decimal_units():
    with pytest.raises(ValueError, match="KiB"):
        bench.parse_size("4KB")


def test_parse_sizes_reads_a_comma_separated_list():
    assert bench.parse_sizes("8, 4KiB,1MiB,") == [8, 4096, 1048576]
    for bad in ("", " , ", "8,x"):
        with pytest.raises(ValueError, match=r"^--sizes: "):
            bench.parse_sizes(bad, name="--sizes")


@pytest.mark.parametrize(
    ("nbytes", "text"),
    [
        (8, "8 B"),
        (1000, "1000 B"),
        (1536, "1536 B"),
        (4096, "4 KiB"),
        (MiB, "1 MiB"),
        (GiB, "1 GiB"),
    ],
)
def test_format_size(nbytes, text):
    assert bench.format_size(nbytes) == text


def test_format_size_round_trips_through_parse_size():
    for n in [1, 7, 8, 1023, 1024, 1025, 3 * KiB, 5 * MiB + 1, 64 * MiB, 2 * GiB, 3 * GiB + KiB]:
        assert bench.parse_size(bench.format_size(n)) == n


def test_default_sizes_span_8_bytes_to_64_mib_in_increasing_order():
    sizes = bench.default_sizes()
    assert sizes == list(bench.DEFAULT_SIZES) and sizes is not bench.default_sizes()
    assert sizes[0] == 8 and sizes[-1] == 64 * MiB and MiB in sizes
    assert sizes == sorted(set(sizes))


def test_default_iterations_shrink_with_size_within_bounds():
    counts = [bench.default_iterations(n) for n in bench.DEFAULT_SIZES]
    assert counts == sorted(counts, reverse=True)
    assert counts[0] >= 100 and counts[-1] >= 1
    assert all(bench.default_warmup(n) >= 1 for n in bench.DEFAULT_SIZES)
    # the byte volume of a large point stays bounded (a 64 MiB point is a handful of calls)
    assert bench.default_iterations(64 * MiB) * 64 * MiB <= 1 * GiB


# ----------------------------------------------------------------------- sweep: units, timing
class _SlowBcast(SelfCommunicator):
    """One rank whose bcast takes a known time: an independent reference for the timer."""

    def __init__(self, seconds):
        super().__init__()
        self.seconds = seconds
        self.calls = 0

    def _bcast(self, buf, root):
        self.calls += 1
        time.sleep(self.seconds)


def test_sweep_reports_microseconds_per_call():
    comm = _SlowBcast(0.004)
    (row,) = bench.sweep(comm, ops=["bcast"], sizes=[64], iterations=5, warmup=2)
    assert comm.calls == 7  # warm-up calls run too, but are not timed
    assert row.iterations == 5
    assert 4000 <= row.latency_us < 40000  # sleep(4 ms) per call, in µs, not per loop
    assert row.bandwidth_MBps == pytest.approx(64 / (row.latency_us * 1e-6) / 1e6)


class _RankSkewed:
    """The real communicator, with a bcast that rank r delays by (r + 1) * ``unit`` seconds."""

    def __init__(self, comm, unit):
        self._comm, self._unit = comm, unit

    def __getattr__(self, name):
        return getattr(self._comm, name)

    def bcast(self, tensor, root=0):
        time.sleep((self._comm.rank + 1) * self._unit)
        return self._comm.bcast(tensor, root)


@pytest.mark.mpi
def test_sweep_reports_the_slowest_rank_on_every_rank(comm):
    unit = 0.002
    (row,) = bench.sweep(_RankSkewed(comm, unit), ops=["bcast"], sizes=[8], iterations=4)
    everyone = comm.allgather_obj(row)  # collective first, so a failing rank cannot hang others
    # the last rank sleeps size * unit per call; rank 0 alone would report about one unit
    assert all(r.latency_us >= comm.size * unit * 1e6 for r in everyone)
    assert everyone == [row] * comm.size


@pytest.mark.mpi
def test_sweep_gives_one_consistent_row_per_op_and_size(comm):
    sizes = [8, 64, "4KiB"]
    rows = bench.sweep(comm, sizes=sizes, iterations=3, warmup=1)
    everyone = comm.allgather_obj(rows)  # collective first, so a failing rank cannot hang others
    expected = [(op, n) for op in bench.OPS for n in (8, 64, 4096)]
    assert [(r.op, r.nbytes) for r in rows] == expected
    for r in rows:
        assert r.iterations == 3
        assert math.isfinite(r.latency_us) and r.latency_us > 0
        assert math.isfinite(r.bandwidth_MBps) and r.bandwidth_MBps > 0
        # MB/s with MB = 1e6 bytes: bytes / seconds / 1e6
        assert r.bandwidth_MBps == pytest.approx(r.nbytes / (r.latency_us * 1e-6) / 1e6)
        assert r.latency_us < 10e6  # a few-byte collective takes far less than 10 s
    assert everyone == [rows] * comm.size  # the same numbers on every rank


@pytest.mark.mpi
def test_sweep_adapts_iterations_and_reports_progress(comm):
    seen = []
    rows = bench.sweep(comm, ops=("allreduce",), sizes=[8, 256 * KiB], progress=seen.append)
    assert seen == rows
    assert [r.iterations for r in rows] == [
        bench.default_iterations(8),
        bench.default_iterations(256 * KiB),
    ]
    assert rows[0].iterations > rows[1].iterations


@pytest.mark.mpi
def test_sweep_other_dtypes_and_ops_subset(comm):
    rows = bench.sweep(comm, ops="alltoall", sizes=[16], iterations=2, dtype="float64")
    assert [(r.op, r.nbytes) for r in rows] == [("alltoall", 16)]
    rows = bench.sweep(comm, ops=["allgather"], sizes=[2], iterations=2, dtype=torch.int16)
    assert [(r.op, r.nbytes) for r in rows] == [("allgather", 2)]


@pytest.mark.mpi
@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"ops": ["allreduce", "reduce"]}, ValueError, "^ops: unknown operation 'reduce'"),
        ({"ops": []}, ValueError, "^ops must name"),
        ({"sizes": []}, ValueError, "^sizes must hold"),
        ({"sizes": ["4KB"]}, ValueError, "^sizes: "),
        ({"sizes": [6]}, ValueError, "^sizes: 6 bytes is not a whole number"),
        ({"iterations": 0}, ValueError, "^iterations must be >= 1"),
        ({"iterations": 2.5}, TypeError, "^iterations must be an int"),
        ({"warmup": -1}, ValueError, "^warmup must be >= 0"),
        ({"dtype": "float33"}, ValueError, "^dtype: "),
        ({"dtype": 4}, TypeError, "^dtype must be"),
    ],
)
def test_sweep_rejects_bad_arguments_before_communicating(comm, kwargs, error, match):
    args = {"sizes": [8], "iterations": 1, **kwargs}
    with pytest.raises(error, match=match):
        bench.sweep(comm, **args)


@pytest.mark.mpi
def test_sweep_rejects_a_dtype_that_cannot_be_reduced(comm):
    if not hasattr(torch, "float8_e4m3fn"):
        pytest.skip("this torch has no float8")
    with pytest.raises(TypeError, match="reductions are not supported"):
        bench.sweep(comm, ops=["bcast", "allreduce"], sizes=[8], dtype=torch.float8_e4m3fn)


# --------------------------------------------------------------------------- table and plot
ROWS = [
    bench.BenchRow("allreduce", 8, 1000, 3.14159, 8 / 3.14159),
    bench.BenchRow("allreduce", 4096, 1000, 12.3456, 4096 / 12.3456),
    bench.BenchRow("bcast", 64 * MiB, 5, 26511.7, 64 * MiB / 26511.7),
    bench.BenchRow("alltoall", 1536, 10, 0.0123456, 1536 / 0.0123456),
]


def _parse_markdown(text):
    lines = text.strip().splitlines()
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    assert set(lines[1].replace("|", "").replace("-", "").replace(":", "").strip()) == set()
    return header, [[c.strip() for c in line.strip("|").split("|")] for line in lines[2:]]


def test_format_table_holds_every_row_in_order():
    header, body = _parse_markdown(bench.format_table(ROWS))
    assert header == [
        "op",
        "size",
        "bytes",
        "iterations",
        "latency (µs)",
        "bandwidth (MB/s)",
    ]
    assert len(body) == len(ROWS)
    for cells, row in zip(body, ROWS):
        op, size, nbytes, iters, lat, bw = cells
        assert op == row.op
        assert bench.parse_size(size) == row.nbytes == int(nbytes)
        assert int(iters) == row.iterations
        assert float(lat) == pytest.approx(row.latency_us, rel=5e-3, abs=0.5)
        assert float(bw) == pytest.approx(row.bandwidth_MBps, rel=5e-3, abs=0.5)


def test_format_table_of_nothing_is_just_the_header():
    assert len(bench.format_table([]).strip().splitlines()) == 2


def test_plot_writes_a_png_atomically(tmp_path):
    target = tmp_path / "latency.png"
    target.write_bytes(b"old contents")
    assert bench.plot(ROWS, target, title="test") == target
    data = target.read_bytes()
    assert data[:8] == PNG_MAGIC and len(data) > 1000
    assert sorted(p.name for p in tmp_path.iterdir()) == ["latency.png"]  # no temp file left


def test_plot_rejects_empty_rows(tmp_path):
    with pytest.raises(ValueError, match="rows"):
        bench.plot([], tmp_path / "x.png")
    assert list(tmp_path.iterdir()) == []


def test_plot_without_matplotlib_names_the_extra(tmp_path, monkeypatch):
    for name in ("matplotlib", "matplotlib.figure", "matplotlib.backends.backend_agg"):
        monkeypatch.setitem(sys.modules, name, None)
    with pytest.raises(ImportError, match=r"hpc-comm\[plot\]"):
        bench.plot(ROWS, tmp_path / "x.png")
    assert list(tmp_path.iterdir()) == []
