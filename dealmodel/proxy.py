"""Several app processes behind one address, each browser kept on one of them.

One Streamlit server runs every session's script in one Python process: ten people moving a slider
in the same second queue on it, and only the compiled kernel's threads use the second core
(docs/serving.md). Team mode can therefore start ``workers`` app processes on loopback ports and
put this small proxy in front of them on the address people open. A browser's first request
picks the worker with the fewest browsers so far and gets a cookie (``dealmodel_worker``) naming it;
every later request of that browser (the page, its websocket, a workbook download, the sign-in
callback) goes to the same worker, which holds its session. A download link fetched without the
cookie is looked for on every worker.

The workers share one cookie secret (so each accepts the others' signed cookies), read the same
secrets file and the same users' folder; each keeps its own cache of results. A worker that exits
is started again. Nothing here imports Streamlit. The proxy is Tornado: an HTTP and websocket server and
client in one small package (Streamlit itself serves with Uvicorn and has no client of its own).
"""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import socket
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from tornado import httpclient, httputil, web, websocket

COOKIE = "dealmodel_worker"
STREAM = "/_stcore/stream"
HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailers",
       "transfer-encoding", "upgrade", "content-length"}
MAX_MESSAGE = 200 * 1024 * 1024  # Streamlit's own websocket message limit (server.maxMessageSize)
TIMEOUT = 600.0  # seconds: a large workbook built on request can take a while under load
START_WAIT = 60.0  # seconds a request waits for a worker that is starting
MAX_REQUESTS = 200  # requests passed on at once (the rest wait for one to finish)


