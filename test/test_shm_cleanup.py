"""suite_tools.shm_cleanup: Fast DDS segments whose owner is gone are removed, live and fresh
ones are kept (on files in a scratch directory, the owner's flock held by this process)."""
from __future__ import annotations

import fcntl
import os
import time

from suite_tools.shm_cleanup import remove_stale_fastdds_segments


def _segment(d, name: str, size: int, age_s: float):
    seg, el = d / f"fastdds_{name}", d / f"fastdds_{name}_el"
    seg.write_bytes(b"\0" * size)
    el.write_bytes(b"")
    past = time.time() - age_s
    for p in (seg, el):
        os.utime(p, (past, past))
    return seg, el


def test_only_old_segments_without_a_living_owner_are_removed(tmp_path):
    live = _segment(tmp_path, "live", 1000, 600)
    dead = _segment(tmp_path, "dead", 3000, 600)
    fresh = _segment(tmp_path, "fresh", 500, 1)
    (tmp_path / "fastdds_port7000").write_bytes(b"\0" * 10)     # no lock file: not ours to judge
    other = tmp_path / "unrelated"
    other.write_bytes(b"x")
    fd = os.open(live[1], os.O_RDWR)                              # the owner of "live" holds its lock
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    try:
        n, freed = remove_stale_fastdds_segments(tmp_path, min_age_s=60.0)
    finally:
        os.close(fd)
    assert (n, freed) == (1, 3000)
    assert not dead[0].exists() and not dead[1].exists()
    assert all(p.exists() for p in (*live, *fresh, other, tmp_path / "fastdds_port7000"))
    # the owner gone, the live one is stale too; a missing directory is no error
    assert remove_stale_fastdds_segments(tmp_path, min_age_s=60.0) == (1, 1000)
    assert remove_stale_fastdds_segments(tmp_path / "absent") == (0, 0)
