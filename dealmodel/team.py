"""Team mode: the app served to a team with sign-in, each user's files kept apart on the server.

    python3 tasks.py team                       # the launcher below, via the project's venv
    python -m dealmodel.team [--address A] [--port P] [--secrets FILE] [--check]

Sign-in is Streamlit's own OpenID Connect login (``st.login``), configured in a ``secrets.toml``
whose ``[auth]`` section names the provider (see ``.streamlit/secrets.example.toml`` and
docs/serving.md). Without it, team mode starts on the loopback address only (one local user) and
refuses any other address: served to a network without sign-in, anyone could read every upload.

Each signed-in user has a folder of their own under the data directory (``DEALMODEL_TEAM_DIR``,
default ``~/.dealmodel/team``) holding the deal files they uploaded and their saved scenarios,
within a quota (``DEALMODEL_TEAM_QUOTA_MB``, default 5 MB). Nothing here imports Streamlit: the
app is a thin layer over :class:`UserFiles`.

Where the machine has two cores or more, two app processes serve behind one address
(:mod:`dealmodel.proxy`), each browser kept on one of them, so people acting at the same moment use
both cores (``--workers N``).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import sys
import tempfile
import tomllib
from collections.abc import Mapping
from pathlib import Path

LOOPBACK = ("127.0.0.1", "localhost", "::1")
DEFAULT_QUOTA_MB = 5.0
AUTH_KEYS = ("redirect_uri", "cookie_secret", "client_id", "client_secret", "server_metadata_url")
MIN_COOKIE_SECRET = 32
SCENARIOS = "scenarios.yaml"
MAX_NAME = 100


class QuotaError(Exception):
    """A save that would take a user past their quota; nothing was written."""


def team_mode() -> bool:
    """Whether the app runs in team mode (set by the launcher)."""
    return os.environ.get("DEALMODEL_TEAM") == "1"


def data_dir() -> Path:
    return Path(os.environ.get("DEALMODEL_TEAM_DIR") or Path.home() / ".dealmodel" / "team")


def quota_bytes() -> int:
    """Each user's quota in bytes (``DEALMODEL_TEAM_QUOTA_MB``, default 5 MB)."""
    raw = os.environ.get("DEALMODEL_TEAM_QUOTA_MB", "")
    try:
        mb = float(raw) if raw else DEFAULT_QUOTA_MB
    except ValueError:
        raise ValueError(f"DEALMODEL_TEAM_QUOTA_MB: {raw!r} is not a number of megabytes") from None
    if not mb > 0:
        raise ValueError(f"DEALMODEL_TEAM_QUOTA_MB: {raw!r} must be above 0")
    return int(mb * 1_000_000)


# --------------------------------------------------------------------------- sign-in settings


def read_secrets(path: Path) -> tuple[dict, list[str]]:
    """The secrets file as a dict, and the problems reading it (a missing file is no secrets)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}, []
    except (OSError, UnicodeDecodeError) as exc:
        return {}, [f"{path}: cannot be read ({exc})"]
    try:
        return tomllib.loads(text), []
    except tomllib.TOMLDecodeError as exc:
        return {}, [f"{path}: not valid TOML ({exc})"]


def auth_problems(secrets: Mapping) -> list[str]:
    """What keeps ``secrets`` from configuring sign-in (empty: it is configured).

    Team mode uses Streamlit's default provider: every key in ``[auth]`` itself.
    """
    auth = secrets.get("auth")
    if not isinstance(auth, Mapping):
        return ["[auth]: missing (no sign-in is configured)"]
    problems = [f"[auth].{key}: missing" for key in AUTH_KEYS if not str(auth.get(key) or "").strip()]
    redirect = str(auth.get("redirect_uri") or "")
    if redirect and not redirect.endswith("/oauth2callback"):
        problems.append(f"[auth].redirect_uri: {redirect!r} must end with /oauth2callback (the app's sign-in return)")
    secret = str(auth.get("cookie_secret") or "")
    if secret and len(secret) < MIN_COOKIE_SECRET:
        problems.append(f"[auth].cookie_secret: {len(secret)} characters; use at least {MIN_COOKIE_SECRET} random "
                        "ones (python3 -c 'import secrets; print(secrets.token_urlsafe(32))')")
    metadata = str(auth.get("server_metadata_url") or "")
    if metadata and not metadata.startswith(("https://", "http://")):
        problems.append(f"[auth].server_metadata_url: {metadata!r} is not an http(s) address")
    return problems


def start_problems(address: str, secrets_path: Path) -> tuple[list[str], bool]:
    """Why team mode must not start on ``address`` (empty: it may), and whether sign-in is on."""
    secrets, problems = read_secrets(secrets_path)
    if problems:
        return problems, False
    auth = auth_problems(secrets)
    if not auth:
        return [], True
    if address in LOOPBACK:
        return [], False  # one local user, nobody else can reach it
    return [f"{secrets_path}: {p}" for p in auth] + [
        f"refusing to serve team mode on {address} without sign-in: anyone who can reach this machine "
        "could open every upload. Configure [auth] (see .streamlit/secrets.example.toml) or serve on "
        "127.0.0.1."], False


# --------------------------------------------------------------------------- each user's files


def user_key(user: Mapping) -> str:
    """A signed-in user's stable identity: the provider's issuer and subject (email as a fallback)."""
    sub = str(user.get("sub") or "").strip()
    if sub:
        return f"{user.get('iss') or ''}|{sub}"
    email = str(user.get("email") or "").strip().lower()
    if email:
        return f"email|{email}"
    raise ValueError("the sign-in provider returned neither a subject ('sub') nor an email for this user")


def safe_name(name: str) -> str:
    """A file name that stays inside the user's folder: letters, digits, '-', '_', '.', ' '."""
    base = re.sub(r"[^A-Za-z0-9._ -]", "_", Path(str(name)).name).strip(" .")
    if not base:
        raise ValueError(f"file name {name!r}: nothing left to store once unsafe characters are removed")
    return base[:MAX_NAME]


