"""Offline, deterministic relevance ranking for briefs: Okapi BM25 over each document's
fields (name weighted above keywords above description), with a light stemmer and a
small advertising synonym table so "sports fans on TV" finds "Connected TV - Sports".
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

_WORD = re.compile(r"[a-z0-9]+")
_STOP = frozenset(
    (
        "a an and are as at be by for from in into is it its of on or our over the their this "
        "to we with want wants looking need needs campaign campaigns ads ad advertising buy "
        "reach target targeting us i"
    ).split()
)
# Buyer words → the vocabulary publishers use in product data.
_SYNONYMS: dict[str, tuple[str, ...]] = {
    "tv": ("ctv", "television", "stream"),
    "ctv": ("tv", "television", "stream"),
    "television": ("ctv", "tv"),
    "ott": ("ctv", "stream"),
    "streaming": ("stream", "ctv"),
    "radio": ("audio",),
    "podcast": ("audio", "podcast"),
    "music": ("audio",),
    "audio": ("radio", "podcast"),
    "banner": ("display",),
    "banners": ("display",),
    "display": ("banner",),
    "mobile": ("app", "mobil"),
    "phone": ("mobil",),
    "millennial": ("adult", "young"),
    "millennials": ("adult", "young"),
    "genz": ("young", "teen"),
    "football": ("sport", "nfl"),
    "soccer": ("sport",),
    "basketball": ("sport", "nba"),
    "athlete": ("sport",),
    "fitness": ("health", "sport"),
    "car": ("auto",),
    "cars": ("auto",),
    "automotive": ("auto",),
    "vehicle": ("auto",),
    "recipe": ("food",),
    "cooking": ("food",),
    "finance": ("money", "business"),
    "investing": ("financ", "business"),
    "travel": ("travel",),
    "luxury": ("premium",),
    "awareness": ("premium", "reach"),
    "performance": ("perform", "click"),
    "cheap": ("auction", "remnant"),
    "budget": ("auction",),
}


def stem(word: str) -> str:
    for suffix in ("ing", "ers", "ies", "es", "er", "s", "al"):
        if len(word) > len(suffix) + 3 and word.endswith(suffix):
            return word[: -len(suffix)]
    return word


def tokenize(text: str) -> list[str]:
    return [stem(w) for w in _WORD.findall(text.lower()) if w not in _STOP]


def expand_query(text: str) -> list[str]:
    terms: list[str] = []
    for word in _WORD.findall(text.lower()):
        if word in _STOP:
            continue
        terms.append(stem(word))
        terms.extend(stem(s) for s in _SYNONYMS.get(word, ()))
    return list(dict.fromkeys(terms))


@dataclass(frozen=True)
class Document:
    doc_id: str
    fields: dict[str, str]  # field name -> text

    # Tokenized once per document: documents live in the per-tenant catalog cache, so
    # a query only tokenizes itself.
    @cached_property
    def field_terms(self) -> dict[str, Counter[str]]:
        return {name: Counter(tokenize(text)) for name, text in self.fields.items()}

    @cached_property
    def bag(self) -> Counter[str]:
        bag: Counter[str] = Counter()
        for terms in self.field_terms.values():
            bag.update(terms)
        return bag

    @cached_property
    def length(self) -> int:
        return sum(self.bag.values())


@dataclass(frozen=True)
class Scored:
    doc_id: str
    score: float
    matched: dict[str, list[str]]  # field -> query terms that hit it


FIELD_WEIGHTS = {"name": 3.0, "keywords": 2.0, "channels": 2.0, "description": 1.0}


def bm25_rank(
    query: str, docs: Sequence[Document], *, k1: float = 1.2, b: float = 0.75
) -> list[Scored]:
    """Score each document against the query; ties keep the input order (stable)."""
    terms = expand_query(query)
    if not terms or not docs:
        return [Scored(d.doc_id, 0.0, {}) for d in docs]
    avg_len = sum(d.length for d in docs) / len(docs) or 1.0
    df = Counter(t for d in docs for t in d.bag)
    n = len(docs)
    out: list[Scored] = []
    for doc in docs:
        score = 0.0
        matched: dict[str, list[str]] = {}
        doc_len = doc.length or 1
        for term in terms:
            if df[term] == 0:
                continue
            idf = math.log(1 + (n - df[term] + 0.5) / (df[term] + 0.5))
            weighted_tf = 0.0
            for name, counts in doc.field_terms.items():
                tf = counts[term]
                if tf:
                    weighted_tf += FIELD_WEIGHTS.get(name, 1.0) * tf
                    matched.setdefault(name, []).append(term)
            if weighted_tf:
                score += (
                    idf
                    * weighted_tf
                    * (k1 + 1)
                    / (weighted_tf + k1 * (1 - b + b * doc_len / avg_len))
                )
        out.append(Scored(doc.doc_id, round(score, 6), matched))
    return out
