"""Lesson 12 (attention and the Transformer block): the exported transformer module (attention, masks,
multi-head attention, positions, MLP, pre-LN block) against PyTorch's own, its errors in the learner's
terms, and the checkers fed the mistakes learners make."""
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from deepgen_helpers.checks import lesson12 as chk
from deepgen_helpers.models import transformer as tr

pytestmark = pytest.mark.usefixtures("one_thread")   # tests/conftest.py

PAD = 0
IDS = torch.tensor([[5, 3, 7, 2, 9, 4], [5, 3, 7, 2, PAD, PAD], [8, 1, PAD, PAD, PAD, PAD]])


def _copy_into_torch_mha(mha: tr.MultiHeadAttention) -> nn.MultiheadAttention:
    ref = nn.MultiheadAttention(mha.d_model, mha.n_heads, batch_first=True)
    with torch.no_grad():
        ref.in_proj_weight.copy_(torch.cat([mha.q_proj.weight, mha.k_proj.weight,
                                            mha.v_proj.weight]))
        ref.in_proj_bias.copy_(torch.cat([mha.q_proj.bias, mha.k_proj.bias, mha.v_proj.bias]))
        ref.out_proj.weight.copy_(mha.out_proj.weight)
        ref.out_proj.bias.copy_(mha.out_proj.bias)
    return ref


# --------------------------------------------------------------------------------------------------
# Scaled dot-product attention and masks
def test_attention_shapes_weights_and_equality_with_torch():
    torch.manual_seed(0)
    q, k, v = torch.randn(2, 3, 5, 8), torch.randn(2, 3, 7, 8), torch.randn(2, 3, 7, 4)
    out, w = tr.scaled_dot_product_attention(q, k, v)
    assert out.shape == (2, 3, 5, 4) and w.shape == (2, 3, 5, 7)
    assert torch.allclose(w.sum(-1), torch.ones(2, 3, 5))
    assert torch.allclose(out, F.scaled_dot_product_attention(q, k, v), atol=1e-6)
    # Eq. 1 written out for one head
    manual = torch.softmax(q[0, 0] @ k[0, 0].T / math.sqrt(8), dim=-1) @ v[0, 0]
    assert torch.allclose(out[0, 0], manual, atol=1e-6)


@pytest.mark.parametrize("which", ["causal", "padding", "both"])
def test_masks_equal_torch_and_zero_the_masked_weights(which):
    torch.manual_seed(1)
    q, k, v = (torch.randn(3, 2, 6, 16) for _ in range(3))
    causal, pad = tr.causal_mask(6), tr.padding_mask(IDS, PAD)
    mask = {"causal": causal, "padding": pad, "both": pad & causal}[which]
    out, w = tr.scaled_dot_product_attention(q, k, v, mask)
    ref = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    assert (out - ref).abs().max() < 1e-5
    assert w[~mask.expand_as(w)].abs().max() == 0


def test_mask_builders():
    assert torch.equal(tr.causal_mask(3), torch.tensor([[1, 0, 0], [1, 1, 0], [1, 1, 1]]).bool())
    # queries that are the last 2 of 4 positions (a KV cache)
    assert torch.equal(tr.causal_mask(2, kv_len=4),
                       torch.tensor([[1, 1, 1, 0], [1, 1, 1, 1]]).bool())
    pad = tr.padding_mask(IDS, PAD)
    assert pad.shape == (3, 1, 1, 6) and pad.dtype == torch.bool
    assert pad[1, 0, 0].tolist() == [True] * 4 + [False] * 2
    assert (pad & tr.causal_mask(6)).shape == (3, 1, 6, 6)


