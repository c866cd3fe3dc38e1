"""Subtitle cues from word timings, the way subtitle editors cut them, and the SRT/VTT files (pysubs2).

Rules (:class:`CueRules`, defaults after common broadcast guidelines): a cue never spans a sentence end;
at most 2 lines of at most 42 characters, balanced (the split that makes the longer line shortest); at
most 7 s (lines break after a clause mark when one is near the middle, never after "the" or "of" when
avoidable); a cue that must close mid-sentence closes after a clause (a comma, semicolon, colon or dash)
in its second half when it has one; each cue lasts at least 1 s when the next one leaves room (never
overlapping it). A single word longer than a line stays whole on its own line.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from dataclasses import dataclass

import pysubs2

from storyflow_tts.engines.base import Word

SENTENCE_END = re.compile(r"[.!?…]+[\"'”’)\]]*$")  # noqa: RUF001
CLAUSE_END = re.compile(r"[,;:—–-][\"'”’)\]]*$")  # noqa: RUF001

# Line breaks: prefer one after a clause mark; avoid an article, preposition or conjunction at a line's end.
BREAK_AFTER_CLAUSE = 8.0
WEAK_LINE_END_PENALTY = 8.0
WEAK_LINE_ENDS = frozenset(
    {
        "a",
        "an",
        "the",
        "of",
        "to",
        "in",
        "on",
        "at",
        "by",
        "for",
        "with",
        "from",
        "and",
        "or",
        "but",
        "nor",
        "as",
        "that",
        "which",
        "who",
        "his",
        "her",
        "its",
        "their",
        "my",
        "your",
        "our",
    }
)


@dataclass(frozen=True)
class CueRules:
    max_line_chars: int = 42
    max_lines: int = 2
    min_seconds: float = 1.0
    max_seconds: float = 7.0


@dataclass(frozen=True)
class Cue:
    start: float
    end: float
    lines: tuple[str, ...]

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


def wrap(words: Sequence[str], rules: CueRules) -> tuple[str, ...] | None:
    """The cue's lines (balanced), or None when the words do not fit in ``max_lines`` lines."""
    text = " ".join(words)
    if len(text) <= rules.max_line_chars or len(words) == 1:
        return (text,)
    if rules.max_lines < 2:
        return None
    best: tuple[str, ...] | None = None
    best_score = 0.0
    for split in range(1, len(words)):
        first, second = " ".join(words[:split]), " ".join(words[split:])
        if len(first) > rules.max_line_chars or len(second) > rules.max_line_chars:
            continue
        score = float(max(len(first), len(second)))
        if CLAUSE_END.search(words[split - 1]):
            score -= BREAK_AFTER_CLAUSE  # "Out on the bay, / the small boats turned for home."
        elif words[split - 1].lower() in WEAK_LINE_ENDS:
            score += WEAK_LINE_END_PENALTY  # not "... climbed the / one hundred steps"
        if best is None or score < best_score:
            best, best_score = (first, second), score
    return best


def build_cues(
    words: Sequence[Word], rules: CueRules | None = None, duration: float | None = None
) -> list[Cue]:
    """Cut ``words`` (monotonic timings) into cues; ``duration`` (the audio's) bounds the last one."""
    rules = rules or CueRules()
    groups: list[list[Word]] = []
    current: list[Word] = []

    def fits(candidate: list[Word]) -> bool:
        long = candidate[-1].end - candidate[0].start > rules.max_seconds
        return not long and wrap([w.text for w in candidate], rules) is not None

    for word in words:
        if current and not fits([*current, word]):
            cut = _clause_cut(current)
            groups.append(current[:cut])
            current = current[cut:]
            if current and not fits([*current, word]):
                groups.append(current)
                current = []
        current.append(word)
        if SENTENCE_END.search(word.text):
            groups.append(current)
            current = []
    if current:
        groups.append(current)
    return _timed(groups, rules, duration)


def _clause_cut(words: list[Word]) -> int:
    """Where to close a full cue: after its last clause end in the second half, else after all of it."""
    for i in range(len(words) - 2, len(words) // 2 - 1, -1):
        if i >= 0 and CLAUSE_END.search(words[i].text):
            return i + 1
    return len(words)


def _timed(groups: list[list[Word]], rules: CueRules, duration: float | None) -> list[Cue]:
    cues: list[Cue] = []
    for i, group in enumerate(groups):
        start, end = group[0].start, group[-1].end
        following = groups[i + 1][0].start if i + 1 < len(groups) else duration
        end = max(end, start + rules.min_seconds)
        end = min(end, start + rules.max_seconds)
        if following is not None:
            end = min(end, following)
        lines = wrap([w.text for w in group], rules) or (" ".join(w.text for w in group),)
        cues.append(Cue(start, max(start, end), lines))
    return cues


def _subtitles(cues: Sequence[Cue], escape: bool) -> pysubs2.SSAFile:
    subs = pysubs2.SSAFile()
    for cue in cues:
        # pysubs2 holds ASS text: `{...}` would be an override block and `\N` is its line break.
        lines = [line.replace("{", "(").replace("}", ")") for line in cue.lines]
        if escape:  # WebVTT cue text is HTML-like: a literal & or < must be an entity
            lines = [html.escape(line, quote=False) for line in lines]
        subs.events.append(
            pysubs2.SSAEvent(start=round(cue.start * 1000), end=round(cue.end * 1000), text=r"\N".join(lines))
        )
    return subs


def to_srt(cues: Sequence[Cue]) -> str:
    return str(_subtitles(cues, escape=False).to_string("srt"))


def to_vtt(cues: Sequence[Cue]) -> str:
    return str(_subtitles(cues, escape=True).to_string("vtt"))
