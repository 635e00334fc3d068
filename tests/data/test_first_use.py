"""Data on first use: download into an empty root (loopback server), checksums, the demo's
automatic fetch (a patched fetch that counts calls), and the offline error."""

from __future__ import annotations

import gzip
import http.server
import io
import json
import shutil
import threading
import urllib.error
import zipfile
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from picomaml.cli.main import main
from picomaml.data import download as dl
from picomaml.data import standin
from picomaml.data.corpus import load_rows
from picomaml.data.registry import DATASETS, load_split

BOOK = "\n\n".join(
    f"Chapter {i}.\nThe river ran past the old mill\nand the miller counted sacks of grain {i}."
    for i in range(400)
)


def nltk_zip(package: str) -> bytes:
    """A zip laid out like NLTK's ``<package>.zip``: ``<package>/*.txt`` plus a README."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        archive.writestr(f"{package}/README", "not a document")
        for k in range(3):
            archive.writestr(f"{package}/{package}-{k}.txt", f"{package} {k}\n\n{BOOK}")
    return buf.getvalue()


class _Server(http.server.ThreadingHTTPServer):
    def __init__(self, uner_root: Path) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.uner_root = uner_root
        self.hits: Counter[str] = Counter()
        self.zips = {pkg: nltk_zip(pkg) for pkg in standin.PACKAGES}


class _Handler(http.server.BaseHTTPRequestHandler):
    """``/uner/<folder>/<branch>/<file>`` like GitHub raw, ``/nltk/<package>.zip``."""

    server: _Server

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        self.server.hits[self.path] += 1
        parts = self.path.strip("/").split("/")
        body = None
        if parts[0] == "uner" and len(parts) == 4:
            branch = {d.folder: d.branch for d in DATASETS.values()}.get(parts[1])
            path = self.server.uner_root / "uner" / parts[1] / parts[3]
            if parts[2] == branch and path.is_file():
                body = path.read_bytes()
        elif parts[0] == "nltk" and len(parts) == 2:
            body = self.server.zips.get(parts[1].removesuffix(".zip"))
        if body is None:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def served_root(fixture_data_root: Path, tmp_path: Path) -> Path:
    """A copy of the fixture root for the server (tests may change what it serves)."""
    return Path(shutil.copytree(fixture_data_root, tmp_path / "served"))


@pytest.fixture
def server(served_root: Path) -> Iterator[_Server]:
    httpd = _Server(served_root)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def _url(server: _Server) -> str:
    return f"http://127.0.0.1:{server.server_address[1]}"


def _download(server: _Server, dest: Path, *extra: str) -> int:
    base = ["data", "download", "--dest", str(dest), "--no-progress"]
    urls = ["--base-url", f"{_url(server)}/uner", "--corpus-url", f"{_url(server)}/nltk"]
    return main([*base, *urls, *extra])


def test_download_fills_an_empty_root_and_records_checksums(
    server: _Server, fixture_data_root: Path, tmp_path: Path, tokenizer, capsys
) -> None:
    dest = tmp_path / "root"
    assert _download(server, dest) == 0
    out = capsys.readouterr().out
    for rel in dl.required_files():
        assert (dest / rel).is_file(), rel
    ds = DATASETS["sk_snk"]
    assert ds.path("train", dest).read_bytes() == ds.path("train", fixture_data_root).read_bytes()
    assert load_split("all", "dev", dest)[0] == load_split("all", "dev", fixture_data_root)[0]
    manifest = json.loads((dest / "manifest.json").read_text("utf-8"))["files"]
    n_uner = sum(len(d.splits) + 1 for d in DATASETS.values())  # splits + LICENSE.txt
    assert len(manifest) == n_uner + len(standin.PACKAGES) + 2
    for rel, entry in manifest.items():
        assert entry["sha256"] == dl.file_sha256(dest / rel) and entry["bytes"] > 0, rel
    assert manifest["corpus/nltk/gutenberg.zip"]["from"].endswith("/nltk/gutenberg.zip")
    assert sum(server.hits.values()) == n_uner + 18 + len(standin.PACKAGES)  # + 18 README 404s
    assert max(server.hits.values()) == 1
    assert f"fetched {n_uner + 3}, built 2, already present 0" in out
    rows = load_rows(dest / "corpus/english-mini/train.jsonl.gz", 64, tokenizer=tokenizer)
    assert rows.n_rows > 10
    valid = gzip.decompress((dest / "corpus/english-mini/valid.jsonl.gz").read_bytes())
    sources = {json.loads(line)["source"] for line in valid.decode().splitlines()}
    assert sources and all(s.split("/")[0] in standin.PACKAGES for s in sources)

    # A rerun fetches nothing and checks every recorded file against the manifest.
    hits = sum(server.hits.values())
    assert _download(server, dest) == 0
    assert sum(server.hits.values()) == hits + 18  # only the optional READMEs are asked again
    assert f"already present {len(manifest)} ({len(manifest)} checked" in capsys.readouterr().out


def test_a_file_changed_after_download_is_an_error(server: _Server, tmp_path: Path, capsys) -> None:
    dest = tmp_path / "root"
    assert _download(server, dest, "--datasets", "tl_trg") == 0
    path = DATASETS["tl_trg"].path("test", dest)
    path.write_bytes(path.read_bytes().replace(b"B-PER", b"B-LOC", 1))
    capsys.readouterr()
    assert _download(server, dest, "--datasets", "tl_trg") == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and str(path) in err and "manifest.json" in err


def test_a_refetch_must_match_the_first_download(
    server: _Server, served_root: Path, tmp_path: Path, capsys
) -> None:
    dest = tmp_path / "root"
    assert _download(server, dest, "--datasets", "ceb_gja") == 0
    DATASETS["ceb_gja"].path("test", dest).unlink()
    upstream = DATASETS["ceb_gja"].path("test", served_root)
    upstream.write_bytes(upstream.read_bytes().replace(b"B-PER", b"O", 1))  # changed upstream
    capsys.readouterr()
    assert _download(server, dest, "--datasets", "ceb_gja") == 2
    assert "differs from the one recorded" in capsys.readouterr().err
    assert not DATASETS["ceb_gja"].path("test", dest).exists()


def test_progress_bar(server: _Server, tmp_path: Path, capsys) -> None:
    dest = tmp_path / "root"
    dl.download(dest, f"{_url(server)}/uner", ["tl_trg"], None, None, progress=True)
    err = capsys.readouterr().err
    assert "picomaml data download" in err and "3/3" in err  # test file, LICENSE, README


def _patched_fetch(monkeypatch, served_root: Path) -> list[str]:
    """Replace the network fetch by copies from ``served_root``; returns the URLs asked."""
    calls: list[str] = []
    zips = {pkg: nltk_zip(pkg) for pkg in standin.PACKAGES}

    def fetch(job: dl.FileJob, timeout: float = 60.0, on_bytes=None) -> bool:
        calls.append(job.url)
        name = job.url.rsplit("/", 1)[1]
        if name.endswith(".zip"):
            data = zips[name.removesuffix(".zip")]
        else:
            src = served_root / "uner" / job.dest.parent.name / name
            if not src.is_file():
                if job.required:
                    raise dl.PicomamlError(f"download failed: HTTP 404 for {job.url}")
                return False
            data = src.read_bytes()
        job.dest.parent.mkdir(parents=True, exist_ok=True)
        job.dest.write_bytes(data)
        return True

    monkeypatch.setattr(dl, "fetch_file", fetch)
    return calls


def test_demo_fetches_on_first_use_then_never_again(
    monkeypatch, served_root: Path, tmp_path: Path, capsys
) -> None:
    work = tmp_path / "fresh-clone"
    work.mkdir()
    monkeypatch.chdir(work)  # no ../shared/data, no ./data
    monkeypatch.delenv("PICOMAML_DATA", raising=False)
    calls = _patched_fetch(monkeypatch, served_root)
    seen: list[Path] = []

    def fake_run_demo(out, data_root=None, config=None, workers=1) -> Path:
        seen.append(data_root)
        return Path(out) / "report.md"

    monkeypatch.setattr("picomaml.cli.study.run_demo", fake_run_demo)
    assert main(["demo", "--out", str(tmp_path / "out")]) == 0
    assert seen == [(work / "data").resolve()]
    assert all((work / "data" / rel).is_file() for rel in dl.required_files())
    n_jobs = sum(len(d.splits) + 2 for d in DATASETS.values()) + len(standin.PACKAGES)
    assert len(calls) == len(set(calls)) == n_jobs
    assert "first use: " in capsys.readouterr().err
    # Everything is there now: the second run fetches nothing.
    assert main(["demo", "--out", str(tmp_path / "out")]) == 0
    assert len(calls) == n_jobs and len(seen) == 2
    assert "first use" not in capsys.readouterr().err


def test_demo_fills_only_what_an_existing_root_lacks(
    monkeypatch, served_root: Path, fixture_data_root: Path, tmp_path: Path
) -> None:
    root = Path(shutil.copytree(fixture_data_root, tmp_path / "root"))
    DATASETS["tl_ugnayan"].path("test", root).unlink()
    calls = _patched_fetch(monkeypatch, served_root)
    monkeypatch.setattr("picomaml.cli.study.run_demo", lambda out, **kw: Path(out))
    assert main(["--data-dir", str(root), "demo", "--out", str(tmp_path / "out")]) == 0
    # the missing split and the optional README (LICENSE.txt is there): nothing else
    assert [c.rsplit("/", 1)[1] for c in calls] == ["tl_ugnayan-ud-test.iob2", "README.md"]
    assert DATASETS["tl_ugnayan"].path("test", root).is_file()


def test_offline_demo_is_one_clear_line(monkeypatch, tmp_path: Path, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("PICOMAML_DATA", raising=False)

    def offline(*args, **kwargs):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr("urllib.request.urlopen", offline)
    monkeypatch.setattr("picomaml.cli.study.run_demo", pytest.fail)
    assert main(["demo", "--out", str(tmp_path / "out")]) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if "picomaml: error" in line]
    assert len(err) == 1
    line = err[0]
    assert "data files (e.g. uner/UNER_Danish-DDT/da_ddt-ud-train.iob2) not found" in line
    assert "no data root; tried ../shared/data, data" in line
    assert "`picomaml data download --dest data`" in line
    assert "data/uner/UNER_<Language>-<Treebank>/<code>-ud-<split>.iob2" in line
    assert "data/corpus/english-mini/{train,valid}.jsonl.gz" in line
    assert "Temporary failure in name resolution" in line


def test_other_commands_name_the_fetch_command(monkeypatch, tmp_path: Path, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("PICOMAML_DATA", raising=False)
    assert main(["data", "stats", "sk_snk"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "`picomaml data download --dest data`" in err
    (tmp_path / "empty").mkdir()
    assert main(["--data-dir", str(tmp_path / "empty"), "data", "stats", "sk_snk"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "sk_snk-ud-train.iob2" in err
    assert f"`picomaml data download --dest {tmp_path / 'empty'} --datasets sk_snk`" in err


def test_standin_documents_are_deterministic(tmp_path: Path) -> None:
    assert standin.paragraphs("a\nb \r\n\r\n  \n c\td\n") == ["a b", "c d"]
    assert standin.group_paragraphs(["x" * 5, "y" * 5, "z" * 3], min_chars=10) == [
        "xxxxx\n\nyyyyy",
        "zzz",
    ]
    assert standin.decode("caf\xe9".encode("latin-1")) == "café"
    with zipfile.ZipFile(io.BytesIO(nltk_zip("inaugural"))) as archive:
        texts = standin.zip_texts(archive, "inaugural")
    assert [s for s, _ in texts] == [f"inaugural/inaugural-{k}.txt" for k in range(3)]
    docs = standin.build_documents(texts, min_chars=500)
    train, valid = standin.split_documents(docs, valid_every=5)
    assert len(valid) == len(docs) // 5 and len(train) + len(valid) == len(docs)
    assert sorted(d.text for d in train + valid) == sorted(d.text for d in docs)
    assert standin.split_documents(docs, valid_every=5) == (train, valid)
    with pytest.raises(standin.PicomamlError, match="too few"):
        standin.split_documents(docs[:4], valid_every=5)
    with pytest.raises(standin.PicomamlError, match="no state_union/"):
        standin.zip_texts(zipfile.ZipFile(io.BytesIO(nltk_zip("inaugural"))), "state_union")
    zips = []
    for pkg in standin.PACKAGES:
        zips.append(tmp_path / f"{pkg}.zip")
        zips[-1].write_bytes(nltk_zip(pkg))
    dl.build_standin(zips, tmp_path / "a")
    dl.build_standin(zips, tmp_path / "b")
    for name in ("train.jsonl.gz", "valid.jsonl.gz"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
