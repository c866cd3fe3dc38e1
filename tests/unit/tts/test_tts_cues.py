"""Cues cut the way subtitle editors expect, written by pysubs2 (Given word timings / When cut / Then ...)."""

from __future__ import annotations

import pysubs2
import pytest
from storyflow_tts.cues import Cue, CueRules, build_cues, to_srt, to_vtt, wrap
from storyflow_tts.engines.base import Word

RULES = CueRules()


def timed(text: str, seconds_per_word: float = 0.3, pause_after_sentence: float = 0.0) -> list[Word]:
    """Evenly spoken words (each takes 90% of its slot), with an optional pause after each sentence."""
    words, t = [], 0.0
    for token in text.split():
        words.append(Word(token, t, t + seconds_per_word * 0.9))
        t += seconds_per_word + (pause_after_sentence if token.endswith((".", "!", "?")) else 0.0)
    return words


def check_rules(cues: list[Cue], rules: CueRules = RULES) -> None:
    for i, cue in enumerate(cues):
        assert 1 <= len(cue.lines) <= rules.max_lines, cue
        assert all(len(line) <= rules.max_line_chars for line in cue.lines), cue
        assert cue.start <= cue.end <= cue.start + rules.max_seconds + 1e-9, cue
        if i:
            assert cues[i - 1].end <= cue.start, (cues[i - 1], cue)


LONG = (
    "Once upon a time, in a kingdom by a cold grey sea, there lived a lighthouse keeper who had never "
    "once missed a night in forty years of service to the ships that passed his rock. "
    "Short one. And then the storm came!"
)


def test_long_sentences_become_two_line_cues_of_at_most_42_characters() -> None:
    # Given a long sentence and two short ones, When cut
    cues = build_cues(timed(LONG), duration=60)
    # Then every cue keeps the rules, and the words are all there, in order
    check_rules(cues)
    assert " ".join(" ".join(c.lines) for c in cues) == " ".join(LONG.split())
    # ... the long sentence needs several two-line cues; the short sentences get a cue each
    assert [c.text for c in cues[-2:]] == ["Short one.", "And then the storm came!"]
    assert len(cues) == 5
    assert all(len(c.lines) == 2 for c in cues[:2])


def test_a_cue_never_spans_a_sentence_end() -> None:
    cues = build_cues(timed("Yes. No. Maybe so. I do not know."), duration=10)
    assert [c.text for c in cues] == ["Yes.", "No.", "Maybe so.", "I do not know."]


def test_a_full_cue_closes_after_a_clause_in_its_second_half() -> None:
    # Given words that overflow one cue, with a comma late in the first cue's worth of text
    text = "We walked along the shore and up the long hill, then down into the valley where the river ran."
    cues = build_cues(timed(text), duration=30)
    # Then the first cue ends at the comma, not mid-phrase
    assert cues[0].text.replace("\n", " ").endswith("hill,")
    check_rules(cues)


def test_min_and_max_durations() -> None:
    # Given a fast one-word sentence with room after it, When cut, Then it stays up at least 1 s
    cues = build_cues([Word("Hi.", 0.0, 0.2), Word("There.", 5.0, 5.3)], duration=6)
    assert cues[0].end == pytest.approx(1.0)
    # ... but never into the next cue
    cues = build_cues([Word("Hi.", 0.0, 0.2), Word("There.", 0.5, 0.8)], duration=6)
    assert cues[0].end == pytest.approx(0.5)
    # ... nor past the audio
    assert build_cues([Word("End.", 9.5, 9.7)], duration=10)[0].end == pytest.approx(10.0)
    # Given slow speech, When cut, Then no cue lasts longer than 7 s
    slow = build_cues(timed("one two three four five six seven eight nine ten", 1.5), duration=20)
    check_rules(slow)
    assert len(slow) >= 3


def test_cue_count_and_timing_follow_the_words() -> None:
    words = timed(LONG, pause_after_sentence=0.5)
    cues = build_cues(words, duration=words[-1].end + 1)
    assert cues[0].start == words[0].start
    assert cues[-1].start == words[-5].start  # "And then the storm came!" is the last cue
    starts = [c.start for c in cues]
    assert starts == sorted(starts)


def test_wrap_balances_two_lines_and_refuses_three() -> None:
    assert wrap(["a", "b", "c", "d"], RULES) == ("a b c d",)
    lines = wrap(("word " * 12).split(), RULES)
    assert lines is not None and len(lines) == 2 and abs(len(lines[0]) - len(lines[1])) <= 5
    assert wrap(("word " * 30).split(), RULES) is None
    assert wrap(["x" * 60], RULES) == ("x" * 60,)  # one word longer than a line stays whole


def test_srt_and_vtt_are_written_by_pysubs2_and_read_back() -> None:
    # Given cues with characters that mean something to the formats
    cues = [Cue(0.0, 1.5, ("Fish & chips {for two}", "a < b")), Cue(1.5, 3.25, ("The end.",))]
    srt, vtt = to_srt(cues), to_vtt(cues)
    # Then SRT reads back with the same times and text ({} would be ASS overrides: they become ())
    back = pysubs2.SSAFile.from_string(srt, format_="srt")
    assert [(e.start, e.end) for e in back] == [(0, 1500), (1500, 3250)]
    assert back[0].plaintext == "Fish & chips (for two)\na < b"
    assert "00:00:01,500 --> 00:00:03,250" in srt
    # ... and WebVTT has its header, its time format and escaped text
    assert vtt.startswith("WEBVTT")
    assert "00:00:01.500 --> 00:00:03.250" in vtt
    assert "Fish &amp; chips (for two)\na &lt; b" in vtt


def test_lines_break_after_a_clause_and_never_after_an_article_when_avoidable() -> None:
    bay = "Out on the bay, the small boats turned for home."
    assert wrap(bay.split(" "), RULES) == (
        "Out on the bay,",
        "the small boats turned for home.",
    )
    keeper = "The lighthouse keeper climbed the one hundred and twelve steps at dusk"
    lines = wrap(keeper.split(" "), RULES)
    assert lines is not None and not lines[0].endswith(" the")
