"""Fetch a downloadable data set into the cache, verifying every file, and check what is there.

The data sets are declared by their loader modules with
:func:`ntkbench.data.cache.register_remote`; each :class:`~ntkbench.data.cache.RemoteFile`
carries its URL, size in bytes and SHA-256. :func:`download` fetches the files into
``<cache root>/<data set>/`` and guarantees that a file under its final name is complete and
verified:

1. a file already present with the right size and SHA-256 is kept (not fetched again);
2. otherwise the URL is streamed over HTTPS (``urllib.request``, a read timeout of
   :data:`TIMEOUT` seconds, a ``User-Agent`` header) into ``<name>.part-<random>`` in the same
   directory, hashing while writing;
3. size and SHA-256 are compared with the declaration; on a match the file is flushed to disk
   (``fsync``) and renamed into place with :func:`os.replace` (atomic on one file system);
4. on any failure (HTTP error, broken connection, timeout, size or checksum mismatch, Ctrl-C)
   the temporary file is deleted and :class:`DownloadError` (or the ``KeyboardInterrupt``) is
   raised. A file already under the final name is left as it was.

Only ``https://`` URLs are fetched; plain ``http://`` is accepted for ``localhost`` /
``127.0.0.1`` / ``::1`` only (local mirrors and the tests). The checksum is what guarantees
integrity; HTTPS keeps the transfer private and lets a broken mirror fail early.

``ntkbench run`` never calls this module: a loader whose files are missing raises
:class:`~ntkbench.data.cache.MissingDataError`, whose message is the command that fetches them.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import secrets
import sys
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

from ntkbench._version import __version__
from ntkbench.data import cache
from ntkbench.data.cache import RemoteDataset, RemoteFile
from ntkbench.registry import suggest

TIMEOUT = 60.0
"""Seconds a connection attempt or a single read may wait for the server."""

USER_AGENT = f"ntkbench/{__version__} (Python-urllib)"
CHUNK = 1 << 16
LOCAL_HOSTS = ("localhost", "127.0.0.1", "::1")

# File states reported by :func:`verify`.
VERIFIED = "verified"  # right size and SHA-256
PRESENT = "present"  # right size; checksum not computed (``checksum=False``)
MISSING = "missing"
WRONG_SIZE = "wrong size"
WRONG_CHECKSUM = "wrong checksum"


class DownloadError(OSError):
    """A file could not be fetched, or what arrived is not the declared file.

    The message names the URL and what was expected against what arrived; nothing is left
    under the final file name, nor a partial ``.part-*`` file.
    """

    def __init__(self, url: str, problem: str) -> None:
        self.url = url
        super().__init__(f"{url}: {problem}")


def remote_dataset(name: str) -> RemoteDataset:
    """The registered downloadable data set ``name``, or ``ValueError`` listing the known ones."""
    known = cache.REMOTE
    if name in known:
        return known[name]
    if not known:
        raise ValueError(f"unknown data set {name!r}: no downloadable data set is registered")
    raise ValueError(f"unknown data set {name!r}{suggest(name, sorted(known))}")


def check_url(url: str) -> None:
    """Raise :class:`DownloadError` unless ``url`` is ``https://`` (or ``http://`` to this
    machine)."""
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return
    if parts.scheme == "http" and parts.hostname in LOCAL_HOSTS:
        return
    raise DownloadError(url, "refusing to fetch: only https:// URLs are allowed (plain http:// "
                        "only from localhost); fix the URL in the data set's declaration")


def file_state(path: Path, remote: RemoteFile, *, checksum: bool = True) -> str:
    """State of one cached file: :data:`MISSING`, :data:`WRONG_SIZE`, :data:`WRONG_CHECKSUM`,
    :data:`VERIFIED`, or :data:`PRESENT` (right size, checksum skipped) when
    ``checksum=False``."""
    if not path.is_file():
        return MISSING
    if path.stat().st_size != remote.size:
        return WRONG_SIZE
    if not checksum:
        return PRESENT
    return VERIFIED if cache.sha256_file(path) == remote.sha256.lower() else WRONG_CHECKSUM


def verify(name: str, root: Path | None = None, *, checksum: bool = True) -> dict[str, str]:
    """File name → state (see :func:`file_state`) of every file of data set ``name`` in
    ``root`` (default: :func:`~ntkbench.data.cache.data_dir`)."""
    dataset = remote_dataset(name)
    paths = dataset.paths(root)
    return {f.name: file_state(paths[f.name], f, checksum=checksum) for f in dataset.files}


def download(name: str, root: Path | None = None, *, progress: bool = True,
             force: bool = False, report: Callable[[str], None] | None = None) -> list[Path]:
    """Fetch the files of data set ``name`` into ``<root>/<name>/`` and verify them.

    Args:
        name: a registered data set (see ``ntkbench data info``).
        root: the cache root (default: ``$NTKBENCH_DATA`` or the user cache directory).
        progress: show a progress bar on stderr (only when stderr is a terminal).
        force: fetch every file again, even one already present and verified.
        report: called with one line per file (``"<file>: already present, verified"`` or
            ``"<file>: downloaded, verified"``); silent when ``None``.

    Returns:
        The paths of all the data set's files, each present and verified.

    Raises:
        ValueError: ``name`` is not a registered data set.
        DownloadError: a URL is not https, or a file could not be fetched or does not match
            its declared size / SHA-256 (nothing is left under its final name).
    """
    dataset = remote_dataset(name)
    for f in dataset.files:  # refuse a bad declaration before fetching anything
        check_url(f.url)
        if not f.name or Path(f.name).name != f.name or f.name in (".", ".."):
            raise ValueError(f"data set {name!r}: file name {f.name!r} must be a plain file "
                             "name, without directories")
    directory = dataset.directory(root)
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for f in dataset.files:
        dest = directory / f.name
        if not force and file_state(dest, f) == VERIFIED:
            message = "already present, verified"
        else:
            _fetch(f, dest, progress=progress)
            message = "downloaded, verified"
        if report is not None:
            report(f"{f.name}: {message}")
        paths.append(dest)
    return paths


def _fetch(remote: RemoteFile, dest: Path, *, progress: bool) -> None:
    """Stream ``remote.url`` to a temporary file beside ``dest``, verify, rename into place."""
    from tqdm import tqdm

    url, expected = remote.url, remote.sha256.lower()
    tmp = dest.with_name(f"{dest.name}.part-{secrets.token_hex(6)}")
    received = 0
    created = False
    try:
        # O_EXCL: never write through someone else's file; mode 0o666 & umask like open().
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0),
                     0o666)
        created = True
        with os.fdopen(fd, "wb") as out:
            request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
            opener = urllib.request.build_opener(_SecureRedirects())
            with opener.open(request, timeout=TIMEOUT) as response:
                digest = hashlib.sha256()
                show = progress and sys.stderr.isatty()
                with tqdm(total=remote.size, unit="B", unit_scale=True,
                          desc=dest.name, file=sys.stderr, disable=not show) as bar:
                    while block := response.read(CHUNK):
                        received += len(block)
                        if received > remote.size:
                            raise DownloadError(url, f"the server sent more than the expected "
                                                f"{remote.size} bytes; nothing was saved")
                        out.write(block)
                        digest.update(block)
                        bar.update(len(block))
            out.flush()
            os.fsync(out.fileno())
        if received != remote.size:
            raise DownloadError(url, f"received {received} bytes, expected {remote.size} (the "
                                "transfer was cut short or the file on the server changed); "
                                "nothing was saved, try again")
        actual = digest.hexdigest()
        if actual != expected:
            raise DownloadError(url, f"SHA-256 mismatch: expected {expected}, got {actual} "
                                f"({received} bytes); the file on the server is not the one "
                                "declared, nothing was saved")
        os.replace(tmp, dest)
    except BaseException as exc:
        if created:
            tmp.unlink(missing_ok=True)
        error = _explain(exc, url, received, remote.size)
        if error is None:
            raise
        raise error from exc
    _fsync_directory(dest.parent)


class _SecureRedirects(urllib.request.HTTPRedirectHandler):
    """Follow redirects only to URLs that :func:`check_url` accepts (before connecting)."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        try:
            check_url(newurl)
        except DownloadError:
            fp.close()
            raise DownloadError(req.full_url, f"redirected to {newurl}, which is not https; "
                                "refusing to follow") from None
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def _explain(exc: BaseException, url: str, received: int, size: int) -> DownloadError | None:
    """A :class:`DownloadError` that says in words what went wrong; ``None`` to re-raise
    ``exc`` as it is (a :class:`DownloadError` already, Ctrl-C, a bug)."""
    if isinstance(exc, (DownloadError, KeyboardInterrupt)):
        return None
    if isinstance(exc, urllib.error.HTTPError):
        return DownloadError(url, f"HTTP {exc.code} {exc.reason}; nothing was saved")
    reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
    if isinstance(reason, TimeoutError):
        return DownloadError(url, f"no answer from the server for {TIMEOUT:g} s after "
                             f"{received} of {size} bytes; nothing was saved, try again later")
    if isinstance(exc, urllib.error.URLError):
        return DownloadError(url, f"cannot connect ({exc.reason}); check the network "
                             "connection or the proxy settings (https_proxy)")
    if isinstance(exc, (http.client.HTTPException, ConnectionError)):
        return DownloadError(url, f"the connection broke after {received} of {size} bytes "
                             f"({type(exc).__name__}: {exc}); nothing was saved, try again")
    if isinstance(exc, OSError):  # e.g. disk full, permission denied on the cache directory
        return DownloadError(url, f"{exc}; nothing was saved")
    return None


def _fsync_directory(directory: Path) -> None:
    """Make the rename durable (POSIX); a no-op where directories cannot be opened."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
