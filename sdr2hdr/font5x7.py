"""A 5x7 pixel bitmap font (digits, capitals, a few signs) drawn with numpy: the text of ``sdr2hdr preview``.

The glyphs are the classic 5x7 dot-matrix character-LCD shapes. Each glyph is
seven rows of five bits, most significant bit on the left, as hex pairs. Text
is upper-cased; a character without a glyph is drawn as ``?``. Every glyph
cell is 6 x 8 pixels (one column and one row of spacing), times ``scale``.
"""

from __future__ import annotations

import numpy as np

GLYPH_W, GLYPH_H = 5, 7
CELL_W, CELL_H = GLYPH_W + 1, GLYPH_H + 1

_GLYPHS = {
    "0": "0E11131519110E", "1": "040C040404040E", "2": "0E11010204081F", "3": "1F02040201110E",
    "4": "02060A121F0202", "5": "1F101E0101110E", "6": "0608101E11110E", "7": "1F010204080808",
    "8": "0E11110E11110E", "9": "0E11110F01020C",
    "A": "0E1111111F1111", "B": "1E11111E11111E", "C": "0E11101010110E", "D": "1C12111111121C",
    "E": "1F10101E10101F", "F": "1F10101E101010", "G": "0E11101711110F", "H": "1111111F111111",
    "I": "0E04040404040E", "J": "0702020202120C", "K": "11121418141211", "L": "1010101010101F",
    "M": "111B1515111111", "N": "11111915131111", "O": "0E11111111110E", "P": "1E11111E101010",
    "Q": "0E11111115120D", "R": "1E11111E141211", "S": "0F10100E01011E", "T": "1F040404040404",
    "U": "1111111111110E", "V": "11111111110A04", "W": "1111111515150A", "X": "11110A040A1111",
    "Y": "1111110A040404", "Z": "1F01020408101F",
    " ": "00000000000000", ".": "00000000000C0C", ",": "00000000000C04", "-": "0000001F000000",
    "+": "0004041F040400", ":": "000C0C000C0C00", "/": "00010204081000", "<": "02040810080402",
    ">": "08040201020408", "(": "02040808080402", ")": "08040202020408", "=": "00001F001F0000",
    "?": "0E110102040004", "%": "18190204081303",
}


def _decode(hexrows: str) -> np.ndarray:
    rows = [int(hexrows[i : i + 2], 16) for i in range(0, 2 * GLYPH_H, 2)]
    return np.array([[(r >> (GLYPH_W - 1 - c)) & 1 for c in range(GLYPH_W)] for r in rows], dtype=bool)


GLYPHS: dict[str, np.ndarray] = {ch: _decode(rows) for ch, rows in _GLYPHS.items()}


def text_size(text: str, scale: int = 1) -> tuple[int, int]:
    """(width, height) in pixels of ``text`` drawn at ``scale`` (cells include the spacing)."""
    return len(text) * CELL_W * scale, CELL_H * scale


def render(text: str, scale: int = 1) -> np.ndarray:
    """``text`` as a boolean mask of :func:`text_size` (True = ink)."""
    w, h = text_size(text, 1)
    mask = np.zeros((h, max(w, 0)), dtype=bool)
    for i, ch in enumerate(text.upper()):
        mask[:GLYPH_H, i * CELL_W : i * CELL_W + GLYPH_W] = GLYPHS.get(ch, GLYPHS["?"])
    return np.repeat(np.repeat(mask, scale, axis=0), scale, axis=1)


def draw(canvas: np.ndarray, text: str, x: int, y: int, rgb: tuple[int, int, int], scale: int = 1,
         max_width: int | None = None) -> int:
    """Draw ``text`` in ``rgb`` on an ``H x W x 3`` uint8 ``canvas`` with its top-left corner at (x, y).

    Clipped to the canvas and to ``max_width`` pixels; returns the x just after the text.
    """
    mask = render(text, scale)
    h, w = mask.shape
    w = min(w, canvas.shape[1] - x, max_width if max_width is not None else w)
    h = min(h, canvas.shape[0] - y)
    if w > 0 and h > 0:
        canvas[y : y + h, x : x + w][mask[:h, :w]] = rgb
    return x + max(w, 0)
