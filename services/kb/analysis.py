"""Analysers: the same pipeline for sections and questions, in Chinese, English or both.

- Chinese runs are cut by jieba (search mode, so that a long word also yields its parts),
  with the domain's terms in a user dictionary (挂职, 跟岗, 科级, 低海拔, 绿色通道...).
- English runs are lower-cased, stop words are dropped and words are stemmed with Snowball
  (PyStemmer). Misspelt words are corrected against the indexed vocabulary (rapidfuzz).
- Concepts bridge the languages: 供氧, "oxygen supply" and "O2" all add the token
  ``~oxygen``, so an English question finds a Chinese section and the other way round.

A question is also split into *slots* (one per content word) for the confidence measure:
a slot is covered by a section when the word, one of its parts or one of its concepts is
in the section.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cache, cached_property
from importlib import resources
from typing import Any

import jieba
import Stemmer
from rapidfuzz import process
from rapidfuzz.distance import OSA

from services.kb.text import has_cjk, normalize

CONCEPT_PREFIX = "~"
_RUNS = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+|[a-z0-9]+|🆘")
_LATIN_WORD = re.compile(r"[a-z0-9]+")
_MAX_QUERY_CHARS = 1000  # longer questions are analysed on their first 1,000 characters


@dataclass(frozen=True)
class Slot:
    """One content word of a question and everything that counts as finding it."""

    word: str
    alternatives: frozenset[str]
    corrected: bool = False


@dataclass(frozen=True)
class Query:
    tokens: tuple[str, ...]  # unique tokens to score with BM25 (words, parts and concepts)
    slots: tuple[Slot, ...]
    concepts: frozenset[str] = field(default_factory=frozenset)
    normalized: str = ""


@dataclass(frozen=True)
class Terms:
    """The domain vocabulary (services/kb/data/terms.json)."""

    user_dictionary: tuple[tuple[str, int, str], ...]
    concepts: dict[str, tuple[str, ...]]
    stopwords_en: frozenset[str]
    stopwords_zh: frozenset[str]
    small_talk_whole: tuple[re.Pattern[str], ...]
    small_talk_anywhere: tuple[re.Pattern[str], ...]

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Terms:
        talk = data.get("small_talk", {})
        return cls(
            user_dictionary=tuple((w, int(f), p) for w, f, p in data["user_dictionary"]),
            concepts={name: tuple(surfaces) for name, surfaces in data["concepts"].items()},
            stopwords_en=frozenset(data["stopwords_en"]),
            stopwords_zh=frozenset(data["stopwords_zh"]),
            small_talk_whole=tuple(re.compile(p) for p in talk.get("whole", [])),
            small_talk_anywhere=tuple(re.compile(p) for p in talk.get("anywhere", [])),
        )


@cache
def default_terms() -> Terms:
    path = resources.files("services.kb") / "data" / "terms.json"
    return Terms.from_dict(json.loads(path.read_text(encoding="utf-8")))


class Analyzer:
    """Thread-safe: jieba's tokenizer is read-only once initialised, and each thread gets its
    own Snowball stemmer (PyStemmer objects must not be shared between threads)."""

    def __init__(self, terms: Terms | None = None) -> None:
        self.terms = terms or default_terms()
        self._local = threading.local()
        self._jieba: jieba.Tokenizer | None = None
        self._lock = threading.Lock()
        self._stems: dict[str, str] = {}
        self._cjk_surfaces: list[tuple[str, str]] = []
        self._latin_phrases: dict[tuple[str, ...], set[str]] = {}
        self._max_phrase = 1
        for name, surfaces in self.terms.concepts.items():
            token = CONCEPT_PREFIX + name
            for surface in surfaces:
                norm = normalize(surface)
                if has_cjk(norm) or "🆘" in norm:
                    self._cjk_surfaces.append((norm, token))  # matched as a substring
                    continue
                stems = tuple(self.stem(w) for w in _LATIN_WORD.findall(norm))
                if stems:
                    self._latin_phrases.setdefault(stems, set()).add(token)
                    self._max_phrase = max(self._max_phrase, len(stems))
        self._cjk_surfaces.sort(key=lambda pair: -len(pair[0]))

    # --- building blocks ----------------------------------------------------------------

    @property
    def segmenter(self) -> jieba.Tokenizer:
        if self._jieba is None:
            with self._lock:
                if self._jieba is None:
                    jieba.setLogLevel(logging.WARNING)
                    tokenizer = jieba.Tokenizer()
                    tokenizer.initialize()
                    for word, freq, tag in self.terms.user_dictionary:
                        tokenizer.add_word(word, freq, tag)
                    self._jieba = tokenizer
        return self._jieba

    def stem(self, word: str) -> str:
        found = self._stems.get(word)
        if found is None:
            stemmer = getattr(self._local, "stemmer", None)
            if stemmer is None:
                stemmer = self._local.stemmer = Stemmer.Stemmer("english")
            found = stemmer.stemWord(word)
            if len(self._stems) < 200_000:
                self._stems[word] = found
        return found

    def _cjk_words(self, run: str, search: bool) -> list[str]:
        cut = self.segmenter.lcut_for_search if search else self.segmenter.lcut
        return [w for w in cut(run, HMM=True) if w.strip() and w not in self.terms.stopwords_zh]

    def _concepts_in(self, text: str, stems: list[str]) -> list[str]:
        """Concept tokens, once per occurrence (so that tf counts)."""
        found: list[str] = []
        covered: dict[str, list[tuple[int, int]]] = {}
        for surface, token in self._cjk_surfaces:  # longest first; overlaps count once
            spans = covered.setdefault(token, [])
            start = text.find(surface)
            while start >= 0:
                end = start + len(surface)
                if not any(s < end and start < e for s, e in spans):
                    spans.append((start, end))
                    found.append(token)
                start = text.find(surface, end)
        for n in range(1, self._max_phrase + 1):
            for i in range(len(stems) - n + 1):
                tokens = self._latin_phrases.get(tuple(stems[i : i + n]))
                if tokens:
                    found.extend(tokens)
        return found

    # --- sections -------------------------------------------------------------------------

    def document_tokens(self, text: str) -> list[str]:
        """Tokens of a section to index, repeated as often as they occur."""
        norm = normalize(text)
        tokens: list[str] = []
        stems: list[str] = []
        for run in _RUNS.findall(norm):
            if _LATIN_WORD.fullmatch(run):
                stem = self.stem(run)
                stems.append(stem)
                if run not in self.terms.stopwords_en and len(run) > 1:
                    tokens.append(stem)
            elif run != "🆘":
                stems.append("")  # a Chinese run breaks an English phrase
                tokens.extend(self._cjk_words(run, search=True))
        tokens.extend(self._concepts_in(norm, stems))
        return tokens

    @cached_property
    def concept_words(self) -> frozenset[str]:
        """English words of the concepts: known words, never corrected to something else."""
        return frozenset(
            w
            for surfaces in self.terms.concepts.values()
            for surface in surfaces
            for w in _LATIN_WORD.findall(normalize(surface))
            if len(w) >= 4 and not w.isdigit()
        )

    def latin_words(self, text: str) -> set[str]:
        """Unstemmed English words of a text: the vocabulary that typos are corrected to."""
        return {
            w
            for w in _LATIN_WORD.findall(normalize(text))
            if len(w) >= 4 and not w.isdigit() and w not in self.terms.stopwords_en
        }

    # --- questions ------------------------------------------------------------------------

    def query(self, text: str, vocabulary: Vocabulary | None = None) -> Query:
        """Analyse a question; unknown English words are corrected against `vocabulary`
        (unstemmed words of the indexed sections) when one is close enough."""
        norm = normalize(text)[:_MAX_QUERY_CHARS]
        slots: list[Slot] = []
        tokens: list[str] = []
        stems: list[str] = []
        positions: list[int] = []  # slot index of each English stem, or -1
        cjk_slot_spans: list[tuple[int, int, int]] = []  # (start, end, slot) in `norm`
        for match in _RUNS.finditer(norm):
            run = match.group()
            if _LATIN_WORD.fullmatch(run):
                word, corrected = run, False
                if (
                    vocabulary
                    and not run.isdigit()
                    and run not in vocabulary
                    and run not in self.terms.stopwords_en
                ):
                    fixed = vocabulary.closest(run)
                    if fixed is not None and fixed not in self.terms.stopwords_en:
                        word, corrected = fixed, True
                stem = self.stem(word)
                stems.append(stem)
                if word in self.terms.stopwords_en or len(word) < 2:
                    positions.append(-1)
                    continue
                positions.append(len(slots))
                slots.append(Slot(stem, frozenset({stem}), corrected))
                tokens.append(stem)
            elif run == "🆘":
                positions.append(-1)
                stems.append("")
            else:
                stems.append("")
                positions.append(-1)
                offset = match.start()
                for word in self._cjk_words(run, search=False):
                    start = norm.find(word, offset)
                    offset = start + len(word) if start >= 0 else offset
                    parts = frozenset(self._cjk_words(word, search=True)) | {word}
                    cjk_slot_spans.append((start, start + len(word), len(slots)))
                    slots.append(Slot(word, parts))
                    tokens.extend(parts)
        concepts = self._query_concepts(norm, stems, positions, slots, cjk_slot_spans)
        tokens.extend(sorted(concepts))
        return Query(tuple(dict.fromkeys(tokens)), tuple(slots), frozenset(concepts), norm)

    def _query_concepts(
        self,
        norm: str,
        stems: list[str],
        positions: list[int],
        slots: list[Slot],
        cjk_spans: list[tuple[int, int, int]],
    ) -> set[str]:
        """Find concepts and add each to the slots of the words it covers."""
        extra: dict[int, set[str]] = {}
        concepts: set[str] = set()
        for surface, token in self._cjk_surfaces:
            start = norm.find(surface)
            while start >= 0:
                concepts.add(token)
                end = start + len(surface)
                for span_start, span_end, slot in cjk_spans:
                    if span_start < end and start < span_end:
                        extra.setdefault(slot, set()).add(token)
                start = norm.find(surface, end)
        for n in range(1, self._max_phrase + 1):
            for i in range(len(stems) - n + 1):
                found = self._latin_phrases.get(tuple(stems[i : i + n]))
                if not found:
                    continue
                concepts.update(found)
                for slot in positions[i : i + n]:
                    if slot >= 0:
                        extra.setdefault(slot, set()).update(found)
        for slot, added in extra.items():
            old = slots[slot]
            slots[slot] = Slot(old.word, old.alternatives | added, old.corrected)
        return concepts

    def small_talk_rest(self, text: str) -> str | None:
        """None when `text` is not small talk; else what is left once the small talk is
        taken out ("" for a bare greeting), so that "hello, how do I /sos" still counts."""
        norm = normalize(text).strip(" !！?？.。,，~～")
        if any(p.fullmatch(norm) for p in self.terms.small_talk_whole):
            return ""
        rest, found = norm, False
        for pattern in self.terms.small_talk_anywhere:
            rest, count = pattern.subn(" ", rest)
            found = found or count > 0
        return rest.strip() if found else None


class Vocabulary:
    """The unstemmed English words of the indexed sections, for correcting typos."""

    def __init__(self, words: Iterable[str] = ()) -> None:
        self.words = frozenset(words)
        by_initial: dict[str, list[str]] = {}
        for word in sorted(self.words):
            by_initial.setdefault(word[0], []).append(word)
        self._by_initial = {k: tuple(v) for k, v in by_initial.items()}

    def __contains__(self, word: object) -> bool:
        return word in self.words

    def __len__(self) -> int:
        return len(self.words)

    def closest(self, word: str) -> str | None:
        """The nearest word with the same first letter: one edit (a transposition counts as
        one), two for words of 9 letters or more. Words shorter than 5 letters are left
        alone: too many real words lie one edit apart ("best", "west")."""
        if len(word) < 5:
            return None
        limit = 1 if len(word) <= 8 else 2
        choices = self._by_initial.get(word[0], ())
        found = process.extractOne(word, choices, scorer=OSA.distance, score_cutoff=limit)
        return found[0] if found else None


@cache
def default_analyzer() -> Analyzer:
    return Analyzer()
