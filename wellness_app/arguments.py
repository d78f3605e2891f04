"""Argument types for the ``heartsong`` parser that refuse, in one line, what a user cannot mean: whole numbers
outside their range or not written in ASCII digits (``²``, ``٣``, 10^23), and NaN, infinite or non-positive
amounts."""
from __future__ import annotations

import argparse
import math
import re

SEED_RANGE = (0, 2**32 - 1)  # what NumPy's and Python's generators accept as a seed


class OneLineParser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose usage errors are one line naming the problem (exit 2), like every other
    ``heartsong`` error; its subparsers are of this class too."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message}\n")


def whole_number(lo: int, hi: int):
    """A type for a whole number from ``lo`` to ``hi`` written in ASCII digits."""
    def parse(text: str) -> int:
        if re.fullmatch(r"[+-]?[0-9]{1,20}", text.strip()) and lo <= int(text) <= hi:
            return int(text)
        raise argparse.ArgumentTypeError(f"{text!r} is out of range: give a whole number from {lo} to {hi}")

    return parse


def positive_amount(hi: float, unit: str):
    """A type for a finite number above 0 and at most ``hi`` ``unit``."""
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if math.isfinite(value) and 0 < value <= hi:
            return value
        raise argparse.ArgumentTypeError(f"{text!r} is out of range: give a number of {unit} above 0, up to {hi:g}")

    return parse


seed = whole_number(*SEED_RANGE)
