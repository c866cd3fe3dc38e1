"""A randomly initialised Kokoro model folder, built offline in a second (DESIGN.md, facts 2026-12):
the production config with the decoder's widths kept (hidden_dim and istftnet upsample_initial_channel
512, style_dim 128) and a tiny PL-BERT, an empty state dict (`torch.save({}, ...)`), a phoneme vocab built
from what misaki's G2P makes of the texts the test speaks (unknown phonemes would be dropped silently),
and a random [510, 1, 256] voice. The kokoro engine loads it through its real MODEL_DIR path."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

# Kokoro-82M's own sizes (its config.json): random weights at full size compute exactly what the real model
# does, which is what a speed benchmark needs.
FULL_SIZE = {
    "n_layer": 3,
    "max_dur": 50,
    "plbert": {
        "hidden_size": 768,
        "num_attention_heads": 12,
        "intermediate_size": 2048,
        "max_position_embeddings": 512,
        "num_hidden_layers": 12,
        "dropout": 0.1,
    },
}


def tiny_config(vocab: dict[str, int], full_size: bool = False) -> dict[str, Any]:
    config = {
        "istftnet": {
            "upsample_kernel_sizes": [20, 12],
            "upsample_rates": [10, 6],
            "gen_istft_hop_size": 5,
            "gen_istft_n_fft": 20,
            "resblock_dilation_sizes": [[1, 3, 5], [1, 3, 5], [1, 3, 5]],
            "resblock_kernel_sizes": [3, 7, 11],
            "upsample_initial_channel": 512,
        },
        "dim_in": 64,
        "dropout": 0.2,
        "hidden_dim": 512,
        "max_conv_dim": 512,
        "max_dur": 2,
        "multispeaker": True,
        "n_layer": 1,
        "n_mels": 80,
        "n_token": 178,
        "style_dim": 128,
        "text_encoder_kernel_size": 5,
        "plbert": {
            "hidden_size": 32,
            "num_attention_heads": 2,
            "intermediate_size": 64,
            "max_position_embeddings": 512,
            "num_hidden_layers": 1,
            "dropout": 0.1,
        },
        "vocab": vocab,
    }
    return {**config, **FULL_SIZE} if full_size else config


def phoneme_vocab(texts: Iterable[str], british: bool = False) -> dict[str, int]:
    """Every phoneme character misaki's English G2P produces for `texts` (and the punctuation Kokoro
    keeps), numbered from 1 (0 is Kokoro's pad/boundary id)."""
    from misaki import en

    g2p = en.G2P(trf=False, british=british, fallback=None, unk="")
    symbols: set[str] = set(' ;:,.!?¡¿—…"«»“”()')
    for text in texts:
        phonemes, _ = g2p(text)
        symbols.update(phonemes)
    return {symbol: i + 1 for i, symbol in enumerate(sorted(symbols))}


def build_model_dir(
    folder: Path, texts: Iterable[str], voices: Iterable[str] = ("af_heart",), full_size: bool = False
) -> Path:
    import torch

    texts = list(texts)
    vocab = phoneme_vocab(texts)
    for symbol in phoneme_vocab(texts, british=True):
        vocab.setdefault(symbol, len(vocab) + 1)
    assert max(vocab.values()) < 178, "the tiny vocab must fit n_token"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps(tiny_config(vocab, full_size)), encoding="utf-8")
    torch.save({}, folder / "empty.pth")
    (folder / "voices").mkdir(exist_ok=True)
    generator = torch.Generator().manual_seed(0)
    for voice in voices:
        torch.save(torch.randn(510, 1, 256, generator=generator) * 0.1, folder / "voices" / f"{voice}.pt")
    return folder
