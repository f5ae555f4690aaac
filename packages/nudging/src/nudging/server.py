"""Nudging with models behind OpenAI-compatible completions servers (vLLM), alone or mixed with local ones.

The algorithm is `nudging.program.nudging_program`, unchanged; this driver answers its queries over
HTTP (`/v1/completions`, standard library only). A served model is a `ServedModel`: the server's URL
and model name plus the model's tokenizer, held locally, because the program works on token ids and
text (prompts go to the server as token ids, so the server computes exactly what a local model would).

One request serves many queries. A query "next token after ids X" that no earlier answer covers starts
a greedy completion of X (temperature 0, top-1 logprob per token, the model's EOS ids as
`stop_token_ids`); the next queries walk along it (X + t0, X + t0 t1, ...) and are answered from the
tokens already received. With `stream=True` (the default) a base model's whole run is one streamed
request that the driver reads token by token and closes where the program leaves it (the first token
with top-1 probability below gamma, or the nudging model's turn), which aborts the generation on the
server; with `stream=False` each request is `request_tokens` long, as the official code's 16-token
calls. Every greedy token and its top-1 probability are all the program ever uses of a distribution,
so the answers are exact for greedy decoding; sampling is refused.
"""

from __future__ import annotations

import json
import logging
import math
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Literal

import torch
from transformers import PreTrainedTokenizerBase

from nudging._checks import Setup, make_setups
from nudging.config import NudgingConfig
from nudging.fast import CachedLM
from nudging.program import nudging_program
from nudging.prompts import NudgingPrompt
from nudging.result import NudgeResult
from reprokit.errors import ConfigError
from reprokit.lm import LanguageModel, input_device

__all__ = ["ServedCompletion", "ServedModel", "ServerError", "nudge_served", "nudge_served_batch"]

logger = logging.getLogger(__name__)

Role = Literal["base", "nudger"]
_SERVING_DOC = "docs/nudging-serving.md"


class ServerError(ConfigError, RuntimeError):
    """The completions server is unreachable, refused a request, or answered without what nudging needs."""


# ----------------------------------------------------------------------------------------------- HTTP
def _api_url(url: str) -> str:
    """The API base: ``http://host:port`` gets ``/v1``; a URL with a path is used as given."""
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise ConfigError(f"server URL must start with http:// or https://, got {url!r}")
    parts = urllib.parse.urlsplit(url)
    path = parts.path.rstrip("/")
    return urllib.parse.urlunsplit((parts.scheme, parts.netloc, path or "/v1", "", ""))


def _open(
    url: str, body: dict[str, Any] | None, api_key: str | None, timeout: float
) -> urllib.response.addinfourl:
    """GET (no body) or POST a JSON body; HTTP and connection errors become `ServerError`s."""
    headers = {"Accept": "application/json"}
    data = None
    if body is not None:
        headers["Content-Type"] = "application/json"
        data = json.dumps(body).encode()
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    request = urllib.request.Request(url, data=data, headers=headers, method="POST" if data else "GET")
    try:
        return urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as err:
        raise ServerError(f"{url} answered {err.code}: {_error_message(err)}") from err
    except (urllib.error.URLError, OSError) as err:
        reason = getattr(err, "reason", err)
        raise ServerError(
            f"no completions server answers at {url} ({reason}); start one (vLLM: see {_SERVING_DOC}) or "
            "pass the URL it listens on, e.g. http://127.0.0.1:8000/v1."
        ) from err


def _error_message(err: urllib.error.HTTPError) -> str:
    try:
        payload = json.loads(err.read() or b"{}")
    except ValueError:
        return str(err.reason)
    inner = payload.get("error", payload) if isinstance(payload, dict) else payload
    if isinstance(inner, dict):
        return str(inner.get("message") or inner)
    return str(inner)


def _get_json(url: str, api_key: str | None, timeout: float) -> Any:
    with _open(url, None, api_key, timeout) as resp:
        return json.loads(resp.read())