def test_causal_mask_prevents_looking_ahead():
    torch.manual_seed(2)
    block = tr.Block(32, 4)
    x = torch.randn(2, 9, 32)
    x2 = x.clone()
    x2[:, 6] += 3.0 * torch.randn(32)                  # not a constant: LayerNorm removes those
    y, y2 = block(x, mask=tr.causal_mask(9)), block(x2, mask=tr.causal_mask(9))
    assert torch.allclose(y[:, :6], y2[:, :6], atol=1e-6)
    assert (y[:, 6:] - y2[:, 6:]).abs().max() > 1e-2
    # without the mask, earlier positions do see the change
    assert (block(x)[:, :6] - block(x2)[:, :6]).abs().max() > 1e-3


def test_padding_mask_ignores_pad_positions():
    torch.manual_seed(3)
    mha = tr.MultiHeadAttention(16, 2)
    x = torch.randn(3, 6, 16)
    junk = x.clone()
    junk[IDS == PAD] = 50 * torch.randn(int((IDS == PAD).sum()), 16)
    mask = tr.padding_mask(IDS, PAD)
    real = IDS != PAD
    a, b = mha(x, mask=mask), mha(junk, mask=mask)
    assert torch.allclose(a[real], b[real], atol=1e-5)
    assert (mha(x)[real] - mha(junk)[real]).abs().max() > 1e-2          # unmasked: they leak


# --------------------------------------------------------------------------------------------------
# Multi-head attention
def test_multi_head_attention_equals_nn_multiheadattention():
    torch.manual_seed(4)
    mha = tr.MultiHeadAttention(32, 4)
    ref = _copy_into_torch_mha(mha)
    x = torch.randn(3, 6, 32)
    causal, pad = tr.causal_mask(6), tr.padding_mask(IDS, PAD)
    ref_out, ref_w = ref(x, x, x, attn_mask=~causal, key_padding_mask=(IDS == PAD),
                         need_weights=True, average_attn_weights=False)
    ours = mha(x, mask=pad & causal, need_weights=True)
    assert (ours - ref_out).abs().max() < 1e-5
    assert (mha.last_weights - ref_w).abs().max() < 1e-6
    assert (mha(x, mask=pad & causal) - ref_out).abs().max() < 1e-5      # the fused path
    mha.use_fused = False
    assert (mha(x, mask=pad & causal) - ref_out).abs().max() < 1e-5
    ref_plain, _ = ref(x, x, x)
    assert (mha(x) - ref_plain).abs().max() < 1e-5


def test_split_merge_heads_and_attend():
    torch.manual_seed(5)
    mha = tr.MultiHeadAttention(24, 3)
    x = torch.randn(2, 5, 24)
    heads = mha.split_heads(x)
    assert heads.shape == (2, 3, 5, 8)
    assert torch.equal(heads[:, 1, 2], x[:, 2, 8:16])                   # head 1, position 2
    assert torch.equal(mha.merge_heads(heads), x)
    q, k, v = (mha.split_heads(p(x)) for p in (mha.q_proj, mha.k_proj, mha.v_proj))
    assert torch.allclose(mha.attend(q, k, v), mha(x), atol=1e-6)


def test_cross_attention_shapes_and_context_mask():
    torch.manual_seed(6)
    mha = tr.MultiHeadAttention(16, 4)
    x, context = torch.randn(3, 5, 16), torch.randn(3, 6, 16)
    out = mha(x, context=context, mask=tr.padding_mask(IDS, PAD), need_weights=True)
    assert out.shape == (3, 5, 16) and mha.last_weights.shape == (3, 4, 5, 6)
    assert mha.last_weights[2, :, :, 2:].abs().max() == 0
    block = tr.Block(16, 4, cross=True)
    y = block(x, mask=tr.causal_mask(5), context=context,
              context_mask=tr.padding_mask(IDS, PAD))
    assert y.shape == x.shape
    with pytest.raises(ValueError, match="cross=True"):
        block(x)
    with pytest.raises(ValueError, match="cross=True"):
        tr.Block(16, 4)(x, context=context)


