"""Server settings: one frozen object handed to create_app (no globals)."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field, replace
from pathlib import Path

LOOPBACK = ("127.0.0.1", "localhost", "::1")


@dataclass(frozen=True)
class ServerConfig:
    data_dir: Path = Path(".torchloom")
    host: str = "127.0.0.1"
    port: int = 5000
    token: str | None = None  # None: generated at start; "" only with no_token on loopback
    no_token: bool = False
    database_url: str | None = None  # default: SQLite (WAL) in data_dir
    redis_url: str | None = None
    allow_custom_code: bool = False
    cpu_slots: int = 1  # concurrent CPU runs
    cpu_threads: int | None = None  # threads per CPU run (None: the cores but one, shared)
    # processes answering /api/validate (0: in the web process); with allow_custom_code at
    # least one, so that user code never runs in the web process (server/analysis_pool.py)
    analysis_workers: int = 0
    # seconds one analysis-process task may take (a validation, a model build, a prediction,
    # an export); past it the process is killed and replaced, the request answered 422
    analysis_timeout: float = 120.0
    runs_per_gpu: int = 1
    gpus: tuple[int, ...] | None = None  # None: every visible GPU
    # request bodies, by what a route carries (server/api/common.py `body_limit`), refused
    # with 413 before they are read: uploads (each kind has its own bound below this one),
    # graph documents, predictions (one input), everything else (run start/stop, renames)
    max_request_bytes: int = 512 * 2**20
    max_document_bytes: int = 5 * 2**20
    max_predict_bytes: int = 2 * 2**20
    max_small_request_bytes: int = 64 * 2**10
    max_nodes: int = 5000
    step_emit_rate: float = 20.0  # step events per second per run sent to browsers
    allowed_hosts: tuple[str, ...] = ()  # extra Host names (besides loopback and the bind host)
    trusted_origins: tuple[str, ...] = ()  # extra browser origins (e.g. the vite dev server)
    # the run scheduler (worker processes, relays, recovery at start). Several server processes
    # sharing one database and one redis_url: exactly one runs it (the others pass --no-runner),
    # since each scheduler would mark the others' running runs interrupted at start
    start_runner: bool = True
    seed_examples: bool = True
    examples_dir: Path | None = None
    heartbeat_seconds: float = 2.0
    worker_timeout: float = 60.0  # no heartbeat for this long: the worker is declared hung
    # disk space: a run is not started (507) while the data dir's disk has less than this free
    # (a run writes checkpoints and every event; a full disk fails runs half-way)
    min_free_bytes: int = 2**30
    # the most all run folders of the data dir may hold together (checkpoints, weights): a
    # checkpoint that would exceed it fails its run, and no run starts while it is exceeded
    run_quota_bytes: int = 50 * 2**30
    extra: dict = field(default_factory=dict)

    def resolved(self) -> ServerConfig:
        """Fill in the generated token and derived defaults; validate the combination."""
        token = self.token
        if self.no_token:
            if self.host not in LOOPBACK:
                raise ValueError("--no-token is only allowed when binding to loopback")
            token = ""
        elif not token:
            token = secrets.token_urlsafe(24)  # 192 bits
        if self.min_free_bytes < 0 or self.run_quota_bytes <= 0:
            raise ValueError("--min-free-gb must be 0 or more and --run-quota-gb more than 0")
        if not (self.analysis_timeout > 0):  # also refuses NaN
            raise ValueError(
                f"--analysis-timeout must be a positive number of seconds, "
                f"got {self.analysis_timeout}"
            )
        data_dir = Path(self.data_dir).resolve()
        examples = self.examples_dir or Path(__file__).resolve().parent.parent / "examples"
        return replace(self, token=token, data_dir=data_dir, examples_dir=examples)

    @property
    def db_url(self) -> str:
        return self.database_url or f"sqlite:///{Path(self.data_dir) / 'torchloom.db'}"

    def host_names(self) -> set[str]:
        names = {"127.0.0.1", "localhost", "[::1]", self.host, *self.allowed_hosts}
        return {n.lower() for n in names}

    def origins(self) -> list[str]:
        out = []
        for name in sorted(self.host_names()):
            out += [f"http://{name}:{self.port}", f"https://{name}:{self.port}"]
        return out + list(self.trusted_origins)
