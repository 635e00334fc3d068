"""`picomaml data download` against a loopback server with the UniversalNER URL layout."""

from __future__ import annotations

import functools
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from picomaml.cli.main import main
from picomaml.data.registry import DATASETS, load_split


class _Handler(http.server.SimpleHTTPRequestHandler):
    """Serves ``uner/<folder>/<file>`` at ``/uner/<folder>/<branch>/<file>`` like GitHub raw."""

    def translate_path(self, path: str) -> str:
        parts = path.split("?")[0].strip("/").split("/")
        if len(parts) == 4 and parts[0] == "uner":
            if parts[2] != DATASETS_BY_FOLDER.get(parts[1]):
                return "/nonexistent"
            path = "/" + "/".join([parts[0], parts[1], parts[3]])
        return super().translate_path(path)

    def log_message(self, *args: object) -> None:
        pass


DATASETS_BY_FOLDER = {d.folder: d.branch for d in DATASETS.values()}


@pytest.fixture(scope="module")
def server(data_dir: Path) -> Iterator[str]:
    handler = functools.partial(_Handler, directory=str(data_dir))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_download_roundtrip(server: str, data_dir: Path, tmp_path: Path, capsys) -> None:
    dest = tmp_path / "root"
    args = ["data", "download", "--dest", str(dest), "--base-url", f"{server}/uner"]
    tok = ["--tokenizer-url", f"{server}/tokenizers/olmo-7b-0724.json"]
    assert main([*args, *tok, "--datasets", "tl_trg", "ceb_gja"]) == 0
    for code in ("tl_trg", "ceb_gja"):
        ds = DATASETS[code]
        got = ds.path("test", dest).read_bytes()
        assert got == ds.path("test", data_dir).read_bytes()
        assert (dest / "uner" / ds.folder / "LICENSE.txt").is_file()
    assert load_split("tl_trg", "test", dest)[0] == load_split("tl_trg", "test", data_dir)[0]
    assert (dest / "tokenizers" / "olmo-7b-0724.json").is_file()
    assert not list(dest.rglob("*.part"))
    assert "fetched 7" in capsys.readouterr().out
    # a rerun skips what is there
    assert main([*args, *tok, "--datasets", "tl_trg", "ceb_gja"]) == 0
    assert "fetched 0, already present 7" in capsys.readouterr().out


def test_main_branch_dataset(server: str, tmp_path: Path) -> None:
    args = ["data", "download", "--dest", str(tmp_path), "--base-url", f"{server}/uner"]
    assert main([*args, "--no-tokenizer", "--datasets", "da_ddt"]) == 0
    assert DATASETS["da_ddt"].branch == "main"
    assert len(load_split("da_ddt", "dev", tmp_path)[0]) == 564


def test_http_failure_is_clear(server: str, tmp_path: Path, capsys) -> None:
    args = ["data", "download", "--dest", str(tmp_path), "--base-url", f"{server}/nothing"]
    assert main([*args, "--no-tokenizer", "--datasets", "tl_trg"]) == 2
    err = capsys.readouterr().err
    assert "HTTP 404" in err and "/nothing/UNER_Tagalog-TRG/master/tl_trg-ud-test.iob2" in err
    assert not list(tmp_path.rglob("*.iob2*"))


def test_invalid_file_is_not_kept(server: str, tmp_path: Path, capsys) -> None:
    """A server answering with something that is not IOB2 leaves nothing behind."""
    bad = f"{server}/README.md?"  # every URL resolves to the data README
    args = ["data", "download", "--dest", str(tmp_path), "--base-url", bad]
    assert main([*args, "--no-tokenizer", "--datasets", "tl_trg"]) == 2
    assert "not valid" in capsys.readouterr().err
    assert not list(tmp_path.rglob("*.iob2*"))