def test_dropout_acts_only_in_training():
    torch.manual_seed(7)
    mha = tr.MultiHeadAttention(16, 2, dropout=0.5)
    x = torch.randn(2, 4, 16)
    mha.eval()
    assert torch.equal(mha(x), mha(x))
    mha.train()
    assert not torch.allclose(mha(x, need_weights=True), mha(x, need_weights=True))


# --------------------------------------------------------------------------------------------------
# Positions, MLP, block
def test_sinusoidal_positions_values_and_relative_offsets():
    pe = tr.sinusoidal_positions(50, 16)
    assert pe.shape == (50, 16)
    t, i = 7, 3
    w = 1 / 10000 ** (2 * i / 16)
    assert math.isclose(pe[t, 2 * i].item(), math.sin(t * w), abs_tol=1e-6)
    assert math.isclose(pe[t, 2 * i + 1].item(), math.cos(t * w), abs_tol=1e-6)
    # PE[t + k] is a fixed linear function of PE[t] (a least-squares fit is exact)
    k = 4
    M = torch.linalg.lstsq(pe[:-k].double(), pe[k:].double()).solution
    assert (pe[:-k].double() @ M - pe[k:].double()).abs().max() < 1e-5


def test_permutation_equivariance_without_positions():
    torch.manual_seed(8)
    mha = tr.MultiHeadAttention(16, 4)
    x, perm = torch.randn(1, 7, 16), torch.randperm(7)
    assert torch.allclose(mha(x[:, perm]), mha(x)[:, perm], atol=1e-6)
    pe = tr.sinusoidal_positions(7, 16)
    assert not torch.allclose(mha(x[:, perm] + pe), mha(x + pe)[:, perm], atol=1e-3)


def test_block_parameters_and_pre_ln_structure():
    D = 32
    block = tr.Block(D, 4)
    assert sum(p.numel() for p in block.parameters()) == 12 * D * D + 13 * D
    assert isinstance(block.mlp.fc, nn.Linear) and block.mlp.fc.out_features == 4 * D
    torch.manual_seed(9)
    x = torch.randn(2, 5, D)
    mask = tr.causal_mask(5)
    h = x + block.attn(block.ln1(x), mask=mask)
    assert torch.allclose(block(x, mask=mask), h + block.mlp(block.ln2(h)), atol=1e-6)
    y = block(x.requires_grad_(), mask=mask)
    y.sum().backward()
    assert all(p.grad is not None for p in block.parameters())
    assert tr.Block(D, 4, bias=False).ln1.bias is None


# --------------------------------------------------------------------------------------------------
# Errors in the learner's terms
def test_bad_inputs_raise_clear_errors():
    with pytest.raises(ValueError, match="divisible"):
        tr.MultiHeadAttention(30, 4)
    q = torch.randn(2, 5, 8)
    with pytest.raises(TypeError, match="bool"):
        tr.scaled_dot_product_attention(q, q, q, torch.ones(5, 5))
    with pytest.raises(ValueError, match="broadcast"):
        tr.scaled_dot_product_attention(q, q, q, torch.ones(4, 4, dtype=torch.bool))
    with pytest.raises(ValueError, match="same size"):
        tr.scaled_dot_product_attention(q, torch.randn(2, 5, 6), q)
    with pytest.raises(ValueError, match="every key needs a value"):
        tr.scaled_dot_product_attention(q, q, torch.randn(2, 4, 8))
    with pytest.raises(ValueError, match="allows no key"):
        tr.scaled_dot_product_attention(q, q, q, torch.zeros(5, 5, dtype=torch.bool))
    mha = tr.MultiHeadAttention(8, 2)
    with pytest.raises(ValueError, match="allows no key"):               # the fused path too
        mha(q, mask=torch.zeros(5, 5, dtype=torch.bool))
    with pytest.raises(ValueError, match="d_model = 8"):
        mha(torch.randn(2, 5, 6))
    with pytest.raises(ValueError, match="context"):
        mha(q, context=torch.randn(3, 4, 8))
    with pytest.raises(ValueError, match="even"):
        tr.sinusoidal_positions(4, 5)
    with pytest.raises(ValueError, match="integer"):
        tr.padding_mask(torch.randn(2, 3), 0)
    with pytest.raises(ValueError, match="kv_len"):
        tr.causal_mask(4, kv_len=3)


