"""A small OpenAI-compatible completions server over local Hugging Face models (tests, local stand-in).

Standard library only (`http.server` + `json`). `POST /v1/completions` decodes greedily with a KV cache
and answers as vLLM does: a prompt of token ids or text, `max_tokens`, `logprobs` (top-k), `echo`,
`stop` strings, `stop_token_ids`, `stream` (server-sent events; closing the connection aborts the
generation), `return_tokens_as_token_ids` ("token_id:N" tokens). `GET /v1/models` lists the models with
their `max_model_len`. `stats` counts requests, prompt tokens and decoding steps per model, so tests can
measure how much a client makes the server compute. Start one from the command line with
``python -m nudging.testing_server --model NAME=PATH [--model ...] --port 8000``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import torch

from nudging._lm import token_texts
from reprokit.lm import LanguageModel

__all__ = ["CompletionServer", "main"]

logger = logging.getLogger(__name__)


class _BadRequest(Exception):
    def __init__(self, message: str, status: HTTPStatus = HTTPStatus.BAD_REQUEST) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class _Model:
    lm: LanguageModel
    max_model_len: int
    lock: threading.Lock = field(default_factory=threading.Lock)
    stats: dict[str, int] = field(
        default_factory=lambda: {"requests": 0, "prompt_tokens": 0, "generated_tokens": 0, "aborted": 0}
    )


@dataclass(frozen=True)
class _Request:
    model: str
    prompt: list[int]
    max_tokens: int
    top_k: int | None
    echo: bool
    stop: tuple[str, ...]
    stop_ids: frozenset[int]
    stream: bool
    as_ids: bool
    ignore_eos: bool


@dataclass
class _Token:
    """One token of the answer: id, text, its logprob and the top-k (id, logprob) at its position."""

    id: int
    text: str
    logprob: float | None
    top: list[tuple[int, float]] | None


class CompletionServer:
    """An OpenAI-compatible `/v1/completions` server over `models` (served name -> `LanguageModel`).

    Greedy decoding only (temperature 0), one prompt per request. Use as a context manager or call
    `start()`/`stop()`; `url` is the base URL clients take (``http://host:port/v1``). `port=0` picks a
    free port. `eos_in_logprobs=False` leaves a final EOS token out of the returned tokens (servers
    differ); `token_ids_on_request=False` ignores the request field `return_tokens_as_token_ids`, as
    vLLM versions that only know the server flag do.
    """

    def __init__(
        self,
        models: Mapping[str, LanguageModel],
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        max_model_len: int | None = None,
        return_tokens_as_token_ids: bool = False,
        token_ids_on_request: bool = True,
        eos_in_logprobs: bool = True,
    ) -> None:
        if not models:
            raise ValueError("CompletionServer needs at least one model to serve")
        self.models = {
            name: _Model(lm, max_model_len or _context_length(lm)) for name, lm in dict(models).items()
        }
        self.return_tokens_as_token_ids = return_tokens_as_token_ids
        self.token_ids_on_request = token_ids_on_request
        self.eos_in_logprobs = eos_in_logprobs
        self._ids = itertools.count()
        self._active = 0
        self._idle = threading.Condition()
        self._httpd = ThreadingHTTPServer((host, port), _handler_class(self))
        self._httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """The base URL of the API, e.g. ``http://127.0.0.1:8123/v1``."""
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}/v1"

    @property
    def stats(self) -> dict[str, dict[str, int]]:
        """Per served model: requests, prompt tokens, generated (decoded) tokens, aborted streams."""
        return {name: dict(m.stats) for name, m in self.models.items()}

    def reset_stats(self) -> None:
        """Set every counter back to zero."""
        for m in self.models.values():
            for key in m.stats:
                m.stats[key] = 0

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Wait until no request is being answered (an aborted stream ends a moment after the client
        closes it); False if requests are still running after `timeout` seconds."""
        with self._idle:
            return self._idle.wait_for(lambda: self._active == 0, timeout)

    def _enter(self) -> None:
        with self._idle:
            self._active += 1

    def _leave(self) -> None:
        with self._idle:
            self._active -= 1
            self._idle.notify_all()

    def start(self) -> CompletionServer:
        """Serve in a background thread; returns self."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._httpd.serve_forever, name="completions", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket."""
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join()
            self._thread = None
        self._httpd.server_close()

    def __enter__(self) -> CompletionServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def serve_forever(self) -> None:
        """Serve in the calling thread until interrupted (the command line's mode)."""
        try:
            self._httpd.serve_forever()
        finally:
            self._httpd.server_close()

    # ------------------------------------------------------------------------------------ requests
    def model_cards(self) -> dict[str, Any]:
        """The `GET /v1/models` answer."""
        data = [
            {"id": name, "object": "model", "owned_by": "nudging", "max_model_len": m.max_model_len}
            for name, m in self.models.items()
        ]
        return {"object": "list", "data": data}

    def parse(self, body: object) -> _Request:
        """Check a completions request body; a `_BadRequest` names what is wrong."""
        if not isinstance(body, dict):
            raise _BadRequest("the request body must be a JSON object")
        name = body.get("model")
        if name not in self.models:
            served = ", ".join(self.models)
            raise _BadRequest(f"The model `{name}` does not exist; served: {served}.", HTTPStatus.NOT_FOUND)
        m = self.models[name]
        prompt = body.get("prompt")
        if isinstance(prompt, list) and len(prompt) == 1 and isinstance(prompt[0], (str, list)):
            prompt = prompt[0]
        if isinstance(prompt, str):
            ids = m.lm.encode(prompt, add_special_tokens=bool(body.get("add_special_tokens", True)))
        elif isinstance(prompt, list) and all(isinstance(t, int) and not isinstance(t, bool) for t in prompt):
            ids = list(prompt)
        else:
            raise _BadRequest("prompt must be one string or one list of token ids")
        if not ids:
            raise _BadRequest("the prompt is empty")
        vocab = int(m.lm.model.get_input_embeddings().weight.shape[0])
        if min(ids) < 0 or max(ids) >= vocab:
            raise _BadRequest(f"the prompt holds token ids outside the vocabulary (0..{vocab - 1})")
        if float(body.get("temperature", 1.0) or 0.0) != 0.0:
            raise _BadRequest("this test server decodes greedily only: pass temperature 0")
        if int(body.get("n", 1) or 1) != 1:
            raise _BadRequest("this test server returns one choice per request (n=1)")
        max_tokens = body.get("max_tokens", 16)
        if not isinstance(max_tokens, int) or max_tokens < 0:
            raise _BadRequest(f"max_tokens must be an int >= 0, got {max_tokens!r}")
        if len(ids) + max_tokens > m.max_model_len:
            raise _BadRequest(
                f"This model's maximum context length is {m.max_model_len} tokens. However, you requested "
                f"{len(ids) + max_tokens} tokens ({len(ids)} in the prompt, {max_tokens} in the completion)."
            )
        top_k = body.get("logprobs")
        if top_k is not None and (not isinstance(top_k, int) or top_k < 0):
            raise _BadRequest(f"logprobs must be an int >= 0, got {top_k!r}")
        stop = body.get("stop") or ()
        stop = (stop,) if isinstance(stop, str) else tuple(stop)
        if not all(isinstance(s, str) and s for s in stop):
            raise _BadRequest("stop must be a non-empty string or a list of them")
        stop_ids = frozenset(int(t) for t in body.get("stop_token_ids") or ())
        as_ids = self.return_tokens_as_token_ids or (
            self.token_ids_on_request and bool(body.get("return_tokens_as_token_ids"))
        )
        return _Request(
            str(name),
            ids,
            max_tokens,
            top_k,
            bool(body.get("echo", False)),
            stop,
            stop_ids,
            bool(body.get("stream", False)),
            as_ids,
            bool(body.get("ignore_eos", False)),
        )

    @torch.no_grad()
    def decode(self, req: _Request) -> Iterator[_Token | str]:
        """The echoed prompt tokens (if asked), then each new token, then the finish reason (a str)."""
        m = self.models[req.model]
        lm, tok = m.lm, m.lm.tokenizer
        m.stats["requests"] += 1
        m.stats["prompt_tokens"] += len(req.prompt)
        with m.lock:
            out = lm.model(
                input_ids=torch.tensor([req.prompt], device=lm.device),
                use_cache=True,
                logits_to_keep=len(req.prompt) if req.echo else 1,
            )
        cache = out.cache
        if req.echo:
            rows = torch.log_softmax(out.logits[0].float(), dim=-1)
            texts = token_texts(tok, [], req.prompt)
            for i, t in enumerate(req.prompt):
                row = rows[i - 1] if i else None
                yield _Token(t, texts[i], None if row is None else float(row[t]), _top(row, req.top_k))
        last = torch.log_softmax(out.logits[0, -1].float(), dim=-1)
        eos = set() if req.ignore_eos else set(lm.eos_ids)
        context, made = list(req.prompt), 0
        while made < req.max_tokens:
            token = int(last.argmax())
            made += 1
            m.stats["generated_tokens"] += 1
            item = _Token(token, "", float(last[token]), _top(last, req.top_k))
            if token in eos or token in req.stop_ids:
                if self.eos_in_logprobs:
                    yield item
                yield "stop"
                return
            item.text = token_texts(tok, context, [token])[0]
            context.append(token)
            yield item
            if made == req.max_tokens:
                break
            with m.lock:
                out = lm.model(
                    input_ids=torch.tensor([[token]], device=lm.device),
                    cache=cache,
                    use_cache=True,
                    logits_to_keep=1,
                )
            cache = out.cache
            last = torch.log_softmax(out.logits[0, -1].float(), dim=-1)
        yield "length"

    def token_name(self, req: _Request, token: int) -> str:
        """How a token is named in logprobs: "token_id:N", or its text."""
        if req.as_ids:
            return f"token_id:{token}"
        return self.models[req.model].lm.tokenizer.decode([token])

    def logprobs(self, req: _Request, items: list[_Token], offset: int) -> dict[str, Any] | None:
        """The OpenAI `logprobs` object of `items` (text offsets counted from `offset`)."""
        if req.top_k is None:
            return None
        offsets, pos = [], offset
        for it in items:
            offsets.append(pos)
            pos += len(it.text)
        return {
            "tokens": [self.token_name(req, it.id) for it in items],
            "token_logprobs": [it.logprob for it in items],
            "top_logprobs": [
                None if it.top is None else {self.token_name(req, t): lp for t, lp in it.top} for it in items
            ],
            "text_offset": offsets,
        }

    def envelope(self, req: _Request, choice: dict[str, Any], rid: str) -> dict[str, Any]:
        """A response (or stream chunk) around one choice."""
        return {
            "id": rid,
            "object": "text_completion",
            "created": int(time.time()),
            "model": req.model,
            "choices": [{"index": 0, **choice}],
        }


