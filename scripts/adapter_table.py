"""Print docs/adapters.md's table of shipped adapters from their cards (adapters/*/synthgen_adapter.json).

    python scripts/adapter_table.py [DIR]     # DIR: another folder of adapters (default adapters/)

Generation decodes choice and date fields inside the list's trie, so it samples Q (audit.py): the
table leads with KL(Q‖p*) and H(Q); P's mass on the list is what free decoding would get. A card
with several lists (a conditional spec: one per value of its variables) is shown as their mean."""

import json
from pathlib import Path

import numpy as np

from synthgen.card import AdapterCard

ROOT = Path(__file__).resolve().parent.parent


def mean(lists, side, key, sub=None, fmt=".2f") -> str:
    """The lists' mean of one audit figure, formatted; "—" where a card predates it (no Q figures
    before constrained decoding: those adapters' Q is in the constrained-decoding table)."""
    vals = [x[side].get(key) for x in lists]
    if any(v is None for v in vals):
        return "—"
    return format(float(np.mean([v if sub is None else v.get(sub, v.get(int(sub))) for v in vals])), fmt)


def main():
    import sys

    folder = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "adapters"
    print("| adapter | objective | lists × targets | KL(Q‖p*) bits (base → adapter) | H(Q) bits (target) "
          "| E[distinct] in 500 under Q | mass of P on the list | steps | train s | perplexity × |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for card_file in sorted(folder.glob("*/synthgen_adapter.json")):
        card = AdapterCard.from_dict(json.loads(card_file.read_text()))
        lists = card.lists
        sizes = sorted({x["n_targets"] for x in lists})
        size = f"{len(lists)} × {sizes[0]}" if len(lists) > 1 else str(sizes[0])
        stop = "" if card.stopped_early else " (cap)"
        first = card.init  # trained in stages (--init): the stage before, then this one
        steps = f"{first['steps']} + {card.steps}" if first else str(card.steps)
        seconds = f"{first['train_seconds']:.0f} + {card.train_seconds:.0f}" if first else f"{card.train_seconds:.0f}"
        print(f"| {card_file.parent.name} | {card.objective} | {size} "
              f"| {mean(lists, 'base', 'kl_q_target_bits')} → **{mean(lists, 'adapter', 'kl_q_target_bits', fmt='.3f')}** "
              f"| {mean(lists, 'adapter', 'q_entropy_bits')} ({np.mean([x['target_entropy_bits'] for x in lists]):.2f}) "
              f"| {mean(lists, 'base', 'q_expected_distinct', '500', '.0f')} → "
              f"**{mean(lists, 'adapter', 'q_expected_distinct', '500', '.0f')}** "
              f"| {mean(lists, 'base', 'mass', fmt='.3f')} → {mean(lists, 'adapter', 'mass', fmt='.3f')} "
              f"| {steps}{stop} | {seconds} | {card.capability['perplexity_ratio']:.2f} |")


if __name__ == "__main__":
    main()
