"""Team mode's proxy (dealmodel/proxy.py) in front of two small stand-in workers: which worker a browser
gets, what passes through (headers, cookies, bodies, websocket messages both ways), and what a
browser is told when a worker does not answer. The real app behind it: tests/test_serve.py and
tests/test_team.py."""

from __future__ import annotations

import asyncio

from tornado import httpclient, web, websocket

from dealmodel.proxy import COOKIE, Pool, application
from tests.serving import free_port as _port


def test_a_new_browser_gets_the_least_used_worker_and_keeps_it_by_its_cookie():
    pool = Pool([1001, 1002, 1003])
    assert [pool.pick(None) for _ in range(4)] == [(0, True), (1, True), (2, True), (0, True)]
    assert pool.pick("2") == (2, False) and pool.pick("0") == (0, False)  # a known worker: kept, no new cookie
    assert pool.browsers == [2, 1, 1]
    # a cookie naming no worker (edited, or from a server with more workers): a worker like a new browser's
    assert pool.pick("3") == (1, True) and pool.pick("x") == (2, True) and pool.pick("-1") == (0, True)
    assert pool.browsers == [3, 2, 2]


def _worker(name: str):
    """A stand-in app process: names itself, echoes what it was sent, holds a download only on worker a."""

    class Page(web.RequestHandler):
        def get(self):
            self.set_header("X-Worker", name)
            self.set_cookie("app_cookie", name)
            self.write(f"{name} {self.request.headers.get('Host')} {self.get_cookie('app_cookie', '-')}")

        def post(self):
            self.set_status(201)
            self.write(name.encode() + b" got " + self.request.body)

    class Media(web.RequestHandler):
        def get(self):
            if name != "a" or not self.request.path.endswith("/abc.xlsx"):
                raise web.HTTPError(404)
            self.write(b"PK workbook")

    class Echo(websocket.WebSocketHandler):
        def select_subprotocol(self, subprotocols):
            self.offered = subprotocols
            return subprotocols[0]

        def on_message(self, message):
            self.write_message(f"{name}:{','.join(self.offered)}:{message}")

    return web.Application([("/_stcore/stream", Echo), ("/media/.*", Media), ("/.*", Page)])


async def _scenario() -> dict:
    ports = [_port(), _port()]
    workers = [_worker("a").listen(ports[0], address="127.0.0.1"), _worker("b").listen(ports[1], address="127.0.0.1")]
    front = _port()
    proxy = application(Pool(ports, start_wait=0.5)).listen(front, address="127.0.0.1")
    client = httpclient.AsyncHTTPClient()
    url = f"http://127.0.0.1:{front}"
    seen: dict = {}
    try:
        first = await client.fetch(url + "/", raise_error=False)
        second = await client.fetch(url + "/", raise_error=False)
        seen["first"] = (first.code, first.body.decode(), first.headers.get_list("Set-Cookie"),
                         first.headers.get("X-Worker"))
        seen["second"] = (second.code, second.body.decode(), second.headers.get("X-Worker"))
        back = await client.fetch(url + "/", headers={"Cookie": f"{COOKIE}=1; app_cookie=b"})
        seen["back"] = (back.body.decode(), back.headers.get_list("Set-Cookie"))
        posted = await client.fetch(url + "/upload", method="POST", body=b"deal bytes",
                                    headers={"Cookie": f"{COOKIE}=1"}, raise_error=False)
        seen["post"] = (posted.code, posted.body)
        media = await client.fetch(url + "/media/abc.xlsx", headers={"Cookie": f"{COOKIE}=1"}, raise_error=False)
        seen["media"] = (media.code, media.body)
        missing = await client.fetch(url + "/media/none.xlsx", headers={"Cookie": f"{COOKIE}=1"}, raise_error=False)
        seen["missing"] = missing.code  # on no worker
        ws = await websocket.websocket_connect(httpclient.HTTPRequest(
            f"ws://127.0.0.1:{front}/_stcore/stream", headers={"Cookie": f"{COOKIE}=1"}),
            subprotocols=["streamlit", "token123"])
        await ws.write_message("hello")
        seen["ws"] = (ws.selected_subprotocol, await ws.read_message())
        ws.close()
        workers[0].stop()  # worker a has gone: its browsers are told so, after a short wait for a restart
        await asyncio.sleep(0.1)
        down = await client.fetch(url + "/", headers={"Cookie": f"{COOKIE}=0"}, raise_error=False)
        seen["down"] = (down.code, down.body.decode())
    finally:
        proxy.stop()
        for w in workers:
            w.stop()
    return seen


def test_requests_and_websocket_messages_pass_through_to_the_browsers_worker_and_back():
    seen = asyncio.run(_scenario())
    code, body, cookies, worker = seen["first"]
    host = body.split()[1]
    assert code == 200 and worker == "a" and body == f"a {host} -"  # the Host header as the browser sent it
    assert any(c.startswith(f"{COOKIE}=0;") and "HttpOnly" in c for c in cookies)
    assert any(c.startswith("app_cookie=a") for c in cookies)  # the worker's own cookies pass too
    assert seen["second"][2] == "b"  # a second new browser: the other worker
    body, cookies = seen["back"]
    assert body == f"b {host} b" and not any(c.startswith(COOKIE) for c in cookies)  # known: no new cookie
    assert seen["post"] == (201, b"b got deal bytes")
    # a download link asked of the wrong worker is looked for on the others
    assert seen["media"] == (200, b"PK workbook") and seen["missing"] == 404
    # the websocket reaches the cookie's worker with every subprotocol offered; the first is selected
    assert seen["ws"] == ("streamlit", "b:streamlit,token123:hello")
    code, body = seen["down"]
    assert code == 502 and "starting or restarting" in body
