"""Errors the user can fix: bad input, config or data.

`InterlatError` is a `click.ClickException` with exit code 2, so every command turns
it into one line on stderr (naming the file, row and field) and exit status 2, the way
click reports its own usage errors. Unexpected exceptions keep their traceback.
"""

import click


class InterlatError(click.ClickException):
    """A problem with the user's input; the message names the file, row and field."""

    exit_code = 2

    def format_message(self) -> str:
        return " ".join(self.message.split("\n"))
