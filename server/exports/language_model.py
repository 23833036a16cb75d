"""A run's model as a language model: its tokenizer (tokenizer.json in the run folder), the
context it trained on (the block size: the data's sequence length T) and which output holds the
next-token logits. Shared by `torchloom generate`, the playground and code.zip's sample.py."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..engine.data.tokenizer import Tokenizer, TokenizerError
from ..engine.generate import Generation, GenerationError, Progress, SampleSettings, prompt_ids
from ..errors import ApiError
from .artifacts import RunFiles, RunModel, loss_infos, run_files
from .predict import head_of

TOKENIZER_FILE = "tokenizer.json"
SLICE_SECONDS = 0.1  # the server samples this long per analysis task, then streams the pieces


@dataclass(frozen=True)
class LanguageModel:
    run: RunModel
    tokenizer: Tokenizer
    block_size: int
    output: int  # the model output holding the (B, T, V) logits

    def generation(self, settings: SampleSettings, progress: Progress) -> Generation:
        return Generation(
            self.run.model, self.tokenizer, settings, self.block_size, progress, self.output
        )

    def start(self, prompt: str, settings: SampleSettings) -> Generation:
        return self.generation(settings, Progress(prompt_ids(self.tokenizer, prompt)))


@dataclass(frozen=True)
class LanguageModelFacts:
    """What generation needs beside the model, known without building it."""

    tokenizer: Tokenizer
    block_size: int  # the sequence length T it trained on (its position table's size)
    output: int


def language_model_facts(files: RunFiles, analysis, interface) -> LanguageModelFacts:
    """The run's facts as a language model; GenerationError saying what was expected."""
    data = analysis.data
    run = f"run {files.run_id}"
    if data is None or data.task != "language_model":
        task = data.task if data is not None else "no data"
        raise GenerationError(
            f"{run} is not a language-model run (its data's task is {task}): generation needs a "
            "Dataset of token ids whose targets are the next ids (task language_model)"
        )
    if tuple(interface.inputs) != ("x",):
        raise GenerationError(
            f"{run}'s model reads {', '.join(interface.inputs)}: generation feeds it the "
            "token ids x only"
        )
    path = files.folder / TOKENIZER_FILE
    if not path.is_file():
        raise GenerationError(f"{run} has no {TOKENIZER_FILE} in its folder to decode with")
    try:
        tokenizer = Tokenizer.load(path)
    except TokenizerError as exc:
        raise GenerationError(f"{run}'s {TOKENIZER_FILE}: {exc}") from None
    _, output = head_of(loss_infos(analysis, interface))
    return LanguageModelFacts(tokenizer, int(data.x_shape[-1]), output)


def language_model(rm: RunModel) -> LanguageModel:
    """The run as a language model; GenerationError saying what was expected otherwise."""
    facts = language_model_facts(rm.files, rm.analysis, rm.interface)
    return LanguageModel(rm, facts.tokenizer, facts.block_size, facts.output)


def generation_slice(lm: LanguageModel, body: dict) -> dict:
    """One slice of a generation the server streams: body {prompt, settings, progress (None to
    start)} → {pieces, progress (to continue from), done}."""
    settings = SampleSettings(**body["settings"])
    progress = body.get("progress")
    if progress is None:
        g = lm.start(body["prompt"], settings)
    else:
        g = lm.generation(settings, progress)
    pieces = list(g.run(body.get("seconds", SLICE_SECONDS)))
    return {"pieces": pieces, "progress": g.progress, "done": g.done}


def folder_run_files(folder: Path) -> RunFiles:
    """RunFiles of a run folder that `torchloom train` wrote (no server database): finished when
    it holds model.safetensors, else stopped (its latest checkpoint)."""
    if not folder.is_dir():
        raise ApiError(404, "no_run_folder", f"{folder} is not a run folder")
    status = "finished" if (folder / "model.safetensors").is_file() else "stopped"
    return run_files({"id": folder.name, "status": status, "checkpoint": None}, folder)
