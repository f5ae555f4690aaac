"""One handle for a causal language model: the model with its tokenizer, and what serving it needs.

`load_lm` loads a decoder-only causal LM and its tokenizer from a local folder or a hub id (safetensors
only, never code shipped with a model) and refuses, with one clear message each, what it cannot serve:
encoder-only and encoder-decoder models, corrupt or truncated weights, weights that do not fit the
config, a missing tokenizer, a config that needs custom code, a device that is not there.

`LanguageModel` carries the model's device, dtype, pad id, EOS ids and chat template, so every package
pads, stops and places inputs by the same rules; `reprokit.generation.generate` and `reprokit.scoring`
take it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from reprokit.cli import error_summary
from reprokit.errors import ConfigError, DataError, ModelLoadError

logger = logging.getLogger(__name__)

__all__ = [
    "DeviceUnavailableError",
    "LanguageModel",
    "ModelNotFoundError",
    "UnsafeCheckpointError",
    "check_token_ids",
    "check_token_range",
    "input_device",
    "load_lm",
    "load_tokenizer",
    "looks_like_path",
    "require_lm",
    "resolve_device",
    "resolve_dtype",
]

PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle")
#: Files of which a folder holding a tokenizer has at least one.
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "tokenizer.model", "vocab.json", "spiece.model")
#: Heads of checkpoints saved for a task other than language modelling.
_TASK_HEADS = (
    "ForSequenceClassification",
    "ForTokenClassification",
    "ForQuestionAnswering",
    "ForMultipleChoice",
    "ForMaskedLM",
)
_DTYPES = {
    "float32": torch.float32,
    "fp32": torch.float32,
    "bfloat16": torch.bfloat16,
    "bf16": torch.bfloat16,
    "float16": torch.float16,
    "fp16": torch.float16,
}
_DECODER_ONLY = "this library serves decoder-only causal language models (e.g. llama, gpt_neox, qwen2)"


class ModelNotFoundError(ModelLoadError, FileNotFoundError):
    """The model is neither a local folder nor available in the local Hugging Face cache."""


class UnsafeCheckpointError(ModelLoadError):
    """The checkpoint is stored as a pickle, which we refuse to load."""


class DeviceUnavailableError(ConfigError, RuntimeError):
    """The requested device (e.g. cuda) is not present on this machine."""


# ------------------------------------------------------------------------------------ device, dtype
def _launched_gpu() -> torch.device:
    """'cuda' for this process: under `accelerate launch` / torchrun (LOCAL_RANK set) the process's own GPU,
    so that data-parallel ranks do not all load onto the first one."""
    local_rank = os.environ.get("LOCAL_RANK")
    if local_rank is not None and local_rank.isdigit() and torch.cuda.device_count() > 1:
        return torch.device("cuda", int(local_rank) % torch.cuda.device_count())
    return torch.device("cuda")


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """'auto' picks cuda, then mps, then cpu; an explicit device that is not available raises. Under a
    multi-process launch (LOCAL_RANK), 'auto' and a bare 'cuda' mean this process's own GPU."""
    if isinstance(device, torch.device):
        dev = device
    elif device == "auto":
        if torch.cuda.is_available():
            return _launched_gpu()
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    else:
        try:
            dev = torch.device(device)
        except (RuntimeError, TypeError) as err:
            raise ConfigError(f"unknown device {device!r}; use auto, cpu, cuda, cuda:N or mps.") from err
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise DeviceUnavailableError(
                f"device {str(device)!r} requested but CUDA is not available on this machine; pass "
                "--device cpu (device='cpu'), or auto to use the best device present."
            )
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise DeviceUnavailableError(
                f"device {str(dev)!r} requested but this machine has {torch.cuda.device_count()} CUDA "
                "device(s); pass --device cuda (the first one) or another index."
            )
        if dev.index is None:
            dev = _launched_gpu()
    if dev.type == "mps" and not _mps_available():
        raise DeviceUnavailableError(
            f"device {str(device)!r} requested but MPS is not available on this machine; pass --device cpu."
        )
    return dev


def _mps_available() -> bool:
    return getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()


