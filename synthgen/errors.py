"""The errors users see. The library raises these; the CLI turns them into one line and exit 1."""


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
