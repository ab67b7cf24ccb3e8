"""Local fake servers of the chat providers' APIs: WeChat Official Account, WeCom customer contact
(微信客服) and application messages to employees, and DingTalk (robot session webhooks, v1.0 token
and one-to-one messages, and the work notifications of an internal app).

Self-contained (aiohttp only, no project imports) so that adapter tests and end-to-end tests can
both use them. Each fake listens on 127.0.0.1 on an ephemeral port, answers like the published
API (paths, parameters, JSON shapes, error codes), records every request it received
(``requests``) and every message it accepted (``messages``), and can be scripted:

- ``script(path, *answers)``: the next requests to ``path`` get these canned answers, in order,
  before the normal behaviour resumes ("HTTP 500 three times then 200", a rate limit errcode);
- ``expire_tokens()``: every token issued so far is answered as expired (42001 / WeCom 42001 /
  DingTalk 401) while tokens fetched afterwards are accepted;
- per-recipient states: WeChat openids outside the 48-hour window (45015), WeCom conversations
  in a state that refuses API messages (95018...), WeCom employees outside the application's
  visible range (81013), DingTalk staff ids unknown or flow-controlled (33012 for a work
  notification), session webhooks and their expiry.

Usage::

    async with FakeWeChat() as wechat:
        adapter = WeChatAdapter(api_base=wechat.base_url, accounts={wechat.app_id: wechat.secret})
"""

from __future__ import annotations

import asyncio
import itertools
import json
import secrets
import threading
import time
from collections import defaultdict, deque
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web


@dataclass(frozen=True)
class Recorded:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    json: Any


@dataclass(frozen=True)
class Scripted:
    """A canned answer: a JSON body, or raw text (an HTML error page, say)."""

    status: int = 200
    json: Any = None
    text: str | None = None


def errcode(code: int, message: str = "error") -> Scripted:
    """A WeChat/WeCom/DingTalk-oapi style error answer (HTTP 200, ``{"errcode", "errmsg"}``)."""
    return Scripted(200, {"errcode": code, "errmsg": message})


def http_error(status: int = 500, text: str = "<html><body>502 Bad Gateway</body></html>") -> Scripted:
    return Scripted(status, text=text)


def _json_response(payload: Any, status: int = 200) -> web.Response:
    # the providers answer UTF-8 JSON with Chinese unescaped
    return web.Response(
        status=status,
        body=json.dumps(payload, ensure_ascii=False).encode("utf-8"),
        content_type="application/json",
        charset="utf-8",
    )


