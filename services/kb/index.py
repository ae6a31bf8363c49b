"""The search index: BM25 (bm25s) over *topics*, with a confidence measure.

A topic is one section of a document in all its languages: the sections of the zh-Hans and
English versions that share an anchor are indexed together, so a question in either
language (or in both at once) finds the topic, and the answer is shown in the asker's
language when that version exists.

The index is built once. `KnowledgeBase.replace` re-analyses only the document that
changed (token lists are cached by content hash) and swaps in a new immutable snapshot,
so searches running meanwhile never see a half-built index and nothing restarts.
"""

from __future__ import annotations

import hashlib
import math
import threading
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

import bm25s
import numpy as np

from services.kb.analysis import Analyzer, Query, Vocabulary, default_analyzer
from services.kb.documents import Document, Section
from services.kb.text import grouping_key, has_cjk

SUPERSEDED_PENALTY = 0.85  # a superseded source ranks below a current one that matches as well
UNKNOWN_WORD_FACTOR = 1.0  # weight of a word no section contains, relative to the rarest word
TITLE_REPEAT = 2  # a section's title counts twice in its text...
TITLE_WEIGHT = 0.3  # ...and a title-only BM25 score is added: titles are written as questions


@dataclass(frozen=True)
class Source:
    """One language version of a document, as it is indexed."""

    document: Document
    version: int = 0  # 0: shipped with the bot; uploads count from 1
    origin: str = "shipped"  # shipped | upload | faq
    created_at: datetime | None = None
    superseded_by: str = ""  # id of a current document that supersedes this one

    @property
    def doc_id(self) -> str:
        return self.document.meta.doc_id

    @property
    def language(self) -> str:
        return self.document.meta.language

    @property
    def superseded(self) -> bool:
        return self.document.meta.status == "superseded" or bool(self.superseded_by)


@dataclass(frozen=True)
class Passage:
    source: Source
    section: Section


@dataclass(frozen=True)
class Topic:
    key: str
    doc_id: str
    anchor: str
    passages: dict[str, Passage] = field(hash=False)

    def passage(self, language: str) -> Passage:
        """The version in `language`, else the first available one."""
        found = self.passages.get(language)
        if found is not None:
            return found
        return next(iter(self.passages.values()))

    def title(self, language: str) -> str:
        return self.passage(language).section.title

    @property
    def superseded(self) -> bool:
        return all(p.source.superseded for p in self.passages.values())


@dataclass(frozen=True)
class Hit:
    topic: Topic
    score: float
    confidence: float


def topic_key(doc_id: str, anchor: str) -> str:
    """Short, stable and language-independent: fits in callback data."""
    return hashlib.sha1(f"{doc_id}#{anchor}".encode()).hexdigest()[:10]


@dataclass
class _Snapshot:
    sources: list[Source]  # as indexed: `superseded_by` filled in
    topics: list[Topic]
    token_sets: list[frozenset[str]]
    retriever: bm25s.BM25 | None
    title_retriever: bm25s.BM25 | None
    df: dict[str, int]
    penalty: np.ndarray
    vocabulary: Vocabulary
    by_key: dict[str, int]
    by_title: dict[str, int]

    @property
    def size(self) -> int:
        return len(self.topics)

    def idf(self, df: int) -> float:
        n = max(self.size, 1)
        return math.log(1 + (n - df + 0.5) / (df + 0.5))


_EMPTY = _Snapshot([], [], [], None, None, {}, np.ones(0), Vocabulary(), {}, {})


@dataclass(frozen=True)
class _Analysed:
    """A source's sections as token ids, analysed once per content (sha256)."""

    sections: tuple[_Section, ...]
    words: frozenset[str]


@dataclass(frozen=True)
class _Section:
    title_ids: list[int]
    text_ids: list[int]  # the title (TITLE_REPEAT times) and the text
    tokens: frozenset[str]
    title_key: str


