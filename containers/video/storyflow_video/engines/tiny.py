"""A tiny randomly initialised Wan 2.2 pipeline, built offline in about a second (no weights, no hub).

The same diffusers classes as Wan2.2-TI2V-5B-Diffusers (WanPipeline with expand_timesteps, a 48-channel
AutoencoderKLWan with patch size 2, a UMT5 encoder, UniPC flow scheduler), shrunk: the `wan` engine's
code path runs on it in tests and on CPU. Its frames are noise-like; only the shapes and the path matter.
"""

from __future__ import annotations

import importlib
from typing import Any

VOCAB = ["<pad>", "</s>", "<unk>"] + [f"w{i}" for i in range(61)]  # 64 ids, as the tiny encoder's vocab


def tokenizer() -> Any:
    """A WordLevel `tokenizers` tokenizer (unknown words → <unk>) in a PreTrainedTokenizerFast."""
    tokenizers: Any = importlib.import_module("tokenizers")
    transformers: Any = importlib.import_module("transformers")

    inner = tokenizers.Tokenizer(
        tokenizers.models.WordLevel(vocab={w: i for i, w in enumerate(VOCAB)}, unk_token="<unk>")
    )
    inner.pre_tokenizer = tokenizers.pre_tokenizers.Whitespace()
    return transformers.PreTrainedTokenizerFast(
        tokenizer_object=inner, pad_token="<pad>", eos_token="</s>", unk_token="<unk>", model_max_length=512
    )


def build_pipeline(seed: int = 0) -> Any:
    """The tiny WanPipeline (float32, CPU). Deterministic for a given seed."""
    torch: Any = importlib.import_module("torch")
    diffusers: Any = importlib.import_module("diffusers")
    transformers: Any = importlib.import_module("transformers")

    torch.manual_seed(seed)
    vae = diffusers.AutoencoderKLWan(
        base_dim=3,
        z_dim=48,
        in_channels=12,
        out_channels=12,
        is_residual=True,
        patch_size=2,
        latents_mean=[0.0] * 48,
        latents_std=[1.0] * 48,
        dim_mult=[1, 1, 1, 1],
        num_res_blocks=1,
        scale_factor_spatial=16,
        scale_factor_temporal=4,
        temperal_downsample=[False, True, True],
    )
    transformer = diffusers.WanTransformer3DModel(
        patch_size=(1, 2, 2),
        num_attention_heads=2,
        attention_head_dim=12,
        in_channels=48,
        out_channels=48,
        text_dim=32,
        freq_dim=256,
        ffn_dim=32,
        num_layers=2,
        cross_attn_norm=True,
        qk_norm="rms_norm_across_heads",
        rope_max_seq_len=32,
    )
    text_encoder = transformers.UMT5EncoderModel(
        transformers.UMT5Config(
            vocab_size=len(VOCAB),
            d_model=32,
            d_kv=8,
            d_ff=37,
            num_layers=2,
            num_heads=4,
            relative_attention_num_buckets=8,
        )
    )
    scheduler = diffusers.UniPCMultistepScheduler(
        prediction_type="flow_prediction", use_flow_sigmas=True, flow_shift=5.0
    )
    pipe = diffusers.WanPipeline(
        tokenizer=tokenizer(),
        text_encoder=text_encoder.eval(),
        vae=vae.eval(),
        scheduler=scheduler,
        transformer=transformer.eval(),
        expand_timesteps=True,
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe
