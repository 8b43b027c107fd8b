"""The linking rules on realistic Dutch and English messages, without a database: which pairs are one
person asking the same thing again, which are many people about one thing, and which share words but
ask something else (those must never be linked: a wrong link closes a question unanswered)."""

from __future__ import annotations

import pytest

from connectors.base import Author
from webcare.matching import author_key, same_question, same_topic
from webcare.normalize import normalise

# One person, twice: on two accounts (a cross-post) or again on the same one (a duplicate).
SAME_QUESTION = [
    ("@gemeente_afval Al 3 weken wordt ons grofvuil in de Vondelstraat niet opgehaald!! Wie gaat dit oplossen?",
     "@afval@social.gemeente.nl al 3 weken wordt het grofvuil in de Vondelstraat niet opgehaald. Wie lost dit op?"),
    ("Hoi @gemeente, mijn parkeervergunning is verlopen maar ik heb de verlenging al betaald. Kenteken 12-AB-34",
     "@parkeren parkeervergunning verlopen terwijl verlenging betaald is?? kenteken 12AB34"),
    ("Waarom is de container in de Kerkstraat al een week niet geleegd? Het stinkt enorm",
     "waarom is de container in de kerkstraat al een week niet geleegd??? het stinkt enorm https://t.co/abc"),
    ("@CityParking I was fined on Baker Street although I paid in the app. Ticket 88123, can you check?",
     "@city_help I got a fine on Baker Street even though I paid in the app! Ticket 88123. Please check"),
    ("Wanneer gaat het zwembad De Mirandabad weer open na de verbouwing?",
     "@gemeente wanneer gaat het Mirandabad weer open na de verbouwing? 🙏"),
]

# One person, two different questions in the same words.
DIFFERENT_QUESTION = [
    ("Wanneer wordt het grofvuil opgehaald in Noord?", "Wanneer wordt het grofvuil opgehaald in Zuid?"),
    ("Mijn parkeervergunning voor kenteken 12-AB-34 is verlopen",
     "Mijn parkeervergunning voor kenteken 56-CD-78 is verlopen"),
    ("Hoe vraag ik een parkeervergunning aan?", "Hoe zeg ik mijn parkeervergunning op?"),
    ("Can I pay my parking fine online?", "Can I appeal my parking fine online?"),
    ("De container in de Vondelstraat is niet geleegd", "De container in de Kerkstraat is niet geleegd"),
    ("Is de A10 vandaag afgesloten?", "Is de A2 vandaag afgesloten?"),
    ("Is the library open on Monday?", "Is the library open on Sunday?"),
    ("Tram 4 rijdt niet, wat is er aan de hand?", "Tram 7 rijdt niet, wat is er aan de hand?"),
]

# Different people about one thing at once: an outage, a road closure.
SAME_TOPIC = [
    ("@gemeente de website ligt eruit, ik kan niet inloggen met DigiD", "Is jullie site down? DigiD login werkt niet"),
    ("@gemeente de website ligt eruit, ik kan niet inloggen met DigiD",
     "Your website is down, can't log in with DigiD"),
    ("Website van de gemeente doet het niet? Krijg steeds een foutmelding bij DigiD inloggen",
     "Is jullie site down? DigiD login werkt niet"),
    ("Waarom is de Coolsingel afgesloten? Sta al 20 min vast", "Coolsingel dicht?? Hoe lang gaat dit duren"),
    ("Waarom is de Coolsingel afgesloten? Sta al 20 min vast", "What's going on at Coolsingel, road closed?"),
    ("Coolsingel afgesloten en geen omleiding aangegeven, belachelijk", "Coolsingel dicht?? Hoe lang gaat dit duren"),
    ("Storing tram lijn 4, niks rijdt meer", "Lijn 4 heeft een storing? Al een half uur geen tram"),
]

# Different people, same words, different things.
DIFFERENT_TOPIC = [
    ("Wanneer wordt het grofvuil opgehaald in Noord?", "Wanneer wordt het grofvuil opgehaald in Zuid?"),
    ("Hoe meld ik grofvuil aan?", "Wanneer wordt het grofvuil opgehaald?"),
    ("Waarom is de Coolsingel afgesloten?", "Wanneer is de markt op de Coolsingel?"),
    ("Storing tram lijn 4, niks rijdt meer", "Storing tram lijn 7, niks rijdt meer"),
    ("Is de A10 dicht?", "Is de A2 dicht?"),
    ("@gemeente de website ligt eruit, ik kan niet inloggen met DigiD",
     "Hoe log ik in met DigiD om mijn paspoort aan te vragen?"),
    ("Can I pay my parking fine online?", "Can I appeal my parking fine online?"),
]


@pytest.mark.parametrize(("first", "second"), SAME_QUESTION)
def test_one_person_asking_the_same_thing_again_is_linked(first: str, second: str) -> None:
    assert same_question(normalise(first), normalise(second)) is not None
    assert same_question(normalise(second), normalise(first)) is not None


@pytest.mark.parametrize(("first", "second"), DIFFERENT_QUESTION)
def test_same_words_different_question_is_not_linked(first: str, second: str) -> None:
    assert same_question(normalise(first), normalise(second)) is None
    assert same_question(normalise(second), normalise(first)) is None


@pytest.mark.parametrize(("first", "second"), SAME_TOPIC)
def test_different_people_about_one_thing_belong_to_one_surge(first: str, second: str) -> None:
    assert same_topic(normalise(first), normalise(second)) is not None
    assert same_topic(normalise(second), normalise(first)) is not None


@pytest.mark.parametrize(("first", "second"), DIFFERENT_TOPIC)
def test_different_people_with_the_same_words_about_other_things_are_apart(first: str, second: str) -> None:
    assert same_topic(normalise(first), normalise(second)) is None
    assert same_topic(normalise(second), normalise(first)) is None


def test_normalisation_keeps_what_must_agree() -> None:
    n = normalise("Hoi @gemeente! Mijn kenteken 12-AB-34 staat NIET in de Parkeervergunning 😡 https://t.co/x")
    assert "12ab34" in n.ids
    assert "gemeente" not in n.words and "hoi" not in n.words and "https" not in n.text
    assert normalise("Café Één") .words == normalise("cafe een").words
    assert normalise("Coolsingel dicht").hash == normalise("dicht, Coolsingel!!").hash
    assert normalise("Wanneer gaat de Vondelstraat open").keys == {"vondelstraat"}


def test_one_person_across_platforms_has_one_key() -> None:
    assert author_key(Author("1", "@Jan_deVries", "Jan")) == author_key(Author("99", "jan_devries@social.nl", "J"))
    assert author_key(Author("1", "", "Jan")) == "id:1"
