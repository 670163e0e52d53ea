"""Cap'n Proto text literals for workerd's config.

A text literal is double-quoted with C-style escapes (capnp's lexer: ``\\"``, ``\\\\``, ``\\xNN``).
Every byte outside printable ASCII is written as ``\\xNN`` of its UTF-8 encoding, so any value
(control characters, quotes, non-ASCII, even a lone surrogate) round-trips and nothing can end
the literal early.
"""

from __future__ import annotations

_PRINTABLE = frozenset(range(0x20, 0x7F)) - {ord('"'), ord("\\")}


def text(value: str) -> str:
    out = ['"']
    for byte in value.encode("utf-8", "surrogatepass"):
        if byte in _PRINTABLE:
            out.append(chr(byte))
        elif byte == ord('"'):
            out.append('\\"')
        elif byte == ord("\\"):
            out.append("\\\\")
        else:
            out.append(f"\\x{byte:02x}")
    out.append('"')
    return "".join(out)
