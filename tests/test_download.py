"""Tests of ``ntkbench.data.download`` against a local HTTP server that can misbehave.

A fake data set (two small files served from a temporary directory) replaces the registered
ones, so the tests depend neither on the network nor on the real MNIST / CIFAR declarations.
"""

from __future__ import annotations

import hashlib
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from ntkbench.data import cache
from ntkbench.data import download as dl
from ntkbench.data.cache import RemoteDataset, RemoteFile

# a.bin spans several read chunks, so streaming and hashing across chunks is exercised.
CONTENTS = {"a.bin": np.random.default_rng(0).bytes(2 * dl.CHUNK + 123),
            "b.txt": b"ntkbench test file\n"}


class _Handler(BaseHTTPRequestHandler):
    """Serves ``server.root``; ``server.modes[name]`` makes it misbehave for one file."""

    server: _Server

    def do_GET(self) -> None:  # noqa: N802 - the http.server spelling
        name = self.path.lstrip("/")
        self.server.requests[name] += 1
        mode = self.server.modes.get(name, "ok")
        path = self.server.root / name
        if mode == "404" or not path.is_file():
            self.send_error(404, "Not Found")
            return
        if mode.startswith("redirect:"):
            self.send_response(302)
            self.send_header("Location", mode.removeprefix("redirect:"))
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        body = path.read_bytes()
        if mode == "wrong":  # same size, one byte changed
            body = bytes([body[0] ^ 0xFF]) + body[1:]
        elif mode == "short":  # a complete response, of a shorter file
            body = body[: len(body) // 2]
        elif mode == "long":
            body = body + b"extra"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if mode == "cut":  # announces the whole file, closes the connection half-way
            self.wfile.write(body[: len(body) // 2])
            self.close_connection = True
            return
        if mode == "stall":  # headers, then silence until the test ends
            self.wfile.flush()
            self.server.release.wait(10)
            return
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


class _Server(ThreadingHTTPServer):
    root: Path
    modes: dict[str, str]
    requests: Counter
    release: threading.Event

    def handle_error(self, request, client_address) -> None:  # broken pipes of bad modes
        pass

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/{name}"


@contextmanager
def serve(root: Path) -> Iterator[_Server]:
    """An HTTP server on 127.0.0.1 serving ``root``, in a daemon thread."""
    server = _Server(("127.0.0.1", 0), _Handler)
    server.root, server.modes, server.requests = root, {}, Counter()
    server.release = threading.Event()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02},
                              daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.release.set()
        server.shutdown()
        server.server_close()


def fake_dataset(server: _Server, urls: dict[str, str] | None = None) -> RemoteDataset:
    """The data set ``fake``: :data:`CONTENTS` with their true sizes and SHA-256."""
    urls = urls or {}
    files = tuple(RemoteFile(name, urls.get(name, server.url(name)),
                             hashlib.sha256(data).hexdigest(), len(data))
                  for name, data in CONTENTS.items())
    return RemoteDataset("fake", "a fake data set for the tests", files, "tests/test_download.py")


@pytest.fixture
def server(tmp_path, monkeypatch) -> Iterator[_Server]:
    """The server, the fake data set as the only registered one, the cache in tmp_path."""
    remote = tmp_path / "remote"
    remote.mkdir()
    for name, data in CONTENTS.items():
        (remote / name).write_bytes(data)
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy",
                "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv(cache.ENV_VAR, str(tmp_path / "cache"))
    with serve(remote) as srv:
        monkeypatch.setattr(cache, "REMOTE", {"fake": fake_dataset(srv)})
        yield srv


def _leftovers(directory: Path) -> list[str]:
    """Every name in the data set's directory (the final files and any ``.part-*``)."""
    return sorted(p.name for p in directory.iterdir()) if directory.is_dir() else []


def test_download_fetches_verifies_and_places_every_file(server, tmp_path):
    lines: list[str] = []
    paths = dl.download("fake", progress=False, report=lines.append)
    directory = tmp_path / "cache" / "fake"
    assert paths == [directory / name for name in CONTENTS]
    for name, data in CONTENTS.items():
        assert (directory / name).read_bytes() == data
    assert _leftovers(directory) == sorted(CONTENTS)
    assert lines == [f"{name}: downloaded, verified" for name in CONTENTS]
    assert server.requests == Counter({name: 1 for name in CONTENTS})


def test_second_call_keeps_verified_files_and_force_fetches_again(server):
    dl.download("fake", progress=False)
    lines: list[str] = []
    dl.download("fake", progress=False, report=lines.append)
    assert lines == [f"{name}: already present, verified" for name in CONTENTS]
    assert server.requests == Counter({name: 1 for name in CONTENTS})
    dl.download("fake", progress=False, force=True)
    assert server.requests == Counter({name: 2 for name in CONTENTS})
    assert dl.verify("fake") == {name: dl.VERIFIED for name in CONTENTS}


def test_explicit_root_overrides_the_environment(server, tmp_path):
    other = tmp_path / "elsewhere"
    dl.download("fake", other, progress=False)
    assert _leftovers(other / "fake") == sorted(CONTENTS)
    assert not (tmp_path / "cache").exists()


def test_temporary_file_is_beside_the_target_and_renamed_into_place(server, monkeypatch):
    renames: list[tuple[Path, Path, bytes]] = []
    real_replace = dl.os.replace

    def spy(src, dst):
        renames.append((Path(src), Path(dst), Path(src).read_bytes()))
        real_replace(src, dst)

    monkeypatch.setattr(dl.os, "replace", spy)
    dl.download("fake", progress=False)
    assert [dst.name for _, dst, _ in renames] == list(CONTENTS)
    for src, dst, data in renames:
        assert src.parent == dst.parent and src.name.startswith(f"{dst.name}.part-")
        assert data == CONTENTS[dst.name]  # complete before it gets the final name


def test_wrong_checksum_names_both_digests_and_leaves_nothing(server, tmp_path):
    server.modes["a.bin"] = "wrong"
    with pytest.raises(dl.DownloadError) as info:
        dl.download("fake", progress=False)
    data = CONTENTS["a.bin"]
    served = bytes([data[0] ^ 0xFF]) + data[1:]
    message = str(info.value)
    assert server.url("a.bin") in message and info.value.url == server.url("a.bin")
    assert hashlib.sha256(data).hexdigest() in message
    assert hashlib.sha256(served).hexdigest() in message
    assert _leftovers(tmp_path / "cache" / "fake") == []


@pytest.mark.parametrize("mode, words", [
    ("short", f"received {len(CONTENTS['a.bin']) // 2} bytes, expected {len(CONTENTS['a.bin'])}"),
    ("cut", f"received {len(CONTENTS['a.bin']) // 2} bytes, expected {len(CONTENTS['a.bin'])}"),
    ("long", f"more than the expected {len(CONTENTS['a.bin'])} bytes"),
    ("404", "HTTP 404 Not Found"),
])
def test_broken_transfer_is_an_error_and_leaves_nothing(server, tmp_path, mode, words):
    server.modes["a.bin"] = mode
    with pytest.raises(dl.DownloadError, match="a.bin") as info:
        dl.download("fake", progress=False)
    assert words in str(info.value)
    assert _leftovers(tmp_path / "cache" / "fake") == []


def test_failure_of_a_later_file_keeps_the_verified_earlier_one(server, tmp_path):
    server.modes["b.txt"] = "cut"
    with pytest.raises(dl.DownloadError, match="b.txt"):
        dl.download("fake", progress=False)
    assert _leftovers(tmp_path / "cache" / "fake") == ["a.bin"]
    assert dl.verify("fake") == {"a.bin": dl.VERIFIED, "b.txt": dl.MISSING}


def test_read_timeout_is_an_error_and_leaves_nothing(server, tmp_path, monkeypatch):
    monkeypatch.setattr(dl, "TIMEOUT", 0.2)
    server.modes["a.bin"] = "stall"
    with pytest.raises(dl.DownloadError, match="no answer from the server for 0.2 s"):
        dl.download("fake", progress=False)
    assert _leftovers(tmp_path / "cache" / "fake") == []


def test_refused_connection_is_an_error_that_says_so(server, tmp_path, monkeypatch):
    with serve(tmp_path) as gone:
        url = gone.url("a.bin")  # a port that nothing listens on once the server is closed
    monkeypatch.setattr(cache, "REMOTE", {"fake": fake_dataset(server, {"a.bin": url})})
    with pytest.raises(dl.DownloadError, match="cannot connect"):
        dl.download("fake", progress=False)
    assert _leftovers(tmp_path / "cache" / "fake") == []


def test_interrupt_discards_the_partial_file(server, tmp_path, monkeypatch):
    import tqdm

    class Interrupting(tqdm.tqdm):
        def update(self, n=1):
            raise KeyboardInterrupt

    monkeypatch.setattr(tqdm, "tqdm", Interrupting)
    with pytest.raises(KeyboardInterrupt):
        dl.download("fake", progress=False)
    assert _leftovers(tmp_path / "cache" / "fake") == []


def test_corrupt_file_in_the_cache_is_replaced_by_a_verified_download(server, tmp_path):
    directory = tmp_path / "cache" / "fake"
    directory.mkdir(parents=True)
    (directory / "a.bin").write_bytes(b"\0" * len(CONTENTS["a.bin"]))  # right size, wrong bytes
    (directory / "b.txt").write_bytes(b"short")
    assert dl.verify("fake") == {"a.bin": dl.WRONG_CHECKSUM, "b.txt": dl.WRONG_SIZE}
    dl.download("fake", progress=False)
    assert server.requests == Counter({name: 1 for name in CONTENTS})
    assert (directory / "a.bin").read_bytes() == CONTENTS["a.bin"]
    assert dl.verify("fake") == {name: dl.VERIFIED for name in CONTENTS}


def test_verify_states(server, tmp_path):
    assert dl.verify("fake") == {name: dl.MISSING for name in CONTENTS}
    dl.download("fake", progress=False)
    assert dl.verify("fake", checksum=False) == {name: dl.PRESENT for name in CONTENTS}
    path = tmp_path / "cache" / "fake" / "b.txt"
    path.write_bytes(path.read_bytes().upper())  # same size, different bytes
    assert dl.verify("fake") == {"a.bin": dl.VERIFIED, "b.txt": dl.WRONG_CHECKSUM}
    assert dl.verify("fake", checksum=False)["b.txt"] == dl.PRESENT  # size alone cannot tell
    path.write_bytes(b"x")
    assert dl.verify("fake", checksum=False)["b.txt"] == dl.WRONG_SIZE


def test_redirects_are_followed_only_to_accepted_urls(server, tmp_path):
    server.modes["b.txt"] = "redirect:/b.txt.mirror"
    (server.root / "b.txt.mirror").write_bytes(CONTENTS["b.txt"])
    dl.download("fake", progress=False)
    assert server.requests["b.txt.mirror"] == 1 and dl.verify("fake")["b.txt"] == dl.VERIFIED
    # .invalid never resolves (RFC 2606): an attempt to follow would fail as "cannot connect"
    server.modes["a.bin"] = "redirect:http://mirror.invalid/a.bin"
    with pytest.raises(dl.DownloadError, match="redirected to http://mirror.invalid/a.bin, "
                       "which is not https; refusing"):
        dl.download("fake", progress=False, force=True)
    assert dl.verify("fake") == {name: dl.VERIFIED for name in CONTENTS}  # old files kept


@pytest.mark.parametrize("url, ok", [
    ("https://example.org/x.gz", True),
    ("http://127.0.0.1:8000/x.gz", True),
    ("http://localhost/x.gz", True),
    ("http://[::1]:8000/x.gz", True),
    ("http://example.org/x.gz", False),
    ("http://127.0.0.1.example.org/x.gz", False),
    ("ftp://example.org/x.gz", False),
    ("file:///etc/passwd", False),
    ("https:///x.gz", False),
])
def test_check_url_accepts_https_and_local_http_only(url, ok):
    if ok:
        dl.check_url(url)
    else:
        with pytest.raises(dl.DownloadError, match="only https://"):
            dl.check_url(url)


def test_non_https_declaration_is_refused_before_any_request(server, tmp_path, monkeypatch):
    ds = fake_dataset(server, {"b.txt": "http://example.org/b.txt"})
    monkeypatch.setattr(cache, "REMOTE", {"fake": ds})
    with pytest.raises(dl.DownloadError, match="http://example.org/b.txt: refusing to fetch"):
        dl.download("fake", progress=False)
    assert sum(server.requests.values()) == 0  # not even the valid a.bin was fetched
    assert _leftovers(tmp_path / "cache" / "fake") == []


def test_file_names_with_directories_are_refused(server, monkeypatch):
    bad = RemoteDataset("fake", "", (RemoteFile("../escape", server.url("a.bin"), "0" * 64, 1),),
                        "")
    monkeypatch.setattr(cache, "REMOTE", {"fake": bad})
    with pytest.raises(ValueError, match="'../escape' must be a plain file name"):
        dl.download("fake", progress=False)
    assert sum(server.requests.values()) == 0


def test_unknown_name_suggests_the_closest_or_lists_the_known(server):
    with pytest.raises(ValueError, match="unknown data set 'fak' — did you mean 'fake'"):
        dl.download("fak")
    with pytest.raises(ValueError, match=r"unknown data set 'cifar' \(known: fake\)"):
        dl.verify("cifar")