# --------------------------------------------------------------------------------------------------
# Checkers: the reference passes, real mistakes fail
def _attention(q, k, v, mask=None, *, axis=-1, scale="sqrt", after=False, inverted=False):
    d = q.shape[-1]
    s = q @ k.transpose(-2, -1) / {"sqrt": math.sqrt(d), "d": d, "none": 1.0}[scale]
    if mask is not None and inverted:
        mask = ~mask
    if mask is not None and not after:
        s = s.masked_fill(~mask, float("-inf"))
    w = s.softmax(axis)
    if mask is not None and after:
        w = w * mask
    return w @ v


def test_check_attention():
    assert chk.check_attention(_attention)
    assert chk.check_attention(lambda q, k, v, mask=None: tr.scaled_dot_product_attention(
        q, k, v, mask))                                                  # (out, weights) is fine
    for wrong in (dict(axis=-2), dict(scale="d"), dict(scale="none"), dict(after=True),
                  dict(inverted=True)):
        assert not chk.check_attention(lambda q, k, v, mask=None, w=wrong: _attention(
            q, k, v, mask, **w)), wrong


def test_check_split_heads():
    def right(x, H):
        B, T, D = x.shape
        return x.view(B, T, H, D // H).transpose(1, 2)

    assert chk.check_split_heads(right)
    assert not chk.check_split_heads(lambda x, H: x.view(x.shape[0], H, x.shape[1], -1))
    assert not chk.check_split_heads(
        lambda x, H: x.view(x.shape[0], x.shape[1], -1, H).permute(0, 3, 1, 2))
    assert not chk.check_split_heads(lambda x, H: x.view(x.shape[0], x.shape[1], H, -1))


def _sinusoids(T, d, base=10000.0, swap=False, step=2, halves=False):
    t = torch.arange(T, dtype=torch.float32)[:, None]
    freq = base ** (-torch.arange(0, d, 2, dtype=torch.float32) * (step / 2) / d)
    a, b = torch.sin(t * freq), torch.cos(t * freq)
    if swap:
        a, b = b, a
    if halves:
        return torch.cat([a, b], dim=1)
    pe = torch.zeros(T, d)
    pe[:, 0::2], pe[:, 1::2] = a, b
    return pe


def test_check_sinusoidal():
    assert chk.check_sinusoidal(tr.sinusoidal_positions)
    assert chk.check_sinusoidal(_sinusoids)
    for wrong in (dict(swap=True), dict(base=1000.0), dict(step=1), dict(halves=True)):
        assert not chk.check_sinusoidal(lambda T, d, w=wrong: _sinusoids(T, d, **w)), wrong


def test_check_pre_ln_block():
    def pre_ln(x, ln1, attn, ln2, mlp, mask):
        x = x + attn(ln1(x), mask=mask)
        return x + mlp(ln2(x))

    def post_ln(x, ln1, attn, ln2, mlp, mask):
        x = ln1(x + attn(x, mask=mask))
        return ln2(x + mlp(x))

    def normalised_stream(x, ln1, attn, ln2, mlp, mask):
        x = ln1(x)
        x = x + attn(x, mask=mask)
        x = ln2(x)
        return x + mlp(x)

    def one_ln(x, ln1, attn, ln2, mlp, mask):
        x = x + attn(ln1(x), mask=mask)
        return x + mlp(ln1(x))

    def no_mask(x, ln1, attn, ln2, mlp, mask):
        return pre_ln(x, ln1, attn, ln2, mlp, None)

    assert chk.check_pre_ln_block(pre_ln)
    for wrong in (post_ln, normalised_stream, one_ln, no_mask):
        assert not chk.check_pre_ln_block(wrong), wrong.__name__