def _top(row: torch.Tensor | None, k: int | None) -> list[tuple[int, float]] | None:
    if row is None or k is None:
        return None
    values, ids = torch.topk(row, max(1, k))
    return [(int(i), float(v)) for i, v in zip(ids.tolist(), values.tolist(), strict=True)]


def _context_length(lm: LanguageModel) -> int:
    config = getattr(lm.model, "config", None)
    for key in ("max_position_embeddings", "n_positions", "max_sequence_length"):
        value = getattr(config, key, None)
        if isinstance(value, int) and value > 0:
            return value
    return 2048


def _first_stop(text: str, stops: tuple[str, ...]) -> int:
    """Index of the earliest stop string in `text`, or -1."""
    found = [i for i in (text.find(s) for s in stops) if i >= 0]
    return min(found) if found else -1


def _held_back(text: str, stops: tuple[str, ...]) -> int:
    """How many trailing characters of `text` could be the start of a stop string (not yet sendable)."""
    best = 0
    for s in stops:
        for n in range(min(len(s) - 1, len(text)), 0, -1):
            if s.startswith(text[-n:]):
                best = max(best, n)
                break
    return best


def _handler_class(server: CompletionServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "nudging-testing-server/0.1"

        def log_message(self, format: str, *args: object) -> None:
            logger.debug("%s - " + format, self.address_string(), *args)

        def _json(self, status: int, payload: object) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _error(self, status: HTTPStatus, message: str) -> None:
            self._json(status, {"error": {"message": message, "type": status.phrase, "code": int(status)}})

        def do_GET(self) -> None:
            path = self.path.rstrip("/")
            if path in ("/v1/models", "/models"):
                self._json(HTTPStatus.OK, server.model_cards())
            elif path in ("/health", "/v1/health"):
                self._json(HTTPStatus.OK, {"status": "ok"})
            else:
                self._error(HTTPStatus.NOT_FOUND, f"no route {self.path}")

        def do_POST(self) -> None:
            if self.path.rstrip("/") not in ("/v1/completions", "/completions"):
                self._error(HTTPStatus.NOT_FOUND, f"no route {self.path}")
                return
            try:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"null")
                req = server.parse(body)
            except _BadRequest as err:
                self._error(err.status, str(err))
                return
            except (ValueError, TypeError) as err:
                self._error(HTTPStatus.BAD_REQUEST, f"malformed request: {err}")
                return
            rid = f"cmpl-{next(server._ids)}"
            server._enter()
            try:
                if req.stream:
                    self._stream(req, rid)
                else:
                    self._complete(req, rid)
            except (BrokenPipeError, ConnectionResetError):  # the client went away
                server.models[req.model].stats["aborted"] += 1
            finally:
                server._leave()

        def _complete(self, req: _Request, rid: str) -> None:
            items: list[_Token] = []
            finish, prompt_len, generated = "length", len(req.prompt) if req.echo else 0, ""
            events = server.decode(req)
            try:
                for ev in events:
                    if isinstance(ev, str):
                        finish = ev
                        break
                    items.append(ev)
                    if len(items) <= prompt_len:
                        continue
                    generated += ev.text
                    cut = _first_stop(generated, req.stop) if req.stop else -1
                    if cut >= 0:  # generation ends with the token that completed the stop string
                        generated, finish = generated[:cut], "stop"
                        break
            finally:
                events.close()
            text = "".join(it.text for it in items[:prompt_len]) + generated
            choice = {"text": text, "logprobs": server.logprobs(req, items, 0), "finish_reason": finish}
            payload = server.envelope(req, choice, rid)
            completion = len(items) - prompt_len
            payload["usage"] = {
                "prompt_tokens": len(req.prompt),
                "completion_tokens": completion,
                "total_tokens": len(req.prompt) + completion,
            }
            self._json(HTTPStatus.OK, payload)

        def _stream(self, req: _Request, rid: str) -> None:
            self.send_response(HTTPStatus.OK)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Cache-Control", "no-cache")
            self.end_headers()
            pending, pending_items, offset = "", [], 0
            events = server.decode(req)
            try:
                for ev in events:
                    if isinstance(ev, str):
                        self._send(req, rid, pending, pending_items, offset, ev)
                        break
                    pending += ev.text
                    pending_items.append(ev)
                    cut = _first_stop(pending, req.stop) if req.stop else -1
                    if cut >= 0:
                        self._send(req, rid, pending[:cut], pending_items, offset, "stop")
                        break
                    hold = _held_back(pending, req.stop) if req.stop else 0
                    ready = pending[: len(pending) - hold]
                    self._send(req, rid, ready, pending_items, offset, None)
                    offset += len(ready)
                    pending, pending_items = pending[len(ready) :], []
                self.wfile.write(b"data: [DONE]\n\n")
                self.wfile.flush()
            except (BrokenPipeError, ConnectionResetError):
                server.models[req.model].stats["aborted"] += 1
            finally:
                events.close()

        def _send(
            self,
            req: _Request,
            rid: str,
            text: str,
            items: list[_Token],
            offset: int,
            finish: str | None,
        ) -> None:
            choice = {"text": text, "logprobs": server.logprobs(req, items, offset), "finish_reason": finish}
            self.wfile.write(b"data: " + json.dumps(server.envelope(req, choice, rid)).encode() + b"\n\n")
            self.wfile.flush()

    return Handler


def main(argv: list[str] | None = None) -> int:
    """`python -m nudging.testing_server --model NAME=PATH ...`: serve local models until interrupted."""
    from reprokit.lm import load_lm

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", action="append", required=True, help="NAME=PATH_OR_HUB_ID (repeatable)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--dtype", default="auto")
    parser.add_argument("--return-tokens-as-token-ids", action="store_true")
    args = parser.parse_args(argv)
    models = {}
    for spec in args.model:
        name, sep, path = spec.partition("=")
        if not sep or not name or not path:
            parser.error(f"--model takes NAME=PATH, got {spec!r}")
        models[name] = load_lm(path, device=args.device, dtype=args.dtype)
    server = CompletionServer(
        models, host=args.host, port=args.port, return_tokens_as_token_ids=args.return_tokens_as_token_ids
    )
    sys.stderr.write(f"serving {', '.join(models)} at {server.url}\n")
    server.serve_forever()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
