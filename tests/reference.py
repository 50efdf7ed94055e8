"""The reference recipe, as Qwen3-Embedding's model card gives it for transformers (not our code).

Left padding, `<|endoftext|>` appended to every input, last-token pooling, L2 normalisation;
queries as `Instruct: {task}\\nQuery:{query}`; a Matryoshka cut truncates then renormalises.
"""

from __future__ import annotations

import numpy as np


def get_detailed_instruct(task_description: str, query: str) -> str:
    return f"Instruct: {task_description}\nQuery:{query}"


def last_token_pool(last_hidden_states, attention_mask):
    import torch

    left_padding = attention_mask[:, -1].sum() == attention_mask.shape[0]
    if left_padding:
        return last_hidden_states[:, -1]
    sequence_lengths = attention_mask.sum(dim=1) - 1
    batch_size = last_hidden_states.shape[0]
    return last_hidden_states[torch.arange(batch_size, device=last_hidden_states.device), sequence_lengths]


def reference_embed(model, tokenizer, texts: list[str], eod_id: int, dim: int | None = None) -> np.ndarray:
    import torch
    import torch.nn.functional as F

    ids = [tokenizer.encode(t, add_special_tokens=False).ids + [eod_id] for t in texts]
    width = max(map(len, ids))
    input_ids = torch.tensor([[eod_id] * (width - len(x)) + x for x in ids])  # left padding
    mask = torch.tensor([[0] * (width - len(x)) + [1] * len(x) for x in ids])
    with torch.no_grad():
        out = model(input_ids=input_ids, attention_mask=mask)
    emb = last_token_pool(out.last_hidden_state, mask)
    if dim is not None:
        emb = emb[:, :dim]
    return F.normalize(emb, p=2, dim=1).numpy()
