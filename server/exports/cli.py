"""`torchloom generate RUN_DIR --prompt TEXT`: a sampled continuation from a language-model run,
streamed to stdout as it is sampled (weights read safely: model.safetensors, or a checkpoint with
torch.load(weights_only=True))."""

from __future__ import annotations

import sys
from pathlib import Path

from graph_compiler.cli import pipe_safe

from ..engine.sampling import MAX_NEW_TOKENS


def add_generate_command(sub) -> None:
    p = sub.add_parser("generate", help="sample a continuation from a language-model run")
    p.add_argument("run_dir", metavar="RUN_DIR", help="the run folder (torchloom train --out)")
    p.add_argument("--prompt", required=True, help="the text to continue")
    p.add_argument(
        "--max-new-tokens", type=int, default=200, help=f"tokens to sample (1..{MAX_NEW_TOKENS})"
    )
    p.add_argument("--temperature", type=float, default=1.0, help="0: greedy (default 1)")
    p.add_argument("--top-k", type=int, default=None, help="sample among the k most likely")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--allow-custom-code",
        action="store_true",
        help="run CustomLayer code of the run's graph (trusted runs only)",
    )
    p.set_defaults(func=pipe_safe(cmd_generate))


def cmd_generate(args) -> int:
    from ..engine.generate import GenerationError, SampleSettings
    from ..errors import ApiError
    from .artifacts import build_run_model
    from .language_model import folder_run_files, language_model

    settings = SampleSettings(args.max_new_tokens, args.temperature, args.top_k, args.seed)
    try:
        settings.checked()
        files = folder_run_files(Path(args.run_dir))
        lm = language_model(build_run_model(files, allow_custom_code=args.allow_custom_code))
        for piece in lm.start(args.prompt, settings).run():
            sys.stdout.write(piece)
            sys.stdout.flush()
    except (ApiError, GenerationError) as exc:
        print(f"torchloom: {getattr(exc, 'message', exc)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # Ctrl-C: stop sampling, keep what was printed
        sys.stdout.write("\n")
        return 130
    if sys.stdout.isatty():  # end the line on a terminal; piped, the output is the continuation
        sys.stdout.write("\n")
    return 0
