r"""Text from the store, made safe to show on a terminal.

One escaping function serves every terminal surface (the report's and ``evaluate``'s tables and
lines, warnings, errors, logs).

File and folder names, checkpoint contents and a store's ``ssl_eval.toml`` may hold terminal
control codes: ``ESC[2J`` clears the screen, ``ESC]0;...BEL`` sets the window title, a
right-to-left override (U+202E) reverses what follows, a newline forges a line. Printed
raw they act; :func:`printable` shows each as a visible escape instead (``\x1b``,
``\u202e``, ``\n``), as the HTML page shows text escaped. Letters of any script pass as
they are.
"""

from __future__ import annotations

import unicodedata

__all__ = ["printable", "rich_safe"]

# Unicode categories that act instead of showing: controls (C0, DEL, C1), format characters
# (bidirectional overrides and isolates, zero-width joiners, ...), line and paragraph
# separators, lone surrogates (names that are not valid UTF-8), private-use and unassigned.
_ACTING = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs", "Co", "Cn"})


def _escape(ch: str) -> str:
    code = ord(ch)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def printable(text: object, *, newlines: bool = False) -> str:
    r"""``text`` with every character that would act on a terminal shown as a backslash escape.

    Args:
        text: any text (or value; ``str()`` of it) that came from the store.
        newlines: keep ``\n`` as a line break (a message of several lines written by the
            tool, whose store-supplied parts were escaped already); False escapes it too.

    Returns:
        The text, unchanged where it holds nothing that acts (``"sim.clr"``, ``"épreuve"``).
    """
    text = str(text)
    if text.isprintable():  # the common case, and the fast one
        return text
    return "".join(
        ch if (newlines and ch == "\n") or unicodedata.category(ch) not in _ACTING or ch == " " else _escape(ch)
        for ch in text
    )


def rich_safe(text: object) -> str:
    """:func:`printable` text that a rich console prints as it is, never as markup (``[/x]``).

    Args:
        text: text from the store.

    Returns:
        The escaped text, for ``console.print`` and rich tables.
    """
    from rich.markup import escape

    return escape(printable(text))