def size_text(n: int) -> str:
    """Bytes in words: '850 bytes', '12.3 kB', '4.8 MB'."""
    if n < 1_000:
        return f"{n} bytes"
    if n < 1_000_000:
        return f"{n / 1e3:.3g} kB"
    return f"{n / 1e6:.3g} MB"


def _write_atomic(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".part-")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class UserFiles:
    """One user's uploads and scenarios on the server's disk, within a quota.

    Users are kept apart by folder: the folder's name is a hash of :func:`user_key`, so no name a
    user chooses can reach another's files. Writes are atomic (a temporary file, then a rename):
    a full disk or a quota overflow leaves every earlier file as it was.
    """

    def __init__(self, root: Path, key: str, quota: int, label: str = ""):
        self.key, self.quota, self.label = key, int(quota), label or key
        self.folder = Path(root) / hashlib.sha256(key.encode("utf-8")).hexdigest()[:32]
        self.uploads = self.folder / "uploads"

    def used(self) -> int:
        """Bytes stored for this user."""
        if not self.folder.exists():
            return 0
        return sum(p.stat().st_size for p in self.folder.rglob("*") if p.is_file() and not p.name.startswith("."))

    def _check(self, path: Path, size: int) -> None:
        old = path.stat().st_size if path.exists() else 0
        after = self.used() - old + size
        if after > self.quota:
            raise QuotaError(f"not saved on the server: it would take your files to {size_text(after)}, over your "
                             f"{size_text(self.quota)} quota; remove an uploaded structure or delete a saved "
                             "scenario. It stays in this session until you close it.")

    def _save(self, path: Path, data: bytes) -> None:
        self._check(path, len(data))
        path.parent.mkdir(parents=True, exist_ok=True)
        _write_atomic(path, data)

    def upload_names(self) -> list[str]:
        """Stored upload names, oldest first."""
        if not self.uploads.exists():
            return []
        files = [p for p in self.uploads.iterdir() if p.is_file() and not p.name.startswith(".")]
        return [p.name for p in sorted(files, key=lambda p: (p.stat().st_mtime_ns, p.name))]

    def read_upload(self, name: str) -> bytes:
        return (self.uploads / safe_name(name)).read_bytes()

    def save_upload(self, name: str, data: bytes) -> str:
        """Store an uploaded file under a name of its own ("deal (2).yaml" when "deal.yaml" is taken)."""
        stored = safe_name(name)
        stem, dot, ext = stored.rpartition(".") if "." in stored else (stored, "", "")
        k = 2
        while (self.uploads / stored).exists():
            stored = f"{stem} ({k}){dot}{ext}"
            k += 1
        self._save(self.uploads / stored, bytes(data))
        return stored

    def delete_upload(self, name: str) -> None:
        (self.uploads / safe_name(name)).unlink(missing_ok=True)

    def read_scenarios(self) -> str | None:
        path = self.folder / SCENARIOS
        return path.read_text(encoding="utf-8") if path.exists() else None

    def save_scenarios(self, text: str) -> None:
        self._save(self.folder / SCENARIOS, text.encode("utf-8"))


