"""Fetch the data a fresh machine lacks: UNER v1 files and an English stand-in corpus.

UNER layout fetched: ``{base_url}/{folder}/{branch}/{file}``, which is how
``raw.githubusercontent.com/UniversalNER/`` serves each dataset repository
(``UNER_Slovak-SNK/master/sk_snk-ud-train.iob2``). Files land in
``DEST/uner/{folder}/{file}``, the layout :mod:`picomaml.data.registry` reads. The corpus
(``DEST/corpus/english-mini/{train,valid}.jsonl.gz``) is built from public-domain NLTK
packages (see :mod:`picomaml.data.standin`), whose zips are kept in ``DEST/corpus/nltk/``.
The OLMo tokenizer ships with the package; fetching the hub copy is optional.

Each file is written to a ``.part`` file next to its destination and renamed into
place only when complete (and, for ``.iob2``, when it parses), so an interrupted
download never leaves a truncated file that later reads as data. Files already
present are skipped, so a rerun resumes.

Checksums: the SHA-256 of every file fetched or built is recorded in ``DEST/manifest.json``
on first download; later runs verify every recorded file that is present, and a refetched
file must match its recorded checksum, so a file that changed (on disk or upstream) is an
error that names it instead of silently different data.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tokenizers import Tokenizer
from tqdm.auto import tqdm

from picomaml.data import standin
from picomaml.data.paths import default_fetch_dir, find_data_dir, missing_data_message
from picomaml.data.registry import DATASETS, UNER_SUBDIR
from picomaml.data.tokenizer import TOKENIZER_FILE, check_tokenizer
from picomaml.data.uner import read_iob2
from picomaml.errors import PicomamlError
from picomaml.fileio import atomic_path, atomic_writer, write_json, write_text

UNER_BASE_URL = "https://raw.githubusercontent.com/UniversalNER"
TOKENIZER_URL = "https://huggingface.co/allenai/OLMo-7B-0724-hf/resolve/main/tokenizer.json"
USER_AGENT = "picomaml-data-download/0.1"
LICENSE_FILES = ("LICENSE.txt", "README.md")
MANIFEST_FILE = "manifest.json"
CORPUS_FILES = tuple(f"{standin.CORPUS_DIR}/{split}.jsonl.gz" for split in ("train", "valid"))


@dataclass
class DownloadResult:
    """What a download run did, per destination path."""

    fetched: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    missing_optional: list[str] = field(default_factory=list)
    verified: list[str] = field(default_factory=list)
    built: list[str] = field(default_factory=list)

    def line(self, dest: Path) -> str:
        """One summary line for the CLI."""
        built = f", built {len(self.built)}" if self.built else ""
        return (
            f"{dest}: fetched {len(self.fetched)}{built}, already present {len(self.skipped)} "
            f"({len(self.verified)} checked against {MANIFEST_FILE}), "
            f"optional files not on the server {len(self.missing_optional)}"
        )


@dataclass(frozen=True)
class FileJob:
    """One file to fetch: URL, destination, whether a 404 is an error, how to check it."""

    url: str
    dest: Path
    required: bool = True
    validate: Callable[[Path], None] | None = None


def _validate_iob2(path: Path) -> None:
    read_iob2(path)


def _validate_tokenizer(path: Path) -> None:

    try:
        tok = Tokenizer.from_file(str(path))
    except Exception as exc:
        raise PicomamlError(f"{path}: downloaded tokenizer does not load ({exc})") from exc
    check_tokenizer(tok, str(path))


def _zip_validator(package: str) -> Callable[[Path], None]:
    def validate(path: Path) -> None:
        try:
            with zipfile.ZipFile(path) as archive:
                standin.zip_texts(archive, package)
        except zipfile.BadZipFile as exc:
            raise PicomamlError(f"{path}: not a zip file ({exc})") from exc

    return validate


def plan_downloads(
    dest: Path,
    base_url: str = UNER_BASE_URL,
    codes: list[str] | None = None,
    tokenizer_url: str | None = None,
    corpus_url: str | None = None,
) -> list[FileJob]:
    """Every file to fetch: each dataset's splits (required) and its licence/readme, the
    tokenizer when ``tokenizer_url`` is given, the NLTK zips when ``corpus_url`` is given."""
    base = base_url.rstrip("/")
    jobs: list[FileJob] = []
    for code in list(DATASETS) if codes is None else codes:
        ds = DATASETS[code]
        folder = dest / UNER_SUBDIR / ds.folder
        for split in ds.splits:
            name = ds.filename(split)
            url = f"{base}/{ds.folder}/{ds.branch}/{name}"
            jobs.append(FileJob(url, folder / name, True, _validate_iob2))
        for name in LICENSE_FILES:
            jobs.append(FileJob(f"{base}/{ds.folder}/{ds.branch}/{name}", folder / name, False))
    if tokenizer_url:
        jobs.append(FileJob(tokenizer_url, dest / TOKENIZER_FILE, True, _validate_tokenizer))
    if corpus_url:
        for pkg in standin.PACKAGES:
            url = f"{corpus_url.rstrip('/')}/{pkg}.zip"
            jobs.append(
                FileJob(url, dest / standin.ZIP_DIR / f"{pkg}.zip", True, _zip_validator(pkg))
            )
    return jobs


def fetch_file(
    job: FileJob, timeout: float = 60.0, on_bytes: Callable[[int], None] | None = None
) -> bool:
    """Download one file atomically; returns False for a missing optional file (HTTP 404).

    ``on_bytes`` is called with the size of every chunk received (the progress bar).
    """
    job.dest.parent.mkdir(parents=True, exist_ok=True)
    part = job.dest.with_name(job.dest.name + ".part")
    request = urllib.request.Request(job.url, headers={"User-Agent": USER_AGENT})
    try:
        with (
            urllib.request.urlopen(request, timeout=timeout) as resp,
            atomic_path(job.dest, temp=part) as tmp,
        ):
            with tmp.open("wb") as fh:
                for chunk in _chunks(resp):
                    fh.write(chunk)
                    if on_bytes is not None:
                        on_bytes(len(chunk))
            if job.validate is not None:
                job.validate(tmp)
    except urllib.error.HTTPError as exc:
        if exc.code == 404 and not job.required:
            return False
        raise PicomamlError(f"download failed: HTTP {exc.code} {exc.reason} for {job.url}") from exc
    except (urllib.error.URLError, OSError, _ReadFailed) as exc:
        cause = exc.__cause__ if isinstance(exc, _ReadFailed) else exc
        reason = getattr(cause, "reason", None) or cause
        raise PicomamlError(f"download failed for {job.url}: {reason}") from exc
    except PicomamlError as exc:
        raise PicomamlError(f"downloaded file from {job.url} is not valid: {exc}") from exc
    return True


class _ReadFailed(Exception):
    """The connection failed during a download: kept apart from a failure to write the file,
    which :func:`picomaml.fileio.atomic_path` reports naming the file."""


def _chunks(resp: Any, size: int = 1 << 18) -> Iterator[bytes]:
    """The response body in chunks; a failed read is :class:`_ReadFailed`."""
    while True:
        try:
            chunk = resp.read(size)
        except OSError as exc:
            raise _ReadFailed(str(exc)) from exc
        if not chunk:
            return
        yield chunk


def file_sha256(path: Path) -> str:
    """Hex SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


