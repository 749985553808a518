"""The errors users see. The library raises these; the CLI turns them into one line and exit 1."""

import os
import sys

import click


class SynthgenError(Exception):
    """Base class: the message says what is wrong and what to do."""


class ModelError(SynthgenError):
    """Unknown model name, missing model package, broken model directory."""


class AdapterError(SynthgenError):
    """Missing or corrupt LoRA adapter directory."""


class EngineError(SynthgenError):
    """The inference engine is missing or failed."""


class InputError(SynthgenError):
    """A bad value given by the user (empty prompt, n < 1, ...)."""


def utf8(raw: bytes, what: str) -> str:
    """A file's bytes as text, or the one-line error that names the first byte that is not UTF-8."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise InputError(f"{what} is not UTF-8 text (byte {e.start + 1}: {raw[e.start:e.start + 1]!r}): "
                         "save it as UTF-8") from None


def parse_yaml(raw: bytes, what: str):
    """A YAML file's bytes parsed, or the one-line error (not UTF-8, or not YAML at line N)."""
    import yaml

    try:
        return yaml.safe_load(utf8(raw, what))
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark else ""
        raise InputError(f"{what} is not valid YAML{at}: {getattr(e, 'problem', e)}") from None


# what Ctrl-C leaves behind, per command: the generators' files are append-only and resumable
INTERRUPTED = {
    "generate": "interrupted: the records written so far are kept; run the same command with --resume to continue",
    "biographies": "interrupted: the records written so far are kept; run the same command with --resume to continue",
}


class OneLineErrors(click.Group):
    """Turns SynthgenError into one line on stderr and exit 1: users never see a traceback. Ctrl-C says
    what was kept (exit 130); a closed stdout pipe (`synthgen report X | head`) ends quietly with exit 0."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except SynthgenError as e:
            raise click.ClickException(str(e)) from None
        except KeyboardInterrupt:
            click.echo(INTERRUPTED.get(ctx.invoked_subcommand, "interrupted"), err=True)
            sys.exit(130)
        except BrokenPipeError:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit's flush
            sys.exit(0)
