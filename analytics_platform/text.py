"""Words for numbers, shared by what people read: the dashboard and the alerts' messages."""


def plural(n: int, word: str) -> str:
    """``n`` and ``word``, with an s unless ``n`` is 1: a small site has 1 session."""
    return f"{n:,} {word}{'' if n == 1 else 's'}"