class Manifest:
    """``DEST/manifest.json``: SHA-256, size and origin of every file fetched or built."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.path = root / MANIFEST_FILE
        self.files: dict[str, dict[str, Any]] = {}
        if self.path.is_file():
            try:
                self.files = dict(json.loads(self.path.read_text("utf-8"))["files"])
            except (ValueError, KeyError, TypeError) as exc:
                raise PicomamlError(
                    f"{self.path}: not a picomaml data manifest ({exc}); move it away to start "
                    "a new one"
                ) from exc

    def key(self, path: Path) -> str:
        return path.relative_to(self.root).as_posix()

    def record(self, path: Path, origin: str) -> None:
        """Record ``path``; a file recorded before must have the same checksum."""
        entry = {"sha256": file_sha256(path), "bytes": path.stat().st_size, "from": origin}
        old = self.files.get(self.key(path))
        if old is not None and old["sha256"] != entry["sha256"]:
            path.unlink()
            raise PicomamlError(
                f"{path}: the new copy from {origin} differs from the one recorded in "
                f"{self.path} on first download (SHA-256 {entry['sha256'][:12]}... vs "
                f"{old['sha256'][:12]}...): the source changed. Remove its entry from the "
                "manifest to accept the new version"
            )
        self.files[self.key(path)] = entry
        self.save()

    def verify(self, path: Path) -> bool:
        """True when ``path`` is recorded and matches; raises when it is recorded and differs."""
        entry = self.files.get(self.key(path))
        if entry is None:
            return False
        got = file_sha256(path)
        if got != entry["sha256"]:
            raise PicomamlError(
                f"{path}: SHA-256 {got[:12]}... differs from {entry['sha256'][:12]}... recorded "
                f"in {self.path} when it was downloaded: the file changed since. Delete it and "
                "rerun `picomaml data download` to fetch it again"
            )
        return True

    def save(self) -> None:
        payload = {"format": 1, "files": dict(sorted(self.files.items()))}
        write_json(self.path, payload, indent=1)


def _progress_bar(total: int, enabled: bool | None):
    """A tqdm bar over the files to fetch; ``enabled=None`` shows it only on a terminal."""

    disable = None if enabled is None else not enabled
    return tqdm(total=total, desc="picomaml data download", unit="file", disable=disable)


def download(
    dest: str | Path,
    base_url: str = UNER_BASE_URL,
    codes: list[str] | None = None,
    tokenizer_url: str | None = None,
    log: Callable[[str], None] | None = None,
    corpus_url: str | None = None,
    progress: bool | None = None,
) -> DownloadResult:
    """Fetch every missing file into ``dest``; files already present are kept as they are.

    ``codes`` limits UNER to those datasets (``[]``: none); ``tokenizer_url`` adds the hub
    tokenizer, ``corpus_url`` the NLTK zips and the english-mini corpus built from them.
    Present files recorded in the manifest are verified. ``progress``: a progress bar on
    stderr (None: only on a terminal).
    """
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    manifest = Manifest(dest)
    result = DownloadResult()
    jobs = plan_downloads(dest, base_url, codes, tokenizer_url, corpus_url)
    todo = []
    for job in jobs:
        if job.dest.is_file() and job.dest.stat().st_size > 0:
            result.skipped.append(str(job.dest))
            if manifest.verify(job.dest):
                result.verified.append(str(job.dest))
        else:
            todo.append(job)
    received = 0

    def on_bytes(n: int) -> None:
        nonlocal received
        received += n
        bar.set_postfix_str(f"{received / 1e6:.1f} MB", refresh=False)

    with _progress_bar(len(todo), progress) as bar:
        say = bar.write if not bar.disable else (log or (lambda _m: None))
        for job in todo:
            if fetch_file(job, on_bytes=on_bytes):
                manifest.record(job.dest, job.url)
                result.fetched.append(str(job.dest))
                if log:
                    say(f"fetched {job.dest}")
            else:
                result.missing_optional.append(str(job.dest))
                if log:
                    say(f"not on the server (optional): {job.url}")
            bar.update()
    if corpus_url:
        _ensure_standin(dest, manifest, result, log)
    return result


def _ensure_standin(
    dest: Path, manifest: Manifest, result: DownloadResult, log: Callable[[str], None] | None
) -> None:
    """Build ``corpus/english-mini`` from the zips unless both splits are there already."""
    paths = [dest / rel for rel in CORPUS_FILES]
    present = [p for p in paths if p.is_file()]
    if len(present) == len(paths):
        for p in paths:
            result.skipped.append(str(p))
            if manifest.verify(p):
                result.verified.append(str(p))
        return
    if present:
        raise PicomamlError(
            f"{present[0]} exists but {[p.name for p in paths if p not in present][0]} does not; "
            "both splits must come from the same build: move the existing one away"
        )
    zips = [dest / standin.ZIP_DIR / f"{pkg}.zip" for pkg in standin.PACKAGES]
    stats = build_standin(zips, dest / standin.CORPUS_DIR)
    for p in paths:
        manifest.record(p, "built by picomaml from " + ", ".join(z.name for z in zips))
        result.built.append(str(p))
    if log:
        log(stats)


def build_standin(zips: list[Path], out_dir: Path) -> str:
    """Write ``train.jsonl.gz``, ``valid.jsonl.gz`` and a README into ``out_dir``; returns a
    one-line summary. The bytes depend only on the zips (gzip without name or time)."""
    texts: list[tuple[str, str]] = []
    for path, pkg in zip(zips, standin.PACKAGES, strict=True):
        with zipfile.ZipFile(path) as archive:
            texts.extend(standin.zip_texts(archive, pkg))
    train, valid = standin.split_documents(standin.build_documents(texts))
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, docs in (("train", train), ("valid", valid)):
        lines = "".join(json.dumps(d.to_dict(), ensure_ascii=False) + "\n" for d in docs)
        with (
            atomic_writer(out_dir / f"{name}.jsonl.gz", "wb") as raw,
            gzip.GzipFile("", "wb", 9, raw, mtime=0) as fh,
        ):
            fh.write(lines.encode("utf-8"))
    n_chars = sum(len(d.text) for d in train + valid)
    summary = (
        f"built {out_dir}: {len(train)} train + {len(valid)} valid documents, "
        f"{n_chars:,} characters, from {len(texts)} files of NLTK "
        f"{', '.join(standin.PACKAGES)} (public domain)"
    )
    write_text(
        out_dir / "README.md",
        "# english-mini (built by `picomaml data download`)\n\n"
        f"{summary}.\n\nSee the docstring of `picomaml.data.standin` for how; this is not "
        "the offline english-mini (Brown, MASC, ABC, ...), so pretraining numbers differ.\n",
    )
    return summary


def required_files(codes: list[str] | None = None, corpus: bool = True) -> list[str]:
    """Data-root paths a full run needs: every UNER split (of ``codes``) and the corpus."""
    out = [
        f"{UNER_SUBDIR}/{DATASETS[c].folder}/{DATASETS[c].filename(split)}"
        for c in (list(DATASETS) if codes is None else codes)
        for split in DATASETS[c].splits
    ]
    return out + (list(CORPUS_FILES) if corpus else [])


def ensure_data(
    explicit: str | Path | None = None,
    log: Callable[[str], None] | None = print,
    base_url: str = UNER_BASE_URL,
    corpus_url: str = standin.NLTK_BASE_URL,
    progress: bool | None = None,
) -> Path:
    """The data root, after fetching whatever a full run still lacks (first use).

    The root is the one found by the usual rule, else ``./data`` (the last place looked
    at). Missing UNER files are fetched and the corpus built exactly as ``picomaml data
    download`` does; offline, the error names what is missing, the command and the layout.
    """
    root = find_data_dir(explicit)
    dest = root if root is not None else default_fetch_dir(explicit)
    missing = [rel for rel in required_files() if not (dest / rel).is_file()]
    if not missing:
        return dest.resolve()
    uner_codes = sorted(
        {c for c, d in DATASETS.items() if any(f"/{d.folder}/" in m for m in missing)}
    )
    needs_corpus = any(m in CORPUS_FILES for m in missing)
    if log:
        log(
            f"first use: {len(missing)} data files missing under {dest} (UNER: "
            f"{len(uner_codes)} datasets; corpus: {'yes' if needs_corpus else 'no'}); "
            "fetching them as `picomaml data download` does"
        )
    try:
        result = download(
            dest,
            base_url,
            uner_codes,
            None,
            log,
            corpus_url if needs_corpus else None,
            progress,
        )
    except PicomamlError as exc:
        raise PicomamlError(
            missing_data_message(f"{len(missing)} data files (e.g. {missing[0]})", root)
            + f". Fetching them failed: {exc}"
        ) from exc
    if log:
        log(result.line(dest))
    return dest.resolve()
