"""Metrics under concurrency: replies recorded as sent while the same conversations are closed, and
new messages reopening them, all at once. Nothing deadlocks or fails, and the counts still equal what
the rows say."""

from __future__ import annotations

import asyncio

import pytest
import sqlalchemy as sa

from tests.test_metrics import Rig, utc
from tests.test_metrics import rig as rig  # the fixture
from webcare.metrics import rebuild_counts
from webcare.metrics_models import ConversationMetrics, MetricCount

pytestmark = pytest.mark.anyio


async def counts(rig: Rig) -> set[tuple[object, ...]]:
    async with rig.db.read() as s:
        return {tuple(r) for r in await s.execute(
            sa.select(MetricCount.dim, MetricCount.grain, MetricCount.period, MetricCount.key, MetricCount.metric,
                      MetricCount.bucket, MetricCount.n).where(MetricCount.n != 0))}


async def test_sends_closes_and_reopens_at_once(rig: Rig) -> None:
    dep = await rig.department("Parkeren")
    account = await rig.account(dep, "parkeren")
    anna = await rig.agent("Anna", dep)
    posted = utc(2026, 5, 4, 8)
    started = [await rig.post(account, posted) for _ in range(12)]
    rig.clock.at = utc(2026, 5, 4, 9)
    for cid, _ in started:
        await rig.inbox.reply(anna, cid, "We kijken ernaar.")

    async def close(cid: int) -> None:
        await rig.inbox.close(anna, cid, "resolved")

    async def follow_up(external_id: str) -> None:
        await rig.post(account, utc(2026, 5, 4, 8, 30), in_reply_to=external_id)

    # The outbox records all twelve replies while half are closed and the other half get a new message.
    await asyncio.gather(rig.outbox.drain(), *(close(cid) for cid, _ in started[:6]),
                         *(follow_up(ext) for _, ext in started[6:]))
    assert await rig.outbox.drain() == 0
    async with rig.db.read() as s:
        rows = list(await s.scalars(sa.select(ConversationMetrics).order_by(ConversationMetrics.conversation_id)))
    assert len(rows) == 12
    assert all(r.first_response_at == utc(2026, 5, 4, 9) and r.first_response_seconds == 3600 for r in rows)
    assert all(r.replies == 1 and r.first_responder_id == anna.id for r in rows)
    assert all(r.resolution_seconds == 3600 for r in rows[:6])
    report = await rig.get("/api/metrics/response-times")
    assert report["overall"]["first_response"]["count"] == 12
    assert report["overall"]["resolution"]["count"] == 6
    kept = await counts(rig)
    await rebuild_counts(rig.db)
    assert await counts(rig) == kept
