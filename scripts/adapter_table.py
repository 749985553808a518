"""Print the README's table of shipped adapters from their cards (adapters/*/synthgen_adapter.json)."""

import json
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main():
    print("| adapter | targets | mass on valid (base → adapter) | entropy bits (max) | KL(p*‖p) bits "
          "| E[distinct] in 500 draws | steps | train s | perplexity ×|")
    print("|---|---|---|---|---|---|---|---|---|")
    for card_file in sorted(ROOT.glob("adapters/*/synthgen_adapter.json")):
        card = json.loads(card_file.read_text())
        for lst in card["lists"]:
            b, a = lst["base"], lst["adapter"]
            print(f"| {card_file.parent.name} | {lst['n_targets']} | {b['mass']:.3f} → **{a['mass']:.3f}** "
                  f"| {b['entropy_bits']:.2f} → {a['entropy_bits']:.2f} ({a['max_entropy_bits']:.2f}) "
                  f"| {b['kl_bits']:.2f} → {a['kl_bits']:.2f} | {b['expected_distinct']['500']:.0f} → "
                  f"**{a['expected_distinct']['500']:.0f}** | {card['steps']} | {card['train_seconds']:.0f} "
                  f"| {card['capability']['perplexity_ratio']:.2f} |")


if __name__ == "__main__":
    main()