# ------------------------------------------------------------------------------------------- the model
@dataclass(frozen=True)
class ServedCompletion:
    """One completion request's answer: the text, generated token ids and their top-1 probabilities."""

    text: str
    token_ids: tuple[int, ...]
    top1_probs: tuple[float, ...]
    finish_reason: str
    """"stop" (EOS, a stop token or a stop string) or "length" (max_tokens or the context is full)."""


@dataclass(frozen=True, eq=False)
class ServedModel:
    """A causal LM behind an OpenAI-compatible completions server, with its tokenizer held locally.

    Usually made by `ServedModel.connect(url, model)`, which reads the served name and context length
    from ``GET /models``. `url` is the API base (``http://host:8000/v1``); `model` the served name;
    `eos_ids` the ids that end a generation (default: the tokenizer's and the model's generation
    config's). `stream=False` asks in chunks of `request_tokens` tokens instead of one streamed request
    per run. The server must return token ids in logprobs (vLLM: ``--return-tokens-as-token-ids``).
    """

    url: str
    model: str
    tokenizer: PreTrainedTokenizerBase = field(repr=False)
    eos_ids: frozenset[int] = frozenset()
    max_model_len: int | None = None
    api_key: str | None = field(default=None, repr=False)
    timeout: float = 600.0
    stream: bool = True
    request_tokens: int = 16
    name: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "url", _api_url(self.url))
        if not isinstance(self.model, str) or not self.model:
            raise ConfigError("ServedModel.model must be the served model's name (see GET /v1/models)")
        if isinstance(self.tokenizer, str) or not callable(self.tokenizer):
            raise TypeError(
                "ServedModel.tokenizer must be a Hugging Face tokenizer object; use "
                "ServedModel.connect(url, model, tokenizer=PATH_OR_HUB_ID) to load one."
            )
        eos = frozenset(int(t) for t in self.eos_ids) or _tokenizer_eos(self.tokenizer)
        if not eos:
            raise ConfigError(
                f"{self.model}: the tokenizer defines no end-of-sequence token; pass eos_ids=... so that "
                "the nudging model's look-ahead can end."
            )
        object.__setattr__(self, "eos_ids", eos)
        if isinstance(self.request_tokens, bool) or not isinstance(self.request_tokens, int):
            raise ConfigError(f"request_tokens must be a positive int, got {self.request_tokens!r}")
        if self.request_tokens < 1:
            raise ConfigError(f"request_tokens must be a positive int, got {self.request_tokens!r}")
        if self.max_model_len is not None and self.max_model_len < 2:
            raise ConfigError(f"max_model_len must be at least 2, got {self.max_model_len!r}")
        if not self.name:
            object.__setattr__(self, "name", self.model)

    @classmethod
    def connect(
        cls,
        url: str,
        model: str | None = None,
        *,
        tokenizer: PreTrainedTokenizerBase | str | None = None,
        eos_ids: Iterable[int] = (),
        api_key: str | None = None,
        timeout: float = 600.0,
        stream: bool = True,
        request_tokens: int = 16,
    ) -> ServedModel:
        """Ask the server which models it serves (and their context length), load the tokenizer.

        `model` may be omitted when the server serves one model. `tokenizer` is a tokenizer object, or a
        folder or hub id to load it from (default: the served name, which for vLLM is the hub id or
        path it was started with). The EOS ids come from the tokenizer and, when found next to it, the
        model's generation config (e.g. Gemma's ``<end_of_turn>``).
        """
        api = _api_url(url)
        cards = _get_json(f"{api}/models", api_key, timeout)
        served = [c for c in (cards.get("data") or []) if isinstance(c, dict) and c.get("id")]
        names = [str(c["id"]) for c in served]
        if model is None:
            if len(names) != 1:
                raise ConfigError(
                    f"the server at {api} serves {len(names)} models ({', '.join(names) or 'none'}); "
                    "pass model=NAME."
                )
            model = names[0]
        if model not in names:
            raise ConfigError(
                f"the server at {api} does not serve {model!r}; it serves: {', '.join(names) or 'nothing'}."
            )
        card = served[names.index(model)]
        max_len = card.get("max_model_len")
        source = tokenizer if tokenizer is not None else model
        extra: set[int] = set()
        if not isinstance(source, PreTrainedTokenizerBase):
            from reprokit.lm import load_tokenizer

            tok = load_tokenizer(source)
            extra = _generation_config_eos(str(source))
        else:
            tok = source
        eos = frozenset(int(t) for t in eos_ids) or (_tokenizer_eos(tok) | extra)
        return cls(
            api,
            model,
            tok,
            eos_ids=eos,
            max_model_len=int(max_len) if isinstance(max_len, int) and max_len > 1 else None,
            api_key=api_key,
            timeout=timeout,
            stream=stream,
            request_tokens=request_tokens,
        )

    def encode(self, text: str, *, add_special_tokens: bool = True) -> list[int]:
        """Token ids of `text` with the model's tokenizer (as `LanguageModel.encode`)."""
        return list(self.tokenizer(text, add_special_tokens=add_special_tokens)["input_ids"])

    def decode(self, ids: Sequence[int], *, skip_special_tokens: bool = True) -> str:
        """Text of token `ids` (as `LanguageModel.decode`)."""
        return self.tokenizer.decode(list(ids), skip_special_tokens=skip_special_tokens)

    @property
    def chat_template(self) -> str | None:
        """The tokenizer's chat template, or None."""
        return getattr(self.tokenizer, "chat_template", None) or None

    def request_body(
        self,
        prompt: str | list[int],
        max_tokens: int,
        *,
        stream: bool,
        stop: Sequence[str] = (),
        logprobs: int = 1,
        echo: bool = False,
    ) -> dict[str, Any]:
        """The JSON body of one greedy completion request (vLLM fields: stop_token_ids, token-id tokens)."""
        body: dict[str, Any] = {
            "model": self.model,
            "prompt": prompt,
            "max_tokens": max_tokens,
            "temperature": 0.0,
            "logprobs": logprobs,
            "n": 1,
            "stream": stream,
            "stop_token_ids": sorted(self.eos_ids),
            "return_tokens_as_token_ids": True,
        }
        if stop:
            body["stop"] = list(stop)
        if echo:
            body["echo"] = True
        return body

    def open_completion(self, prompt_ids: list[int], max_tokens: int, *, stream: bool) -> _Events:
        """Start a greedy completion of `prompt_ids`; its tokens come from the returned event reader."""
        max_tokens = self._fit(len(prompt_ids), max_tokens)
        body = self.request_body(prompt_ids, max_tokens, stream=stream)
        resp = _open(f"{self.url}/completions", body, self.api_key, self.timeout)
        return _Events(self, resp, stream)

    def complete(
        self,
        prompt: str | Sequence[int],
        *,
        max_tokens: int = 16,
        stop: str | Sequence[str] = (),
        add_special_tokens: bool = True,
    ) -> ServedCompletion:
        """One greedy completion (e.g. the base-only and aligned-only baselines), with stop strings.

        A text prompt is tokenized here (with special tokens unless `add_special_tokens=False`, as for
        a prompt rendered by a chat template), so the server sees the same ids as a local model would.
        """
        ids = (
            self.encode(prompt, add_special_tokens=add_special_tokens) if isinstance(prompt, str) else prompt
        )
        ids = [int(t) for t in ids]
        if not ids:
            raise ConfigError("complete: the prompt is empty; pass at least one token.")
        stops = (stop,) if isinstance(stop, str) else tuple(stop)
        body = self.request_body(ids, self._fit(len(ids), max_tokens), stream=False, stop=stops)
        with _open(f"{self.url}/completions", body, self.api_key, self.timeout) as resp:
            payload = json.loads(resp.read())
        choice = _choice(payload, self.url)
        tokens, probs = [], []
        for token, p1 in _parse_logprobs(choice.get("logprobs"), self.url):
            if token in self.eos_ids:
                break
            tokens.append(token)
            probs.append(p1)
        return ServedCompletion(
            str(choice.get("text") or ""), tuple(tokens), tuple(probs), str(choice.get("finish_reason"))
        )

    def _fit(self, prompt_len: int, max_tokens: int) -> int:
        """`max_tokens` cut to what the server's context leaves after the prompt."""
        if self.max_model_len is None:
            return max_tokens
        room = self.max_model_len - prompt_len
        if room < 1:
            raise ServerError(
                f"{self.name}: the prompt and answer so far ({prompt_len} tokens) fill the server's context "
                f"(max_model_len {self.max_model_len}); start the server with a larger --max-model-len or "
                "lower max_new_tokens."
            )
        return min(max_tokens, room)


