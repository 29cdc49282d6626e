"""The embedded engine at the edges of the disk: full, over the file size limit, a rollback
that itself fails, and torn or corrupt files at start-up. Real servers, real files."""

from __future__ import annotations

import contextlib
import errno
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import orjson
import pytest

from tests.conftest import ADMIN_TOKEN, ROOT, TickerServer, _env, free_port, new_match
from tests.test_resilience import all_ops

AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
PAD = "x" * 200  # ~500-byte lines: a few fit in the room left, one gets cut


def body(i: int) -> dict[str, str]:
    """Event `i`: every third a home goal, so a lost or doubled event shows in the score."""
    if i % 3 == 0:
        return {"type": "goal", "team": "home", "player": "Højlund", "text": f"k{i} {PAD}"}
    return {"type": "comment", "text": f"k{i} {PAD}"}


def match_file(data_dir: Path, match_id: str) -> Path:
    return data_dir / "matches" / f"{match_id}.log"


class Reporter:
    """Posts numbered events with an Idempotency-Key each and remembers what was answered."""

    def __init__(self, server: TickerServer, match_id: str) -> None:
        self.server = server
        self.match_id = match_id
        self.next = 0
        self.acked: dict[str, str] = {}  # key -> seq, in the order acknowledged
        self.refused: list[int] = []  # answered 503: not written, to be retried

    def post(self, i: int) -> httpx.Response:
        return httpx.post(
            f"{self.server.url}/api/matches/{self.match_id}/events",
            json=body(i),
            headers={**AUTH, "Idempotency-Key": f"k{i}"},
            timeout=10,
        )

    def post_until_refused(self, refusals: int = 3) -> None:
        """Post new events until `refusals` of them are answered 503."""
        seen = 0
        while seen < refusals:
            assert self.next < 100, "writes never failed"
            i, self.next = self.next, self.next + 1
            r = self.post(i)
            if r.status_code == 201:
                self.acked[f"k{i}"] = r.json()["op"]["seq"]
                continue
            assert r.status_code == 503, r.text
            assert r.json()["error"]["code"] == "unavailable"
            self.refused.append(i)
            seen += 1
        assert self.acked, "no write fitted before the disk was full"

    def retry_refused(self) -> None:
        """The console's retry with the same keys: each lands once; a repeat gets the same op."""
        for i in self.refused:
            r = self.post(i)
            assert r.status_code == 201, r.text
            again = self.post(i)
            assert again.status_code == 200, again.text
            assert again.json()["op"] == r.json()["op"]
            self.acked[f"k{i}"] = r.json()["op"]["seq"]
        self.refused = []

    def check_disk(self, path: Path) -> None:
        """Every acknowledged event is a whole line on disk, in order, and nothing else is."""
        data = path.read_bytes()
        assert data.endswith(b"\n"), f"{path} ends in a fragment: {data[-60:]!r}"
        seqs = [orjson.loads(line)["o"]["seq"] for line in data.splitlines()[1:]]
        assert seqs == list(self.acked.values())

    def check_log(self) -> None:
        """After a restart: exactly the acknowledged events, once each, in order; the score."""
        log = all_ops(self.server.url, self.match_id)
        adds = [op for op in log if op["op"] == "add"]
        assert [op["event"]["text"].split()[0] for op in adds] == list(self.acked)
        assert [op["seq"] for op in adds] == list(self.acked.values())
        goals = sum(1 for key in self.acked if int(key[1:]) % 3 == 0)
        assert log[-1]["state"]["score"] == {"home": goals, "away": 0}


def run(*cmd: str) -> str:
    """Run a setup command; skip the test with its message when this machine cannot."""
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"{' '.join(cmd)}: {done.stderr.strip()}")
    return done.stdout.strip()


@contextlib.contextmanager
def mounted_tmpfs(mnt: Path, size: str) -> Iterator[Path]:
    mnt.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a file system needs root")
    run("mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mnt))
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=True)


@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator[Path]:
    """A small tmpfs of our own: a disk that really fills up.

    Ask for it before `make_server`, so the servers are stopped before it is unmounted.
    """
    with mounted_tmpfs(tmp_path / "disk", "256k") as mnt:
        yield mnt


