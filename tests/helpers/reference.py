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


# --- Qwen3-Reranker, as its model card scores a pair with transformers ---------------------------
RERANK_PREFIX = (
    "<|im_start|>system\nJudge whether the Document meets the requirements based on the Query and the "
    'Instruct provided. Note that the answer can only be "yes" or "no".<|im_end|>\n<|im_start|>user\n'
)
RERANK_SUFFIX = "<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n"


def format_instruction(instruction, query, doc):
    if instruction is None:
        instruction = "Given a web search query, retrieve relevant passages that answer the query"
    return f"<Instruct>: {instruction}\n<Query>: {query}\n<Document>: {doc}"


def reference_rerank(model, tokenizer, pairs: list[tuple[str, str]], instruction=None) -> list[float]:
    import torch

    prefix = tokenizer.encode(RERANK_PREFIX, add_special_tokens=False).ids
    suffix = tokenizer.encode(RERANK_SUFFIX, add_special_tokens=False).ids
    token_true_id = tokenizer.token_to_id("yes")
    token_false_id = tokenizer.token_to_id("no")
    scores = []
    for query, doc in pairs:
        ids = (
            prefix
            + tokenizer.encode(format_instruction(instruction, query, doc), add_special_tokens=False).ids
        )
        ids += suffix
        with torch.no_grad():
            batch_scores = model(input_ids=torch.tensor([ids])).logits[:, -1, :]
        true_vector = batch_scores[:, token_true_id]
        false_vector = batch_scores[:, token_false_id]
        batch_scores = torch.stack([false_vector, true_vector], dim=1)
        batch_scores = torch.nn.functional.log_softmax(batch_scores, dim=1)
        scores.extend(batch_scores[:, 1].exp().tolist())
    return scores
