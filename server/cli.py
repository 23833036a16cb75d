"""The `torchloom` command: the compiler's commands plus `train` (and, later, `serve`)."""

from __future__ import annotations

from graph_compiler.cli import build_parser


def main(argv: list[str] | None = None) -> int:
    from .engine.cli import add_train_command

    parser, sub = build_parser()
    add_train_command(sub)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    raise SystemExit(main())