def _tokenizer_eos(tokenizer: PreTrainedTokenizerBase) -> frozenset[int]:
    eos = getattr(tokenizer, "eos_token_id", None)
    return frozenset() if eos is None else frozenset({int(eos)})


def _generation_config_eos(source: str) -> set[int]:
    """EOS ids of the model's generation config next to its tokenizer, if there is one."""
    from transformers import GenerationConfig

    try:
        value = GenerationConfig.from_pretrained(source).eos_token_id
    except Exception:  # no generation config there: the tokenizer's EOS is all there is
        return set()
    if isinstance(value, int):
        return {value}
    return {int(v) for v in value or ()}


# --------------------------------------------------------------------------------- reading completions
def _choice(payload: Any, url: str) -> dict[str, Any]:
    choices = payload.get("choices") if isinstance(payload, dict) else None
    if not choices or not isinstance(choices[0], dict):
        raise ServerError(f"{url} answered without choices: {str(payload)[:200]}")
    return choices[0]


def _token_id(name: str, url: str) -> int:
    if isinstance(name, str) and name.startswith("token_id:"):
        return int(name[len("token_id:") :])
    raise ServerError(
        f"{url} names tokens by their text ({name!r}), not by id; nudging needs the ids. Start vLLM with "
        f"--return-tokens-as-token-ids (see {_SERVING_DOC})."
    )