def resolve_dtype(dtype: str | torch.dtype = "auto", device: str | torch.device = "cpu") -> torch.dtype:
    """'auto' is bfloat16 on a GPU that supports it and float32 elsewhere."""
    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype == "auto":
        dev = resolve_device(device)
        if dev.type == "cuda" and torch.cuda.is_bf16_supported():
            return torch.bfloat16
        return torch.float32
    if dtype not in _DTYPES:
        raise ConfigError(f"unknown dtype {dtype!r}; use auto, float32, bfloat16 or float16.")
    return _DTYPES[dtype]


def input_device(model: torch.nn.Module) -> torch.device:
    """The device of the model's input embeddings: where input ids must go (also for a sharded model)."""
    try:
        return model.get_input_embeddings().weight.device
    except (AttributeError, NotImplementedError):
        return next(model.parameters()).device


def check_token_range(sequences: Sequence[Sequence[int]], size: int, what: str, fix: str) -> None:
    """A `DataError` naming the first sequence with a token id outside ``0..size-1``, and the fix."""
    for i, seq in enumerate(sequences):
        if len(seq) and not (min(seq) >= 0 and max(seq) < size):
            bad = next(t for t in seq if not 0 <= t < size)
            raise DataError(f"{what} {i} holds token id {bad}, outside the vocabulary (0..{size - 1}); {fix}")


def check_token_ids(model: torch.nn.Module, sequences: Sequence[Sequence[int]], what: str) -> None:
    """`check_token_range` against the model's embedding table (nothing to check without one)."""
    try:
        rows = int(model.get_input_embeddings().weight.shape[0])
    except (AttributeError, NotImplementedError):
        return
    check_token_range(sequences, rows, what, "pass ids from this model's tokenizer.")


# ------------------------------------------------------------------------------------------ handle
@dataclass(frozen=True, eq=False)
class LanguageModel:
    """A causal LM with its tokenizer: the one handle that every package takes.

    Load one with `load_lm(path_or_hub_id)`, or wrap objects already in memory with
    `LanguageModel(model, tokenizer)`. Device, dtype, pad id, EOS ids and chat template are read from the
    model and tokenizer when asked, so they follow `lm.model.to(...)`.
    """

    model: PreTrainedModel = field(repr=False)
    tokenizer: PreTrainedTokenizerBase = field(repr=False)
    name: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.model, torch.nn.Module) or not callable(getattr(self.model, "forward", None)):
            raise TypeError(
                f"LanguageModel.model must be a causal LM (a torch module), got {type(self.model).__name__}."
            )
        if isinstance(self.tokenizer, (str, os.PathLike)) or not callable(self.tokenizer):
            raise TypeError(
                "LanguageModel.tokenizer must be a Hugging Face tokenizer, got "
                f"{type(self.tokenizer).__name__}; load one with load_lm(path) or AutoTokenizer."
            )
        if not self.name:
            config = getattr(self.model, "config", None)
            name = getattr(config, "_name_or_path", "") or type(self.model).__name__
            object.__setattr__(self, "name", str(name))

    @property
    def device(self) -> torch.device:
        """Where input ids go: the device of the input embeddings."""
        return input_device(self.model)

    @property
    def dtype(self) -> torch.dtype:
        """The dtype of the model's weights."""
        dtype = getattr(self.model, "dtype", None)
        return dtype if isinstance(dtype, torch.dtype) else next(self.model.parameters()).dtype

    @property
    def eos_ids(self) -> frozenset[int]:
        """Every end-of-sequence id: the tokenizer's and the generation config's (which may be a list)."""
        ids: set[int] = set()
        if self.tokenizer.eos_token_id is not None:
            ids.add(int(self.tokenizer.eos_token_id))
        value = getattr(getattr(self.model, "generation_config", None), "eos_token_id", None)
        if isinstance(value, int):
            ids.add(value)
        elif isinstance(value, (list, tuple)):
            ids.update(int(v) for v in value)
        if not ids:
            raise ModelLoadError(
                f"{self.name}: neither the tokenizer nor the generation config defines an end-of-sequence "
                "token; set tokenizer.eos_token so that generation can end."
            )
        return frozenset(ids)

    @property
    def pad_id(self) -> int:
        """The id that fills batch padding: the tokenizer's pad token, else the smallest EOS id.

        Padded positions are always masked out, so the choice never changes a result; it only has to be
        a valid id. This is the one place the rule is written.
        """
        if self.tokenizer.pad_token_id is not None:
            return int(self.tokenizer.pad_token_id)
        return min(self.eos_ids)

    @property
    def chat_template(self) -> str | None:
        """The tokenizer's chat template, or None if it has none."""
        return getattr(self.tokenizer, "chat_template", None) or None

    def encode(self, text: str, *, add_special_tokens: bool = True) -> list[int]:
        """Token ids of `text` (with the tokenizer's bos etc. unless `add_special_tokens=False`)."""
        return list(self.tokenizer(text, add_special_tokens=add_special_tokens)["input_ids"])

    def decode(self, ids: Sequence[int], *, skip_special_tokens: bool = True) -> str:
        """Text of token `ids` (special tokens such as EOS dropped unless `skip_special_tokens=False`)."""
        return self.tokenizer.decode(list(ids), skip_special_tokens=skip_special_tokens)


