"""Official letters: each written message of a run as the letter it stands for (Art. 4-6, 9, 10)."""

from simulator.letters.compose import is_written, letters_of
from simulator.letters.files import (
    LETTERS_DIRECTORY,
    LetterFiles,
    read_letters,
    render_index,
    write_letters,
)
from simulator.letters.model import Block, Letter, Signatory, letter_stem
from simulator.letters.render import render_letter, render_pdf

__all__ = [
    "LETTERS_DIRECTORY",
    "Block",
    "Letter",
    "LetterFiles",
    "Signatory",
    "is_written",
    "letter_stem",
    "letters_of",
    "read_letters",
    "render_index",
    "render_letter",
    "render_pdf",
    "write_letters",
]