def _parse_logprobs(logprobs: Any, url: str) -> Iterator[tuple[int, float]]:
    """(token id, top-1 probability) for each token of an OpenAI `logprobs` object."""
    if not logprobs:
        return
    tokens = logprobs.get("tokens") or []
    tops = logprobs.get("top_logprobs") or [None] * len(tokens)
    chosen = logprobs.get("token_logprobs") or [None] * len(tokens)
    for name, top, lp in zip(tokens, tops, chosen, strict=False):
        token = _token_id(name, url)
        values = [v for v in (top or {}).values() if v is not None]
        if lp is not None:
            values.append(lp)
        if not values:
            raise ServerError(
                f"{url} returned a token without its logprob; nudging needs logprobs=1 (vLLM: "
                "--max-logprobs of at least 1)."
            )
        yield token, math.exp(max(values))


class _Events:
    """The tokens of one completion request as they arrive: (token id, top-1 prob), then the end."""

    def __init__(self, model: ServedModel, resp: Any, stream: bool) -> None:
        self.model, self.resp, self.stream = model, resp, stream
        self.finish: str | None = None
        self._pending: list[tuple[int, float]] = []
        self.received = 0  # tokens that arrived from the server (read or not)
        if not stream:
            with resp:
                choice = _choice(json.loads(resp.read()), model.url)
            self._pending = list(_parse_logprobs(choice.get("logprobs"), model.url))
            self.received = len(self._pending)
            self.finish = str(choice.get("finish_reason") or "length")
            self.resp = None

    def next(self) -> tuple[int, float] | None:
        """The next token, or None when the completion has ended (`finish` says why)."""
        while not self._pending:
            if self.resp is None:
                return None
            line = self.resp.readline()
            if not line:
                self.close()
                self.finish = self.finish or "length"
                return None
            line = line.strip()
            if not line.startswith(b"data:"):
                continue
            data = line[5:].strip()
            if data == b"[DONE]":
                self.close()
                self.finish = self.finish or "length"
                return None
            choice = _choice(json.loads(data), self.model.url)
            new = list(_parse_logprobs(choice.get("logprobs"), self.model.url))
            self.received += len(new)
            self._pending.extend(new)
            if choice.get("finish_reason"):
                self.finish = str(choice["finish_reason"])
        return self._pending.pop(0)

    def close(self) -> None:
        """Stop reading; closing a stream makes the server abort the generation."""
        if self.resp is not None:
            try:
                self.resp.close()
            finally:
                self.resp = None


