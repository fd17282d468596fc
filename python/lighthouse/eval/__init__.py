"""Evaluation tools (docs/eval.md).

- `python -m lighthouse.eval.niah_prompts`: needle-in-a-haystack prompts tokenized with a run's
  own tokenizer, for `lighthouse eval --niah --niah-prompts FILE` (vocabularies other than
  bytes, whose built-in prompts are byte tokens).
"""
