"""Backbones on the Hugging Face Hub: ``hf:OWNER/REPO[@REVISION][/SUBFOLDER]`` references.

The published backbones are Pico folders inside Hub repositories:

- Pico-MAML (``davidafrica/pico-maml-decoder-{tiny,small,medium,large}``): one folder per
  saved step on branch ``main``, ``checkpoints/step_N/`` with ``config.json`` and
  ``model.safetensors`` (plus code, tokenizer and many GB of ``fabric_state/`` optimizer
  shards that a backbone never needs);
- vanilla Pico (``pico-lm/pico-decoder-{tiny,small,medium,large}``): the files sit at the
  repository root and each checkpoint is a commit ``Saving HF Model -- Step N`` on the
  training branch ``pico-decoder-<size>-1``; ``main`` holds only the final model.

:func:`fetch_checkpoint` downloads exactly ``config.json`` and ``model.safetensors`` of one
folder into the standard Hugging Face cache (``HF_HUB_CACHE``, ``HF_HOME``), pinning the
weights to the commit the config came from, and returns the local folder with that commit
hash so runs can record it. ``HF_HUB_OFFLINE=1`` serves both files from the cache.
:func:`list_checkpoints` finds the steps of a repository (folders or commits).

``huggingface_hub`` is optional (the ``[hub]`` extra): it is imported only when a Hub
reference is used, and its absence is a one-line error.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from picomaml import layout
from picomaml.errors import PicomamlError

SCHEME = "hf:"
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
#: Commit titles pico-train writes when it pushes a checkpoint's weights to a branch.
STEP_COMMIT_RE = re.compile(r"^Saving HF Model -- Step (\d+)\s*$")
_COMMIT_RE = re.compile(r"^[0-9a-f]{40}$")
# Hub repository names: letters, digits, '-', '_', '.'; no leading/trailing '-' or '.',
# no '--' or '..' (the rules huggingface_hub validates).
_NAME_RE = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9._-]{0,94}[A-Za-z0-9])?$")
FORM = "hf:OWNER/REPO[@REVISION][/SUBFOLDER]"
EXAMPLE = "hf:davidafrica/pico-maml-decoder-tiny/checkpoints/step_6000"
INSTALL_HINT = "pip install -e '.[hub]' (or pip install huggingface_hub)"


# Git ref rules (git check-ref-format) plus what a file path must never hold: the
# revision becomes a file name under the cache's refs/ folder.
_REF_FORBIDDEN = set(" ~^:?*[\\%")


def revision_problem(revision: str) -> str | None:
    """Why ``revision`` (already percent-decoded) cannot be a Hub revision, or ``None``.

    Why so strict: huggingface_hub writes ``CACHE/models--OWNER--REPO/refs/<revision>``,
    so ``..``, an absolute path, a NUL or other control character in a revision would
    write outside the cache (a hostile endpoint can serve any revision). Branch, tag and
    commit names the Hub allows (``main``, ``v1.0``, ``refs/pr/3``, 40-hex hashes) pass.
    A ``%`` left after decoding is a second encoding layer and is refused too.
    """
    if not revision:
        return "empty revision"
    if len(revision) > 255:
        return "revision longer than 255 characters"
    if any(ord(c) < 32 or ord(c) == 127 for c in revision):
        return "control character (NUL, newline, ...) in the revision"
    bad = sorted(set(revision) & _REF_FORBIDDEN)
    if bad:
        return f"character {bad[0]!r} not allowed in a revision"
    if revision.startswith("/") or re.match(r"^[A-Za-z]:", revision):
        return "absolute path as revision"
    if revision.endswith(("/", ".", ".lock")) or "@{" in revision or revision == "@":
        return "not a valid branch, tag or commit name"
    for part in revision.split("/"):
        if part in ("", ".", "..") or part.startswith("."):
            return f"path segment {part!r} not allowed in a revision"
    return None


def _subfolder_problem(subfolder: str) -> str | None:
    """Why ``subfolder`` cannot be a folder of a repository (it becomes a cache path)."""
    for seg in subfolder.split("/") if subfolder else []:
        if seg in ("", ".", "..") or "@" in seg:
            return f"invalid subfolder segment {seg!r}"
        if any(ord(c) < 32 or ord(c) == 127 or c in "\\%:" for c in seg):
            return f"invalid character in subfolder segment {seg!r}"
    return None


def _inside(path: str | Path, root: str | Path) -> bool:
    """Whether ``path`` (resolved, symlinks followed) lies inside ``root``."""
    return Path(os.path.realpath(path)).is_relative_to(Path(os.path.realpath(root)))


@dataclass(frozen=True)
class HubRef:
    """A folder of a Hub model repository at a revision (None: the default branch).

    Every instance is checked (also those built from a server's answer, such as commit
    ids from a listing), so no Hub reference can name a path outside the cache.
    """

    repo_id: str
    revision: str | None = None
    subfolder: str = ""

    def __post_init__(self) -> None:
        owner, _, repo = self.repo_id.partition("/")
        for what, name in (("owner", owner), ("repository name", repo)):
            if not _NAME_RE.match(name) or "--" in name or ".." in name:
                raise _bad(f"{SCHEME}{self.repo_id}", f"invalid {what} {name!r}")
        if self.revision is not None:
            why = revision_problem(self.revision)
            if why:
                raise _bad(f"{SCHEME}{self.repo_id}@{self.revision!r}", why)
        why = _subfolder_problem(self.subfolder)
        if why:
            raise _bad(f"{SCHEME}{self.repo_id}/{self.subfolder}", why)

    def __str__(self) -> str:
        rev = "" if self.revision is None else "@" + self.revision.replace("/", "%2F")
        sub = f"/{self.subfolder}" if self.subfolder else ""
        return f"{SCHEME}{self.repo_id}{rev}{sub}"

    def at(self, revision: str | None) -> HubRef:
        """The same folder at another revision."""
        return HubRef(self.repo_id, revision, self.subfolder)

    def child(self, name: str) -> HubRef:
        """A subfolder of this folder."""
        return HubRef(self.repo_id, self.revision, f"{self.subfolder}/{name}".strip("/"))

    def file(self, name: str) -> str:
        """Path of ``name`` inside the repository."""
        return f"{self.subfolder}/{name}" if self.subfolder else name


def is_hub_ref(value: object) -> bool:
    """True for strings that use the ``hf:`` scheme (valid or not)."""
    return isinstance(value, str) and value.startswith(SCHEME)


def _bad(text: str, why: str) -> PicomamlError:
    return PicomamlError(f"backbone reference {text!r}: {why}; expected {FORM}, e.g. {EXAMPLE}")


def parse_hub_ref(text: str) -> HubRef:
    """Parse ``hf:OWNER/REPO[@REVISION][/SUBFOLDER]``.

    The revision (branch, tag or commit hash) ends at the next ``/``; a branch name that
    contains ``/`` is written with ``%2F``. A trailing ``/`` is ignored.
    """
    if not is_hub_ref(text):
        raise _bad(str(text), f"does not start with {SCHEME!r}")
    body = text[len(SCHEME) :]
    if not body or body != body.strip() or any(c.isspace() for c in body):
        raise _bad(text, "empty or contains whitespace")
    parts = body.rstrip("/").split("/")
    if len(parts) < 2:
        raise _bad(text, "no OWNER/REPO (the owner is part of the name)")
    owner, repo = parts[0], parts[1]
    revision: str | None = None
    if "@" in repo:
        repo, revision = repo.split("@", 1)
        if not revision:
            raise _bad(text, "empty revision after '@'")
        try:
            revision = unquote(revision, errors="strict")
        except UnicodeDecodeError:
            raise _bad(text, "percent-encoding that is not UTF-8 in the revision") from None
    for what, name in (("owner", owner), ("repository name", repo)):
        if not _NAME_RE.match(name) or "--" in name or ".." in name:
            raise _bad(text, f"invalid {what} {name!r}")
    if revision is not None and revision_problem(revision):
        raise _bad(text, str(revision_problem(revision)))
    subfolder = "/".join(parts[2:])
    if _subfolder_problem(subfolder):
        raise _bad(text, str(_subfolder_problem(subfolder)))
    return HubRef(f"{owner}/{repo}", revision, subfolder)


# --- huggingface_hub access -----------------------------------------------------------------


def _hub() -> Any:
    """The ``huggingface_hub`` module, or a one-line error saying how to install it."""
    try:
        import huggingface_hub  # optional (hub extra): imported where a Hub call is made
    except ImportError as exc:
        raise PicomamlError(f"hf: backbones need huggingface_hub: {INSTALL_HINT}") from exc
    return huggingface_hub


def _true(value: str | None) -> bool:
    return (value or "").strip().lower() in {"1", "true", "yes", "on"}


def offline_mode() -> bool:
    """``HF_HUB_OFFLINE`` as set now (huggingface_hub reads it only once, at import)."""
    if _true(os.environ.get("HF_HUB_OFFLINE")):
        return True
    try:
        from huggingface_hub import constants  # optional (hub extra)
    except ImportError:
        return False
    return bool(getattr(constants, "HF_HUB_OFFLINE", False))


def _endpoint() -> str | None:
    value = os.environ.get("HF_ENDPOINT")
    return value.rstrip("/") if value else None


def cache_dir(explicit: str | Path | None = None) -> Path:
    """Where Hub files go: ``explicit``, else ``HF_HUB_CACHE``, else ``HF_HOME/hub``, else the
    library default (``~/.cache/huggingface/hub``)."""
    if explicit is not None:
        return Path(explicit).expanduser()
    for key in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"):
        if os.environ.get(key):
            return Path(os.environ[key]).expanduser()
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]).expanduser() / "hub"
    _hub()  # the install hint when missing
    from huggingface_hub import constants  # optional (hub extra); a lazy submodule

    return Path(constants.HF_HUB_CACHE)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _translate(
    exc: BaseException, ref: HubRef, what: str, cache: Path, missing: str | None = None
) -> PicomamlError:
    """One clear line for an error raised by huggingface_hub while fetching ``what``
    (``missing`` replaces the explanation when the Hub says ``what`` does not exist)."""
    from huggingface_hub import utils as hf_utils  # optional (hub extra)

    repo, rev = ref.repo_id, ref.revision or "main"
    listing = f"picomaml model list-checkpoints {SCHEME}{repo}"
    if isinstance(exc, hf_utils.GatedRepoError):
        return PicomamlError(
            f"{ref}: {repo} is gated; accept its terms on huggingface.co and log in "
            "(`hf auth login`) or set HF_TOKEN"
        )
    if isinstance(exc, hf_utils.RepositoryNotFoundError):
        return PicomamlError(
            f"{ref}: repository {repo} not found on the Hub (check the name; a private repo "
            "needs a login or HF_TOKEN)"
        )
    if isinstance(exc, hf_utils.RevisionNotFoundError):
        return PicomamlError(
            f"{ref}: revision {rev!r} not found in {repo} (use a branch, tag or full commit "
            f"hash; `{listing}` lists the checkpoints)"
        )
    if isinstance(exc, _transport_errors()):
        return PicomamlError(
            f"{ref}: cannot reach the Hub ({_endpoint() or 'huggingface.co'}) to read {what}: "
            f"{_first_line(exc)}; check the network connection (or HF_ENDPOINT) and retry"
        )
    if isinstance(exc, hf_utils.LocalEntryNotFoundError):
        if offline_mode():
            return PicomamlError(
                f"{ref}: {what} is not in the local Hugging Face cache ({cache}) and "
                "HF_HUB_OFFLINE is set: unset HF_HUB_OFFLINE and run once with internet to "
                "download it"
            )
        return PicomamlError(
            f"{ref}: cannot reach the Hub ({_endpoint() or 'huggingface.co'}) and {what} is not "
            f"in the local cache ({cache}): check the network connection (or HF_ENDPOINT) "
            "and retry"
        )
    if isinstance(exc, hf_utils.EntryNotFoundError):
        if missing:
            return PicomamlError(f"{ref}: {what} not found in {repo}@{rev} ({missing})")
        step = layout.parse_step(ref.subfolder.rsplit("/", 1)[-1])
        where = f"step {step} does not exist there" if step is not None else "no such path"
        return PicomamlError(
            f"{ref}: {what} not found in {repo}@{rev} ({where}); `{listing}` lists the "
            "available checkpoints"
        )
    if isinstance(exc, hf_utils.OfflineModeIsEnabled):
        return PicomamlError(
            f"{ref}: HF_HUB_OFFLINE is set, so the Hub cannot be asked: unset it to use the network"
        )
    return PicomamlError(f"{ref}: Hub request for {what} failed: {_first_line(exc)}")


def _transport_errors() -> tuple[type[BaseException], ...]:
    """Connection failures of the HTTP client huggingface_hub uses. ``requests`` (before
    1.0) raises ``OSError`` subclasses; ``httpx`` (1.x) and ``httpx2`` (2.x) do not, so
    without these a Hub listing on a machine without network ended in a traceback."""
    found = []
    for name in ("httpx2", "httpx"):
        module = sys.modules.get(name)  # imported by huggingface_hub, never by us
        if module is not None and hasattr(module, "TransportError"):
            found.append(module.TransportError)
    return tuple(found)


def _hub_errors() -> tuple[type[BaseException], ...]:
    from huggingface_hub import utils as hf_utils  # optional (hub extra)

    base = (hf_utils.HfHubHTTPError, hf_utils.EntryNotFoundError, OSError, ValueError)
    return base + _transport_errors()


def _commit_of(path: str | Path) -> str:
    """The commit hash of a file in the cache (``.../snapshots/<commit>/...``)."""
    for parent in Path(path).parents:
        if parent.parent.name == "snapshots" and _COMMIT_RE.match(parent.name):
            return parent.name
    raise PicomamlError(f"internal: {path} is not inside a Hugging Face cache snapshot")


@dataclass(frozen=True)
class HubCheckpoint:
    """A Hub backbone on disk: ``folder`` holds its ``config.json`` and ``model.safetensors``."""

    ref: HubRef
    commit: str
    folder: Path

    @property
    def pinned(self) -> HubRef:
        """The reference with the revision replaced by the commit hash (reproducible)."""
        return self.ref.at(self.commit)

    def provenance(self) -> dict[str, str | None]:
        """What a run records about its backbone (``run.json``)."""
        return {
            "reference": str(self.ref),
            "repo": self.ref.repo_id,
            "revision": self.ref.revision,
            "subfolder": self.ref.subfolder,
            "commit": self.commit,
            "pinned": str(self.pinned),
        }


def fetch_checkpoint(ref: HubRef | str, cache: str | Path | None = None) -> HubCheckpoint:
    """Download (or find in the cache) the ``config.json`` and weights of a Hub Pico folder.

    Nothing else in the folder is fetched (no code, tokenizer or ``fabric_state/``). The
    weights are requested at the commit the config resolved to, so a branch that moves
    between the two requests cannot mix checkpoints.
    """
    if isinstance(ref, str):
        ref = parse_hub_ref(ref)
    hub = _hub()
    where = cache_dir(cache)
    storage = where / f"models--{ref.repo_id.replace('/', '--')}"
    planned = (storage / "refs" / (ref.revision or "main"), storage / "snapshots" / "x")
    for path in (*planned, planned[1] / ref.file(CONFIG_FILE)):
        if not _inside(path, where):
            raise PicomamlError(f"{ref}: resolves to {path}, outside the Hub cache {where}")
    common = {
        "repo_id": ref.repo_id,
        "subfolder": ref.subfolder or None,
        "cache_dir": str(where),
        "local_files_only": offline_mode(),
        "endpoint": _endpoint(),
    }
    errors = _hub_errors()
    try:
        config_path = hub.hf_hub_download(filename=CONFIG_FILE, revision=ref.revision, **common)
    except errors as exc:
        raise _translate(exc, ref, ref.file(CONFIG_FILE), where) from exc
    commit = _commit_of(config_path)
    try:
        weights_path = hub.hf_hub_download(filename=WEIGHTS_FILE, revision=commit, **common)
    except errors as exc:
        why = "the folder has a config.json, but picomaml loads single-file safetensors weights"
        raise _translate(exc, ref.at(commit), ref.file(WEIGHTS_FILE), where, why) from exc
    folder = Path(config_path).parent
    for path in (config_path, weights_path):
        if not _inside(path, where):
            raise PicomamlError(f"{ref}: the Hub client wrote {path}, outside the cache {where}")
    if Path(weights_path).parent != folder:
        raise PicomamlError(f"internal: {weights_path} and {config_path} are in different folders")
    return HubCheckpoint(ref, commit, folder)


# --- listing checkpoints --------------------------------------------------------------------


@dataclass(frozen=True)
class HubStep:
    """One checkpoint of a Hub repository: its pretraining step and reference."""

    step: int
    ref: HubRef
    commit: str | None = None


def steps_from_folders(names: Iterable[str]) -> list[tuple[int, str]]:
    """``(step, name)`` for folder names ``step_N``, sorted by step."""
    found = ((layout.parse_step(n), n) for n in names)
    return sorted((step, n) for step, n in found if step is not None)


def steps_from_commits(commits: Iterable[tuple[str, str]]) -> list[tuple[int, str]]:
    """``(step, commit)`` from ``(commit id, title)`` pairs listed newest first.

    Only pico-train's weight commits (``Saving HF Model -- Step N``) count; when a step was
    pushed twice (a resumed run) the newest commit wins.
    """
    by_step: dict[int, str] = {}
    for commit_id, title in commits:
        match = STEP_COMMIT_RE.match(title.strip())
        if match:
            by_step.setdefault(int(match.group(1)), commit_id)
    return sorted(by_step.items())


def _folders(api: Any, ref: HubRef, path: str) -> list[str]:
    from huggingface_hub.hf_api import RepoFolder  # optional (hub extra)

    entries = api.list_repo_tree(ref.repo_id, path_in_repo=path or None, revision=ref.revision)
    return [e.path.rsplit("/", 1)[-1] for e in entries if isinstance(e, RepoFolder)]


def list_checkpoints(ref: HubRef | str) -> list[HubStep]:
    """The checkpoints of a Hub repository, by pretraining step.

    With a subfolder (``hf:REPO/checkpoints``), its ``step_N`` folders. Without one, the
    root's ``checkpoints/`` folder if there is one, else the revision's ``Saving HF Model --
    Step N`` commits (pico-lm training branches such as ``@pico-decoder-tiny-1``).
    """
    if isinstance(ref, str):
        ref = parse_hub_ref(ref)
    hub = _hub()
    if offline_mode():
        raise PicomamlError(
            f"{ref}: listing checkpoints asks the Hub, but HF_HUB_OFFLINE is set; unset it "
            "(cached folders still load offline by their full reference)"
        )
    api = hub.HfApi(endpoint=_endpoint())
    errors = _hub_errors()
    where = cache_dir()
    try:
        folder = ref.subfolder
        if not folder and layout.CHECKPOINTS in _folders(api, ref, ""):
            folder = layout.CHECKPOINTS
        if folder:
            base = HubRef(ref.repo_id, ref.revision, folder)
            found = steps_from_folders(_folders(api, ref, folder))
            if not found:
                raise PicomamlError(f"{base}: no step_N folders there")
            return [HubStep(step, base.child(name)) for step, name in found]
        commits = api.list_repo_commits(ref.repo_id, revision=ref.revision)
        found = steps_from_commits((c.commit_id, c.title) for c in commits)
        if found:
            return [HubStep(step, ref.at(c), c) for step, c in found]
        branches = sorted(b.name for b in api.list_repo_refs(ref.repo_id).branches)
    except errors as exc:
        raise _translate(exc, ref, f"folder {ref.subfolder or '(root)'}", where) from exc
    raise PicomamlError(
        f"{ref}: no checkpoints: no checkpoints/step_N folders and no 'Saving HF Model -- "
        f"Step N' commits on {ref.revision or 'main'}; branches: {', '.join(branches)} "
        "(pico-lm keeps each checkpoint as a commit on the run's branch, e.g. "
        f"{SCHEME}pico-lm/pico-decoder-tiny@pico-decoder-tiny-1)"
    )
