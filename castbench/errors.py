"""Errors that castbench reports to the user as one line and a non-zero exit status."""


class CastbenchError(Exception):
    """A problem with the user's input or environment, reported without a traceback.

    ``exit_code`` follows the CLI convention: 2 for bad input (usage), 1 for a failure
    while doing the work.
    """

    exit_code = 1


class UsageError(CastbenchError):
    """Bad input from the user: unknown names, impossible sizes, unreadable files."""

    exit_code = 2
