"""Fast DDS shared-memory segments left behind by processes that did not exit cleanly.

The suite's Fast DDS profile (config/fastdds_localhost.xml) gives every participant a 32 MB
shared-memory segment, `/dev/shm/fastdds_<id>`, beside a `_el` file on which the owner holds an
flock for as long as it lives. A process that exits cleanly removes both; one killed with SIGKILL
(a test's last resort, a crashed node, a robot's watchdog) leaves them, and /dev/shm is RAM: one
`make test` leaked ~0.6-0.7 GB here, and a day of runs on this machine had left 21 GB of its 24,
with the kernel busy reclaiming pages; a test run under that saw two node starts stay silent for
5 minutes (the likely cause, not a proven one). Fast DDS does not reclaim them itself.

A segment is stale when no process holds the flock on its `_el` file (its owner is gone) and it is
older than `min_age_s` (a participant being created has made the file but may not hold the lock
yet). Pure stdlib.
"""
from __future__ import annotations

import fcntl
import os
import time
from pathlib import Path

SHM_DIR = Path("/dev/shm")


def _owner_alive(lock_file: Path) -> bool:
    """Some process holds an flock on lock_file (a missing or unreadable file: assume so)."""
    try:
        fd = os.open(lock_file, os.O_RDWR)
    except OSError:
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return True
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)


def remove_stale_fastdds_segments(shm_dir: Path = SHM_DIR, min_age_s: float = 60.0) -> tuple[int, int]:
    """Remove the Fast DDS segments in shm_dir whose owner has exited (see the module); returns
    (segments removed, bytes freed). Segments without a `_el` file are left alone."""
    removed, freed = 0, 0
    now = time.time()
    try:
        lock_files = sorted(shm_dir.glob("fastdds_*_el"))
    except OSError:
        return 0, 0
    for lock_file in lock_files:
        segment = lock_file.with_name(lock_file.name[:-3])
        try:
            st = segment.stat()
        except OSError:
            st = None
        if st is not None and now - st.st_mtime < min_age_s:
            continue
        if _owner_alive(lock_file):
            continue
        for path in (segment, lock_file):
            try:
                size = path.stat().st_size
                path.unlink()
                freed += size
            except OSError:
                pass
        removed += 1
    return removed, freed
