"""Hidden states below the first LoRA layer, computed once and reused (build-adapter --layers N).

With LoRA on the top N decoder layers only, the layers below are the base's, frozen. In a packed
trie pass (targets.py) each node attends to the prompt and its own ancestors only, so a node's
hidden state at any layer depends on the prompt and its path, not on which other targets share
the pass. Its state below the first LoRA layer is therefore the same in every step: computed the
first time the node is met (no gradients), kept per prompt and node of the whole list's trie, and
each step runs only the top N layers (forward and backward). The loss and its gradient are those
of the full pass (tested), at about N/L of its cost once the states are in.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import targets as T


def decoder_parts(model):
    """(body, first trainable layer) when the body runs as embed -> layers -> norm with rotary
    position embeddings (Llama-style) and LoRA sits only on layers from some index up; else None."""
    body, _ = T.body_and_head(model)
    if body is None or not all(hasattr(body, a) for a in ("embed_tokens", "layers", "norm", "rotary_emb")):
        return None
    trainable = [i for i, layer in enumerate(body.layers) if any(p.requires_grad for p in layer.parameters())]
    if not trainable or any(p.requires_grad for p in body.embed_tokens.parameters()):
        return None
    return body, trainable[0]


def run_layers(body, hidden, position_ids, mask, layers):
    """The decoder layers `layers` over hidden states [1, L, d] (as the body's own forward runs them)."""
    pos = body.rotary_emb(hidden, position_ids=position_ids)
    for layer in layers:
        out = layer(hidden, attention_mask=mask, position_embeddings=pos, position_ids=position_ids)
        hidden = out[0] if isinstance(out, tuple) else out
    return hidden


@dataclass
class _Entry:
    prompt: "object"  # [p, d] the prompt's states below the first LoRA layer
    rows: "object"  # [F, d] one row per node of the whole list's trie (filled when first met)
    have: np.ndarray  # [F] bool


class FrozenBelow:
    """States below layer `start` per (whole-list trie, prompt, autocast on/off), node by node."""

    def __init__(self, body, start: int):
        self.body, self.start = body, start
        self.store: dict = {}
        self.computed = 0  # nodes run through the frozen layers (the rest came from the store)

    @classmethod
    def of(cls, model) -> "FrozenBelow | None":
        parts = decoder_parts(model)
        return cls(*parts) if parts and parts[1] > 0 else None

    def _lower(self, prompt_ids, trie: T.Trie):
        import torch

        input_ids, position_ids, mask, _ = T.packed_inputs(prompt_ids, trie, self.body.embed_tokens.weight.dtype)
        with torch.no_grad():
            hidden = self.body.embed_tokens(input_ids)
            return run_layers(self.body, hidden, position_ids, mask, self.body.layers[:self.start])[0]

    def states(self, prompt_ids, trie: T.Trie, full: "T.DecodeTrie"):
        """[1, p + n, d]: the prompt's and `trie`'s nodes' states below the first LoRA layer."""
        import torch

        p = len(prompt_ids)
        nodes = T.full_trie_nodes(trie, full)
        device = "cuda" if torch.cuda.is_available() else "cpu"
        key = (id(full), tuple(prompt_ids), torch.is_autocast_enabled(device))
        entry = self.store.get(key)
        if entry is None or not entry.have[nodes].all():
            new = np.ones(trie.n_nodes, dtype=bool) if entry is None else ~entry.have[nodes]  # per node of `trie`
            todo = [trie.tokens[path].tolist() for path in trie.paths if new[path].any()]
            sub = T.build_trie(todo)
            h = self._lower(prompt_ids, sub)
            if entry is None:
                n_full = int(full.start.shape[0]) - 1
                entry = self.store[key] = _Entry(h[:p].clone(), torch.empty(n_full, h.shape[-1], dtype=h.dtype, device=h.device),
                                                 np.zeros(n_full, dtype=bool))
            sub_nodes = T.full_trie_nodes(sub, full)
            entry.rows[torch.from_numpy(sub_nodes).to(h.device)] = h[p:].to(entry.rows.dtype)
            entry.have[sub_nodes] = True
            self.computed += sub.n_nodes
        return torch.cat([entry.prompt, entry.rows[torch.from_numpy(nodes).to(entry.rows.device)]])[None]

    def text_upper(self, name, input_ids):
        """Final hidden states [L, d] of a plain causal pass over input_ids [1, L] (the keep term's
        texts), the frozen layers' part computed once per `name` and autocast setting."""
        import torch

        n = input_ids.shape[1]
        position_ids = torch.arange(n)[None]
        mask = torch.full((n, n), torch.finfo(self.body.embed_tokens.weight.dtype).min).triu(1)[None, None]
        device = "cuda" if torch.cuda.is_available() else "cpu"
        key = ("text", name, torch.is_autocast_enabled(device))
        if key not in self.store:
            with torch.no_grad():
                self.store[key] = run_layers(self.body, self.body.embed_tokens(input_ids), position_ids, mask,
                                             self.body.layers[:self.start])
        return self.body.norm(run_layers(self.body, self.store[key], position_ids, mask, self.body.layers[self.start:]))[0]

    def upper(self, prompt_ids, trie: T.Trie, full: "T.DecodeTrie"):
        """Final hidden states [p + n, d] of the packed pass, running only the layers from `start` up."""
        input_ids, position_ids, mask, _ = T.packed_inputs(prompt_ids, trie, self.body.embed_tokens.weight.dtype)
        hidden = run_layers(self.body, self.states(prompt_ids, trie, full), position_ids, mask, self.body.layers[self.start:])
        return self.body.norm(hidden)[0]