class FakeServer:
    """The shared machinery: an aiohttp app on 127.0.0.1:<ephemeral>, recording and scripting."""

    def __init__(self) -> None:
        self.app = web.Application(middlewares=[self._middleware], client_max_size=4 * 1024 * 1024)
        self.requests: list[Recorded] = []
        self.messages: list[dict[str, Any]] = []
        self._scripts: dict[str, deque[Scripted]] = defaultdict(deque)
        self._runner: web.AppRunner | None = None
        self.base_url = ""
        self._counter = itertools.count(1)

    # ---- lifecycle ----
    async def start(self) -> str:
        self._runner = web.AppRunner(self.app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self.base_url = f"http://{host}:{port}"
        return self.base_url

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def start_in_thread(self) -> str:
        """Serve from a daemon thread with its own event loop, for tests whose loop is busy or
        that are not async (end-to-end tests driving other processes); ``stop_thread`` ends it.
        Recordings and scripts stay plain lists and deques, safe to read and extend from the
        test's thread."""
        started = threading.Event()
        self._thread_loop = asyncio.new_event_loop()

        def serve() -> None:
            asyncio.set_event_loop(self._thread_loop)
            self._thread_loop.run_until_complete(self.start())
            started.set()
            self._thread_loop.run_forever()
            self._thread_loop.run_until_complete(self.close())
            self._thread_loop.close()

        self._thread = threading.Thread(target=serve, name=type(self).__name__, daemon=True)
        self._thread.start()
        if not started.wait(10):
            raise RuntimeError(f"{type(self).__name__} did not start")
        return self.base_url

    def stop_thread(self) -> None:
        self._thread_loop.call_soon_threadsafe(self._thread_loop.stop)
        self._thread.join(10)

    async def __aenter__(self):
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    # ---- scripting and inspection ----
    def script(self, path: str, *answers: Scripted) -> None:
        self._scripts[path].extend(answers)

    def requests_to(self, path: str) -> list[Recorded]:
        return [r for r in self.requests if r.path == path]

    @web.middleware
    async def _middleware(self, request: web.Request, handler):
        body = await request.read()
        try:
            parsed = json.loads(body.decode("utf-8")) if body else None
        except (UnicodeDecodeError, ValueError):
            parsed = None
        self.requests.append(
            Recorded(
                method=request.method,
                path=request.path,
                query=dict(request.query),
                headers={k.lower(): v for k, v in request.headers.items()},
                body=body,
                json=parsed,
            )
        )
        queue = self._scripts.get(request.path)
        if queue:
            answer = queue.popleft()
            if answer.text is not None:
                return web.Response(status=answer.status, text=answer.text, content_type="text/html")
            return _json_response(answer.json, answer.status)
        return await handler(request)

    def _new_token(self, prefix: str) -> str:
        return f"{prefix}-{next(self._counter)}-{secrets.token_hex(4)}"


class _TokenIssuer:
    """Tokens a fake issued: valid, expired (``expire_tokens``), or unknown."""

    def __init__(self) -> None:
        self.valid: dict[str, str] = {}
        self.expired: set[str] = set()
        self.issued = 0

    def issue(self, token: str, owner: str) -> str:
        self.valid[token] = owner
        self.issued += 1
        return token

    def expire_all(self) -> None:
        self.expired.update(self.valid)
        self.valid.clear()

    def state(self, token: str | None) -> str:
        if token and token in self.valid:
            return "valid"
        if token and token in self.expired:
            return "expired"
        return "invalid"


class FakeWeChat(FakeServer):
    """``api.weixin.qq.com``: ``GET /cgi-bin/token``, ``POST /cgi-bin/stable_token`` and
    ``POST /cgi-bin/message/custom/send``.

    ``stable_token`` answers every caller with the account's current token until it expires (or
    is expired by ``expire_tokens``); ``force_refresh: true`` issues a new one and invalidates the
    previous one."""

    TEXT_MAX_BYTES = 2048

    def __init__(self, *, accounts: dict[str, str] | None = None, token_ttl_s: int = 7200) -> None:
        super().__init__()
        self.accounts = accounts or {"wx-test-app": "wx-test-secret"}
        self.app_id, self.secret = next(iter(self.accounts.items()))
        self.token_ttl_s = token_ttl_s
        self.tokens = _TokenIssuer()
        #: openids whose 48-hour customer-service window is closed (45015)
        self.outside_window: set[str] = set()
        #: openids that unfollowed the account (43004)
        self.unfollowed: set[str] = set()
        self.app.router.add_get("/cgi-bin/token", self._token)
        self.app.router.add_post("/cgi-bin/stable_token", self._stable_token)
        self._stable: dict[str, str] = {}
        self.app.router.add_post("/cgi-bin/message/custom/send", self._custom_send)

    @property
    def token_requests(self) -> int:
        return len(self.requests_to("/cgi-bin/token")) + len(self.requests_to("/cgi-bin/stable_token"))

    def expire_tokens(self) -> None:
        self.tokens.expire_all()

    async def _stable_token(self, request: web.Request) -> web.Response:
        try:
            body = json.loads((await request.read()).decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            return _json_response({"errcode": 47001, "errmsg": "data format error"})
        if body.get("grant_type") != "client_credential":
            return _json_response({"errcode": 40002, "errmsg": "invalid grant_type"})
        app_id = body.get("appid", "")
        if app_id not in self.accounts:
            return _json_response({"errcode": 40013, "errmsg": "invalid appid"})
        if body.get("secret") != self.accounts[app_id]:
            return _json_response({"errcode": 40125, "errmsg": "invalid appsecret"})
        current = self._stable.get(app_id)
        if body.get("force_refresh") is True and current is not None:
            self.tokens.valid.pop(current, None)
            current = None
        if current is None or self.tokens.state(current) != "valid":
            current = self.tokens.issue(self._new_token(f"wx-stable-{app_id}"), app_id)
            self._stable[app_id] = current
        return _json_response({"access_token": current, "expires_in": self.token_ttl_s})

    async def _token(self, request: web.Request) -> web.Response:
        query = request.query
        if query.get("grant_type") != "client_credential":
            return _json_response({"errcode": 40002, "errmsg": "invalid grant_type"})
        app_id = query.get("appid", "")
        if app_id not in self.accounts:
            return _json_response({"errcode": 40013, "errmsg": "invalid appid"})
        if query.get("secret") != self.accounts[app_id]:
            return _json_response({"errcode": 40125, "errmsg": "invalid appsecret"})
        token = self.tokens.issue(self._new_token(f"wx-{app_id}"), app_id)
        return _json_response({"access_token": token, "expires_in": self.token_ttl_s})

    async def _custom_send(self, request: web.Request) -> web.Response:
        token = request.query.get("access_token")
        if not token:
            return _json_response({"errcode": 41001, "errmsg": "access_token missing"})
        state = self.tokens.state(token)
        if state == "expired":
            return _json_response({"errcode": 42001, "errmsg": "access_token expired"})
        if state == "invalid":
            return _json_response(
                {"errcode": 40001, "errmsg": "invalid credential, access_token is invalid or not latest"}
            )
        try:
            body = json.loads((await request.read()).decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            return _json_response({"errcode": 47001, "errmsg": "data format error"})
        openid = body.get("touser")
        if not isinstance(openid, str) or not openid:
            return _json_response({"errcode": 40003, "errmsg": "invalid openid"})
        if body.get("msgtype") != "text":
            return _json_response({"errcode": 40008, "errmsg": "invalid message type"})
        content = (body.get("text") or {}).get("content")
        if not isinstance(content, str) or not content:
            return _json_response({"errcode": 44004, "errmsg": "empty content"})
        if len(content.encode("utf-8")) > self.TEXT_MAX_BYTES:
            return _json_response({"errcode": 45002, "errmsg": "content size out of limit"})
        if openid in self.unfollowed:
            return _json_response({"errcode": 43004, "errmsg": "require subscribe"})
        if openid in self.outside_window:
            return _json_response(
                {"errcode": 45015, "errmsg": "response out of time limit or subscription is canceled"}
            )
        self.messages.append({"app_id": self.tokens.valid[token], "openid": openid, "content": content})
        return _json_response({"errcode": 0, "errmsg": "ok"})


class FakeWeCom(FakeServer):
    """``qyapi.weixin.qq.com``: ``GET /cgi-bin/gettoken``, ``POST /cgi-bin/kf/send_msg`` (微信客服,
    to customers) and ``POST /cgi-bin/message/send`` (application messages, to employees).

    As in WeCom, a token belongs to the application whose secret fetched it: the 微信客服 secret's
    token is refused by ``message/send`` for the self-built application (301002), and the
    application's by ``kf/send_msg``. ``message/send`` splits ``touser`` on ``|`` like WeCom
    (``@all`` is everyone in the visible range), answers 81013 when no recipient is in the
    application's visible range (``users``; ``None``: everyone) and ``errcode`` 0 with
    ``invaliduser`` when only some are, and honours ``enable_duplicate_check``: the same content to
    the same recipients within ``duplicate_check_interval`` is answered ``ok`` but not delivered
    again (``duplicates_dropped``). Delivered application messages are in ``app_messages``."""

    TEXT_MAX_BYTES = 2048
    MARKDOWN_MAX_BYTES = 2048

    def __init__(
        self,
        *,
        corp_id: str = "ww-test-corp",
        corp_secret: str = "ww-test-secret",
        open_kfids: tuple[str, ...] = ("wk-test-kf",),
        agent_id: int = 1000002,
        agent_secret: str = "ww-test-agent-secret",
        users: tuple[str, ...] | None = None,
        token_ttl_s: int = 7200,
    ) -> None:
        super().__init__()
        self.corp_id, self.corp_secret = corp_id, corp_secret
        self.open_kfids = set(open_kfids)
        self.open_kfid = open_kfids[0]
        self.agent_id, self.agent_secret = agent_id, agent_secret
        #: the employees in the application's visible range; ``None``: everyone
        self.users = set(users) if users is not None else None
        #: answer 60020 (this server's IP is not trusted by the application) to every message/send
        self.ip_untrusted = False
        self.token_ttl_s = token_ttl_s
        self.tokens = _TokenIssuer()
        #: external_userid -> the session-state errcode its conversation answers (95018, 95013...)
        self.session_errors: dict[str, int] = {}
        #: application messages delivered: {"userid", "agentid", "msgtype", "content", "msgid"}
        self.app_messages: list[dict[str, Any]] = []
        #: application messages answered ``ok`` but dropped by WeCom's duplicate check
        self.duplicates_dropped: list[dict[str, Any]] = []
        self._recent: dict[tuple[str, str, str], float] = {}
        self.app.router.add_get("/cgi-bin/gettoken", self._gettoken)
        self.app.router.add_post("/cgi-bin/kf/send_msg", self._send_msg)
        self.app.router.add_post("/cgi-bin/message/send", self._message_send)

    @property
    def token_requests(self) -> int:
        return len(self.requests_to("/cgi-bin/gettoken"))

    def token_requests_for(self, secret: str) -> int:
        return sum(1 for r in self.requests_to("/cgi-bin/gettoken") if r.query.get("corpsecret") == secret)

    def expire_tokens(self) -> None:
        self.tokens.expire_all()

    async def _gettoken(self, request: web.Request) -> web.Response:
        if request.query.get("corpid") != self.corp_id:
            return _json_response({"errcode": 40013, "errmsg": "invalid corpid"})
        secret = request.query.get("corpsecret")
        if secret == self.corp_secret:
            owner = "kf"
        elif secret == self.agent_secret:
            owner = "agent"
        else:
            return _json_response({"errcode": 40001, "errmsg": "invalid credential"})
        token = self.tokens.issue(self._new_token(f"ww-{owner}"), owner)
        return _json_response(
            {"errcode": 0, "errmsg": "ok", "access_token": token, "expires_in": self.token_ttl_s}
        )

    def _token_error(self, token: str | None) -> web.Response | None:
        if not token:
            return _json_response({"errcode": 41001, "errmsg": "access_token missing"})
        state = self.tokens.state(token)
        if state == "expired":
            return _json_response({"errcode": 42001, "errmsg": "access_token expired"})
        if state == "invalid":
            return _json_response({"errcode": 40014, "errmsg": "invalid access_token"})
        return None

    async def _send_msg(self, request: web.Request) -> web.Response:
        token = request.query.get("access_token")
        refused = self._token_error(token)
        if refused is not None:
            return refused
        if self.tokens.valid[token] != "kf":
            return _json_response({"errcode": 48002, "errmsg": "api forbidden"})
        try:
            body = json.loads((await request.read()).decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            return _json_response({"errcode": 47001, "errmsg": "data format error"})
        if body.get("open_kfid") not in self.open_kfids:
            return _json_response({"errcode": 95000, "errmsg": "invalid open_kfid"})
        touser = body.get("touser")
        if not isinstance(touser, str) or not touser:
            return _json_response({"errcode": 40096, "errmsg": "invalid external userid"})
        if body.get("msgtype") != "text":
            return _json_response({"errcode": 40008, "errmsg": "invalid message type"})
        content = (body.get("text") or {}).get("content")
        if not isinstance(content, str) or not content:
            return _json_response({"errcode": 44004, "errmsg": "empty content"})
        if len(content.encode("utf-8")) > self.TEXT_MAX_BYTES:
            return _json_response({"errcode": 45002, "errmsg": "content size out of limit"})
        if touser in self.session_errors:
            code = self.session_errors[touser]
            return _json_response({"errcode": code, "errmsg": "send msg session status invalid"})
        msgid = body.get("msgid") or secrets.token_hex(16)
        self.messages.append(
            {"external_userid": touser, "open_kfid": body["open_kfid"], "msgid": msgid, "content": content}
        )
        return _json_response({"errcode": 0, "errmsg": "ok", "msgid": msgid})

    async def _message_send(self, request: web.Request) -> web.Response:
        token = request.query.get("access_token")
        refused = self._token_error(token)
        if refused is not None:
            return refused
        if self.ip_untrusted:
            return _json_response({"errcode": 60020, "errmsg": "not allow to access from your ip"})
        try:
            body = json.loads((await request.read()).decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            return _json_response({"errcode": 47001, "errmsg": "data format error"})
        if not isinstance(body, dict):
            return _json_response({"errcode": 47001, "errmsg": "data format error"})
        if "agentid" not in body:
            return _json_response({"errcode": 41011, "errmsg": "missing agentid"})
        if self.tokens.valid[token] != "agent" or body.get("agentid") != self.agent_id:
            return _json_response({"errcode": 301002, "errmsg": "not allow operate another agent with this accesstoken"})
        msgtype = body.get("msgtype")
        if msgtype not in ("text", "markdown"):
            return _json_response({"errcode": 40008, "errmsg": "invalid message type"})
        content = (body.get(msgtype) or {}).get("content")
        if not isinstance(content, str) or not content:
            return _json_response({"errcode": 44004, "errmsg": "empty content"})
        limit = self.MARKDOWN_MAX_BYTES if msgtype == "markdown" else self.TEXT_MAX_BYTES
        if len(content.encode("utf-8")) > limit:
            return _json_response({"errcode": 45002, "errmsg": "content size out of limit"})
        touser = body.get("touser")
        if not isinstance(touser, str) or not touser:
            return _json_response({"errcode": 40003, "errmsg": "invalid userid"})
        wanted = list(self.users or ()) if touser == "@all" else touser.split("|")
        invalid = [u for u in wanted if self.users is not None and u not in self.users]
        reached = [u for u in wanted if u not in invalid]
        if not reached:
            return _json_response({"errcode": 81013, "errmsg": "user & party & tag all invalid",
                                   "invaliduser": "|".join(invalid)})
        msgid = secrets.token_hex(16)
        interval = body.get("duplicate_check_interval", 1800)
        key = (touser, msgtype, content)
        now = time.monotonic()
        if body.get("enable_duplicate_check") == 1 and now - self._recent.get(key, -1e9) < interval:
            self.duplicates_dropped.append({"touser": touser, "content": content})
        else:
            self._recent[key] = now
            for user in reached:
                self.app_messages.append({"userid": user, "agentid": body["agentid"], "msgtype": msgtype,
                                          "content": content, "msgid": msgid})
        answer: dict[str, Any] = {"errcode": 0, "errmsg": "ok", "msgid": msgid}
        if invalid:
            answer["invaliduser"] = "|".join(invalid)
        return _json_response(answer)


class FakeDingTalk(FakeServer):
    """``api.dingtalk.com`` and ``oapi.dingtalk.com`` in one server: ``POST
    /v1.0/oauth2/accessToken``, ``POST /v1.0/robot/oToMessages/batchSend``, the session
    webhooks ``POST /robot/sendBySession?session=...``, and the internal app's work notifications:
    ``GET /gettoken?appkey&appsecret`` and ``POST
    /topapi/message/corpconversation/asyncsend_v2?access_token=...``.

    The work-notification endpoint answers like DingTalk's oapi: ``{"errcode": 0, "task_id",
    "request_id"}``; an invalid token ``errcode`` 88 with ``sub_code`` 40014, an expired one 42001;
    no known user in ``userid_list`` (comma-separated) 33012; another ``agent_id`` 40035. As
    DingTalk does, it drops (answering ``ok``) a message whose content the same user already got
    from the app that day (``duplicates_dropped``). Delivered ones are in ``work_notices``."""

    def __init__(
        self,
        *,
        app_key: str = "ding-test-key",
        app_secret: str = "ding-test-secret",
        robot_code: str = "ding-test-robot",
        agent_id: int = 3000001,
        staff_ids: tuple[str, ...] | None = None,
        token_ttl_s: int = 7200,
    ) -> None:
        super().__init__()
        self.app_key, self.app_secret, self.robot_code = app_key, app_secret, robot_code
        self.agent_id = agent_id
        #: tokens of the oapi ``/gettoken`` (work notifications), apart from the v1.0 ones
        self.oapi_tokens = _TokenIssuer()
        #: work notifications delivered: {"userid", "agent_id", "msgtype", "title", "text", "task_id"}
        self.work_notices: list[dict[str, Any]] = []
        self.duplicates_dropped: list[dict[str, Any]] = []
        self._task_ids = itertools.count(256_271_667_526)
        self.app.router.add_get("/gettoken", self._oapi_gettoken)
        self.app.router.add_post("/topapi/message/corpconversation/asyncsend_v2", self._asyncsend_v2)
        #: the staff ids the robot can reach; ``None``: all
        self.staff_ids = set(staff_ids) if staff_ids is not None else None
        #: staff ids answered as flow-controlled
        self.flow_controlled: set[str] = set()
        self.token_ttl_s = token_ttl_s
        self.tokens = _TokenIssuer()
        #: session -> expiry (epoch ms) as this fake sees it
        self.sessions: dict[str, int] = {}
        self.app.router.add_post("/v1.0/oauth2/accessToken", self._access_token)
        self.app.router.add_post("/v1.0/robot/oToMessages/batchSend", self._batch_send)
        self.app.router.add_post("/robot/sendBySession", self._send_by_session)

    @property
    def token_requests(self) -> int:
        return len(self.requests_to("/v1.0/oauth2/accessToken"))

    @property
    def oapi_token_requests(self) -> int:
        return len(self.requests_to("/gettoken"))

    def expire_tokens(self) -> None:
        self.tokens.expire_all()
        self.oapi_tokens.expire_all()

    def new_session(self, *, valid_for_ms: int = 3_600_000) -> tuple[str, int]:
        """A session webhook URL and its expiry (epoch ms), as a robot callback would carry them."""
        session = secrets.token_hex(12)
        expires_at = int(time.time() * 1000) + valid_for_ms
        self.sessions[session] = expires_at
        return f"{self.base_url}/robot/sendBySession?session={session}", expires_at

    async def _access_token(self, request: web.Request) -> web.Response:
        body = await self._json(request)
        if not isinstance(body, dict) or body.get("appKey") != self.app_key or body.get("appSecret") != self.app_secret:
            return _json_response(
                {"code": "invalidClientIdOrSecret", "message": "无效的clientId或者clientSecret", "requestid": secrets.token_hex(8)},
                400,
            )
        token = self.tokens.issue(self._new_token("ding"), self.app_key)
        return _json_response({"accessToken": token, "expireIn": self.token_ttl_s})

    async def _batch_send(self, request: web.Request) -> web.Response:
        if self.tokens.state(request.headers.get("x-acs-dingtalk-access-token")) != "valid":
            return _json_response(
                {"code": "InvalidAuthentication", "message": "不合法的access_token", "requestid": secrets.token_hex(8)},
                401,
            )
        body = await self._json(request)
        if not isinstance(body, dict):
            return _json_response({"code": "invalidParameter.param.invalid", "message": "参数错误"}, 400)
        if body.get("robotCode") != self.robot_code:
            return _json_response({"code": "invalidParameter.robotCode.notExsit", "message": "机器人不存在"}, 400)
        user_ids = body.get("userIds")
        if not isinstance(user_ids, list) or not user_ids:
            return _json_response({"code": "invalidParameter.userIds.empty", "message": "userIds为空"}, 400)
        if body.get("msgKey") != "sampleText":
            return _json_response({"code": "invalidParameter.msgKey.invalid", "message": "msgKey无效"}, 400)
        try:
            content = json.loads(body.get("msgParam") or "")["content"]
        except (ValueError, KeyError, TypeError):
            return _json_response({"code": "invalidParameter.msgParam.invalid", "message": "msgParam无效"}, 400)
        invalid = [u for u in user_ids if self.staff_ids is not None and u not in self.staff_ids]
        held = [u for u in user_ids if u in self.flow_controlled and u not in invalid]
        for user_id in user_ids:
            if user_id not in invalid and user_id not in held:
                self.messages.append({"via": "api", "staff_id": user_id, "content": content})
        return _json_response(
            {"processQueryKey": secrets.token_hex(10), "invalidStaffIdList": invalid, "flowControlledStaffIdList": held}
        )

    async def _send_by_session(self, request: web.Request) -> web.Response:
        session = request.query.get("session", "")
        expires_at = self.sessions.get(session)
        if expires_at is None or expires_at <= int(time.time() * 1000):
            # what the adapter does with it does not depend on the value: any refusal other than
            # a rate limit makes it fall back to the one-to-one API
            return _json_response({"errcode": 300001, "errmsg": "session is not exist or expired"})
        body = await self._json(request)
        if not isinstance(body, dict) or body.get("msgtype") != "text":
            return _json_response({"errcode": 40035, "errmsg": "缺少参数 json"})
        content = (body.get("text") or {}).get("content")
        if not isinstance(content, str) or not content:
            return _json_response({"errcode": 40035, "errmsg": "缺少参数 content"})
        self.messages.append({"via": "webhook", "session": session, "content": content})
        return _json_response({"errcode": 0, "errmsg": "ok"})

    async def _oapi_gettoken(self, request: web.Request) -> web.Response:
        if request.query.get("appkey") != self.app_key or request.query.get("appsecret") != self.app_secret:
            return _json_response({"errcode": 40089, "errmsg": "不合法的appKey或appSecret"})
        token = self.oapi_tokens.issue(self._new_token("ding-oapi"), self.app_key)
        return _json_response({"errcode": 0, "errmsg": "ok", "access_token": token, "expires_in": self.token_ttl_s})

    async def _asyncsend_v2(self, request: web.Request) -> web.Response:
        state = self.oapi_tokens.state(request.query.get("access_token"))
        if state == "expired":
            return _json_response({"errcode": 42001, "errmsg": "access_token expired"})
        if state == "invalid":
            return _json_response({"errcode": 88, "sub_code": "40014", "sub_msg": "不合法的access_token",
                                   "errmsg": "ding talk error[subcode=40014,submsg=不合法的access_token]",
                                   "request_id": secrets.token_hex(6)})
        body = await self._json(request)
        if not isinstance(body, dict) or body.get("agent_id") != self.agent_id:
            return _json_response({"errcode": 40035, "errmsg": "不合法的参数 agent_id"})
        msg = body.get("msg")
        if not isinstance(msg, dict) or msg.get("msgtype") not in ("text", "markdown"):
            return _json_response({"errcode": 40035, "errmsg": "不合法的参数 msg"})
        if msg["msgtype"] == "markdown":
            part = msg.get("markdown") or {}
            title, text = part.get("title"), part.get("text")
        else:
            title, text = None, (msg.get("text") or {}).get("content")
        if not isinstance(text, str) or not text or (msg["msgtype"] == "markdown" and not title):
            return _json_response({"errcode": 40035, "errmsg": "缺少参数 msg"})
        user_list = body.get("userid_list")
        wanted = [u for u in user_list.split(",") if u] if isinstance(user_list, str) else []
        reached = [u for u in wanted if self.staff_ids is None or u in self.staff_ids]
        if not reached:
            return _json_response({"errcode": 33012, "errmsg": "无效的USERID"})
        task_id = next(self._task_ids)
        for user in reached:
            notice = {"userid": user, "agent_id": body["agent_id"], "msgtype": msg["msgtype"], "title": title,
                      "text": text, "task_id": task_id}
            same_day = any(n["userid"] == user and n["text"] == text for n in self.work_notices)
            (self.duplicates_dropped if same_day else self.work_notices).append(notice)
        return _json_response({"errcode": 0, "errmsg": "ok", "task_id": task_id, "request_id": secrets.token_hex(6)})

    @staticmethod
    async def _json(request: web.Request) -> Any:
        try:
            return json.loads((await request.read()).decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            return None
