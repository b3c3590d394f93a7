"""Hypothesis-driven byte mutations of valid files: the loader returns an image or a clear error, nothing else.

Deterministic by default (the same examples each run, so CI does not flake); ``RS_FUZZ_RANDOM=1`` explores new
ones, ``RS_FUZZ_EXAMPLES=N`` changes the count. A longer run that also survives native crashes and counts them:
``bench/fuzz_loader.py``.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from bench.fuzzing import KINDS, load_outcome, mutate, repair_png_checksums, seeds  # noqa: E402

EXAMPLES = int(os.environ.get("RS_FUZZ_EXAMPLES", "250"))
SEED_NAMES = sorted(seeds())

operations = st.lists(
    st.tuples(
        st.sampled_from(KINDS),
        st.floats(0.0, 1.0, allow_nan=False),
        st.integers(0, 255),
        st.integers(1, 64),
    ),
    min_size=1,
    max_size=6,
)

tried: dict[str, dict[str, int]] = {}


@pytest.mark.timeout(120)
@pytest.mark.parametrize("seed_name", SEED_NAMES)
def test_mutated_files_load_or_fail_clearly(seed_name):
    data = seeds()[seed_name]
    counts = tried.setdefault(seed_name, {"loaded": 0, "refused": 0})
    folder = Path(tempfile.mkdtemp(prefix="fuzz-"))
    path = folder / seed_name

    @settings(
        max_examples=EXAMPLES,
        deadline=None,  # a decode can be slow on a busy machine; hangs are pytest-timeout's job
        database=None,  # nothing written into the repository
        derandomize=os.environ.get("RS_FUZZ_RANDOM") != "1",
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )
    @given(operations, st.booleans())
    def check(ops, repair):
        damaged = mutate(data, ops)
        path.write_bytes(repair_png_checksums(damaged) if repair else damaged)
        counts[load_outcome(path)] += 1

    try:
        check()
    finally:
        path.unlink(missing_ok=True)
        folder.rmdir()
    total = counts["loaded"] + counts["refused"]
    print(f"fuzz {seed_name}: {total} inputs, {counts['loaded']} loaded, {counts['refused']} refused")
    assert total >= EXAMPLES * 0.9  # hypothesis really ran (it stops early only when it runs out of inputs)
    assert counts["refused"] > 0  # the mutations do damage files
