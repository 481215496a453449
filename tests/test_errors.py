"""sdr2hdr.errors.one_line: any exception's message as one line of an error message."""

from __future__ import annotations

from sdr2hdr.errors import one_line


def test_one_line_first_non_blank_line_whitespace_collapsed() -> None:
    assert one_line(RuntimeError("\n  bad\tvalue  \nsecond line")) == "bad value"
    assert one_line(ValueError("plain")) == "plain"
    assert one_line("  text\nmore") == "text"


def test_one_line_empty_message_gives_the_type_name() -> None:
    assert one_line(KeyError()) == "KeyError"
    assert one_line(OSError(" \n ")) == "OSError"
    assert one_line("") == ""
