"""Writes server/engine/data/shipped/reviews.csv: the built-in text-classification source
"reviews" (deterministic: seed 0; rerun to regenerate, the file must not change).

Each review is one or two clauses, "the <thing> was [really] [not] <adjective>", two clauses
joined by "but". A clause is positive when its adjective is positive and not negated, or
negative and negated. The label is the polarity of the LAST clause. Swapping the two clauses
keeps the words and flips the label whenever they disagree, so a bag of words cannot solve it:
a model has to read the order and what "not" applies to.

    python scripts/make_reviews.py
"""

from __future__ import annotations

import csv
import random
from pathlib import Path

SEED = 0
ROWS = 3000
OUT = Path(__file__).resolve().parent.parent / "server/engine/data/shipped/reviews.csv"

THINGS = ("food", "service", "movie", "plot", "music", "room", "staff", "price")
POSITIVE = ("good", "great", "fine", "lovely")
NEGATIVE = ("bad", "awful", "poor", "dull")


def clause(rng: random.Random) -> tuple[str, bool]:
    positive_word = rng.random() < 0.5
    adjective = rng.choice(POSITIVE if positive_word else NEGATIVE)
    negated = rng.random() < 0.4
    words = ["the", rng.choice(THINGS), "was"]
    if rng.random() < 0.3:
        words.append("really")
    if negated:
        words.append("not")
    words.append(adjective)
    return " ".join(words), positive_word != negated


def review(rng: random.Random) -> tuple[str, str]:
    text, positive = clause(rng)
    if rng.random() < 0.7:
        second, positive = clause(rng)
        text = f"{text} but {second}"
    return text, "positive" if positive else "negative"


def main() -> None:
    rng = random.Random(SEED)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    with OUT.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(["text", "label"])
        for _ in range(ROWS):
            writer.writerow(review(rng))
    print(f"wrote {ROWS} reviews to {OUT}")


if __name__ == "__main__":
    main()
