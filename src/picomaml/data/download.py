"""Fetch the UNER v1 files (and the OLMo tokenizer) into a data root, for users online.

Layout fetched: ``{base_url}/{folder}/{branch}/{file}``, which is how
``raw.githubusercontent.com/UniversalNER/`` serves each dataset repository
(``UNER_Slovak-SNK/master/sk_snk-ud-train.iob2``). Files land in
``DEST/uner/{folder}/{file}``, the layout :mod:`picomaml.data.registry` reads.

Each file is written to a ``.part`` file next to its destination and renamed into
place only when complete (and, for ``.iob2``, when it parses), so an interrupted
download never leaves a truncated file that later reads as data. Files already
present are skipped, so a rerun resumes.
"""

from __future__ import annotations

import os
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from picomaml.data.registry import DATASETS, UNER_SUBDIR
from picomaml.data.tokenizer import TOKENIZER_FILE, check_tokenizer
from picomaml.data.uner import read_iob2
from picomaml.errors import PicomamlError

UNER_BASE_URL = "https://raw.githubusercontent.com/UniversalNER"
TOKENIZER_URL = "https://huggingface.co/allenai/OLMo-7B-0724-hf/resolve/main/tokenizer.json"
USER_AGENT = "picomaml-data-download/0.1"
LICENSE_FILES = ("LICENSE.txt", "README.md")


@dataclass
class DownloadResult:
    """What a download run did, per destination path."""

    fetched: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    missing_optional: list[str] = field(default_factory=list)


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
    from tokenizers import Tokenizer

    try:
        tok = Tokenizer.from_file(str(path))
    except Exception as exc:
        raise PicomamlError(f"{path}: downloaded tokenizer does not load ({exc})") from exc
    check_tokenizer(tok, str(path))


def plan_downloads(
    dest: Path,
    base_url: str = UNER_BASE_URL,
    codes: list[str] | None = None,
    tokenizer_url: str | None = TOKENIZER_URL,
) -> list[FileJob]:
    """Every file to fetch: each dataset's splits (required) and its licence/readme."""
    base = base_url.rstrip("/")
    jobs: list[FileJob] = []
    for code in codes or list(DATASETS):
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
    return jobs


def fetch_file(job: FileJob, timeout: float = 60.0) -> bool:
    """Download one file atomically; returns False for a missing optional file (HTTP 404)."""
    job.dest.parent.mkdir(parents=True, exist_ok=True)
    part = job.dest.with_name(job.dest.name + ".part")
    request = urllib.request.Request(job.url, headers={"User-Agent": USER_AGENT})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as resp, part.open("wb") as fh:
            while chunk := resp.read(1 << 20):
                fh.write(chunk)
        if job.validate is not None:
            job.validate(part)
        os.replace(part, job.dest)
    except urllib.error.HTTPError as exc:
        part.unlink(missing_ok=True)
        if exc.code == 404 and not job.required:
            return False
        raise PicomamlError(f"download failed: HTTP {exc.code} {exc.reason} for {job.url}") from exc
    except (urllib.error.URLError, OSError) as exc:
        part.unlink(missing_ok=True)
        reason = getattr(exc, "reason", None) or exc
        raise PicomamlError(f"download failed for {job.url}: {reason}") from exc
    except PicomamlError as exc:
        part.unlink(missing_ok=True)
        raise PicomamlError(f"downloaded file from {job.url} is not valid: {exc}") from exc
    return True


def download(
    dest: str | Path,
    base_url: str = UNER_BASE_URL,
    codes: list[str] | None = None,
    tokenizer_url: str | None = TOKENIZER_URL,
    log: Callable[[str], None] | None = None,
) -> DownloadResult:
    """Fetch every missing file into ``dest``; files already present are kept as they are."""
    dest = Path(dest)
    result = DownloadResult()
    for job in plan_downloads(dest, base_url, codes, tokenizer_url):
        if job.dest.is_file() and job.dest.stat().st_size > 0:
            result.skipped.append(str(job.dest))
            continue
        if fetch_file(job):
            result.fetched.append(str(job.dest))
            if log:
                log(f"fetched {job.dest}")
        else:
            result.missing_optional.append(str(job.dest))
            if log:
                log(f"not on the server (optional): {job.url}")
    return result
