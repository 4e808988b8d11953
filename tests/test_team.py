"""Team mode: sign-in through OpenID Connect, each user's files kept apart, a quota that loses nothing.

The sign-in runs for real: `python -m dealmodel.team` serves the app, Chromium signs in at a small
OIDC provider started here on a loopback port (tests/oidc_stub.py), Streamlit's own login checks
its signed ID token. No outside service is reached.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dealmodel import team
from tests.conftest import ROOT
from tests.serving import free_port, stop, wait_until_serving
from tests.test_serve import _listening

SINGLE = ROOT / "sample_deals" / "single_candidate.yaml"
GATES = ROOT / "examples" / "hybrid_with_gate_decisions.yaml"



def _launch(*args: str, env: dict | None = None, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dealmodel.team", *args], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=60, **kw)


def _auth(stub_url: str = "https://login.example.com/.well-known/openid-configuration", port: int = 8501) -> str:
    return (f'[auth]\nredirect_uri = "http://127.0.0.1:{port}/oauth2callback"\n'
            f'cookie_secret = "{secrets.token_urlsafe(32)}"\nclient_id = "dealmodel"\nclient_secret = "s3cret"\n'
            f'server_metadata_url = "{stub_url}"\n')


# --------------------------------------------------------------------------- settings and the launcher


def test_auth_settings_name_each_missing_or_wrong_key():
    assert team.auth_problems({}) == ["[auth]: missing (no sign-in is configured)"]
    problems = team.auth_problems({"auth": {"redirect_uri": "http://h:8501/", "cookie_secret": "short",
                                            "client_id": "x", "server_metadata_url": "login.example.com"}})
    assert "[auth].client_secret: missing" in problems
    assert any(p.startswith("[auth].redirect_uri:") and "/oauth2callback" in p for p in problems)
    assert any(p.startswith("[auth].cookie_secret: 5 characters") for p in problems)
    assert any(p.startswith("[auth].server_metadata_url:") for p in problems)
    assert len(problems) == 4
    import tomllib
    assert team.auth_problems(tomllib.loads(_auth())) == []


def test_team_mode_refuses_a_network_address_without_sign_in(tmp_path):
    port = free_port()
    empty = tmp_path / "secrets.toml"
    empty.write_text('[other]\nkey = "value"\n')
    started = time.monotonic()
    out = _launch("--address", "0.0.0.0", "--port", str(port), "--secrets", str(empty))
    assert out.returncode == 2
    assert "[auth]: missing" in out.stderr and "refusing to serve team mode on 0.0.0.0" in out.stderr
    assert "Traceback" not in out.stderr
    assert time.monotonic() - started < 30
    if Path("/proc/net/tcp").exists():
        assert _listening(port) == set()  # nothing was served
    # a secrets file that is not TOML: named, not a traceback
    bad = tmp_path / "bad.toml"
    bad.write_text("[auth\nredirect_uri = 1")
    out = _launch("--address", "0.0.0.0", "--secrets", str(bad), "--check")
    assert out.returncode == 2 and "not valid TOML" in out.stderr and "Traceback" not in out.stderr
    # a quota that is not a number
    out = _launch("--address", "127.0.0.1", "--secrets", str(empty), "--check", env={"DEALMODEL_TEAM_QUOTA_MB": "lots"})
    assert out.returncode == 2 and "DEALMODEL_TEAM_QUOTA_MB: 'lots' is not a number" in out.stderr


def test_team_mode_starts_with_sign_in_anywhere_and_without_it_on_loopback_only(tmp_path):
    configured = tmp_path / "secrets.toml"
    configured.write_text(_auth())
    out = _launch("--address", "0.0.0.0", "--secrets", str(configured), "--check")
    assert out.returncode == 0 and "sign-in on" in out.stdout
    out = _launch("--address", "127.0.0.1", "--secrets", str(tmp_path / "none.toml"), "--check")
    assert out.returncode == 0 and "no sign-in (loopback only, one local user)" in out.stdout


def test_team_mode_runs_two_app_processes_by_default_and_checks_the_number_asked_for(tmp_path, monkeypatch):
    none = str(tmp_path / "none.toml")
    out = _launch("--address", "127.0.0.1", "--secrets", none, "--check", env={"DEALMODEL_WORKERS": ""})
    cores = os.cpu_count() or 1
    assert out.returncode == 0 and out.stdout.rstrip().endswith(
        "with 2 app processes" if cores >= 2 else "127.0.0.1:8501")
    out = _launch("--address", "127.0.0.1", "--secrets", none, "--check", "--workers", "3")
    assert out.returncode == 0 and out.stdout.rstrip().endswith("with 3 app processes")
    out = _launch("--address", "127.0.0.1", "--secrets", none, "--check", "--workers", "1")
    assert out.returncode == 0 and "app processes" not in out.stdout  # one: Streamlit's server alone
    for args, env, says in [(["--workers", "0"], {}, "--workers: 0 app processes; give 1 to 16"),
                            (["--workers", "40"], {}, "--workers: 40 app processes; give 1 to 16"),
                            ([], {"DEALMODEL_WORKERS": "two"}, "DEALMODEL_WORKERS: 'two' is not a whole number"),
                            ([], {"DEALMODEL_PORT": "http"}, "DEALMODEL_PORT: 'http' is not a port number"),
                            (["--port", "70000"], {}, "port 70000: give 1 to 65535")]:
        out = _launch("--address", "127.0.0.1", "--secrets", none, "--check", *args, env=env)
        assert out.returncode == 2 and says in out.stderr and "Traceback" not in out.stderr, (args, env, out.stderr)
    monkeypatch.setattr(os, "cpu_count", lambda: 1)
    assert team.default_workers() == 1  # one core: one process (a second could not run alongside)
    monkeypatch.setattr(os, "cpu_count", lambda: 8)
    assert team.default_workers() == 2


# --------------------------------------------------------------------------- each user's files


def test_users_files_are_apart_and_names_cannot_leave_the_folder(tmp_path):
    alice = team.UserFiles(tmp_path, "https://idp|alice", quota=10_000)
    bob = team.UserFiles(tmp_path, "https://idp|bob", quota=10_000)
    assert alice.save_upload("../../bob/deal.yaml", b"name: A\n") == "deal.yaml"
    assert alice.save_upload("deal.yaml", b"name: B\n") == "deal (2).yaml"  # a second file of that name is kept too
    assert alice.upload_names() == ["deal.yaml", "deal (2).yaml"]
    assert bob.upload_names() == [] and bob.read_scenarios() is None
    assert alice.folder != bob.folder and alice.folder.parent == bob.folder.parent == tmp_path
    assert {p.relative_to(tmp_path).parts[0] for p in tmp_path.rglob("*")} == {alice.folder.name}
    assert alice.used() == len(b"name: A\n") + len(b"name: B\n")
    alice.delete_upload("deal.yaml")
    assert alice.upload_names() == ["deal (2).yaml"]
    with pytest.raises(ValueError, match="nothing left to store"):
        alice.save_upload("..", b"x")
    assert team.user_key({"iss": "https://idp", "sub": "42", "email": "a@x"}) == "https://idp|42"
    assert team.user_key({"email": "A@X.com"}) == "email|a@x.com"


def test_a_save_over_the_quota_says_so_and_leaves_every_file_as_it_was(tmp_path):
    files = team.UserFiles(tmp_path, "u", quota=1_000)
    files.save_upload("a.yaml", b"a" * 600)
    files.save_scenarios("s" * 300)
    before = {p: p.read_bytes() for p in files.folder.rglob("*") if p.is_file()}
    with pytest.raises(team.QuotaError, match=r"to 1\.2 kB, over your 1 kB quota"):
        files.save_upload("b.yaml", b"b" * 300)
    with pytest.raises(team.QuotaError, match="over your 1 kB quota"):
        files.save_scenarios("t" * 401)  # replaces the 300 bytes: 600 + 401 > 1,000
    after = {p: p.read_bytes() for p in files.folder.rglob("*") if p.is_file()}
    assert after == before  # nothing half-written, nothing lost, no temporary files left
    files.save_scenarios("t" * 400)  # exactly at the quota is allowed
    assert files.used() == 1_000


# --------------------------------------------------------------------------- sign-in in a real browser


CHROMIUM = Path(os.environ.get("DEALMODEL_CHROMIUM", "/usr/bin/chromium"))


@pytest.fixture(scope="module")
def team_server(tmp_path_factory):
    if not CHROMIUM.exists():
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing: `python3 tasks.py test` installs it", pytrace=False)
        pytest.skip(f"{CHROMIUM} is not installed (python3 tasks.py test installs it)")
    from tests.oidc_stub import OIDCStub

    tmp = tmp_path_factory.mktemp("team")
    port = free_port()
    with OIDCStub() as stub:
        (tmp / "secrets.toml").write_text(_auth(stub.metadata_url, port).replace('"dealmodel"', f'"{stub.client_id}"')
                                          .replace('"s3cret"', f'"{stub.client_secret}"'))
        env = {**os.environ, "DEALMODEL_TEAM_DIR": str(tmp / "data"), "DEALMODEL_TEAM_QUOTA_MB": "0.2",
               "STREAMLIT_BROWSER_GATHER_USAGE_STATS": "false", "STREAMLIT_SERVER_HEADLESS": "true"}
        proc = subprocess.Popen([sys.executable, "-m", "dealmodel.team", "--address", "127.0.0.1", "--port", str(port),
                                 "--secrets", str(tmp / "secrets.toml")], cwd=ROOT, env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        url = f"http://127.0.0.1:{port}"
        wait_until_serving(url, proc)
        yield url, tmp / "data", stub
        stop(proc)


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM))
        yield b
        b.close()


def _idle(page) -> None:
    page.wait_for_selector('[data-testid="stApp"][data-test-script-state="notRunning"]', timeout=90_000)
    page.get_by_test_id("stMetric").first.wait_for(timeout=90_000)


def _sign_in(browser, url: str, user: str):
    page = browser.new_context(viewport={"width": 1440, "height": 900}).new_page()
    page.goto(url)
    page.get_by_role("button", name="Sign in").click()
    page.fill("#user", user)
    page.click("#approve")
    _idle(page)
    return page


def _options(page, label: str) -> list[str]:
    """The choices of the sidebar's selectbox called ``label``."""
    box = page.get_by_test_id("stSidebar").get_by_role("combobox", name=label).first
    box.evaluate("e => e.scrollIntoView({block: 'center'})")
    box.click()
    options = page.get_by_role("option")
    options.first.wait_for(timeout=10_000)
    texts = options.all_inner_texts()
    page.keyboard.press("Escape")
    return texts


