"""Cross-posts, duplicates and surges, found when a message opens a conversation.

*Repeats*: the same person (by handle, across platforms) asking the same thing again within
:attr:`Config.repeat_window`, on another account (``cross_post``) or the same one (``duplicate``), is
linked to the first conversation; when any of them is answered the others close (see
:func:`close_linked`), so only one department answers.

*Surges*: different people writing about the same thing within :attr:`Config.surge_window` (or the
very same words within the repeat window: a copied complaint) are gathered into a :class:`Cluster`
around the first conversation once :attr:`Config.surge_min_authors` people did. Each keeps its own
conversation (and its own answer), so reports count them as usual.

Whether two messages ask the same thing is :mod:`webcare.matching`'s to say (a score and a guard).
Here candidates are narrowed before any fuzzy matching: by author and time (an index), by
normalised-text hash, by the surge window, and in memory by shared words and compatible numbers;
the whole page costs three statements (see bench/RESULTS-assist.md).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import sqlalchemy as sa
from rapidfuzz import fuzz, process
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from connectors.base import Author
from webcare import metrics
from webcare.assist_models import Cluster, ConversationLink, Fingerprint
from webcare.db import Tx
from webcare.matching import COPY_MIN_WORDS, REPEAT_SCORE, SURGE_SCORE, author_key, same_question, same_topic
from webcare.models import ON_ITS_WAY, Conversation, Reply, UTCDateTime
from webcare.normalize import Normalised, normalise

REPEATS = ("cross_post", "duplicate")
# The tables themselves for the bulk statements: Core skips the ORM's bookkeeping.
_FINGERPRINTS = cast(sa.Table, Fingerprint.__table__)
_LINKS = cast(sa.Table, ConversationLink.__table__)
_CLUSTERS = cast(sa.Table, Cluster.__table__)
#: A surge is represented among candidates by its first conversation and this many members.
REPRESENTATIVES = 8
#: At most this many alike messages start a surge together (more join it one by one as they come).
MAX_GATHER = 50


@dataclass(frozen=True)
class Config:
    repeat_window: dt.timedelta = dt.timedelta(hours=72)
    surge_window: dt.timedelta = dt.timedelta(hours=3)
    surge_min_authors: int = 3
    repeat_score: int = REPEAT_SCORE
    surge_score: int = SURGE_SCORE
    #: Of the surge window, only the most recent this many conversations are candidates (less the repeats
    #: and older surge members among them): a surge shows among the latest messages (that is what makes
    #: it one), and the cap bounds the cost in the busiest hours.
    surge_candidates: int = 200
    #: Of a surge, only members this recent are candidates (its first conversation always is).
    surge_members_recent: dt.timedelta = dt.timedelta(minutes=15)


DEFAULT = Config()


# Candidates


@dataclass(slots=True)
class Candidate:
    conversation_id: int
    account_id: int
    author_key: str
    norm: Normalised
    posted_at: dt.datetime
    #: The first conversation this one repeats (it is a cross_post or duplicate of it), and its account.
    primary_id: int | None = None
    cluster_id: int | None = None
    cluster_root: int | None = None
    primary_account_id: int | None = None


@dataclass
class _Pool:
    """Candidates with an in-memory index, so that a shortlist costs what it finds, not what the pool holds:
    only candidates sharing enough words and no conflicting number, and of a surge only a few members.

    The index is built when a shortlist first needs it, and only the half it needs: a page of people asking
    again (all repeats) asks for none, and a page of numbered questions only for candidates without numbers
    or sharing one. Indexing every word of a few hundred candidates per page was a tenth of the ingest CPU.
    """

    items: list[Candidate] = field(default_factory=list)
    #: word -> candidates with that word (for texts without numbers)
    by_word: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))
    #: word -> candidates without numbers, and number -> candidates with it (for texts with numbers)
    by_word_plain: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))
    by_id: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))
    #: How many of :attr:`items` each half of the index holds so far.
    indexed: int = 0
    indexed_numbered: int = 0
    per_cluster: dict[int, int] = field(default_factory=lambda: defaultdict(int))
    seen: set[int] = field(default_factory=set)

    def add(self, c: Candidate) -> None:
        if c.conversation_id in self.seen:
            return
        self.seen.add(c.conversation_id)
        if c.cluster_id is not None and c.cluster_root != c.conversation_id:
            # A surge needs only its first conversation and a few members to be joined.
            if self.per_cluster[c.cluster_id] >= REPRESENTATIVES:
                return
            self.per_cluster[c.cluster_id] += 1
        self.items.append(c)

    def shortlist(self, norm: Normalised, min_shared: int) -> list[Candidate]:
        """Candidates sharing at least ``min_shared`` words; with numbers, only those without or sharing one."""
        items = self.items
        counts: dict[int, int] = defaultdict(int)
        if norm.ids:
            for index in range(self.indexed_numbered, len(items)):
                other = items[index].norm
                if not other.ids:
                    for word in other.words:
                        self.by_word_plain[word].append(index)
                for number in other.ids:
                    self.by_id[number].append(index)
            self.indexed_numbered = len(items)
            for word in norm.words:
                for index in self.by_word_plain.get(word, ()):
                    counts[index] += 1
            for number in norm.ids:
                for index in self.by_id.get(number, ()):
                    counts[index] = len(norm.words & items[index].norm.words)
        else:
            for index in range(self.indexed, len(items)):
                for word in items[index].norm.words:
                    self.by_word[word].append(index)
            self.indexed = len(items)
            for word in norm.words:
                for index in self.by_word.get(word, ()):
                    counts[index] += 1
        return [items[index] for index, n in counts.items() if n >= min_shared]


def _candidate(row: Any) -> Candidate:
    conversation_id, account_id, key, norm_text, keys, posted_at, linked_id, kind, cluster_id, root_of, \
        linked_account_id = row[:11]
    norm = Normalised.stored(norm_text, keys)
    if kind == "surge":
        return Candidate(conversation_id, account_id, key, norm, posted_at, None, cluster_id, linked_id)
    if kind is not None:  # a cross_post or duplicate
        return Candidate(conversation_id, account_id, key, norm, posted_at, linked_id,
                         primary_account_id=linked_account_id)
    if root_of is not None:  # the first conversation of a surge
        return Candidate(conversation_id, account_id, key, norm, posted_at, None, root_of, conversation_id)
    return Candidate(conversation_id, account_id, key, norm, posted_at)


def _select(f: Any = None, source: Any = None, first_account: bool = False) -> Any:
    """Candidates' columns from ``f`` (the fingerprints, or a subquery of them; ``source`` when they come
    joined to something) with their links and surges, and where ``first_account``, the account of the
    first conversation a repeat repeats: whether repeating it again is a duplicate or a cross-post (a
    look-up per message otherwise, when people ask on a third account). Only the page's authors' own
    candidates need it; it is one more join to plan."""
    f = _FINGERPRINTS if f is None else f
    L, K, first = ConversationLink, Cluster, aliased(Conversation, name="first")
    account = first.account_id if first_account else sa.null().cast(sa.Integer)
    stmt = (sa.select(f.c.conversation_id, f.c.account_id, f.c.author_key, f.c.norm_text, f.c["keys"], f.c.posted_at,
                      L.linked_id, L.kind, L.cluster_id, K.id.label("root_of"), account.label("linked_account"))
            .select_from(f if source is None else source)
            .outerjoin(L, L.conversation_id == f.c.conversation_id))
    if first_account:
        stmt = stmt.outerjoin(first, sa.and_(first.id == L.linked_id, L.kind != "surge"))
    return stmt.outerjoin(K, K.root_conversation_id == f.c.conversation_id)


@dataclass(frozen=True)
class _New:
    conversation_id: int
    account_id: int
    author_key: str
    norm: Normalised
    posted_at: dt.datetime


# Taking new conversations in


async def link_new(tx: Tx, account_id: int, items: Sequence[tuple[int, Author, str, dt.datetime]],
                   config: Config = DEFAULT) -> None:
    """Fingerprint the conversations just opened in ``tx`` (id, author, first text, platform time), and
    link each to the first conversation it repeats, or gather it into a surge."""
    if not items:
        return
    new = sorted((_New(cid, account_id, author_key(author), normalise(text), at) for cid, author, text, at in items),
                 key=lambda n: (n.posted_at, n.conversation_id))
    session = tx.session
    first, last = new[0].posted_at, new[-1].posted_at
    fingerprints = [{"conversation_id": n.conversation_id, "account_id": account_id, "author_key": n.author_key,
                     "text_hash": n.norm.hash, "norm_text": n.norm.text, "keys": " ".join(sorted(n.norm.keys)),
                     "posted_at": n.posted_at} for n in new]
    # Copies count only of texts that say something ("Coolsingel dicht?" is no copy, it is a short question).
    copies = sorted({n.norm.hash for n in new if len(n.norm.words) >= COPY_MIN_WORDS}) or [""]
    params = {"authors": sorted({n.author_key for n in new}), "hashes": copies,
              "repeat_from": first - config.repeat_window, "repeat_to": last + config.repeat_window,
              "surge_from": first - config.surge_window, "surge_to": last + config.surge_window,
              "surge_limit": config.surge_candidates, "members_from": first - config.surge_members_recent}
    pg = _is_pg(session)
    if pg:
        # The page's fingerprints go in by the same statement; its query does not see them (one snapshot).
        rows = await session.execute(_PG_CANDIDATES, {**params, **_arrays(fingerprints, "fp_")})
    else:
        rows = await session.execute(_CANDIDATES, params)
    repeats: dict[str, list[Candidate]] = defaultdict(list)  # by author: a person's repeats are few
    surge = _Pool()
    for row in rows:
        c = _candidate(row)
        if row[11]:  # from the repeat part
            repeats[c.author_key].append(c)
        if c.primary_id is None:
            surge.add(c)
    if not pg:
        await session.execute(sa.insert(_FINGERPRINTS), fingerprints)

    linker = _Linker(tx, config)
    for n in new:
        me = Candidate(n.conversation_id, n.account_id, n.author_key, n.norm, n.posted_at)
        repeated = _best_repeat(n, repeats[n.author_key], config)
        if repeated is not None:
            target, score = repeated
            me.primary_id = target.primary_id or target.conversation_id
            first_account = target.account_id if target.primary_id is None else (
                target.primary_account_id or await _account_of(session, me.primary_id))
            me.primary_account_id = first_account
            linker.link(me.conversation_id, me.primary_id, "duplicate" if first_account == account_id else "cross_post",
                        score, None)
        else:
            linker.gather(me, surge)
            surge.add(me)
        repeats[me.author_key].append(me)
    await linker.flush()


def _best_repeat(n: _New, same_author: list[Candidate], config: Config) -> tuple[Candidate, int] | None:
    best: tuple[Candidate, int] | None = None
    since, until = n.posted_at - config.repeat_window, n.posted_at + config.repeat_window
    for c in same_author:
        if not since <= c.posted_at <= until or c.norm.words.isdisjoint(n.norm.words):
            continue
        score = same_question(n.norm, c.norm, config.repeat_score)
        if score is not None and (best is None or (score, -c.posted_at.timestamp()) >
                                  (best[1], -best[0].posted_at.timestamp())):
            best = (c, score)
    return best


async def _account_of(session: AsyncSession, conversation_id: int | None) -> int | None:
    return await session.scalar(sa.select(Conversation.account_id).where(Conversation.id == conversation_id))


class _Linker:
    """Collects a page's links and surge changes and writes them in a few statements.

    Surges started in the page get a provisional (negative) id until :meth:`flush` inserts them all at once.
    """

    def __init__(self, tx: Tx, config: Config) -> None:
        self.tx = tx
        self.config = config
        self.links: list[dict[str, Any]] = []
        #: existing cluster id -> (its first conversation, members added, latest post)
        self.grown: dict[int, tuple[int, int, dt.datetime]] = {}
        #: provisional id -> the row of a cluster this page started
        self.started: dict[int, dict[str, Any]] = {}
        #: when each conversation linked into a surge was posted
        self.posted: dict[int, dt.datetime] = {}

    def link(self, conversation_id: int, linked_id: int, kind: str, score: int, cluster_id: int | None) -> None:
        self.links.append({"conversation_id": conversation_id, "linked_id": linked_id, "kind": kind,
                           "cluster_id": cluster_id, "score": score, "created_at": self.tx.now})

    def gather(self, me: Candidate, pool: _Pool) -> None:
        """Join the surge of the most alike message, or start one when enough people wrote alike."""
        window = self.config.surge_window
        shortlist = [c for c in pool.shortlist(me.norm, 2) if c.author_key != me.author_key and (
            abs(c.posted_at - me.posted_at) <= window
            # outside the surge window only a copy counts, of more than a few words
            or (c.norm.hash == me.norm.hash and len(me.norm.words) >= COPY_MIN_WORDS))]
        if not shortlist:
            return
        alike: list[tuple[int, Candidate]] = []
        for _, _, index in process.extract(me.norm.text, [c.norm.text for c in shortlist], scorer=fuzz.token_set_ratio,
                                           score_cutoff=self.config.surge_score, limit=None):
            c = shortlist[index]
            score = same_topic(me.norm, c.norm, self.config.surge_score)
            if score is None:
                continue
            if c.cluster_id is not None:  # the most alike message is in a surge already: join it
                assert c.cluster_root is not None
                me.cluster_id, me.cluster_root = c.cluster_id, c.cluster_root
                self.link(me.conversation_id, c.cluster_root, "surge", score, c.cluster_id)
                self.posted[me.conversation_id] = me.posted_at
                self._grow(c.cluster_id, c.cluster_root, 1, me.posted_at)
                return
            alike.append((score, c))
            if len(alike) >= MAX_GATHER:
                break
        if not alike:
            return
        authors = {c.author_key for _, c in alike} | {me.author_key}
        if len(authors) < self.config.surge_min_authors:
            return
        members = [c for _, c in alike] + [me]
        root = min(members, key=lambda c: (c.posted_at, c.conversation_id))
        scores = {c.conversation_id: s for s, c in alike}
        shared = (root.norm.words & me.norm.words) or root.norm.words
        provisional = -1 - len(self.started)
        self.started[provisional] = {
            "root_conversation_id": root.conversation_id, "size": len(members), "created_at": self.tx.now,
            "last_at": max(c.posted_at for c in members),
            "topic": " ".join(w for w in dict.fromkeys(root.norm.tokens) if w in shared)[:200]}
        for c in members:
            c.cluster_id, c.cluster_root = provisional, root.conversation_id
            if c is not root:
                self.link(c.conversation_id, root.conversation_id, "surge",
                          scores.get(c.conversation_id) or scores.get(root.conversation_id, 0), provisional)
                self.posted[c.conversation_id] = c.posted_at

    def _grow(self, cluster_id: int, root: int, n: int, at: dt.datetime) -> None:
        if cluster_id < 0:
            row = self.started[cluster_id]
            row["size"] += n
            row["last_at"] = max(row["last_at"], at)
            return
        _, count, last = self.grown.get(cluster_id, (root, 0, at))
        self.grown[cluster_id] = (root, count + n, max(last, at))

    async def _insert_started(self) -> tuple[dict[int, int], set[int], dict[int, int]]:
        """The surges this page started, inserted in one statement: their ids by provisional id, which are
        new, and (by id, with their first conversations) those another writer started around the same first
        conversation a moment ago, joined instead: they grow by the links that this page stores."""
        if not self.started:
            return {}, set(), {}
        session = self.tx.session
        # In the order of their first conversations: two pages starting surges around the same ones (another
        # account's page, at the same moment) wait for each other in one order, and cannot deadlock.
        rows = sorted(self.started.values(), key=lambda row: row["root_conversation_id"])
        result = await (session.execute(_PG_CLUSTERS, _arrays(rows, "k_")) if _is_pg(session)
                        else session.execute(_SQLITE_CLUSTERS, rows))
        by_root = {root: cluster_id for root, cluster_id in result}
        new = set(by_root.values())
        taken = [row["root_conversation_id"] for row in self.started.values()
                 if row["root_conversation_id"] not in by_root]
        joined: dict[int, int] = {}
        if taken:
            joined = {cluster_id: root for root, cluster_id in await session.execute(
                sa.select(Cluster.root_conversation_id, Cluster.id).where(Cluster.root_conversation_id.in_(taken)))}
            by_root.update({root: cluster_id for cluster_id, root in joined.items()})
        return {p: by_root[row["root_conversation_id"]] for p, row in self.started.items()}, new, joined

    async def flush(self) -> None:
        if not self.links:
            return  # a surge grows only by links
        session = self.tx.session
        ids, new, taken = await self._insert_started()
        for link in self.links:
            if link["cluster_id"] is not None and link["cluster_id"] < 0:
                link["cluster_id"] = ids[link["cluster_id"]]
        grown = [{"id": cluster_id, "n": n, "last": last} for cluster_id, (_, n, last) in self.grown.items()]
        if _is_pg(session):
            # Links and surge sizes in one statement.
            params = {**_arrays(self.links, "l_"), **_arrays(grown, "g_", ("id", "n", "last"))}
            result = await session.execute(_PG_LINKS, params)
        else:
            result = await session.execute(_SQLITE_LINKS, self.links)
            if grown:
                await session.execute(_SQLITE_GROW, [{f"g_{k}": v for k, v in g.items()} for g in grown])
        stored = set(result.scalars())
        await self._correct_sizes(stored, new, taken)
        joined: dict[int, list[int]] = defaultdict(list)
        for link in self.links:
            if link["conversation_id"] not in stored:
                continue  # linked by another writer meanwhile
            if link["kind"] == "surge":
                joined[link["cluster_id"]].append(link["conversation_id"])
                continue
            data = {"kind": link["kind"], "score": link["score"]}
            self.tx.emit("conversation.linked", link["conversation_id"], None, linked_to=link["linked_id"], **data)
            self.tx.emit("conversation.linked", link["linked_id"], None, linked_to=link["conversation_id"], **data)
        # A surge is told once per page on its first conversation, with the members that joined: one event
        # each would be thousands in an outage.
        topics = {ids[p]: row for p, row in self.started.items()}
        for cluster_id, members in joined.items():
            if cluster_id in new:
                row = topics[cluster_id]
                self.tx.emit("cluster.created", row["root_conversation_id"], None, cluster_id=cluster_id,
                             topic=row["topic"], members=members)
            else:
                root = taken[cluster_id] if cluster_id in taken else self.grown[cluster_id][0]
                self.tx.emit("cluster.grown", root, None, cluster_id=cluster_id, members=members)

    async def _correct_sizes(self, stored: set[int], new: set[int], taken: dict[int, int]) -> None:
        """Sizes as the links stored make them, where another writer came first: a surge it started around
        the same first conversation grows by this page's stored links, and a member it linked meanwhile is
        not counted twice. (Counted in advance, they were, and a surge came out larger than its members.)"""
        change: dict[int, tuple[int, dt.datetime | None]] = {}
        for link in self.links:
            cluster_id = link["cluster_id"]
            if link["kind"] != "surge" or (cluster_id not in taken and link["conversation_id"] in stored):
                continue
            n, last = change.get(cluster_id, (0, None))
            if cluster_id in taken:
                if link["conversation_id"] in stored:
                    at = self.posted[link["conversation_id"]]
                    change[cluster_id] = (n + 1, at if last is None else max(last, at))
            else:
                change[cluster_id] = (n - 1, last)
        rows = [{"id": cluster_id, "n": n, "last": last or dt.datetime.min.replace(tzinfo=dt.UTC)}
                for cluster_id, (n, last) in sorted(change.items()) if n]
        if not rows:
            return
        session = self.tx.session
        if _is_pg(session):
            await session.execute(_PG_LINKS, {**{f"l_{k}": [] for k in _LINK_COLUMNS}, **_arrays(rows, "g_")})
        else:
            await session.execute(_SQLITE_GROW, [{f"g_{k}": v for k, v in row.items()} for row in rows])


def _is_pg(session: AsyncSession) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def _arrays(rows: list[dict[str, Any]], prefix: str, keys: Sequence[str] = ()) -> dict[str, list[Any]]:
    """Rows as one array per column, for the ``unnest`` statements below: their SQL is the same for any
    number of rows, so PostgreSQL prepares them once."""
    return {prefix + k: [r[k] for r in rows] for k in keys or rows[0].keys()}


def _unnest(prefix: str, columns: dict[str, Any]) -> sa.Select[Any]:
    return sa.select(*(sa.func.unnest(sa.bindparam(prefix + name, type_=ARRAY(type_))).label(name)
                       for name, type_ in columns.items()))


_TS = sa.DateTime(timezone=True)
_PG_NEW_FINGERPRINTS = sa.insert(_FINGERPRINTS).from_select(
    ["conversation_id", "account_id", "author_key", "text_hash", "norm_text", "keys", "posted_at"],
    _unnest("fp_", {"conversation_id": sa.Integer, "account_id": sa.Integer, "author_key": sa.Text,
                    "text_hash": sa.Text, "norm_text": sa.Text, "keys": sa.Text, "posted_at": _TS}),
).cte("new_fingerprints")

def _candidates(pg: bool = False) -> Any:
    """Both kinds of candidates in one statement: the page's authors and copied texts (by hash) over the
    repeat window (``repeat`` 1), and the latest conversations of the surge window less repeats (``repeat``
    0); of a surge, only its first conversation and recent members."""
    F, L = Fingerprint, ConversationLink
    # A surge's older members are no candidates: its first conversation and latest members stand for it.
    not_old_member = sa.or_(L.kind.is_(None),
                            sa.and_(L.kind == "surge", F.posted_at >= sa.bindparam("members_from")))
    in_window = F.posted_at.between(sa.bindparam("repeat_from"), sa.bindparam("repeat_to"))
    if pg:
        # Driven by the page's authors and hashes as arrays, each row found through its (key, posted_at)
        # index. As one ``IN ... OR IN ...`` PostgreSQL read the whole repeat window by time and filtered it:
        # 6 ms a page against 100,000 conversations.
        authors_param = sa.bindparam("authors", type_=ARRAY(sa.Text))
        authors = sa.func.unnest(authors_param).table_valued("key").render_derived(name="page_authors")
        hashes = sa.func.unnest(sa.bindparam("hashes", type_=ARRAY(sa.Text))).table_valued("hash") \
            .render_derived(name="page_hashes")
        by_author = _select(source=sa.join(authors, _FINGERPRINTS, _FINGERPRINTS.c.author_key == authors.c.key),
                            first_account=True).add_columns(sa.literal(1).label("repeat")).where(in_window)
        by_copy = _select(source=sa.join(hashes, _FINGERPRINTS, _FINGERPRINTS.c.text_hash == hashes.c.hash)) \
            .add_columns(sa.literal(1).label("repeat")).where(
                in_window, not_old_member, sa.not_(F.author_key == sa.any_(authors_param)))
        repeat_parts = [by_author, by_copy]
    else:
        repeat_parts = [_select(first_account=True).add_columns(sa.literal(1).label("repeat")).where(
            sa.or_(F.author_key.in_(sa.bindparam("authors", expanding=True)),
                   sa.and_(F.text_hash.in_(sa.bindparam("hashes", expanding=True)), not_old_member)),
            in_window)]
    # The latest of the surge window as the driving table, joined to links and surges row by row: as
    # ``conversation_id IN (the latest ...)`` PostgreSQL hashed every fingerprint there is to find them.
    latest = (sa.select(_FINGERPRINTS)
              .where(F.posted_at.between(sa.bindparam("surge_from"), sa.bindparam("surge_to")))
              .order_by(F.posted_at.desc()).limit(sa.bindparam("surge_limit", type_=sa.Integer))
              .subquery("latest"))
    L = ConversationLink
    surge_part = (_select(latest).add_columns(sa.literal(0).label("repeat"))
                  .where(sa.or_(L.kind.is_(None), sa.and_(L.kind == "surge",
                                                          latest.c.posted_at >= sa.bindparam("members_from")))))
    return sa.union_all(*repeat_parts, surge_part)


_CANDIDATES = _candidates()
_PG_CANDIDATES = _candidates(pg=True).add_cte(_PG_NEW_FINGERPRINTS)
_GROWN = _unnest("g_", {"id": sa.Integer, "n": sa.Integer, "last": _TS}).subquery("grown")
# The surges a page grows, locked in the order of their ids before the UPDATE: pages of two accounts growing
# the same surges each locked them in its own (join) order and could deadlock in an outage.
_GROWING = (sa.select(_CLUSTERS.c.id).where(_CLUSTERS.c.id == sa.any_(sa.bindparam("g_id", type_=ARRAY(sa.Integer))))
            .order_by(_CLUSTERS.c.id).with_for_update().cte("growing"))
_LAST = sa.bindparam("g_last", type_=UTCDateTime())
_SQLITE_GROW = sa.update(_CLUSTERS).where(_CLUSTERS.c.id == sa.bindparam("g_id")).values(
    size=_CLUSTERS.c.size + sa.bindparam("g_n"), last_at=sa.case((_CLUSTERS.c.last_at < _LAST, _LAST),
                                                                  else_=_CLUSTERS.c.last_at))
_CLUSTER_COLUMNS = {"root_conversation_id": sa.Integer, "size": sa.Integer, "created_at": _TS, "last_at": _TS,
                    "topic": sa.Text}
_PG_CLUSTERS = (pg_insert(_CLUSTERS).from_select(list(_CLUSTER_COLUMNS), _unnest("k_", _CLUSTER_COLUMNS))
                .on_conflict_do_nothing(index_elements=["root_conversation_id"])
                .returning(_CLUSTERS.c.root_conversation_id, _CLUSTERS.c.id))
_SQLITE_CLUSTERS = (sqlite_insert(_CLUSTERS).on_conflict_do_nothing(index_elements=["root_conversation_id"])
                    .returning(_CLUSTERS.c.root_conversation_id, _CLUSTERS.c.id))
_SQLITE_LINKS = sqlite_insert(_LINKS).on_conflict_do_nothing(index_elements=["conversation_id"]).returning(
    _LINKS.c.conversation_id)
_LINK_COLUMNS = {"conversation_id": sa.Integer, "linked_id": sa.Integer, "kind": sa.Text, "cluster_id": sa.Integer,
                 "score": sa.Integer, "created_at": _TS}
_PG_LINKS = (
    pg_insert(_LINKS).from_select(list(_LINK_COLUMNS), _unnest("l_", _LINK_COLUMNS))
    .on_conflict_do_nothing(index_elements=["conversation_id"]).returning(_LINKS.c.conversation_id)
    .add_cte(sa.update(Cluster).where(Cluster.id == _GROWN.c.id, Cluster.id.in_(sa.select(_GROWING.c.id))).values(
        size=Cluster.size + _GROWN.c.n,
        last_at=sa.case((Cluster.last_at < _GROWN.c.last, _GROWN.c.last), else_=Cluster.last_at))
        .cte("grow_clusters"))
)


# Answering one answers all


async def close_linked(tx: Tx, conversation_id: int, answered_by: int | None) -> list[int]:
    """Close the cross-posts and duplicates of a conversation that was just answered; the ids closed.

    Conversations with a reply of their own on its way (waiting for approval, queued, sending) stay.
    """
    L = ConversationLink
    session = tx.session
    primary = await session.scalar(sa.select(L.linked_id).where(L.conversation_id == conversation_id,
                                                                 L.kind.in_(REPEATS)))
    root = primary or conversation_id
    group = set(await session.scalars(sa.select(L.conversation_id).where(L.linked_id == root, L.kind.in_(REPEATS))))
    group.add(root)
    group.discard(conversation_id)
    if not group:
        return []
    busy = set(await session.scalars(sa.select(Reply.conversation_id).where(
        Reply.conversation_id.in_(group), Reply.state.in_(ON_ITS_WAY))))
    C = Conversation
    closed = list(await session.scalars(
        sa.update(C).where(C.id.in_(group - busy), C.status.in_(("open", "claimed", "escalated")))
        .values(status="closed", close_reason="resolved", waiting_since=None, claimed_by_id=None, claimed_at=None,
                lease_expires_at=None, version=C.version + 1, updated_at=tx.now)
        .returning(C.id).execution_options(synchronize_session=False)))
    for cid in sorted(closed):
        tx.emit("conversation.closed", cid, None, reason="resolved", answered_in=conversation_id,
                answered_by=answered_by)
        await metrics.closed(tx, cid, "resolved")
    return closed