class KnowledgeBase:
    """Holds the current snapshot; `load` builds it, `replace` updates one document.

    Only a changed document is analysed again (the analysis of every source is cached by
    its content); the BM25 matrices are then recomputed from the cached token ids, and the
    document frequencies are updated for the changed topics only.
    """

    def __init__(self, analyzer: Analyzer | None = None) -> None:
        self.analyzer = analyzer or default_analyzer()
        self._snapshot = _EMPTY
        self._sources: dict[tuple[str, str], Source] = {}
        self._analyses: dict[tuple[str, str, str], _Analysed] = {}
        self._vocab: dict[str, int] = {"": 0}
        self._topic_tokens: dict[tuple[str, str], frozenset[str]] = {}
        self._df: Counter[str] = Counter()
        self._write = threading.Lock()

    # --- building ---------------------------------------------------------------------

    def load(self, sources: Iterable[Source]) -> None:
        with self._write:
            self._sources = {(s.doc_id, s.language): s for s in sources}
            self._rebuild()

    def replace(self, doc_id: str, sources: Iterable[Source]) -> None:
        """Swap every language version of `doc_id` for `sources` (none: remove it)."""
        with self._write:
            for key in [k for k in self._sources if k[0] == doc_id]:
                del self._sources[key]
            for source in sources:
                self._sources[(source.doc_id, source.language)] = source
            self._rebuild()

    def _analysed(self, source: Source) -> _Analysed:
        key = (source.doc_id, source.language, source.document.sha256)
        cached = self._analyses.get(key)
        if cached is None:
            analyzer, vocab = self.analyzer, self._vocab
            sections = []
            words: set[str] = set()
            for section in source.document.sections:
                title = analyzer.document_tokens(section.title)
                text = title * TITLE_REPEAT + analyzer.document_tokens(section.body)
                sections.append(
                    _Section(
                        title_ids=[vocab.setdefault(t, len(vocab)) for t in title],
                        text_ids=[vocab.setdefault(t, len(vocab)) for t in text],
                        tokens=frozenset(text),
                        title_key=grouping_key(section.title),
                    )
                )
                words |= analyzer.latin_words(section.title + "\n" + section.body)
            cached = self._analyses[key] = _Analysed(tuple(sections), frozenset(words))
        return cached

    def _superseding(self) -> dict[str, str]:
        """Which current document supersedes which (by id)."""
        found: dict[str, str] = {}
        for source in self._sources.values():
            if source.document.meta.status == "current":
                for old in source.document.meta.supersedes:
                    if old != source.doc_id:
                        found.setdefault(old, source.doc_id)
        return found

    def _rebuild(self) -> None:
        superseding = self._superseding()
        grouped: dict[tuple[str, str], dict[str, Passage]] = {}
        parts: dict[tuple[str, str], list[_Section]] = {}
        words: set[str] = set()
        live: set[tuple[str, str, str]] = set()
        effective: list[Source] = []
        for (doc_id, _), source in sorted(self._sources.items()):
            if doc_id in superseding and not source.superseded_by:
                source = Source(
                    source.document,
                    source.version,
                    source.origin,
                    source.created_at,
                    superseding[doc_id],
                )
            effective.append(source)
            analysed = self._analysed(source)
            live.add((source.doc_id, source.language, source.document.sha256))
            words |= analysed.words
            for section, cached in zip(source.document.sections, analysed.sections, strict=True):
                key = (doc_id, section.anchor)
                grouped.setdefault(key, {})[source.language] = Passage(source, section)
                parts.setdefault(key, []).append(cached)
        for stale in [k for k in self._analyses if k not in live]:
            del self._analyses[stale]

        topics: list[Topic] = []
        text_ids: list[list[int]] = []
        title_ids: list[list[int]] = []
        token_sets: list[frozenset[str]] = []
        topic_tokens: dict[tuple[str, str], frozenset[str]] = {}
        by_title: dict[str, int] = {}
        for (doc_id, anchor), passages in grouped.items():
            sections = parts[(doc_id, anchor)]
            index = len(topics)
            topics.append(Topic(topic_key(doc_id, anchor), doc_id, anchor, passages))
            if len(sections) == 1:
                only = sections[0]
                text_ids.append(only.text_ids)
                title_ids.append(only.title_ids)
                tokens = only.tokens
            else:
                text_ids.append([i for s in sections for i in s.text_ids])
                title_ids.append([i for s in sections for i in s.title_ids])
                tokens = frozenset().union(*(s.tokens for s in sections))
            token_sets.append(tokens)
            topic_tokens[(doc_id, anchor)] = tokens
            for part in sections:
                by_title.setdefault(part.title_key, index)
        self._update_df(topic_tokens)
        retriever = title_retriever = None
        if topics:
            vocab = dict(self._vocab)
            retriever = bm25s.BM25()
            retriever.index((text_ids, vocab), show_progress=False)
            title_retriever = bm25s.BM25()
            title_retriever.index((title_ids, vocab), show_progress=False)
        penalty = np.array(
            [SUPERSEDED_PENALTY if t.superseded else 1.0 for t in topics], dtype=np.float32
        )
        self._snapshot = _Snapshot(
            sources=effective,
            topics=topics,
            token_sets=token_sets,
            retriever=retriever,
            title_retriever=title_retriever,
            df=+self._df,
            penalty=penalty,
            vocabulary=Vocabulary(words | self.analyzer.concept_words),
            by_key={t.key: i for i, t in enumerate(topics)},
            by_title=by_title,
        )

    def _update_df(self, topic_tokens: dict[tuple[str, str], frozenset[str]]) -> None:
        """Document frequencies, changed only for the topics that changed."""
        old = self._topic_tokens
        for key in old.keys() | topic_tokens.keys():
            before, after = old.get(key), topic_tokens.get(key)
            if before is after or before == after:
                continue
            if before:
                self._df.subtract(before)
            if after:
                self._df.update(after)
        self._topic_tokens = topic_tokens

    # --- reading ------------------------------------------------------------------------

    @property
    def size(self) -> int:
        return self._snapshot.size

    def sources(self) -> list[Source]:
        """The indexed language versions of every document, by id and language."""
        return list(self._snapshot.sources)

    def topic(self, key: str) -> Topic | None:
        snapshot = self._snapshot
        index = snapshot.by_key.get(key)
        return snapshot.topics[index] if index is not None else None

    def topics_of(self, doc_id: str) -> list[Topic]:
        return [t for t in self._snapshot.topics if t.doc_id == doc_id]

    def analyse(self, text: str) -> Query:
        return self.analyzer.query(text, self._snapshot.vocabulary)

    def search(self, query: Query, limit: int = 3, exact: str = "") -> list[Hit]:
        """The best `limit` topics for an analysed question, best first.

        `exact` (a grouping key) puts a topic whose title is exactly the question first:
        an answer saved from a person's reply is found for the same question.
        """
        snapshot = self._snapshot
        if snapshot.retriever is None or not query.tokens:
            return []
        ids = [snapshot.retriever.vocab_dict[t] for t in query.tokens if t in snapshot.df]
        if not ids:
            return []
        scores = snapshot.retriever.get_scores(ids)
        if snapshot.title_retriever is not None:
            scores = scores + TITLE_WEIGHT * snapshot.title_retriever.get_scores(ids)
        scores = scores * snapshot.penalty
        count = min(limit, snapshot.size)
        best = np.argpartition(-scores, count - 1)[:count]
        order = sorted(best.tolist(), key=lambda i: -float(scores[i]))
        exact_index = snapshot.by_title.get(exact) if exact else None
        if exact_index is not None:
            order = [exact_index, *[i for i in order if i != exact_index]][:count]
        hits = []
        for index in order:
            if scores[index] <= 0 and index != exact_index:
                continue
            confidence = 1.0 if index == exact_index else self.coverage(query, index)
            hits.append(Hit(snapshot.topics[index], float(scores[index]), confidence))
        return hits

    def coverage(self, query: Query, index: int) -> float:
        """Share of the question's content (weighted by rarity) that the topic contains.

        Each content word is a slot; a slot is found when the word, one of its parts or one
        of its concepts is in the topic. Words that no section contains weigh as much as
        the rarest indexed word, so a question about something else scores low.
        """
        snapshot = self._snapshot
        present = snapshot.token_sets[index]
        unknown = snapshot.idf(0) * UNKNOWN_WORD_FACTOR
        total = matched = 0.0
        for slot in query.slots:
            known = [snapshot.df[a] for a in slot.alternatives if a in snapshot.df]
            if known:
                weight = snapshot.idf(min(known))
            else:  # a single unknown Chinese character says less than an unknown word
                weight = unknown / 2 if len(slot.word) == 1 and has_cjk(slot.word) else unknown
            total += weight
            if not slot.alternatives.isdisjoint(present):
                matched += weight
        return matched / total if total else 0.0

    def knows_any(self, query: Query) -> bool:
        """Whether any content word of the question occurs anywhere in the base."""
        df = self._snapshot.df
        return any(a in df for slot in query.slots for a in slot.alternatives)