def require_lm(value: object, what: str = "model") -> LanguageModel:
    """`value` if it is a `LanguageModel`, else a TypeError that says how to make one."""
    if isinstance(value, LanguageModel):
        return value
    pair = " (a (model, tokenizer) pair)" if isinstance(value, tuple) else ""
    raise TypeError(
        f"{what} must be a reprokit.lm.LanguageModel, got {type(value).__name__}{pair}; load one with "
        "reprokit.lm.load_lm(path_or_hub_id) or wrap a model and its tokenizer as "
        "LanguageModel(model, tokenizer)."
    )


# ----------------------------------------------------------------------------------------- loading
def load_lm(
    name_or_path: str | os.PathLike[str],
    *,
    dtype: str | torch.dtype = "auto",
    device: str | torch.device = "auto",
    revision: str | None = None,
    tokenizer: str | os.PathLike[str] | None = None,
    device_map: str | dict[str, Any] | None = None,
) -> LanguageModel:
    """Load a decoder-only causal LM (eval mode) and its tokenizer; safetensors only, never remote code.

    `name_or_path` is a local folder or a hub id (found in the local cache when offline); `tokenizer`
    loads the tokenizer from another folder or hub id. `device_map` (e.g. "auto") places the layers over
    every visible GPU (and the CPU if they do not fit) with accelerate, for a model too large for one
    device; `device` must then stay "auto". Everything that can be checked before the weights
    are read (device, files, config, tokenizer) is checked first; each refusal is a `ModelLoadError` (or
    `ConfigError` for device and dtype) whose message names the problem and the fix.
    """
    if device_map is not None:
        if not isinstance(device_map, (str, dict)):
            raise ConfigError(
                f"device_map must be a string such as 'auto' or a dict of module -> device, got "
                f"{type(device_map).__name__}."
            )
        if not (isinstance(device, str) and device == "auto"):
            raise ConfigError(
                f"pass either device ({device!r}) or device_map ({device_map!r}), not both; device_map "
                "places the model itself."
            )
    dev = resolve_device(device)
    torch_dtype = resolve_dtype(dtype, dev)
    display = str(name_or_path)
    name = display
    local = isinstance(name_or_path, os.PathLike) or looks_like_path(name)
    if local:
        folder = Path(name).expanduser()
        _check_local_folder(folder)
        name = str(folder)
    config = _read_config(name, revision=revision, local=local)
    _check_servable(display, config)
    tok_source = name if tokenizer is None else str(tokenizer)
    tok = _load_tokenizer(tok_source, revision=revision if tokenizer is None else None, model=display)
    model = _load_model(name, display, torch_dtype, revision=revision, local=local, device_map=device_map)
    rows = model.get_input_embeddings().weight.shape[0]
    if len(tok) > rows:
        raise ModelLoadError(
            f"the tokenizer from {tok_source} has {len(tok)} tokens but {display}'s embedding has {rows} "
            "rows, so it is not this model's tokenizer; pass the tokenizer the model was trained with "
            "(tokenizer=PATH_OR_ID)."
        )
    if device_map is None:
        model.to(dev)
    model.eval()
    where = dev if device_map is None else getattr(model, "hf_device_map", device_map)
    logger.info("loaded %s (%s, %s)", display, torch_dtype, where)
    return LanguageModel(model, tok, name=display)


