"""Errors that castbench reports to the user as one line and a non-zero exit status, and how a
failed measurement is told apart: out of memory or another error."""


class CastbenchError(Exception):
    """A problem with the user's input or environment, reported without a traceback.

    ``exit_code`` follows the CLI convention: 2 for bad input (usage), 1 for a failure
    while doing the work.
    """

    exit_code = 1


class UsageError(CastbenchError):
    """Bad input from the user: unknown names, impossible sizes, unreadable files."""

    exit_code = 2


# Substrings by which TensorFlow, XLA, JAX and Python say a step ran out of memory.
OOM_MARKERS = ("ResourceExhausted", "RESOURCE_EXHAUSTED", "Out of memory", "OutOfMemory",
               "out of memory", "MemoryError", "OOM")  # fmt: skip
MESSAGE_LIMIT = 300  # a row's error cell holds one line of at most this many characters


def first_line(text: str) -> str:
    """The first non-blank line of ``text``, cut to ``MESSAGE_LIMIT`` characters."""
    lines = text.strip().splitlines()
    return lines[0][:MESSAGE_LIMIT] if lines else ""


def failure_status(text: str) -> str:
    """``oom`` when ``text`` says the work ran out of memory, else ``error``."""
    return "oom" if any(marker in text for marker in OOM_MARKERS) else "error"


def classify_failure(exc: BaseException) -> tuple[str, str]:
    """(status, first line of the message) of a failed measurement or training run."""
    text = f"{type(exc).__name__}: {exc}"
    return failure_status(text), first_line(text)