def _upload(page, path: Path) -> None:
    page.get_by_test_id("stSidebar").locator("input[type=file]").first.set_input_files(str(path))
    time.sleep(1)
    _idle(page)


def _save_scenario(page, name: str) -> str:
    sidebar = page.get_by_test_id("stSidebar")
    sidebar.get_by_label("Scenario name").fill(name)
    sidebar.get_by_label("Scenario name").press("Enter")
    _idle(page)
    sidebar.get_by_role("button", name="Save this scenario").click()
    _idle(page)
    alert = sidebar.get_by_test_id("stAlert").filter(has_text=f"Saved {name}")
    alert.wait_for(timeout=30_000)
    return alert.inner_text()


def test_two_users_each_see_only_their_own_uploads_and_scenarios(team_server, browser):
    url, data, stub = team_server
    alice = _sign_in(browser, url, "alice")
    assert "Signed in as alice@example.com" in alice.get_by_test_id("stSidebar").inner_text()
    _upload(alice, SINGLE)
    assert "Single candidate — phase 2 antibody" in _options(alice, "Structure to edit")
    assert "Kept on the server" in _save_scenario(alice, "Alice draft")

    bob = _sign_in(browser, url, "bob")
    assert "Signed in as bob@example.com" in bob.get_by_test_id("stSidebar").inner_text()
    bob_structures = _options(bob, "Structure to edit")
    assert "Single candidate — phase 2 antibody" not in bob_structures
    assert len(bob_structures) == 5  # the reference structures, for everyone
    assert bob.get_by_test_id("stSelectbox").filter(has_text="Saved scenarios").count() == 0
    _upload(bob, GATES)
    _save_scenario(bob, "Bob draft")
    assert _options(bob, "Saved scenarios") == ["Bob draft"]

    # alice again, in a new session (as after closing the tab): her files, not bob's
    alice2 = _sign_in(browser, url, "alice")
    structures = _options(alice2, "Structure to edit")
    assert "Single candidate — phase 2 antibody" in structures
    assert "Reference program — hybrid, with gate decisions" not in structures
    assert _options(alice2, "Saved scenarios") == ["Alice draft"]
    # deleting it removes it from her stored scenarios too
    alice2.get_by_test_id("stSidebar").get_by_role("button", name="Delete").click()
    _idle(alice2)
    stored = team.UserFiles(data, f"{stub.issuer}|user-alice", 1).read_scenarios()
    assert stored is not None and "Alice draft" not in stored
    assert len([p for p in data.iterdir() if p.is_dir()]) == 2
    assert stub.tokens_issued == 3  # every sign-in went through the provider's token endpoint
    for page in (alice, bob, alice2):
        page.context.close()