def looks_like_path(name: str) -> bool:
    """Whether `name` means a local path rather than a hub id (``owner/name``): it exists, starts with
    ``.``, ``/`` or ``~``, or has more than one separator. The one rule every loader and check uses."""
    if name.startswith((".", "/", "~")) or Path(name).exists():
        return True
    return os.sep in name and name.count("/") != 1


def _check_local_folder(path: Path) -> None:
    """The folder exists and holds config.json and readable safetensors weights (never a pickle)."""
    if not path.exists():
        raise ModelNotFoundError(
            f"model path {str(path)!r} does not exist; pass an existing folder or a hub id."
        )
    if path.is_file():
        if path.suffix in PICKLE_SUFFIXES:
            raise UnsafeCheckpointError(
                f"{path} is a pickle checkpoint; we only load safetensors. Convert it once in a trusted "
                "environment (load it and call model.save_pretrained(folder, safe_serialization=True))."
            )
        raise ModelNotFoundError(
            f"{path} is a file; pass the folder that holds config.json and *.safetensors."
        )
    if not (path / "config.json").exists():
        raise ModelNotFoundError(
            f"{path} holds no model (no config.json); pass a folder written by save_pretrained."
        )
    weights = sorted(path.glob("*.safetensors"))
    if not weights:
        pickles = [p.name for p in path.iterdir() if p.suffix in PICKLE_SUFFIXES]
        if pickles:
            raise UnsafeCheckpointError(
                f"{path} stores its weights as pickle ({', '.join(sorted(pickles))}); "
                "we only load safetensors. Convert once in a trusted environment with "
                "save_pretrained(..., safe_serialization=True)."
            )
        raise ModelNotFoundError(f"{path} has a config.json but no *.safetensors weights.")
    index = path / "model.safetensors.index.json"
    if index.exists():
        try:
            shards = set(json.loads(index.read_text())["weight_map"].values())
        except (ValueError, KeyError, TypeError, AttributeError) as err:
            raise ModelLoadError(
                f"{index} is not a valid safetensors index ({err}); save the model again."
            ) from err
        missing = sorted(s for s in shards if not (path / s).is_file())
        if missing:
            raise ModelLoadError(
                f"{path} lacks weight shard(s) {', '.join(missing)} listed in {index.name}; copy or download "
                "the missing files."
            )
    for file in weights:
        _check_safetensors(file)


