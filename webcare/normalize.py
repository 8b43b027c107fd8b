"""Text normalisation for matching, in one place: routing, linking, surges, similar questions and saved
replies all compare what :func:`normalise` makes of a text.

Casefolded, accents stripped, mentions, URLs and punctuation gone, Dutch and English stop words and
greetings dropped, and a small webcare vocabulary folded onto one word each ("dicht", "closed" and
"afgesloten" all become ``afgesloten``; "ligt eruit", "is down" and "werkt niet" become ``storing``).
Besides the words it keeps what must agree for two texts to ask the same thing: *ids* (tokens with a
digit: ``a10``, ``12ab34``, ``3``) and *keys* (names: capitalised words inside a sentence, street
names by their suffix, districts such as ``noord``).
"""

from __future__ import annotations

import functools
import hashlib
import re
import unicodedata

DUTCH_STOP_WORDS = frozenset("""
aan al alle alles als alsjeblieft alstublieft altijd ander andere bij ben ben bent bij dan dat de deze die dit
doe doen doet door dus een eens eigenlijk en er even ge geen gehad geweest graag had hadden heb hebben hebt
heeft hem hen het hier hij hoe hun iemand iets ik in is ja je jij jou jouw jullie kan kon kun kunnen kunt
laat lang later maar me meer men met mij mijn moet moeten mogen na naar neem niet niets nog nou nu of om
omdat ons onze ook op over te tegen toch toe tot u uit uw van veel voor waar waarom wanneer want was waren
wat we weer wel welk welke werd wie wij wil willen word worden wordt zal ze zei zelf zich zij zijn zo zoals
zou zouden zij al aub svp pls hoi hallo hey hee beste dag goedemorgen goedemiddag goedenavond groet groeten
gr mvg vriendelijke bedankt dank dankjewel dankuwel alvast bvd vd ff even gewoon echt heel erg zeer weet
vraagje hé he nee oke ok oké jaja nogmaals eindelijk sinds steeds nogsteeds duren duurt gaat
gaan ga sta staat staan krijg krijgen kreeg zit zitten hoelang
""".split())

ENGLISH_STOP_WORDS = frozenset("""
a about above after again against all am an and any are as at be because been before being below between
both but by can could did do does doing don down during each few for from further had has have having he
her here hers herself him himself his how i if in into is it its itself just let me more most my myself no
nor not now of off on once only or other our ours ourselves out over own same she should so some such than
that the their theirs them themselves then there these they this those through to too under until up very
was we were what when where which while who whom why will with would you your yours yourself yourselves
hi hello hey dear thanks thank thx please pls cheers regards anyone someone still again already going get
got getting im ive dont cant wont isnt its whats s t m ll re ve d
""".split()) - {"down"}

STOP_WORDS = DUTCH_STOP_WORDS | ENGLISH_STOP_WORDS

#: Phrases folded onto one word before tokenising (after casefolding and stripping accents).
PHRASES: tuple[tuple[str, str], ...] = (
    ("doet het niet", "storing"), ("doen het niet", "storing"), ("werkt niet", "storing"),
    ("werken niet", "storing"), ("ligt eruit", "storing"), ("ligt er uit", "storing"), ("ligt plat", "storing"),
    ("liggen plat", "storing"), ("not working", "storing"), ("is down", "storing"), ("are down", "storing"),
    ("log in", "inloggen"), ("log ik in", "inloggen"), ("sign in", "inloggen"), ("inlog", "inloggen"),
)
#: Single words folded onto one (the webcare vocabulary of outages, closures and logins).
SYNONYMS: dict[str, str] = {
    "down": "storing", "outage": "storing", "storingen": "storing", "offline": "storing", "eruit": "storing",
    "foutmelding": "storing", "error": "storing", "errors": "storing", "broken": "storing", "uitval": "storing",
    "dicht": "afgesloten", "gesloten": "afgesloten", "closed": "afgesloten", "afsluiting": "afgesloten",
    "blocked": "afgesloten", "versperd": "afgesloten", "closure": "afgesloten", "afgezet": "afgesloten",
    "site": "website", "webpagina": "website", "webpage": "website", "login": "inloggen", "ingelogd": "inloggen",
    "inlogen": "inloggen",
}
DISTRICTS = frozenset({"noord", "oost", "zuid", "west", "centrum", "north", "east", "south", "noordoost",
                       "noordwest", "zuidoost", "zuidwest", "binnenstad"})
PLACE_SUFFIXES = ("straat", "laan", "weg", "plein", "kade", "gracht", "singel", "dijk", "dreef", "steeg",
                  "street", "avenue")