def test_a_full_quota_says_so_and_loses_nothing(team_server, browser, tmp_path):
    url, data, stub = team_server
    carol = _sign_in(browser, url, "carol")
    _upload(carol, SINGLE)
    folder = team.UserFiles(data, f"{stub.issuer}|user-carol", 1).folder  # the stub's issuer and subject
    before = {p.name: p.read_bytes() for p in (folder / "uploads").iterdir()}
    # a valid deal file padded with comments to 300 kB: under the 1 MB upload limit, over the 200 kB quota
    big = tmp_path / "padded_deal.yaml"
    big.write_text(GATES.read_text() + "".join(f"# padding line {i:06d} " + "x" * 80 + "\n" for i in range(3_000)))
    _upload(carol, big)
    sidebar = carol.get_by_test_id("stSidebar")
    warning = sidebar.get_by_test_id("stAlert").filter(has_text="padded_deal.yaml")
    warning.wait_for(timeout=30_000)
    text = warning.inner_text()
    assert "is open in this session but not saved on the server" in text and "over your 200 kB quota" in text
    # the big deal is usable in this session, and nothing stored was touched
    assert "Reference program — hybrid, with gate decisions" in _options(carol, "Structure to edit")
    assert {p.name: p.read_bytes() for p in (folder / "uploads").iterdir()} == before
    carol2 = _sign_in(browser, url, "carol")
    structures = _options(carol2, "Structure to edit")
    assert "Single candidate — phase 2 antibody" in structures
    assert "Reference program — hybrid, with gate decisions" not in structures
    for page in (carol, carol2):
        page.context.close()


def test_the_shipped_example_holds_no_secrets_and_does_not_start_a_network_server():
    import tomllib

    example = ROOT / ".streamlit" / "secrets.example.toml"
    problems = team.auth_problems(tomllib.loads(example.read_text()))
    assert sorted(problems) == sorted(f"[auth].{k}: missing" for k in ("cookie_secret", "client_id", "client_secret",
                                                                         "server_metadata_url"))
    assert _launch("--address", "0.0.0.0", "--secrets", str(example), "--check").returncode == 2
