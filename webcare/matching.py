"""Whether two messages ask the same thing: a score *and* a guard.

The score is rapidfuzz's ``token_set_ratio`` of the normalised texts (:mod:`webcare.normalize`). The
guard refuses "same words, different question", because a wrong link closes someone's question
unanswered while a missed one only costs a second answer: other numbers (A10 / A2, 12-AB-34 /
56-CD-78), other names or places (Noord / Zuid, Vondelstraat / Kerkstraat), or a swapped content word
with little else in common (pay / appeal a parking fine; aanvragen / opzeggen).

One person's two messages (:func:`same_question`) must score 85 and pass the strict guard; different
people's (:func:`same_topic`) word things differently, so 70 suffices, but they must share two content
words, their numbers and names must overlap where both have some, and a lone swapped word still
separates them.
"""

from __future__ import annotations

from collections.abc import Set as AbstractSet

from rapidfuzz import fuzz

from connectors.base import Author
from webcare.normalize import Normalised, fold

#: token_set_ratio for one person asking the same thing again: high, because a wrong link closes a
#: question unanswered, while a missed one only costs a second answer.
REPEAT_SCORE = 85
#: token_set_ratio for different people about one thing: they word it differently.
SURGE_SCORE = 70
#: Two words this alike (rapidfuzz ratio) are one word misspelt or inflected: opgehaald / opgehaalt.
WORD_ALIKE = 80
#: A copied text joins a surge outside its window only if it says this much ("Coolsingel dicht?" does not).
COPY_MIN_WORDS = 4


def author_key(author: Author) -> str:
    """One person across platforms: the handle without @ and instance, casefolded (jan@social.nl is jan)."""
    handle = author.handle.strip().lstrip("@").split("@", 1)[0]
    return fold(handle)[:200] if handle else f"id:{author.id}"[:200]


def _overlap(a: Normalised, b: Normalised) -> tuple[AbstractSet[str], AbstractSet[str], AbstractSet[str]]:
    """Shared words, and the words only in a and only in b; a misspelt word counts as shared."""
    shared, only_a, only_b = a.words & b.words, a.words - b.words, b.words - a.words
    # Each word of a (in order) takes the first of b's remaining words alike to it; ids are never misspelt.
    # Most pairs have no such words on one side or the other: then nothing is sorted or copied.
    loose_a = sorted(only_a - a.ids)
    loose_b = sorted(only_b - b.ids) if loose_a else []
    if not loose_b:
        return shared, only_a, only_b
    twins = []
    for x in loose_a:
        twin = next((y for y in loose_b if fuzz.ratio(x, y) >= WORD_ALIKE), None)
        if twin is not None:
            loose_b.remove(twin)
            twins.append((x, twin))
    if not twins:
        return shared, only_a, only_b
    paired_a, paired_b = {x for x, _ in twins}, {y for _, y in twins}
    return shared | paired_a, only_a - paired_a, only_b - paired_b


def same_question(a: Normalised, b: Normalised, min_score: int = REPEAT_SCORE) -> int | None:
    """The score when one person's two messages ask the same thing, else None."""
    if not a.words or not b.words:
        return None
    # Asked before the score, which it does not need: _overlap never takes an id for a misspelt word, so the
    # ids only in a are a.ids - b.ids. A person's numbered messages ("Vraag 12: ...") mostly end here.
    if (a.ids - b.ids) and (b.ids - a.ids):
        return None  # other numbers: another plate, road, date or house
    score = round(fuzz.token_set_ratio(a.text, b.text))
    if score < min_score:
        return None
    shared, only_a, only_b = _overlap(a, b)
    if (only_a & a.keys) and (only_b & b.keys):
        return None  # other names or places
    if len(shared) < 4 and (only_a - a.ids) and (only_b - b.ids):
        return None  # a content word swapped with too little else in common: another question
    return score


def same_topic(a: Normalised, b: Normalised, min_score: int = SURGE_SCORE) -> int | None:
    """The score when two people's messages are about the same thing, else None."""
    if a.ids and b.ids and not (a.ids & b.ids):
        return None
    if a.keys and b.keys and not (a.keys & b.words) and not (b.keys & a.words):
        return None
    score = round(fuzz.token_set_ratio(a.text, b.text))
    if score < min_score:
        return None
    shared, only_a, only_b = _overlap(a, b)
    if len(shared) < 2:
        return None
    if len(shared) < 4 and len(only_a - a.ids) == 1 and len(only_b - b.ids) == 1:
        return None  # one word swapped: the same template about another thing
    return score
