"""The one exception type that reaches the user as a one-line message."""


class UserError(Exception):
    """Bad input or environment: the CLI prints ``error: <message>`` and exits 2.

    The message says what is wrong and what to do about it, on one line.
    """

    def __init__(self, message: str):
        super().__init__(" ".join(str(message).split()))
