"""A process killed with SIGKILL while submitting leaves a consistent store and no orphan photo."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from PIL import Image
from sqlalchemy import func, select

from data.labels import load_labels
from serve.store import Submission, open_store

REPO = Path(__file__).resolve().parents[2]

# Submits photos forever; every write is slowed down so the kill lands inside one.
WRITER = r"""
import sys, time
from pathlib import Path
from types import SimpleNamespace
sys.path.insert(0, sys.argv[2])
from tests.serve.moderation_fixtures import new_submission
import serve.store.photos as photos
from serve.store import open_store
from data.labels import load_labels

slow_write = photos.write_atomic
def write_atomic(path, write, **kw):
    def slow(tmp):
        write(tmp)
        time.sleep(0.01)
    slow_write(path, slow, **kw)
photos.write_atomic = write_atomic
store = open_store(SimpleNamespace(data_dir=Path(sys.argv[1]), database_url=None), load_labels())
i = 0
while True:
    store.add_submission(new_submission(10_000 + i, lat=44.8 + i * 1e-3, lon=20.4))
    i += 1
    print(i, flush=True)
"""


def _files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()]


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")
@pytest.mark.parametrize("kill_after_s", [0.9, 1.3, 1.7])
def test_sigkill_mid_submission_leaves_no_orphans(tmp_path: Path, kill_after_s: float) -> None:
    data_dir = tmp_path / "var"
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(data_dir), str(REPO)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )
    assert proc.stdout is not None
    first = proc.stdout.readline()  # wait until it is really submitting
    assert first.strip(), proc.stderr.read() if proc.stderr else "writer died"
    time.sleep(kill_after_s)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    before = len(_files(data_dir / "photos"))

    store = open_store(SimpleNamespace(data_dir=data_dir, database_url=None), load_labels())  # runs the sweep
    try:
        with store.session() as s:
            rows = s.scalar(select(func.count()).select_from(Submission)) or 0
            referenced = set(s.scalars(select(Submission.photo)).all())
        files = _files(store.photos.root)
        assert {f.relative_to(store.photos.root).as_posix() for f in files} == referenced
        assert not [f for f in files if f.name.endswith(".tmp")]
        for f in files:
            with Image.open(f) as img:
                img.load()  # every kept photo is complete
        swept = before - len(files)
        print(
            f"crash test: killed after {rows} committed rows; sweep removed {swept} file(s); 0 orphans left"
        )
        assert rows >= 1
    finally:
        store.close()