class _Run:
    """A greedy continuation of `prompt`, as far as it has been read: the answers it holds."""

    def __init__(self, prompt: list[int], events: _Events, eos_ids: frozenset[int]) -> None:
        self.prompt, self.events, self.eos_ids = prompt, events, eos_ids
        self.tokens: list[int] = []
        self.p1: list[float] = []
        self.eos = False  # the token after `tokens` is an EOS
        self.done = False

    def offset(self, ids: list[int]) -> int | None:
        """i if `ids` is the prompt followed by the first i tokens of this run, else None."""
        n = len(self.prompt)
        i = len(ids) - n
        if i < 0 or i > len(self.tokens) or ids[:n] != self.prompt or ids[n:] != self.tokens[:i]:
            return None
        return i

    def read_to(self, i: int | None) -> None:
        """Read tokens until token i is known or the run has ended (None: to the end)."""
        while (i is None or len(self.tokens) <= i) and not self.done:
            got = self.events.next()
            if got is None:
                self.done = True
                self.eos = self.events.finish == "stop"
            elif got[0] in self.eos_ids:
                self.done, self.eos = True, True
                self.events.close()
            else:
                self.tokens.append(got[0])
                self.p1.append(got[1])

    def close(self) -> None:
        """Stop the request; the tokens that already arrived are kept."""
        if not self.done:
            self.events.close()
            self.read_to(None)  # only what has arrived: the connection is closed


def _as_logits(token: int, p1: float) -> torch.Tensor:
    """A logits row whose softmax has its maximum `p1` at `token` (all the program reads of a row).

    The rest of the mass is spread evenly over more than 1/p1 other entries, so each stays below p1.
    """
    p1 = min(max(p1, 1e-6), 1.0)  # a top-1 probability is at least 1 / vocabulary size
    n = max(token + 2, int(1.0 / p1) + 2)
    rest = (1.0 - p1) / (n - 1)
    row = torch.full((n,), math.log(rest) if rest > 0 else -math.inf)
    row[token] = math.log(p1)
    return row


class _ServedAnswers:
    """Answers one model's queries over HTTP, reusing every token already received (see module doc)."""

    def __init__(self, model: ServedModel, max_tokens: int, *, close_on_switch: bool) -> None:
        self.model = model
        self.max_tokens = max_tokens
        self.close_on_switch = close_on_switch
        self.runs: list[_Run] = []
        self.events: list[_Events] = []
        self._eos = min(model.eos_ids)

    def next_token(self, ids: list[int]) -> tuple[int, float]:
        """(greedy next token, its probability) after `ids`; an EOS comes back as one of the EOS ids."""
        for run in reversed(self.runs):
            i = run.offset(ids)
            if i is None:
                continue
            run.read_to(i)
            if i < len(run.tokens):
                return run.tokens[i], run.p1[i]
            if run.eos and i == len(run.tokens):
                return self._eos, 1.0
        self.pause()  # the program left every path read so far
        run = self._start(ids)
        run.read_to(0)
        if run.tokens:
            return run.tokens[0], run.p1[0]
        if run.eos:
            return self._eos, 1.0
        raise ServerError(
            f"{self.model.name}: the server ended a completion without a token "
            f"(finish_reason {run.events.finish!r}); check its max_model_len and logs."
        )

    def _start(self, ids: list[int]) -> _Run:
        stream = self.model.stream
        size = self.max_tokens if stream else min(self.max_tokens, self.model.request_tokens)
        events = self.model.open_completion(list(ids), size, stream=stream)
        self.events.append(events)
        run = _Run(list(ids), events, self.model.eos_ids)
        self.runs = [*self.runs[-7:], run]
        return run

    def sync(self, ids: list[int], need: Iterable[int]) -> Mapping[int, torch.Tensor]:
        """The program's answer: logits rows at `need` and the last position, each fetched when read."""
        return _LazyRows(self, ids, {*need, len(ids) - 1})

    def pause(self) -> None:
        """Stop reading every open completion (the tokens read so far stay usable)."""
        for run in self.runs:
            run.close()

    def switch_away(self) -> None:
        """The program turns to the other model: abort long runs (a base run ends where it turns)."""
        if self.close_on_switch:
            self.pause()

    def counts(self) -> dict[str, int]:
        return {"requests": len(self.events), "received_tokens": sum(e.received for e in self.events)}