def _check_safetensors(file: Path) -> None:
    """Read the header of one safetensors file: a corrupt or truncated file fails here, by name."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(file, "pt") as f:
            f.keys()
    except (SafetensorError, OSError) as err:
        raise ModelLoadError(
            f"{file} is corrupt or truncated ({err}); download or save the model again."
        ) from err


def _read_config(name: str, *, revision: str | None, local: bool) -> dict[str, Any]:
    """config.json as a dict, read without instantiating anything."""
    if local:
        path = Path(name) / "config.json"
        try:
            config = json.loads(path.read_text())
        except ValueError as err:
            raise ModelLoadError(f"{path} is not valid JSON ({err}); save the model again.") from err
        if not isinstance(config, dict):
            raise ModelLoadError(f"{path} does not hold a JSON object; save the model again.")
        return config
    from transformers import PretrainedConfig

    try:
        return PretrainedConfig.get_config_dict(name, revision=revision)[0]
    except OSError as err:
        raise _not_found(name, err) from err


def _not_found(name: str, err: Exception) -> ModelNotFoundError:
    return ModelNotFoundError(
        f"{name!r} not found locally; pass a local path or set HF_HOME to a cache that holds it "
        f"(offline={os.environ.get('HF_HUB_OFFLINE', '0')}). Underlying error: {error_summary(err)}"
    )


def _check_servable(name: str, config: dict[str, Any]) -> None:
    """Refuse, before any weight is read, what is not a decoder-only causal LM or needs custom code."""
    import transformers
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING
    from transformers.models.auto.modeling_auto import (
        MODEL_FOR_CAUSAL_LM_MAPPING,
        MODEL_FOR_CAUSAL_LM_MAPPING_NAMES,
        MODEL_FOR_MASKED_LM_MAPPING_NAMES,
    )

    model_type = config.get("model_type")
    # CONFIG_MAPPING also holds the types a package registers at run time (AutoConfig.register, e.g. on
    # `import efficientllm`): their code is an installed package's, never the model repository's.
    known = bool(model_type) and model_type in CONFIG_MAPPING
    archs = [str(a) for a in config.get("architectures") or []]
    what = f"{name} (model type {model_type!r}" + (f", saved as {', '.join(archs)})" if archs else ")")
    if not known and config.get("auto_map"):
        classes = ", ".join(f"{k} -> {v}" for k, v in dict(config["auto_map"]).items())
        raise ModelLoadError(
            f"{what} needs code shipped with the model (config.json auto_map: {classes}); transformers "
            f"{transformers.__version__} does not implement this architecture, and this library never runs "
            "code from a model repository. Use a checkpoint of an architecture that transformers implements."
        )
    if not model_type:
        raise ModelLoadError(
            f"{name}: config.json has no model_type; pass a folder written by save_pretrained."
        )
    if not known:
        raise ModelLoadError(
            f"{what}: transformers {transformers.__version__} does not know this model type; upgrade "
            "transformers or use a supported architecture (a type that a package registers, such as "
            "'efficientllm', needs that package imported first)."
        )
    if config.get("is_encoder_decoder"):
        raise ModelLoadError(
            f"{what} is an encoder-decoder model; {_DECODER_ONLY}. Pass a decoder-only causal LM."
        )
    if model_type in MODEL_FOR_MASKED_LM_MAPPING_NAMES and not config.get("is_decoder"):
        raise ModelLoadError(
            f"{what} is an encoder-only (masked language) model: it cannot generate text or score it left "
            f"to right; {_DECODER_ONLY}. Pass a decoder-only causal LM."
        )
    causal = model_type in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES or (
        CONFIG_MAPPING[model_type] in MODEL_FOR_CAUSAL_LM_MAPPING  # also the models registered at run time
    )
    if not causal:
        raise ModelLoadError(
            f"{what} has no causal language-model class in transformers; {_DECODER_ONLY}. Pass a "
            "decoder-only causal LM."
        )
    if archs and all(a.endswith(_TASK_HEADS) for a in archs):
        raise ModelLoadError(
            f"{what} was saved with a task head, not a language-model head; pass a causal LM checkpoint "
            "(e.g. one saved as *ForCausalLM)."
        )


def load_tokenizer(source: str | os.PathLike[str], *, revision: str | None = None) -> PreTrainedTokenizerBase:
    """A tokenizer alone (e.g. the one a transcript's token ids come from), with `load_lm`'s checks."""
    return _load_tokenizer(str(source), revision=revision, model=None)


def _load_tokenizer(source: str, *, revision: str | None, model: str | None) -> PreTrainedTokenizerBase:
    """The tokenizer from `source`: the folder or id of `model`, or one named on its own."""
    from transformers import AutoTokenizer, PreTrainedTokenizerFast

    if model is None:
        label, fix = "", "pass a folder or hub id that holds a tokenizer (tokenizer.json)"
    else:
        own = Path(model).expanduser() == Path(source).expanduser()  # the model's own folder or id
        label = "" if own else f" for {model}"
        fix = (
            "save the model's tokenizer there (tokenizer.save_pretrained(folder)) or load it from another "
            "folder or hub id with tokenizer=PATH_OR_ID"
        )
    path = Path(source).expanduser()
    if path.is_dir():
        if not any((path / f).is_file() for f in TOKENIZER_FILES):
            raise ModelLoadError(f"{path} has no tokenizer files (e.g. tokenizer.json){label}; {fix}.")
        source = str(path)
    elif path.is_file():
        raise ModelNotFoundError(
            f"tokenizer {source!r} is a file; pass the folder that holds it, or a hub id."
        )
    elif looks_like_path(source):
        raise ModelNotFoundError(
            f"tokenizer path {source!r} does not exist; pass an existing folder or a hub id."
        )
    try:
        with _quiet_transformers():
            if path.is_dir() and _declares_generic_fast_tokenizer(path):
                return PreTrainedTokenizerFast.from_pretrained(source)
            return AutoTokenizer.from_pretrained(source, revision=revision, trust_remote_code=False)
    except OSError as err:
        raise ModelNotFoundError(
            f"no tokenizer{label} found in {source!r}: {error_summary(err)}; {fix}."
        ) from err
    except Exception as err:  # any failure here is about the files given: say which, and the fix
        if "trust_remote_code" in str(err):
            raise ModelLoadError(
                f"the tokenizer in {source} needs code shipped with the model, and this library never runs "
                f"code from a model repository; {fix} (a tokenizer.json that transformers reads natively)."
            ) from err
        raise ModelLoadError(
            f"could not load the tokenizer{label} from {source}: {error_summary(err)}; {fix}."
        ) from err


def _declares_generic_fast_tokenizer(folder: Path) -> bool:
    """Whether the folder's tokenizer is saved as a plain fast tokenizer, fully defined by tokenizer.json.

    `AutoTokenizer` replaces that declaration by the model type's own class for some types (qwen2, phi3:
    transformers distrusts their hub configs), which re-tokenizes differently from the saved tokenizer,
    e.g. for a `reprokit.tokenizer` BPE saved next to a tiny qwen2 model; the file says what it is.
    """
    try:
        declared = json.loads((folder / "tokenizer_config.json").read_text()).get("tokenizer_class")
    except (OSError, ValueError, AttributeError):
        return False
    generic = ("TokenizersBackend", "PreTrainedTokenizerFast")
    return declared in generic and (folder / "tokenizer.json").is_file()


def _load_model(
    name: str,
    display: str,
    dtype: torch.dtype,
    *,
    revision: str | None,
    local: bool,
    device_map: str | dict[str, Any] | None = None,
) -> PreTrainedModel:
    """The weights, read into the model class; any key or shape that does not fit the config is refused."""
    from safetensors import SafetensorError
    from transformers import AutoModelForCausalLM

    try:
        with _quiet_transformers():
            model, info = AutoModelForCausalLM.from_pretrained(
                name,
                dtype=dtype,
                revision=revision,
                use_safetensors=True,
                trust_remote_code=False,
                output_loading_info=True,
                ignore_mismatched_sizes=True,  # collected below and refused, with names and shapes
                device_map=device_map,
            )
    except SafetensorError as err:
        raise ModelLoadError(
            f"the weights of {display} are corrupt or truncated ({err}); download or save them again."
        ) from err
    except OSError as err:
        if local:
            raise ModelNotFoundError(f"could not load a model from {name}: {error_summary(err)}") from err
        text = str(err).lower()
        if "safetensors" in text and ("not found" in text or "does not appear" in text):
            raise UnsafeCheckpointError(
                f"{display!r} has no safetensors weights; we refuse pickle checkpoints. Pick a revision with "
                "safetensors or convert the weights in a trusted environment."
            ) from err
        raise _not_found(display, err) from err
    problems = []
    mismatched = sorted(info.get("mismatched_keys") or [])
    if mismatched:
        key, saved, expected = mismatched[0]
        problems.append(
            f"{len(mismatched)} tensors have other shapes than config.json implies (e.g. {key}: "
            f"{tuple(saved)} in the file, {tuple(expected)} from the config)"
        )
    for kind, found in (("missing from", "missing_keys"), ("not in the model but in", "unexpected_keys")):
        keys = sorted(info.get(found) or [])
        if keys:
            problems.append(f"{len(keys)} tensors are {kind} the weights (e.g. {', '.join(keys[:3])})")
    if problems:
        raise ModelLoadError(
            f"the weights of {display} do not fit its config.json: {'; '.join(problems)}. The config belongs "
            "to another model (size, layers or vocabulary); save config and weights together again."
        )
    return model


@contextlib.contextmanager
def _quiet_transformers() -> Iterator[None]:
    """Silence transformers' load report while loading: what matters in it is raised as our own error."""
    from transformers.utils import logging as hf_logging

    level = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        yield
    finally:
        hf_logging.set_verbosity(level)