_URL = re.compile(r"https?://\S+|www\.\S+", re.IGNORECASE)
_MENTION = re.compile(r"(?<![\w@])@\w+(?:@[\w.-]*\w)?")
_TOKEN = re.compile(r"\w+(?:[-/.:'\u2019]\w+)*")
_SEPARATORS = re.compile(r"[-/.:'\u2019_]")
_DIGIT = re.compile(r"\d")
_SENTENCE = re.compile(r"[.!?\n]+")
_WORD = re.compile(r"[^\W\d_][\w'\u2019-]*")
_PHRASE_WORD = dict(PHRASES)
_SYNONYM_WORDS = frozenset(SYNONYMS.values())
# One pass for all phrases, the longest first where they overlap ("log ik in" before "log in").
_PHRASES = re.compile(r"(?<!\w)(" + "|".join(re.escape(p) for p in sorted(_PHRASE_WORD, key=len, reverse=True))
                      + r")(?!\w)")


def fold(text: str) -> str:
    """Casefolded, without accents: ``"Één Café"`` becomes ``"een cafe"``."""
    folded = text.casefold()
    if folded.isascii():
        return folded
    decomposed = unicodedata.normalize("NFKD", folded)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


class Normalised:
    """What matching sees of a text: its content words in order, its ids and its keys.

    Built for every candidate of every new message, so everything is worked out once, here.
    """

    __slots__ = ("_hash", "ids", "keys", "text", "tokens", "words")

    def __init__(self, tokens: tuple[str, ...], keys: frozenset[str], text: str | None = None) -> None:
        self.tokens = tokens
        self.keys = keys
        self.text = " ".join(tokens) if text is None else text
        self.words = frozenset(tokens)
        # A token is a word of letters or, holding a digit, an id.
        self.ids = frozenset(t for t in self.words if not t.isalpha())
        self._hash: str | None = None

    @property
    def hash(self) -> str:
        """Equal for texts with the same content words in any order (a repeat, a copy)."""
        if self._hash is None:
            self._hash = hashlib.sha1(" ".join(sorted(self.words)).encode()).hexdigest()[:16]
        return self._hash

    @staticmethod
    def stored(text: str, keys: str) -> Normalised:
        """Rebuilt from what a fingerprint row keeps (:attr:`text` and the keys joined by spaces)."""
        return _stored(text, keys)


@functools.lru_cache(maxsize=20_000)
def _stored(text: str, keys: str) -> Normalised:
    # Every page of new messages reads a few hundred candidates, mostly the same ones as the page before
    # (the latest of the surge window, the authors' recent messages): rebuilding them was a third of the
    # ingest path's matching work. A Normalised never changes once built, so sharing one is safe.
    return Normalised(tuple(text.split()), frozenset(keys.split()) if keys else frozenset(), text)


def _strip(text: str) -> str:
    """Without URLs and mentions. Most texts have neither, and looking for the characters each must have
    ("://" or "www." in any case, "@") costs a tenth of the substitution."""
    if "://" in text or "www." in text.lower():
        text = _URL.sub(" ", text)
    return _MENTION.sub(" ", text) if "@" in text else text


def normalise(text: str) -> Normalised:
    stripped = _strip(text)
    folded = fold(stripped)
    folded = _PHRASES.sub(lambda m: _PHRASE_WORD[m.group(1)], folded)
    tokens: list[str] = []
    for token in _TOKEN.findall(folded):
        if token.isalpha():  # most are: no digit and no separator, so one word as it is
            word = SYNONYMS.get(token, token)
            if len(word) > 1 and word not in STOP_WORDS:
                tokens.append(word)
            continue
        if _DIGIT.search(token):
            tokens.append(_SEPARATORS.sub("", token))  # "12-AB-34" and "12ab34" are one licence plate
            continue
        for part in _SEPARATORS.split(token):
            word = SYNONYMS.get(part, part)
            if len(word) > 1 and word not in STOP_WORDS:
                tokens.append(word)
    keys = {t for t in tokens if _is_place(t)} | _names(stripped)
    return Normalised(tuple(tokens), frozenset(keys))


def words(text: str) -> list[str]:
    """The folded words of a text, stop words kept: for phrase and keyword matching."""
    folded = fold(_strip(text))
    return [SYNONYMS.get(w, w) for w in re.findall(r"\w+", folded)]


def _is_place(token: str) -> bool:
    if token in DISTRICTS:
        return True
    return token.endswith(PLACE_SUFFIXES) and any(token.endswith(s) and len(token) >= len(s) + 3
                                                  for s in PLACE_SUFFIXES)


def _names(text: str) -> set[str]:
    """Capitalised words inside a sentence (Coolsingel, DigiD, NS): in Dutch, nouns are not capitalised,
    so these are names. Shouting (words of five or more capitals) and the first word are not."""
    found: set[str] = set()
    for sentence in _SENTENCE.split(text):
        if sentence[1:].islower():
            continue  # no capital after the first character, so none but the first word's
        for word in _WORD.findall(sentence)[1:]:
            if not word[0].isupper() or (word.isupper() and len(word) > 4):
                continue
            folded = fold(_SEPARATORS.sub("", word))
            folded = SYNONYMS.get(folded, folded)
            if len(folded) > 1 and folded not in STOP_WORDS and folded not in _SYNONYM_WORDS:
                found.add(folded)
    return found
