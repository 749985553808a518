"""Valid by construction: a vLLM V1 logits processor that keeps a request inside its list's token trie.

A request opts in with `SamplingParams(extra_args={"synthgen_trie": PATH})`, PATH being a decode
trie file (`synthgen.targets.decode_trie_file`). At every step the processor sets the request's
logits to -inf except the tokens that continue some list item from where the answer is, with
end-of-turn allowed only where an item ends; sampling (temperature, top-p, the request's seed)
then happens on what is left. Requests without the key are untouched.

Load it once per engine, not per request:
  in-process   vllm.LLM(..., logits_processors=[FQCN])      (VLLMEngine does this)
  server       python -m vllm.entrypoints.openai.api_server ... --logits-processors FQCN
with FQCN = "synthgen.engine.trie_processor:TrieLogitsProcessor"; an OpenAI request passes the
trie as `"vllm_xargs": {"synthgen_trie": PATH}`, so PATH must exist on the server's disk.
"""

from __future__ import annotations

from pathlib import Path

import torch
from vllm.v1.sample.logits_processor import BatchUpdate, LogitsProcessor, MoveDirectionality

from ..targets import DecodeTrie

KEY = "synthgen_trie"
FQCN = "synthgen.engine.trie_processor:TrieLogitsProcessor"


def _trie_path(params) -> str | None:
    extra = getattr(params, "extra_args", None) or {}
    return extra.get(KEY)


class TrieLogitsProcessor(LogitsProcessor):
    @classmethod
    def validate_params(cls, sampling_params) -> None:
        """Runs where the request is admitted (the API server for `vllm serve`): a bad trie is an
        HTTP 400 / ValueError, not an engine crash."""
        path = _trie_path(sampling_params)
        if path is None:
            return
        if not isinstance(path, str) or not Path(path).is_file():
            raise ValueError(f"{KEY}: trie file {path!r} does not exist on this server "
                             "(the server needs the client's SYNTHGEN_HOME/tries, e.g. a shared filesystem)")

    def __init__(self, vllm_config, device: torch.device, is_pin_memory: bool) -> None:
        self._tries: dict[str, DecodeTrie] = {}  # files are named by digest: never stale
        # batch row -> [trie, the request's live output-token list, node, tokens consumed]
        self._rows: dict[int, list] = {}

    def is_argmax_invariant(self) -> bool:
        return False  # masking changes the argmax: applied before temperature and top-p

    def _trie(self, path: str) -> DecodeTrie:
        trie = self._tries.get(path)
        if trie is None:
            trie = self._tries[path] = DecodeTrie.load(path)
        return trie

    def update_state(self, batch_update: BatchUpdate | None) -> None:
        if batch_update is None:
            return
        # vLLM's documented order: removed, then added, then moved
        for index in batch_update.removed:
            self._rows.pop(index, None)
        for index, params, _prompt, output in batch_update.added:
            path = _trie_path(params)
            if path is None:
                self._rows.pop(index, None)
            else:
                self._rows[index] = [self._trie(path), output, 0, 0]
        for a, b, direction in batch_update.moved:
            ra, rb = self._rows.pop(a, None), self._rows.pop(b, None)
            if ra is not None:
                self._rows[b] = ra
            if direction == MoveDirectionality.SWAP and rb is not None:
                self._rows[a] = rb

    def apply(self, logits: torch.Tensor) -> torch.Tensor:
        if not self._rows:
            return logits
        rows, cols = [], []
        for index, state in self._rows.items():
            trie, output, node, seen = state
            # advance here, not in update_state: output lists are final when logits exist
            while seen < len(output) and output[seen] >= 0:
                node = trie.step(node, output[seen])
                seen += 1
            state[2], state[3] = node, seen
            allowed = trie.allowed(node)
            rows.append(torch.full((len(allowed),), index, dtype=torch.long))
            cols.append(torch.from_numpy(allowed))
        r, c = torch.cat(rows).to(logits.device), torch.cat(cols).to(logits.device)
        constrained = torch.tensor(sorted(self._rows), dtype=torch.long, device=logits.device)
        keep = logits[r, c]
        logits[constrained] = float("-inf")
        logits[r, c] = keep
        return logits
