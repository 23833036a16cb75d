"""The one error the data layer raises for anything wrong with the data or where it lives."""

from __future__ import annotations


class DataError(Exception):
    """Bad, missing or unreadable data.

    The message is meant for the person who supplied the file: it names the file and the row,
    entry or key at fault, what was expected and what was found.
    """
