"""Only one department answers: when one of a person's cross-posts or duplicates is answered on the
platform, the others close together; one with a reply of its own on the way is left to it."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from tests.conftest import FakeServer
from tests.test_similar import rig_for
from webcare.metrics_models import ConversationMetrics
from webcare.models import Event

pytestmark = pytest.mark.anyio


async def test_answering_one_closes_the_cross_posts_and_duplicates(db_url: str, fake_server: FakeServer) -> None:
    async with rig_for(db_url, fake_server) as rig:
        afval = await rig.account("gemeente_afval", "Afval")
        parkeren = await rig.account("gemeente_parkeren", "Parkeren")
        afval_agent, _ = await rig.harness.token_client("agent", department="Afval")
        parkeren_agent, _ = await rig.harness.token_client("agent", department="Parkeren")
        question = "Al 3 weken wordt ons grofvuil in de Vondelstraat niet opgehaald!! Wie gaat dit oplossen?"
        first = await rig.mention(afval, "gemeente_afval", question, "jan_devries")
        cross = await rig.mention(parkeren, "gemeente_parkeren", question.lower(), "jan_devries")
        again = await rig.mention(afval, "gemeente_afval", "Nog steeds niet opgehaald, al 3 weken grofvuil in de "
                                                           "Vondelstraat!", "jan_devries")
        replying = await rig.mention(parkeren, "gemeente_parkeren", "Hallo?? Al 3 weken grofvuil in de Vondelstraat, "
                                                                   "wie gaat dit oplossen", "jan_devries")
        other = await rig.mention(afval, "gemeente_afval", "Wanneer wordt het grofvuil opgehaald in Zuid?",
                                  "jan_devries")
        links = (await afval_agent.get(f"/api/conversations/{first}")).json()["links"]
        assert {(x["conversation_id"], x["kind"]) for x in links} == {
            (cross, "cross_post"), (again, "duplicate"), (replying, "cross_post")}

        # Parkeren queues its own answer to one of them; then Afval answers another, on X.
        r = await parkeren_agent.post(f"/api/conversations/{replying}/replies",
                                      json={"text": "We geven het door aan Afval."})
        assert r.status_code == 201, r.text
        r = await afval_agent.post(f"/api/conversations/{again}/replies",
                                   json={"text": "Excuses! Morgen halen we het op."})
        assert r.status_code == 201, r.text
        assert await rig.outbox.drain() == 2

        async def status(conversation_id: int) -> str:
            return str((await afval_agent.get(f"/api/conversations/{conversation_id}")).json()["status"])

        assert await status(again) == "answered"
        assert await status(replying) == "answered", "its own reply went out"
        for closed in (first, cross):
            detail = (await afval_agent.get(f"/api/conversations/{closed}")).json()
            assert detail["status"] == "closed" and detail["close_reason"] == "resolved"
        assert await status(other) == "open", "another question of the same person stays"
        async with rig.harness.db.read() as s:
            events = list(await s.execute(sa.select(Event.conversation_id, Event.data).where(
                Event.type == "conversation.closed").order_by(Event.seq)))
        assert sorted(cid for cid, _ in events) == sorted([first, cross])
        assert {data["answered_in"] for _, data in events} <= {again, replying}
        assert len(fake_server.fake.posts("x")) == 2, "one answer on X for Afval, Parkeren's own one"
        async with rig.harness.db.read() as s:
            resolved = dict((await s.execute(sa.select(ConversationMetrics.conversation_id,
                                                       ConversationMetrics.resolved_at))).all())
        assert resolved[first] is not None and resolved[cross] is not None, "reports see them resolved"