def free_port(address: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((address, 0))
        return s.getsockname()[1]


class Pool:
    """The workers' ports and how many browsers each was given; picks a worker for a browser.
    ``start_wait``: seconds a request waits for a worker that is starting."""

    def __init__(self, ports: Sequence[int], start_wait: float = START_WAIT):
        self.ports = list(ports)
        self.browsers = [0] * len(self.ports)
        self.start_wait = start_wait

    def pick(self, cookie: str | None) -> tuple[int, bool]:
        """The worker for a request carrying ``cookie`` (the cookie's value, if any), and whether the
        browser is new (its cookie is to be set): a valid cookie keeps its worker, else the least used."""
        if cookie is not None and cookie.isdigit() and int(cookie) < len(self.ports):
            return int(cookie), False
        i = min(range(len(self.ports)), key=lambda k: (self.browsers[k], k))
        self.browsers[i] += 1
        return i, True


async def _when_up(connect, wait: float = START_WAIT):
    """``await connect()``, tried again while the worker refuses connections (it is starting: a worker
    takes a few seconds, more when it was just restarted) for up to ``wait`` seconds; None if it never
    answers or the connection fails otherwise."""
    deadline = asyncio.get_running_loop().time() + wait
    while True:
        try:
            return await connect()
        except ConnectionRefusedError:
            if asyncio.get_running_loop().time() > deadline:
                return None
            await asyncio.sleep(0.25)
        except (OSError, httpclient.HTTPClientError, websocket.WebSocketError):
            return None


def _forwarded(request: httputil.HTTPServerRequest) -> httputil.HTTPHeaders:
    headers = httputil.HTTPHeaders()
    for name, value in request.headers.get_all():
        if name.lower() not in HOP and not name.lower().startswith("sec-websocket"):
            headers.add(name, value)
    headers.add("X-Forwarded-For", request.remote_ip or "")
    headers["X-Forwarded-Proto"] = request.protocol
    return headers


class _Worker:
    """Shared by both handlers: the worker this request goes to, and the cookie for a new browser."""

    pool: Pool

    def _worker(self, remember: bool = True) -> int:
        i, new = self.pool.pick(self.get_cookie(COOKIE))
        if new and remember:
            self.set_cookie(COOKIE, str(i), httponly=True, samesite="Lax")
        return i


class Forward(_Worker, web.RequestHandler):
    """Every HTTP request: passed to the browser's worker as it came, the answer passed back."""

    SUPPORTED_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")

    def initialize(self, pool: Pool) -> None:
        self.pool = pool

    async def _fetch(self, i: int) -> httpclient.HTTPResponse | None:
        """The worker's answer, waiting for a worker that is starting; None if it does not answer."""
        body = self.request.body if self.request.method in ("POST", "PUT", "PATCH") else None
        request = httpclient.HTTPRequest(
            f"http://127.0.0.1:{self.pool.ports[i]}{self.request.uri}", method=self.request.method,
            headers=_forwarded(self.request), body=body, follow_redirects=False, decompress_response=False,
            allow_nonstandard_methods=True, request_timeout=TIMEOUT)
        return await _when_up(lambda: httpclient.AsyncHTTPClient().fetch(request, raise_error=False),
                              self.pool.start_wait)

    async def _forward(self, *_args) -> None:
        i = self._worker()
        response = await self._fetch(i)
        if response is not None and response.code == 404 and self.request.path.startswith("/media/"):
            for other in range(len(self.pool.ports)):  # a link fetched without the cookie: whoever has it
                found = await self._fetch(other) if other != i else None
                if found is not None and found.code != 404:
                    response = found
                    break
        if response is None:
            self.set_status(502)
            self.finish("The app is starting or restarting: try again in a few seconds.")
            return
        self.set_status(response.code, response.reason)
        for name in ("Content-Type", "Server", "Date"):
            self.clear_header(name)
        for name, value in response.headers.get_all():
            if name.lower() not in HOP:
                self.add_header(name, value)
        if response.body and self.request.method != "HEAD":
            self.write(response.body)
        self.finish()

    get = head = post = put = patch = delete = options = _forward

    def compute_etag(self) -> None:  # the worker's own caching headers pass through unchanged
        return None


class Stream(_Worker, websocket.WebSocketHandler):
    """The browser's websocket, joined to one on its worker; messages are passed both ways as they are."""

    def initialize(self, pool: Pool) -> None:
        self.pool = pool
        self.upstream: websocket.WebSocketClientConnection | None = None

    def check_origin(self, origin: str) -> bool:
        return True  # the worker checks the origin against the Host header, which is passed on

    def select_subprotocol(self, subprotocols: list[str]) -> str | None:
        return subprotocols[0] if subprotocols else None  # Streamlit's first ("streamlit"), as it does itself

    async def open(self, *_args) -> None:
        i = self._worker(remember=False)  # the handshake is answered already: a browser has the page's cookie
        offered = [p.strip() for p in self.request.headers.get("Sec-WebSocket-Protocol", "").split(",") if p.strip()]
        request = httpclient.HTTPRequest(f"ws://127.0.0.1:{self.pool.ports[i]}{self.request.uri}",
                                         headers=_forwarded(self.request), request_timeout=TIMEOUT)
        self.upstream = await _when_up(lambda: websocket.websocket_connect(
            request, on_message_callback=self._from_worker, max_message_size=MAX_MESSAGE,
            subprotocols=offered or None), self.pool.start_wait)
        if self.upstream is None:
            self.close(1011, "the app is starting or restarting")  # the page reconnects by itself

    def _from_worker(self, message: str | bytes | None) -> None:
        if message is None:  # the worker closed it
            self.close()
            return
        try:
            self.write_message(message, binary=isinstance(message, bytes))
        except websocket.WebSocketClosedError:
            if self.upstream is not None:
                self.upstream.close()

    async def on_message(self, message: str | bytes) -> None:
        if self.upstream is not None:
            try:
                await self.upstream.write_message(message, binary=isinstance(message, bytes))
            except websocket.WebSocketClosedError:
                self.close()

    def on_close(self) -> None:
        if self.upstream is not None:
            self.upstream.close()


def application(pool: Pool) -> web.Application:
    # Tornado's client queues all but 10 requests at a time: twenty people downloading would wait in line
    httpclient.AsyncHTTPClient.configure(None, max_clients=MAX_REQUESTS)
    return web.Application([(STREAM, Stream, {"pool": pool}), (r"/.*", Forward, {"pool": pool})],
                           websocket_max_message_size=MAX_MESSAGE, websocket_ping_interval=30)


def worker_command(app: Path, port: int, streamlit_args: Sequence[str], app_args: Sequence[str]) -> list[str]:
    return [sys.executable, "-m", "dealmodel.serve", "run", str(app), *streamlit_args, "--server.address",
            "127.0.0.1", "--server.port", str(port), "--server.headless", "true", "--", *app_args]


async def serve(workers: int, address: str, port: int, app: Path, streamlit_args: Sequence[str],
                app_args: Sequence[str], env: dict[str, str]) -> None:
    """Start ``workers`` app processes and the proxy on ``address:port``; restart a worker that exits;
    stop them all on SIGTERM or SIGINT."""
    ports = [free_port() for _ in range(workers)]
    env = {**env, "STREAMLIT_SERVER_COOKIE_SECRET": env.get("STREAMLIT_SERVER_COOKIE_SECRET")
           or secrets.token_hex(32)}  # one secret: each worker accepts the cookies the others signed

    def start(p: int) -> subprocess.Popen:
        return subprocess.Popen(worker_command(app, p, streamlit_args, app_args), env=env,
                                stdout=subprocess.DEVNULL)  # their banners name loopback ports nobody opens

    try:  # the address first: a port in use is said before any app process starts
        server = application(Pool(ports)).listen(port, address=address, xheaders=False)
    except OSError as exc:
        raise ProxyError(f"cannot listen on {address}:{port}: {exc.strerror or exc}") from None
    procs = [start(p) for p in ports]
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(f"dealmodel: {workers} app processes behind http://{address}:{port}", flush=True)
    try:
        while not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), timeout=2.0)
            except TimeoutError:
                for k, proc in enumerate(procs):
                    if proc.poll() is not None:
                        print(f"dealmodel: app process {k} exited ({proc.returncode}); starting it again",
                              file=sys.stderr, flush=True)
                        procs[k] = start(ports[k])
    finally:
        server.stop()
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()


class ProxyError(Exception):
    """The proxy cannot start (its address is in use or not this machine's)."""


def run(workers: int, address: str, port: int, app: Path, streamlit_args: Sequence[str],
        app_args: Sequence[str], env: dict[str, str] | None = None) -> int:
    """Serve until SIGTERM or SIGINT; 0 then, 2 (with the reason on stderr) if it cannot start."""
    try:
        asyncio.run(serve(workers, address, port, app, streamlit_args, app_args,
                          dict(os.environ if env is None else env)))
    except ProxyError as exc:
        print(f"dealmodel team: {exc}", file=sys.stderr)
        return 2
    return 0
