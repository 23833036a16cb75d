"""The `torchloom` command: the compiler's commands plus `train`, `serve` and `generate`."""

from __future__ import annotations

from graph_compiler.cli import build_parser


def add_serve_command(sub) -> None:
    p = sub.add_parser(
        "serve", help="start the web app (Flask + Socket.IO, served by gunicorn with gevent)"
    )
    p.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=5000)
    p.add_argument("--data-dir", default=".torchloom", help="projects, datasets, runs")
    p.add_argument("--gpus", default=None, help="GPU indices to use, e.g. 0,1 (default: all)")
    p.add_argument("--cpu-slots", type=int, default=1, help="CPU runs at a time")
    p.add_argument(
        "--cpu-threads",
        type=int,
        default=None,
        help="threads per CPU run (default: the cores but one, shared by the CPU slots)",
    )
    p.add_argument(
        "--analysis-workers",
        type=int,
        default=None,
        help="processes answering validation (default: the cores, at most 4; 0: in the web "
        "process)",
    )
    p.add_argument(
        "--analysis-timeout",
        type=float,
        default=120.0,
        help="seconds an analysis task (validation, a model build, an export) may take before "
        "its process is stopped (default 120)",
    )
    p.add_argument(
        "--min-free-gb",
        type=float,
        default=1.0,
        help="refuse to start runs when the data dir's disk has less free space (default 1)",
    )
    p.add_argument(
        "--run-quota-gb",
        type=float,
        default=50.0,
        help="most space all run folders together may take (default 50)",
    )
    p.add_argument("--database-url", default=None, help="SQLAlchemy URL (default: SQLite)")
    p.add_argument("--redis-url", default=None, help="Socket.IO message queue for scale-out")
    p.add_argument(
        "--allow-custom-code",
        action="store_true",
        help="let CustomLayer/CustomLoss code run (in worker processes only)",
    )
    p.add_argument(
        "--no-runner",
        action="store_true",
        help="serve API and sockets but run no trainings: for every process but one when "
        "several share --database-url and --redis-url",
    )
    p.add_argument("--no-token", action="store_true", help="no token (loopback only)")
    p.add_argument("--token", default=None, help="use this token instead of a random one")
    p.set_defaults(func=cmd_serve)


def cmd_serve(args) -> int:
    import os
    import sys
    from pathlib import Path

    from .config import LOOPBACK, ServerConfig
    from .serving import exec_server

    gpus = tuple(int(g) for g in args.gpus.split(",")) if args.gpus else None
    try:
        cfg = ServerConfig(
            data_dir=Path(args.data_dir),
            host=args.host,
            port=args.port,
            token=args.token,
            no_token=args.no_token,
            database_url=args.database_url,
            redis_url=args.redis_url,
            allow_custom_code=args.allow_custom_code,
            cpu_slots=args.cpu_slots,
            cpu_threads=args.cpu_threads,
            analysis_workers=(
                min(4, os.cpu_count() or 1)
                if args.analysis_workers is None
                else args.analysis_workers
            ),
            analysis_timeout=args.analysis_timeout,
            min_free_bytes=int(args.min_free_gb * 2**30),
            run_quota_bytes=int(args.run_quota_gb * 2**30),
            gpus=gpus,
            start_runner=not args.no_runner,
        ).resolved()
    except ValueError as exc:
        print(f"torchloom: {exc}", file=sys.stderr)
        return 2
    if args.host not in LOOPBACK:
        print(
            f"warning: serving on {args.host}: anyone who can reach it and has the token "
            "can train code on this machine",
            file=sys.stderr,
        )
    shown = "127.0.0.1" if args.host in ("0.0.0.0", "::") else args.host
    url = f"http://{shown}:{args.port}/"
    announce = f"torchloom is running: {url}?token={cfg.token}" if cfg.token else url
    # gunicorn with one gevent worker (server/serving.py); this process becomes its master
    exec_server(cfg, announce)
    return 0  # not reached: exec_server replaces this process


def main(argv: list[str] | None = None) -> int:
    from .engine.cli import add_train_command
    from .exports.cli import add_generate_command

    parser, sub = build_parser()
    add_train_command(sub)
    add_serve_command(sub)
    add_generate_command(sub)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    raise SystemExit(main())