@pytest.fixture
def ext4_on_small_tmpfs(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    """(mount point, backing dir): ext4 on a loop device whose image file is sparse on a
    small tmpfs. With the tmpfs full, ext4 still takes writes into its page cache, but
    their writeback fails: a real fsync error."""
    with mounted_tmpfs(tmp_path / "backing", "2m") as backing:
        image = backing / "ext4.img"
        run("truncate", "-s", "16M", str(image))
        run("mkfs.ext4", "-q", "-b", "4096", "-O", "^has_journal", str(image))
        device = run("losetup", "-f", "--show", str(image))
        try:
            mnt = tmp_path / "ext4"
            mnt.mkdir()
            # noinit_itable: no background writes into the image while the test fills it.
            run("mount", "-o", "noinit_itable", device, str(mnt))
            try:
                yield mnt, backing
            finally:
                for filler in backing.glob("filler"):
                    filler.unlink()  # room for the last writeback, so unmounting is quick
                subprocess.run(["umount", "-l", str(mnt)], check=True)
        finally:
            subprocess.run(["losetup", "-d", device], check=True)


def fill(path: Path) -> None:
    """Write `path` until the disk is full: only the slack in other files' last pages is left."""
    with open(path, "wb", buffering=0) as f:
        try:
            while True:
                f.write(b"\0" * 4096)
        except OSError as exc:
            assert exc.errno == errno.ENOSPC, exc


def test_full_disk_acknowledges_only_durable_writes(
    tmpfs: Path, make_server, match_id: str
) -> None:  # type: ignore[no-untyped-def]
    data_dir = tmpfs / "data"
    server = make_server(data_dir=data_dir)
    with server.admin() as admin:
        new_match(admin, match_id)
    filler = tmpfs / "filler"
    fill(filler)
    reporter = Reporter(server, match_id)
    reporter.post_until_refused()
    reporter.check_disk(match_file(data_dir, match_id))
    filler.unlink()
    reporter.retry_refused()
    reporter.check_disk(match_file(data_dir, match_id))
    server.restart()
    reporter.check_log()


def test_fsync_error_acknowledges_nothing_and_keeps_nothing(
    ext4_on_small_tmpfs: tuple[Path, Path], make_server, match_id: str
) -> None:  # type: ignore[no-untyped-def]
    mnt, backing = ext4_on_small_tmpfs
    data_dir = mnt / "data"
    server = make_server(data_dir=data_dir)
    with server.admin() as admin:
        new_match(admin, match_id)
    filler = backing / "filler"
    fill(filler)
    # The stack does what the test needs: a write is taken, its fsync fails.
    probe = os.open(mnt / "probe", os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        assert os.write(probe, b"x" * 8192) == 8192
        with pytest.raises(OSError):
            os.fsync(probe)
    finally:
        os.close(probe)
    reporter = Reporter(server, match_id)
    reporter.post_until_refused()
    reporter.check_disk(match_file(data_dir, match_id))
    filler.unlink()
    # A rollback's own fsync may fail on this stack too, leaving the match unwritable
    # until a restart: restart first, so either outcome must recover the same way.
    server.restart()
    reporter.check_disk(match_file(data_dir, match_id))
    reporter.retry_refused()
    server.restart()
    reporter.check_log()


def prlimit_fsize(pid: int, soft: int | str) -> None:
    """Set a running process's file size limit (writes past it: short, then EFBIG)."""
    subprocess.run(["prlimit", "--pid", str(pid), f"--fsize={soft}:unlimited"], check=True)


def test_file_size_limit_acknowledges_only_durable_writes(
    make_server, match_id: str, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    data_dir = tmp_path / "data"
    server = make_server(data_dir=data_dir)
    with server.admin() as admin:
        new_match(admin, match_id)
    path = match_file(data_dir, match_id)
    assert server.proc is not None
    prlimit_fsize(server.proc.pid, path.stat().st_size + 1800)
    reporter = Reporter(server, match_id)
    reporter.post_until_refused()
    reporter.check_disk(path)
    prlimit_fsize(server.proc.pid, "unlimited")
    reporter.retry_refused()
    reporter.check_disk(path)
    server.restart()
    reporter.check_log()


@contextlib.contextmanager
def append_only(path: Path) -> Iterator[None]:
    """`chattr +a`: appends still work, but the file cannot be truncated (EPERM)."""
    done = subprocess.run(["chattr", "+a", str(path)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"chattr +a is not possible here: {done.stderr.decode().strip()}")
    try:
        yield
    finally:
        subprocess.run(["chattr", "-a", str(path)], check=True)


def test_failed_rollback_stops_writes_to_the_match_until_restart(
    make_server, match_id: str, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    data_dir = tmp_path / "data"
    server = make_server(data_dir=data_dir)
    with server.admin() as admin:
        new_match(admin, match_id)
    path = match_file(data_dir, match_id)
    assert server.proc is not None
    reporter = Reporter(server, match_id)
    with append_only(path):
        # A write cut short by the limit cannot be cut back off: the file's tail is unknown.
        prlimit_fsize(server.proc.pid, path.stat().st_size + 1800)
        reporter.post_until_refused(refusals=1)
        torn = path.read_bytes()
        assert not torn.endswith(b"\n")
        prlimit_fsize(server.proc.pid, "unlimited")
        # Room again, but nothing may be appended after the fragment.
        reporter.post_until_refused(refusals=2)
        r = reporter.post(reporter.refused[-1])
        assert r.status_code == 503
        assert "restart" in r.json()["error"]["message"]
        assert path.read_bytes() == torn
    assert server.log_path is not None
    assert f"{path}" in server.log_path.read_text()
    health = httpx.get(server.url + "/healthz", timeout=5).json()
    assert health["unwritable_matches"] == [match_id]
    server.restart()  # recovery cuts the fragment off
    assert "unwritable_matches" not in httpx.get(server.url + "/healthz", timeout=5).json()
    reporter.check_disk(path)
    reporter.retry_refused()
    server.restart()
    reporter.check_log()


# Start-up: only a torn last line may be cut; anything else refuses to start.


@pytest.fixture
def written(make_server, match_id: str, tmp_path: Path) -> tuple[Path, list[bytes]]:  # type: ignore[no-untyped-def]
    """A match file written by a real server (a match and three events), server stopped."""
    data_dir = tmp_path / "data"
    server = make_server(data_dir=data_dir)
    with server.admin() as admin:
        new_match(admin, match_id)
    reporter = Reporter(server, match_id)
    for i in range(3):
        assert reporter.post(i).status_code == 201
    server.stop()
    path = match_file(data_dir, match_id)
    return path, path.read_bytes().splitlines(keepends=True)


def test_torn_last_line_is_cut_and_the_server_starts(
    make_server, written: tuple[Path, list[bytes]], match_id: str
) -> None:  # type: ignore[no-untyped-def]
    path, lines = written
    whole = b"".join(lines)
    path.write_bytes(whole + lines[-1][:37])
    server = make_server(data_dir=path.parent.parent)
    assert path.read_bytes() == whole
    assert [op["op"] for op in all_ops(server.url, match_id)] == ["match", "add", "add", "add"]
    assert f"{path}: cutting off 37 bytes" in server.log_path.read_text()


def serve_once(data_dir: Path) -> subprocess.CompletedProcess[str]:
    """`ticker serve` that is expected to refuse to start."""
    cmd = [sys.executable, "-m", "ticker", "serve", "--port", str(free_port())]
    env = _env(TICKER_DATA_DIR=str(data_dir))
    return subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, timeout=20)


def _flip(line: bytes) -> bytes:
    return line[:20] + b"#" + line[21:]


CORRUPTIONS: dict[str, Callable[[list[bytes]], tuple[list[bytes], int]]] = {
    # name: lines -> (corrupt lines, index of the first bad line)
    "flipped middle line": lambda ls: ([ls[0], ls[1], _flip(ls[2]), ls[3]], 2),
    "torn line followed by more": lambda ls: ([ls[0], ls[1][:30], ls[2], ls[3]], 1),
    "not a record": lambda ls: ([ls[0], b'{"x":1}\n', ls[2], ls[3]], 1),
    "complete last line": lambda ls: ([ls[0], ls[1], ls[2], _flip(ls[3])], 3),
}


@pytest.mark.parametrize("corruption", list(CORRUPTIONS))
def test_corrupt_line_refuses_to_start(written: tuple[Path, list[bytes]], corruption: str) -> None:
    path, lines = written
    bad, index = CORRUPTIONS[corruption](lines)
    path.write_bytes(b"".join(bad))
    offset = sum(len(line) for line in bad[:index])
    done = serve_once(path.parent.parent)
    assert done.returncode != 0
    assert f"{path}: byte {offset}:" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    assert path.read_bytes() == b"".join(bad)
