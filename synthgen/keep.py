"""The keep term of the training loop (train.py): KL(base || adapter) on general text, which holds
the adapter near the base where the list's objective alone lets general capability drift."""

from __future__ import annotations


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


class Keep:
    """KL(base || adapter) token by token over KEEP_TEXTS: the term --keep-weight adds to the loss.
    The base's log-probabilities are computed once, with the adapter off."""

    def __init__(self, model, tokenizer):
        import torch

        self.ids = [torch.tensor([tokenizer(t, add_special_tokens=False)["input_ids"]]) for t in KEEP_TEXTS]
        with torch.no_grad(), model.disable_adapter():
            self.base = [torch.log_softmax(model(input_ids=x).logits.float(), -1) for x in self.ids]

    def kl(self, model, i: int, frozen=None):
        """`frozen` (frozen.FrozenBelow): the layers below the first LoRA layer from its store."""
        import torch

        if frozen is None:
            logits = model(input_ids=self.ids[i]).logits
        else:
            from .targets import body_and_head

            logits = body_and_head(model)[1](frozen.text_upper(("keep", i), self.ids[i]))
        lp = torch.log_softmax(logits.float(), -1)
        return (self.base[i].exp() * (self.base[i] - lp)).sum(-1).mean()
