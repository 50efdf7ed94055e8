"""The one typed settings object: defaults < .env file < KB_* environment < explicit overrides.

Built at an entry point (CLI, service, app) and passed down; never read at import time.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, PydanticBaseSettingsSource, SettingsConfigDict

log = logging.getLogger(__name__)

# a service bound to every address is reached on the loopback one
WILDCARD_HOSTS = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}
LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}
# never taken from a .env file: a .env in whatever folder a command runs in could otherwise send the
# API token to a service of its choosing
ENVIRONMENT_ONLY = ("service_url", "api_token")
DEFAULT_QUERY_TASK = "Given a web search query, retrieve relevant passages that answer the query"


class _DotEnvWithout(PydanticBaseSettingsSource):
    """The .env file's values less the ``names`` that only the environment may set."""

    def __init__(self, source: PydanticBaseSettingsSource, names: tuple[str, ...]) -> None:
        super().__init__(source.settings_cls)
        self.source, self.names = source, names

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        values = self.source()
        for name in sorted(set(values) & set(self.names)):
            log.warning("ignoring KB_%s in .env: set it in the environment", name.upper())
        return {k: v for k, v in values.items() if k not in self.names}


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="KB_", env_file=".env", extra="ignore")

    # where everything the product writes goes (store, uploads, jobs, reports)
    data_dir: Path = Path("data")
    # where model weights live (gitignored); downloads land here
    models_dir: Path = Path("models")

    # embedding model: a registry name (see `kb models`) or a path to a GGUF file
    embed_model: str = "qwen3-embedding-0.6b"
    # recipe (query and document formats, pooling) for a GGUF given by path: e5, qwen3, bge-en, bge-zh,
    # bge-m3, mxbai, mean, cls, last; None: chosen by the file's architecture and pooling
    embed_recipe: str | None = None
    # where `kb model pull` downloads registry models from: Hugging Face (or the mirror HF_ENDPOINT
    # names) or ModelScope (at MODELSCOPE_DOMAIN, as the modelscope tools read it)
    model_hub: Literal["huggingface", "modelscope"] = "huggingface"
    hf_endpoint: str = Field(default="https://huggingface.co", validation_alias=AliasChoices("HF_ENDPOINT"))
    modelscope_domain: str = Field(
        default="www.modelscope.cn", validation_alias=AliasChoices("MODELSCOPE_DOMAIN")
    )
    # reranker: a registry name or a GGUF path; used only when a search asks for rerank
    rerank_model: str = "qwen3-reranker-0.6b"
    # Matryoshka cut of the embedding (None: the model's native dimension)
    dim: int | None = None
    # instruction for queries of instruction-aware models (Qwen3); documents are embedded bare
    query_task: str = DEFAULT_QUERY_TASK

    # Qdrant: embedded engine under data_dir when no URL is set, else a server or cluster
    qdrant_url: str | None = None
    qdrant_api_key: str | None = None
    # a CA bundle to verify a Qdrant server's TLS certificate (an https:// URL uses TLS)
    qdrant_ca_cert: Path | None = None
    collection: str = "kb"

    # engine: tokens per context (longest input), tokens per decode, sequences per decode
    n_ctx: int = Field(default=32768, ge=64)
    n_batch: int = Field(default=8192, ge=64)
    n_ubatch: int = Field(default=2048, ge=64)
    n_seq_max: int = Field(default=64, ge=1, le=256)
    # contexts that share one loaded model for ingest (each driven by its own thread)
    n_contexts: int = Field(default=0, ge=0, le=16)  # 0: 1 on CPU, 2 on GPU
    # pack inputs of up to stream_tokens tokens with one KV stream per sequence, so that no token
    # attends over its decode's other inputs: "auto" on CPU (measured faster there), "on", "off"
    kv_split: Literal["auto", "on", "off"] = "auto"
    stream_tokens: int = Field(default=512, ge=16)
    # CPU threads per context (0: llama.cpp's default)
    n_threads: int = Field(default=0, ge=0)
    # offload all layers to the GPU when the build can; False forces CPU
    gpu: bool = True

    # processes that parse files during ingest
    parse_workers: int = Field(default=2, ge=1, le=64)
    # seconds one file may take to parse (OCR included); past it the worker is killed, the file skipped
    parse_timeout_s: float = Field(default=1800.0, gt=0, le=86400, allow_inf_nan=False)
    # address space of one parse worker (and its OCR helper) in MB; past it the file is skipped (0: no cap)
    parse_memory_mb: int = Field(default=4096, ge=0)
    # files larger than this are skipped with the reason
    max_file_mb: int = Field(default=100, ge=1)
    # tokens of chunks gathered before one embed call and one write to the store
    embed_batch_tokens: int = Field(default=16384, ge=1)
    # OCR of PDF pages without readable text: "auto" (the pages that need it), "always" (every page), "off"
    ocr: Literal["auto", "off", "always"] = "auto"
    # seconds one page may take to render and OCR before it is skipped with a warning
    ocr_page_timeout_s: float = Field(default=120.0, gt=0, le=86400, allow_inf_nan=False)
    # pages OCR'd per file at most; the rest are reported as unreadable
    ocr_max_pages: int = Field(default=200, ge=0)
    # rows read per spreadsheet sheet or CSV file (empty ones included); the rest is reported, not indexed
    sheet_max_rows: int = Field(default=100_000, ge=1)

    # chunking (tokens of the embedding model's own tokenizer)
    # defaults chosen with `make eval` (README, "Choosing the defaults")
    chunk_tokens: int = Field(default=256, ge=16)
    chunk_overlap: int = Field(default=32, ge=0)
    # fuse the lexical (CJK-aware) sparse signal with the dense hits unless a search says otherwise
    hybrid: bool = True

    # `kb serve`: the one process owning the model and the store; the CLI and the app use it when it answers
    service_host: str = "127.0.0.1"
    service_port: int = Field(default=8765, ge=1, le=65535)
    # where clients look for it (None: derived from host and port)
    service_url: str | None = None
    # largest upload request the service accepts (all files together)
    upload_max_mb: int = Field(default=200, ge=1)
    # budgets of one request (bodies are refused with 413 past their cap, before they are parsed)
    body_max_kb: int = Field(default=64, ge=1)  # a JSON body (search, jobs, …)
    login_body_max_bytes: int = Field(default=2048, ge=256)  # a login needs no more
    embed_body_max_mb: int = Field(default=4, ge=1)  # a /v1/embeddings body
    query_max_chars: int = Field(default=2000, ge=16)  # one search query
    rerank_max_candidates: int = Field(default=50, ge=1, le=200)  # candidates one reranked search scores
    embed_max_inputs: int = Field(default=256, ge=1)  # inputs of one /v1/embeddings call
    embed_max_tokens: int = Field(default=65536, ge=64)  # tokens of all inputs of one call together
    # work in flight per kind of heavy request: this many run, as many again wait (KB_BUSY_WAITING),
    # the rest are answered 429 with Retry-After
    search_concurrency: int = Field(default=4, ge=1, le=64)
    answer_concurrency: int = Field(default=1, ge=1, le=16)  # answers generated at once (POST /ask)
    rerank_concurrency: int = Field(default=1, ge=1, le=16)
    embed_concurrency: int = Field(default=1, ge=1, le=16)
    upload_concurrency: int = Field(default=2, ge=1, le=16)
    login_concurrency: int = Field(default=2, ge=1, le=16)  # password hashes computed at once
    busy_waiting: int = Field(default=8, ge=0, le=1024)  # requests per kind that may wait for a slot
    # seconds a stop waits for requests in flight, then for the running ingest batch
    stop_grace_s: float = Field(default=5.0, gt=0, le=60, allow_inf_nan=False)
    # watch the source folders for changes ("on"/"off"; each source can be switched off on its own)
    watch: bool = True
    # seconds a source's folder must stay quiet after a change before it is synced
    watch_debounce_s: float = Field(default=2.0, gt=0)
    # seconds between full rescans of every watched source (for folders whose events never arrive)
    watch_rescan_s: float = Field(default=600.0, gt=0)
    # folders the service may ingest, separated by the OS path separator (empty: any folder, but
    # only an admin may ask when team access is on)
    ingest_roots: Annotated[list[Path], NoDecode] = Field(default_factory=list)

    # team access: "auto" is on when the service listens beyond localhost; "on"; "off"
    auth: Literal["auto", "on", "off"] = "auto"
    # users (salted password hashes, roles) and API tokens; default DATA_DIR/accounts.json
    accounts_file: Path | None = None
    # how long a browser login lasts
    session_hours: float = Field(default=12.0, gt=0, le=24 * 366, allow_inf_nan=False)
    # failed logins per user name from one address within the window before that pair waits it out;
    # an address past it (whatever the names) waits longer after each further failure
    login_failures_max: int = Field(default=5, ge=1)
    login_window_s: float = Field(default=300.0, gt=0, le=86400, allow_inf_nan=False)
    # the API token the CLI sends to the service (`kb token create NAME`)
    api_token: str | None = None

    # answers (`kb ask`, POST /ask, the Ask page): a local GGUF chat model (a registry name such as
    # qwen3-4b-instruct, or a path), or with llm_url an OpenAI-compatible endpoint and the model name it
    # serves; neither set: answers are off and kb stays a search engine
    llm_model: str | None = None
    llm_url: str | None = None
    llm_api_key: str | None = None
    # tokens of the chat context: the packed passages, the question and the answer share it
    llm_context: int = Field(default=8192, ge=512)
    # longest answer in tokens
    answer_max_tokens: int = Field(default=512, ge=16)
    # passages retrieved for an answer (then packed by score into what the context leaves)
    answer_passages: int = Field(default=8, ge=1, le=50)
    # below this best dense score (cosine) nothing relevant was found: the answer says so, no model call
    answer_min_score: float = Field(default=0.3, ge=-1.0, le=1.0)
    # an answer whose sentences with checkable claims are unsupported beyond this fraction is withheld
    answer_withhold: float = Field(default=0.5, ge=0.0, le=1.0)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (
            init_settings,
            env_settings,
            _DotEnvWithout(dotenv_settings, ENVIRONMENT_ONLY),
            file_secret_settings,
        )

    @field_validator("ingest_roots", mode="before")
    @classmethod
    def _split_roots(cls, value: object) -> object:
        if isinstance(value, str):
            return [Path(v) for v in value.split(os.pathsep) if v.strip()]
        return value

    @property
    def auth_enabled(self) -> bool:
        """Whether the service demands a login or a token."""
        if self.auth == "auto":
            return self.service_host not in LOOPBACK_HOSTS
        return self.auth == "on"

    @property
    def access(self) -> Literal["team", "local", "off"]:
        """How the service checks callers: team logins and tokens, the local token it writes to its data
        folder (team access off), or not at all (``KB_AUTH=off``)."""
        if self.auth_enabled:
            return "team"
        return "off" if self.auth == "off" else "local"

    @property
    def accounts_path(self) -> Path:
        return self.accounts_file or self.data_dir / "accounts.json"

    @property
    def store_dir(self) -> Path:
        return self.data_dir / "qdrant"

    @property
    def service_base_url(self) -> str:
        """``service_url``, or the address ``kb serve`` listens on (a wildcard bind is reached locally)."""
        if self.service_url:
            return self.service_url.rstrip("/")
        host = WILDCARD_HOSTS.get(self.service_host, self.service_host)
        return f"http://[{host}]:{self.service_port}" if ":" in host else f"http://{host}:{self.service_port}"


# The defaults of every setting, without reading the environment: the option records that components
# take (LoadOptions, ParseLimits, IngestLimits, ChunkSettings, EngineConfig) default to these and are
# built from a user's Settings by their ``from_settings``, so no default is written twice.
DEFAULTS = Settings.model_construct()