class _LazyRows(Mapping[int, torch.Tensor]):
    """{position: logits after ids[: position + 1]}, each asked only when the program reads it.

    A Stage-1 block asks for several word boundaries but reads them in order only up to the first
    takeover, so the later ones never cost a request.
    """

    def __init__(self, answers: _ServedAnswers, ids: list[int], positions: set[int]) -> None:
        self.answers, self.ids, self.positions = answers, ids, positions
        self._rows: dict[int, torch.Tensor] = {}

    def __getitem__(self, position: int) -> torch.Tensor:
        if position not in self.positions:
            raise KeyError(position)
        if position not in self._rows:
            token, p1 = self.answers.next_token(self.ids[: position + 1])
            self._rows[position] = _as_logits(token, p1)
        return self._rows[position]

    def __iter__(self) -> Iterator[int]:
        return iter(sorted(self.positions))

    def __len__(self) -> int:
        return len(self.positions)


class _LocalAnswers:
    """Answers one local model's queries with a KV cache (`nudging.fast.CachedLM`), one thread at a time."""

    def __init__(self, lm: LanguageModel, lock: threading.Lock) -> None:
        self.cached = CachedLM(lm.model)
        self.lock = lock

    def sync(self, ids: list[int], need: Iterable[int]) -> Mapping[int, torch.Tensor]:
        with self.lock:
            return self.cached.sync(ids, need)

    def switch_away(self) -> None:
        pass

    def pause(self) -> None:
        pass

    def counts(self) -> dict[str, int]:
        return {"forward_calls": self.cached.forward_calls, "forward_tokens": self.cached.forward_tokens}


# ------------------------------------------------------------------------------------------ the driver
AnyModel = ServedModel | LanguageModel


def _check_model(value: object, role: str) -> None:
    if isinstance(value, ServedModel):
        return
    if not isinstance(value, LanguageModel):
        raise TypeError(
            f"the {role} model must be a ServedModel (ServedModel.connect(url, name)) or a local "
            f"reprokit.lm.LanguageModel, got {type(value).__name__}."
        )
    if input_device(value.model).type == "meta":
        raise ValueError(
            f"the {role} model's weights are on the 'meta' device (not loaded); load it with real weights "
            "(reprokit.lm.load_lm) before nudging."
        )


def _check_config(config: NudgingConfig | None) -> NudgingConfig:
    config = config or NudgingConfig()
    if not isinstance(config, NudgingConfig):
        raise TypeError(f"config must be a NudgingConfig, got {type(config).__name__}")
    if config.do_sample:
        raise ConfigError(
            "the server backend decodes greedily (temperature 0, as the paper): a server returns the top-1 "
            "logprob, not the distribution to sample from; use nudging.fast for do_sample=True."
        )
    return config


