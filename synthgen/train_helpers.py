"""Two pieces of the training loop around the loss (train.py): the keep term, which holds the
adapter near the base on general text, and bf16 frozen weights for bf16 training."""

from __future__ import annotations

from contextlib import contextmanager


# General text for --keep-weight, on other subjects than the capability check's paragraph
# (audit.GENERAL_PARAGRAPH), so the term cannot fit the check itself.
KEEP_TEXTS = (
    "A public library lends books, newspapers and recordings to the people of a town. Most libraries also "
    "offer quiet rooms for study, computers for those who have none, and reading hours for small children.",
    "To bake bread, mix flour, water, salt and yeast into a dough, knead it until it is smooth, and leave it "
    "to rise in a warm place. Then shape the loaf and bake it until the crust is brown and sounds hollow.",
    "The moon circles the earth about once a month. As it moves, the sunlit half we can see grows from a thin "
    "crescent to a full disc and shrinks again, and its pull on the oceans raises the tides twice a day.",
)


class FrozenWeights:
    """bf16 training keeps the frozen projection weights in bf16 (the LoRA weights, embeddings and
    norms stay fp32): under autocast, fp32 weights are cast again in every forward, a quarter of a
    bf16 step on an AMX Xeon (benchmarks/train_dtype.py). The fp32 originals are kept for the
    exact passes (the stop rule's confirmation, the card's audit)."""

    def __init__(self, model, bf16: bool):
        import torch

        self.bf16 = bf16
        self.fp32_data, self.bf16_data, self.modules = {}, {}, {}
        if bf16:
            for name, module in model.named_modules():
                if isinstance(module, torch.nn.Linear) and name.endswith("base_layer"):
                    self.fp32_data[name] = module.weight.data
                    module.weight.data = module.weight.data.to(torch.bfloat16)
            self.modules = {n: m for n, m in model.named_modules() if n in self.fp32_data}
            self.bf16_data = {n: m.weight.data for n, m in self.modules.items()}

    def _use(self, data: dict) -> None:
        for name, module in self.modules.items():
            module.weight.data = data[name]

    @contextmanager
    def fp32(self):
        if not self.bf16:
            yield
            return
        self._use(self.fp32_data)
        try:
            yield
        finally:
            self._use(self.bf16_data)

    def restore(self) -> None:
        """fp32 for good (training is over)."""
        if self.bf16:
            self._use(self.fp32_data)
            self.bf16 = False


class Keep:
    """KL(base || adapter) token by token over KEEP_TEXTS: the term --keep-weight adds to the loss.
    The base's log-probabilities are computed once, with the adapter off."""

    def __init__(self, model, tokenizer):
        import torch

        self.ids = [torch.tensor([tokenizer(t, add_special_tokens=False)["input_ids"]]) for t in KEEP_TEXTS]
        with torch.no_grad(), model.disable_adapter():
            self.base = [torch.log_softmax(model(input_ids=x).logits.float(), -1) for x in self.ids]

    def kl(self, model, i: int):
        import torch

        lp = torch.log_softmax(model(input_ids=self.ids[i]).logits.float(), -1)
        return (self.base[i].exp() * (self.base[i] - lp)).sum(-1).mean()
