"""`picomaml data download` against a loopback server with the UniversalNER URL layout.

The server serves a copy of the fixture data root, completed with what upstream also has: a
README.md per dataset folder and the tokenizer file.
"""

from __future__ import annotations

import functools
import http.server
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from picomaml.cli.main import main
from picomaml.data.registry import DATASETS, load_split
from picomaml.data.tokenizer import packaged_tokenizer_json


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
def upstream(fixture_data_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """What the server serves: the fixture root plus per-dataset READMEs and the tokenizer."""
    root = Path(shutil.copytree(fixture_data_root, tmp_path_factory.mktemp("up") / "data"))
    for ds in DATASETS.values():
        (root / "uner" / ds.folder / "README.md").write_text(f"# {ds.folder}\n", "utf-8")
    (root / "README.md").write_text("# A data root README, not an IOB2 file\n", "utf-8")
    tok = root / "tokenizers" / "olmo-7b-0724.json"
    tok.parent.mkdir()
    tok.write_text(packaged_tokenizer_json(), "utf-8")
    return root


@pytest.fixture(scope="module")
def server(upstream: Path) -> Iterator[str]:
    handler = functools.partial(_Handler, directory=str(upstream))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_download_roundtrip(server: str, upstream: Path, tmp_path: Path, capsys) -> None:
    dest = tmp_path / "root"
    args = ["data", "download", "--dest", str(dest), "--base-url", f"{server}/uner"]
    tok = ["--tokenizer-url", f"{server}/tokenizers/olmo-7b-0724.json"]
    assert main([*args, *tok, "--datasets", "tl_trg", "ceb_gja"]) == 0
    for code in ("tl_trg", "ceb_gja"):
        ds = DATASETS[code]
        got = ds.path("test", dest).read_bytes()
        assert got == ds.path("test", upstream).read_bytes()
        for name in ("LICENSE.txt", "README.md"):
            assert (dest / "uner" / ds.folder / name).is_file()
    assert load_split("tl_trg", "test", dest)[0] == load_split("tl_trg", "test", upstream)[0]
    tok_file = "tokenizers/olmo-7b-0724.json"
    assert (dest / tok_file).read_bytes() == (upstream / tok_file).read_bytes()
    assert not list(dest.rglob("*.part"))
    assert "fetched 7" in capsys.readouterr().out
    # a rerun skips what is there
    assert main([*args, *tok, "--datasets", "tl_trg", "ceb_gja"]) == 0
    assert "fetched 0, already present 7" in capsys.readouterr().out


def test_main_branch_dataset(server: str, upstream: Path, tmp_path: Path) -> None:
    args = ["data", "download", "--dest", str(tmp_path), "--base-url", f"{server}/uner"]
    assert main([*args, "--no-tokenizer", "--datasets", "da_ddt"]) == 0
    assert DATASETS["da_ddt"].branch == "main"  # the server answers 404 on any other branch
    for split in DATASETS["da_ddt"].splits:
        got = load_split("da_ddt", split, tmp_path)[0]
        assert got and got == load_split("da_ddt", split, upstream)[0]


def test_http_failure_is_clear(server: str, tmp_path: Path, capsys) -> None:
    args = ["data", "download", "--dest", str(tmp_path), "--base-url", f"{server}/nothing"]
    assert main([*args, "--no-tokenizer", "--datasets", "tl_trg"]) == 2
    err = capsys.readouterr().err
    assert "HTTP 404" in err and "/nothing/UNER_Tagalog-TRG/master/tl_trg-ud-test.iob2" in err
    assert not list(tmp_path.rglob("*.iob2*"))


def test_invalid_file_is_not_kept(server: str, tmp_path: Path, capsys) -> None:
    """A server answering with something that is not IOB2 leaves nothing behind."""
    bad = f"{server}/README.md?"  # every URL resolves to the data root's README
    args = ["data", "download", "--dest", str(tmp_path), "--base-url", bad]
    assert main([*args, "--no-tokenizer", "--datasets", "tl_trg"]) == 2
    assert "not valid" in capsys.readouterr().err
    assert not list(tmp_path.rglob("*.iob2*"))