def _answers(
    lm: AnyModel, role: Role, config: NudgingConfig, locks: dict[int, threading.Lock]
) -> _ServedAnswers | _LocalAnswers:
    if isinstance(lm, ServedModel):
        # the nudging model drafts at most a look-ahead per request; a base run may use the whole budget
        size = config.lookahead_tokens if role == "nudger" else config.max_new_tokens + 1
        return _ServedAnswers(lm, size, close_on_switch=role == "base")
    return _LocalAnswers(lm, locks.setdefault(id(lm.model), threading.Lock()))


def _run_one(setup: Setup, base: AnyModel, nudger: AnyModel, locks: dict[int, threading.Lock]) -> NudgeResult:
    """One question's program, its queries answered by each model's server or local cache."""
    answers = {
        role: _answers(lm, role, setup.config, locks) for role, lm in (("base", base), ("nudger", nudger))
    }
    program = nudging_program(setup, base, nudger)  # type: ignore[arg-type]  (ServedModel: duck-typed)
    answer: Mapping[int, torch.Tensor] | None = None
    last: Role | None = None
    try:
        while True:
            query = program.send(answer)  # type: ignore[arg-type]
            if last is not None and query.model != last:
                answers[last].switch_away()
            last = query.model
            answer = answers[query.model].sync(query.ids, query.need)
    except StopIteration as done:
        result: NudgeResult = done.value
    finally:
        for a in answers.values():
            a.pause()
    for role, a in answers.items():
        for key, value in a.counts().items():
            result.info[f"{role}_{key}"] = value
    return result


def nudge_served(
    base: AnyModel,
    nudger: AnyModel,
    prompt: str | NudgingPrompt,
    config: NudgingConfig | None = None,
    *,
    plain_nudger_prompt: bool = False,
) -> NudgeResult:
    """Nudge one question with either model served (`ServedModel`) or local (`LanguageModel`).

    The algorithm is the same program as `nudging.fast.nudge_fast`, so the greedy output is the same
    (up to float rounding of the server's arithmetic). `result.info` counts each served model's requests
    and received tokens, and each local model's forward passes.
    """
    return nudge_served_batch(
        base, nudger, [prompt], config, max_workers=1, plain_nudger_prompt=plain_nudger_prompt
    )[0]


def nudge_served_batch(
    base: AnyModel,
    nudger: AnyModel,
    prompts: Sequence[str | NudgingPrompt],
    config: NudgingConfig | None = None,
    *,
    max_workers: int = 8,
    plain_nudger_prompt: bool = False,
    on_result: Callable[[int, NudgeResult], None] | None = None,
) -> list[NudgeResult]:
    """Nudge many questions, `max_workers` at a time (the server batches concurrent requests).

    Results come back in the order of `prompts`; `on_result(index, result)` is called as each finishes.
    A local model is shared by the workers, one forward pass at a time.
    """
    if isinstance(prompts, (str, NudgingPrompt)):
        raise TypeError("nudge_served_batch takes a list of prompts; use nudge_served() for a single one")
    if isinstance(max_workers, bool) or not isinstance(max_workers, int) or max_workers < 1:
        raise ConfigError(f"max_workers must be a positive int, got {max_workers!r}")
    _check_model(base, "base")
    _check_model(nudger, "nudging")
    config = _check_config(config)
    setups = make_setups(base, nudger, list(prompts), config, plain_nudger_prompt=plain_nudger_prompt)  # type: ignore[arg-type]
    locks: dict[int, threading.Lock] = {}
    results: list[NudgeResult | None] = [None] * len(setups)

    def work(i: int) -> None:
        results[i] = _run_one(setups[i], base, nudger, locks)
        if on_result is not None:
            on_result(i, results[i])  # type: ignore[arg-type]

    if max_workers == 1 or len(setups) <= 1:
        for i in range(len(setups)):
            work(i)
    else:
        with ThreadPoolExecutor(max_workers=min(max_workers, len(setups))) as pool:
            for future in [pool.submit(work, i) for i in range(len(setups))]:
                future.result()
    return results  # type: ignore[return-value]