# --------------------------------------------------------------------------- the launcher


MAX_WORKERS = 16


def default_workers() -> int:
    """Two app processes where there are two cores or more (one Python process uses about one core;
    a third on two cores was slower, docs/serving.md), else one."""
    return min(2, os.cpu_count() or 1)


def _workers(given: int | None) -> tuple[int, str | None]:
    """The number of app processes (``--workers``, else ``DEALMODEL_WORKERS``, else
    :func:`default_workers`) and what is wrong with it, if anything."""
    if given is None:
        raw = os.environ.get("DEALMODEL_WORKERS", "").strip()
        if not raw:
            return default_workers(), None
        if not raw.isdigit():
            return 1, f"DEALMODEL_WORKERS: {raw!r} is not a whole number of app processes"
        given = int(raw)
    if not 1 <= given <= MAX_WORKERS:
        return 1, f"--workers: {given} app processes; give 1 to {MAX_WORKERS} (each takes about 0.5 GB)"
    return given, None


def _port(given: int | None) -> tuple[int, str | None]:
    """The port (``--port``, else ``DEALMODEL_PORT``, else 8501) and what is wrong with it, if anything."""
    if given is None:
        raw = os.environ.get("DEALMODEL_PORT", "").strip() or "8501"
        if not raw.isdigit():
            return 8501, f"DEALMODEL_PORT: {raw!r} is not a port number"
        given = int(raw)
    if not 1 <= given <= 65535:
        return 8501, f"port {given}: give 1 to 65535"
    return given, None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dealmodel.team", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--address", default=os.environ.get("DEALMODEL_ADDRESS", "0.0.0.0"),
                        help="address to listen on (default 0.0.0.0, every interface; DEALMODEL_ADDRESS)")
    parser.add_argument("--port", type=int, default=None, help="port to listen on (default 8501; DEALMODEL_PORT)")
    parser.add_argument("--secrets", type=Path, default=Path(".streamlit") / "secrets.toml",
                        help="the secrets file with the [auth] section (default .streamlit/secrets.toml)")
    parser.add_argument("--workers", type=int, default=None,
                        help="app processes behind one address (default: 2 where there are two cores or more; "
                        "DEALMODEL_WORKERS): people who act at the same moment use more cores; docs/serving.md")
    parser.add_argument("--check", action="store_true", help="check the settings and exit without serving")
    parser.add_argument("deal", nargs="?", help="a deal file to open first")
    args = parser.parse_args(argv)
    problems, signed = start_problems(args.address, args.secrets)
    try:
        quota, folder = quota_bytes(), data_dir()
    except ValueError as exc:
        problems.append(str(exc))
    workers, worker_problem = _workers(args.workers)
    if worker_problem:
        problems.append(worker_problem)
    args.port, port_problem = _port(args.port)
    if port_problem:
        problems.append(port_problem)
    if problems:
        print("dealmodel team: cannot start\n" + "\n".join(f"  - {p}" for p in problems), file=sys.stderr)
        return 2
    print(f"dealmodel team: {'sign-in on' if signed else 'no sign-in (loopback only, one local user)'}; "
          f"users' files in {folder} ({quota / 1e6:g} MB each); {'would serve' if args.check else 'serving'} on "
          f"{args.address}:{args.port}" + (f" with {workers} app processes" if workers > 1 else ""), flush=True)
    if args.check:
        return 0
    app = Path(__file__).resolve().parents[1] / "app.py"
    env = {**os.environ, "DEALMODEL_TEAM": "1", "DEALMODEL_TEAM_DIR": str(folder),
           "DEALMODEL_TEAM_SIGNIN": "1" if signed else "0"}
    if workers > 1:
        from dealmodel import proxy

        return proxy.run(workers, args.address, args.port, app, ["--secrets.files", str(args.secrets.resolve())],
                         [args.deal] if args.deal else [], env)
    cmd = [sys.executable, "-m", "dealmodel.serve", "run", str(app), "--server.address", args.address,
           "--server.port", str(args.port), "--secrets.files", str(args.secrets.resolve()),
           "--", *([args.deal] if args.deal else [])]
    os.execve(sys.executable, cmd, env)
    return 0  # pragma: no cover - execve does not return


if __name__ == "__main__":
    sys.exit(main())
